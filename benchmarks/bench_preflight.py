"""The whole pre-flight (playbooks/preflight.yml against inventories/local): wall time, and how much is Ansible.

Two contestants, alternating, each round under the stack lock (the migration preview runs the
target release's image against the stack's database):

- ``ansible``: ``ansible-playbook playbooks/preflight.yml -i inventories/local -e ablage_version=1.1.0``
  with the ``ansible.builtin.json`` callback, which gives each task's start and end and each command's
  own ``delta``;
- ``checks``: benchmarks/preflight_checks.sh, the same checks as plain commands one after the other;
- ``ansible_variant`` (with ``--variant-extra-vars JSON``): the playbook again with these extra vars, to
  measure a setting against the default in the same rounds (e.g. the old preflight_alembic_command).

Reported per run: wall time; for ``ansible`` also the sum of task durations, the time before the
first and after the last task (start-up: Python, collections, inventory, templating), the own
duration of the gate commands (the ``delta`` of every command result) and the per-task time of
the tasks that run no external program. Ansible's overhead is the wall time minus the checks' own
time (the ``checks`` contestant's median).

    .venv/bin/python benchmarks/bench_preflight.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
import typing as t
from pathlib import Path

import benchlib as bl

METRICS = ("wall_s", "tasks_s", "startup_s", "gate_commands_s", "task_count")


def parse_time(text: str) -> float:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def delta_seconds(delta: str) -> float:
    """A command result's ``delta`` (H:MM:SS.ffffff) in seconds."""
    hours, minutes, seconds = delta.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def breakdown(report: dict[str, t.Any], wall_s: float, started: float) -> dict[str, t.Any]:
    """Task time, start-up time and the gate commands' own time from the json callback's report."""
    tasks: list[tuple[str, float]] = []
    gate_commands = 0.0
    first_start, last_end = None, None
    for play in report.get("plays", []):
        for task in play.get("tasks", []):
            duration = task["task"].get("duration") or {}
            if not duration.get("start") or not duration.get("end"):
                continue
            begin, end = parse_time(duration["start"]), parse_time(duration["end"])
            first_start = begin if first_start is None else min(first_start, begin)
            last_end = end if last_end is None else max(last_end, end)
            tasks.append((task["task"]["name"], round(end - begin, 3)))
            for result in task.get("hosts", {}).values():
                for item in result.get("results", [result]):
                    if isinstance(item, dict) and item.get("delta"):
                        gate_commands += delta_seconds(str(item["delta"]))
    tasks_s = sum(seconds for _name, seconds in tasks)
    startup_s = (first_start - started) if first_start is not None else None
    return {
        "tasks_s": round(tasks_s, 3),
        "task_count": len(tasks),
        "startup_s": None if startup_s is None else round(startup_s, 3),
        "teardown_s": None if last_end is None else round(started + wall_s - last_end, 3),
        "gate_commands_s": round(gate_commands, 3),
        "tasks": tasks,
    }


def run_ansible(version: str, round_no: int, extra_vars: str | None = None) -> dict[str, t.Any]:
    name = "ansible_variant" if extra_vars else "ansible"
    env = bl.ansible_env(ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json", ANSIBLE_LOAD_CALLBACK_PLUGINS="1")
    argv = [
        str(bl.VENV_BIN / "ansible-playbook"),
        "playbooks/preflight.yml",
        "-i",
        "inventories/local",
        "-e",
        f"ablage_version={version}",
    ]
    if extra_vars:
        argv += ["-e", extra_vars]
    started_wall = time.time()
    started = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    wall_s = time.monotonic() - started
    log_file = bl.REPO / "benchmarks" / "results" / "logs" / f"preflight-{name}-round{round_no}.json"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    log_file.write_text(proc.stdout, encoding="utf-8")
    try:
        report = json.loads(proc.stdout)
    except ValueError:
        return {"contestant": name, "round": round_no, "ok": False, "error": proc.stderr[-1500:]}
    return {
        "contestant": name,
        "round": round_no,
        "ok": proc.returncode == 0,
        "error": None if proc.returncode == 0 else proc.stderr[-1500:],
        "wall_s": round(wall_s, 3),
        **breakdown(report, wall_s, started_wall),
    }


def run_checks(version: str, round_no: int) -> dict[str, t.Any]:
    wall_s = bl.run(["bash", str(bl.REPO / "benchmarks" / "preflight_checks.sh"), version])
    return {"contestant": "checks", "round": round_no, "ok": True, "error": None, "wall_s": round(wall_s, 3)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_PREFLIGHT_ROUNDS", "3")))
    parser.add_argument("--version", default="1.1.0")
    parser.add_argument("--variant-extra-vars", help="JSON extra vars of the ansible_variant contestant")
    parser.add_argument("--name", default="preflight", help="results file name (benchmarks/results/NAME.json)")
    parser.add_argument("--round", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--order", help=argparse.SUPPRESS)
    parser.add_argument("--round-json", help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.chdir(bl.REPO)
    if args.round_json:  # inside the stack lock
        mine = []
        for name in args.order.split(","):
            if name == "checks":
                result = run_checks(args.version, args.round)
            else:
                result = run_ansible(args.version, args.round, args.variant_extra_vars if name != "ansible" else None)
            bl.log(f"round {args.round}: {name}: {result.get('wall_s')} s{'' if result['ok'] else ' FAILED'}")
            mine.append(result)
        Path(args.round_json).write_text(json.dumps(mine), encoding="utf-8")
        return 0

    runs: list[dict[str, t.Any]] = []
    started = time.monotonic()
    contestants = ["ansible", "checks"] + (["ansible_variant"] if args.variant_extra_vars else [])
    for number, order in enumerate(bl.round_orders(contestants, args.rounds), start=1):
        with tempfile.NamedTemporaryFile(suffix=".json") as handle:
            argv = [sys.executable, __file__, "--round", str(number), "--order", ",".join(order)]
            argv += ["--round-json", handle.name, "--version", args.version]
            if args.variant_extra_vars:
                argv += ["--variant-extra-vars", args.variant_extra_vars]
            bl.log(f"round {number}/{args.rounds}: waiting for the stack lock")
            bl.run(bl.under_stack_lock(argv))
            runs.extend(json.loads(Path(handle.name).read_text(encoding="utf-8")))
            for run in runs[-len(contestants) :]:
                bl.log(f"round {number}: {run['contestant']} {run.get('wall_s')} s")
    pairs = [("ansible", "checks"), ("ansible_variant", "checks"), ("ansible", "ansible_variant")]
    summary = bl.summarize([r for r in runs if r["ok"]], METRICS, pairs)
    ansible = summary["medians"].get("ansible", {})
    checks = summary["medians"].get("checks", {})
    if ansible.get("wall_s") is not None and checks.get("wall_s") is not None:
        overhead = ansible["wall_s"] - checks["wall_s"]
        summary["overhead"] = {
            "ansible_minus_checks_s": round(overhead, 3),
            "share_of_wall": round(overhead / ansible["wall_s"], 3),
        }
    benchmark = {"benchmark": "preflight", "version": args.version, "rounds": args.rounds}
    bl.record(args.name, benchmark, started, runs, summary)
    return 0 if all(r["ok"] for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
