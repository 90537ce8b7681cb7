"""Downtime and wall time of a deploy 1.0.0 -> 1.1.0 on the reference stack, three ways, alternating.

Contestants (each starts from the same stack: ``scripts/stack.sh up 1.0.0``, maintenance off):

- ``ansible``: ``ansible-playbook playbooks/deploy.yml -i inventories/local -e ablage_version=1.1.0``
  (pre-flight, lock, pull, maintenance, backups, drain, stop, migrate, start, verify, smoke, monitoring);
- ``checklist``: benchmarks/checklist_deploy.sh, the checklist's commands with their fixed sleeps;
- ``fair_floor``: benchmarks/fair_floor_deploy.sh, deploy.yml's safety work (maintenance verified, queue
  drained, the application's backup, pg_dump with its test restore, migrate, start, health) as plain
  shell commands polling at the collection's rates: what deploy.yml is measured against (issue 17);
- ``lower_bound``: benchmarks/lower_bound_deploy.sh, only stop, migrate, start with health waits;
- ``zero_downtime``: deploy.yml with ``ablage_deploy_strategy=zero_downtime`` behind the reverse proxy
  (playbooks/proxy.yml runs first, outside the timing); users are polled, and a write load (uploads, OCR
  jobs, reads back) and hey's reads (Debian's ``hey``, 2 workers at 20 requests/s each) run through the
  proxy: failed requests, latency and unfinished OCR jobs are recorded, and any of them fails the run
  (``--load`` puts the other contestants under the same load, recorded only). For a release whose
  migration is additive or absent (``--from-version 1.1.0 --to-version 1.1.1`` or ``1.4.0``); the other
  contestants poll the backend directly;
- ``ansible_proposed`` (with ``--proposed DIR``): the same playbook with ablage.ops taken from DIR
  (a directory holding ``ansible_collections/ablage/ops``), to measure a proposed change of the
  roles before it is applied.

Downtime is measured the same way for all of them, from outside: a poller reads, every 50 ms, the
maintenance flag (Redis key ``ablage:maintenance``) and a document as the smoke user does
(``GET /api/v1/documents/{id}``, a non-admin endpoint that answers 503 in maintenance).

Each round takes the stack lock once (other sessions share the stack) and runs every contestant
once, in an order rotated per round. Results: medians per contestant and the ratios
ansible/checklist and ansible/lower_bound, printed and written to benchmarks/results/deploy.json.

    .venv/bin/python benchmarks/bench_deploy.py [--rounds 3] [--contestants ansible,checklist,fair_floor,lower_bound]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import typing as t
from pathlib import Path

import benchlib as bl

CONTESTANTS = ("ansible", "checklist", "fair_floor", "lower_bound", "ansible_proposed", "zero_downtime")
METRICS = ("maintenance_s", "user_outage_s", "user_failed_s", "wall_s")
LOGS = bl.REPO / "benchmarks" / "results" / "logs"


def reset_stack(version: str) -> float:
    """The starting point of every contestant: the stack at ``version``, maintenance off, no deploy lock."""
    started = time.monotonic()
    bl.run(["bash", str(bl.REPO / "scripts" / "stack.sh"), "up", version])
    bl.maintenance_off()
    return time.monotonic() - started


def contestant_argv(name: str, version: str) -> list[str]:
    if name in ("ansible", "ansible_proposed", "zero_downtime"):
        return [
            str(bl.VENV_BIN / "ansible-playbook"),
            "playbooks/deploy.yml",
            "-i",
            "inventories/local",
            "-e",
            f"ablage_version={version}",
            *(bl.ZERO_DOWNTIME_VARS if name == "zero_downtime" else ()),
        ]
    script = {
        "checklist": "checklist_deploy.sh",
        "fair_floor": "fair_floor_deploy.sh",
        "lower_bound": "lower_bound_deploy.sh",
    }[name]
    return ["bash", str(bl.REPO / "benchmarks" / script), version]


def run_contestant(
    name: str,
    from_version: str,
    to_version: str,
    round_no: int,
    profile: bool,
    proposed: str | None,
    with_load: bool = False,
) -> dict[str, t.Any]:
    reset_s = reset_stack(from_version)
    secrets = bl.env_production()
    admin = bl.login(secrets["ADMIN_USERNAME"], secrets["ADMIN_PASSWORD"])
    user = bl.login(secrets["SMOKE_USERNAME"], secrets["SMOKE_PASSWORD"])
    document = bl.upload_probe_document(user)
    extra = {"ADMIN_TOKEN": admin, "USER_TOKEN": user}
    if name == "ansible_proposed":
        if not proposed:
            raise RuntimeError("ansible_proposed needs --proposed DIR")
        extra["ANSIBLE_COLLECTIONS_PATH"] = f"{proposed}:{bl.REPO / '.venv/lib/python3.11/site-packages'}"
    if name.startswith("ansible") and profile:
        extra.update(ANSIBLE_CALLBACKS_ENABLED="ansible.posix.profile_tasks", PROFILE_TASKS_TASK_OUTPUT_LIMIT="all")
    env = bl.ansible_env()
    env.update(extra)
    api = bl.API
    load = None
    reads = None
    if name == "zero_downtime":
        bl.run(
            [str(bl.VENV_BIN / "ansible-playbook"), "playbooks/proxy.yml", "-i", "inventories/local"],
            env=bl.ansible_env(),
            log_file=LOGS / f"deploy-{name}-proxy-round{round_no}.log",
        )
        api = bl.PROXY
    if with_load:
        load = bl.WriteLoad(api=api, token=user)
        load.start()
        reads = bl.Hey(url=f"{api}/api/v1/documents/{document}", token=user)
        reads.start()
    poller = bl.Poller(user_url=f"{api}/api/v1/documents/{document}", user_token=user)
    poller.start()
    time.sleep(1.0)  # a baseline of good samples before the contestant starts
    log_file = LOGS / f"deploy-{name}-round{round_no}.log"
    started = poller.now()
    started_epoch = time.time()
    error = None
    try:
        bl.run(contestant_argv(name, to_version), env=env, log_file=log_file)
    except RuntimeError as exc:
        error = str(exc)[-2000:]
    finished = poller.now()
    finished_epoch = time.time()
    # Keep polling until users are served again (bounded), so the outage's end is seen.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        time.sleep(0.5)
        if poller.user and poller.user[-1][1] and poller.now() - finished > 1.0:
            break
    seen = poller.stop()
    writes: dict[str, t.Any] = {}
    if load is not None and reads is not None:
        load.stop()
        writes = load.finish(started_epoch, finished_epoch)
        writes["reads"] = reads.stop()
        # Only the zero-downtime deploy promises users no error; a window answers 503 by design.
        if name == "zero_downtime" and (
            writes["failed"]
            or writes["jobs_not_completed"]
            or writes["reads"]["errors"]
            or set(writes["reads"]["statuses"]) - {"200"}
        ):
            unfinished = writes["jobs_not_completed"][:10]
            error = error or f"users saw failures: {writes['failed'][:10]}, jobs not completed: {unfinished}"
    outage, maintenance = seen["user_outage"], seen["maintenance"]
    return {
        "contestant": name,
        "round": round_no,
        "ok": error is None,
        "error": error,
        "reset_s": round(reset_s, 3),
        "wall_s": round(finished - started, 3),
        "maintenance_s": maintenance["window_s"],
        "user_outage_s": outage["window_s"],
        "user_failed_s": outage["failed_s"],
        "user_statuses": seen["user_statuses"],
        "write_load": writes,
        "samples": seen["samples"],
        "log": str(log_file.relative_to(bl.REPO)),
    }


def one_round(args: argparse.Namespace) -> None:
    """Inside the stack lock: every contestant of this round once, then the stack back at the start version."""
    runs = []
    try:
        for name in args.order.split(","):
            bl.log(f"round {args.round}: {name}")
            result = run_contestant(
                name,
                args.from_version,
                args.to_version,
                args.round,
                args.profile,
                args.proposed,
                with_load=args.load or name == "zero_downtime",
            )
            bl.log(
                f"round {args.round}: {name}: wall {result['wall_s']} s, maintenance {result['maintenance_s']} s, "
                f"user outage {result['user_outage_s']} s{'' if result['ok'] else ' FAILED'}"
            )
            runs.append(result)
    finally:
        reset_stack(args.from_version)
        Path(args.round_json).write_text(json.dumps(runs), encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_DEPLOY_ROUNDS", "3")))
    parser.add_argument("--contestants", default="ansible,checklist,fair_floor,lower_bound")
    parser.add_argument("--from-version", default="1.0.0")
    parser.add_argument("--to-version", default="1.1.0")
    parser.add_argument("--profile", action="store_true", help="ansible runs with the profile_tasks callback")
    parser.add_argument(
        "--load",
        action="store_true",
        help="every contestant under the write load and hey's reads (zero_downtime always)",
    )
    parser.add_argument("--proposed", help="collections dir for the ansible_proposed contestant")
    parser.add_argument("--name", default="deploy", help="results file name (benchmarks/results/NAME.json)")
    parser.add_argument("--round", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--order", help=argparse.SUPPRESS)
    parser.add_argument("--round-json", help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.chdir(bl.REPO)
    if args.round_json:
        one_round(args)
        return 0

    contestants = [c for c in args.contestants.split(",") if c]
    if args.proposed and "ansible_proposed" not in contestants:
        contestants.append("ansible_proposed")
    unknown = sorted(set(contestants) - set(CONTESTANTS))
    if unknown:
        parser.error(f"unknown contestants {unknown} (known: {', '.join(CONTESTANTS)})")
    runs: list[dict[str, t.Any]] = []
    started = time.monotonic()
    for number, order in enumerate(bl.round_orders(contestants, args.rounds), start=1):
        with tempfile.NamedTemporaryFile(suffix=".json") as handle:
            argv = [
                sys.executable,
                __file__,
                "--round",
                str(number),
                "--order",
                ",".join(order),
                "--round-json",
                handle.name,
                "--from-version",
                args.from_version,
                "--to-version",
                args.to_version,
            ]
            if args.profile:
                argv.append("--profile")
            if args.load:
                argv.append("--load")
            if args.proposed:
                argv += ["--proposed", args.proposed]
            bl.log(f"round {number}/{args.rounds} ({', '.join(order)}): waiting for the stack lock")
            try:
                bl.run(bl.under_stack_lock(argv), log_file=LOGS / f"deploy-round{number}.log")
            finally:
                text = Path(handle.name).read_text(encoding="utf-8")
                runs.extend(json.loads(text) if text else [])
    pairs = [
        (c, b)
        for c in ("ansible", "ansible_proposed", "fair_floor", "zero_downtime")
        for b in ("checklist", "fair_floor", "lower_bound", "ansible")
        if c != b and c in contestants and b in contestants and (c, b) != ("fair_floor", "ansible")
    ]
    summary = bl.summarize([r for r in runs if r["ok"]], METRICS, pairs)
    benchmark = {
        "benchmark": "deploy",
        "from_version": args.from_version,
        "to_version": args.to_version,
        "rounds": args.rounds,
    }
    shown = {"medians": summary["medians"], "ratios": summary["ratios"]}
    bl.record(args.name, benchmark, started, runs, summary, shown=shown)
    return 0 if all(r["ok"] for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
