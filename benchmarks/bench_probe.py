"""ablage.ops.health_probe over 20 URLs in one call against an ansible.builtin.uri loop over the same 20 URLs.

benchmarks/playbooks/probe_20_urls.yml holds both tasks (the five health endpoints of the reference
backend, four times each with a query string); each contestant is one ansible-playbook run with
its tag, alternating, both of a round under one hold of the stack lock. Reported: the task's own duration (json
callback) and the whole ansible-playbook run.

    .venv/bin/python benchmarks/bench_probe.py [--rounds 5]
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

CONTESTANTS = ("health_probe", "uri_loop")
METRICS = ("task_s", "wall_s")


def run_playbook(tag: str, round_no: int) -> dict[str, t.Any]:
    env = bl.ansible_env(ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json", ANSIBLE_LOAD_CALLBACK_PLUGINS="1")
    argv = [
        str(bl.VENV_BIN / "ansible-playbook"),
        "benchmarks/playbooks/probe_20_urls.yml",
        "-i",
        "inventories/local",
        "--tags",
        tag,
    ]
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    report = json.loads(proc.stdout[proc.stdout.index("{") :]) if "{" in proc.stdout else {}
    task = report["plays"][0]["tasks"][0] if report.get("plays") else None
    if proc.returncode != 0 or task is None:
        return {"contestant": tag, "round": round_no, "ok": False, "error": (proc.stdout + proc.stderr)[-1500:]}
    duration = task["task"]["duration"]
    start = datetime.datetime.fromisoformat(duration["start"].replace("Z", "+00:00"))
    end = datetime.datetime.fromisoformat(duration["end"].replace("Z", "+00:00"))
    play = report["plays"][0]["play"]["duration"]
    play_start = datetime.datetime.fromisoformat(play["start"].replace("Z", "+00:00"))
    play_end = datetime.datetime.fromisoformat(play["end"].replace("Z", "+00:00"))
    return {
        "contestant": tag,
        "round": round_no,
        "ok": True,
        "task_s": round((end - start).total_seconds(), 3),
        "wall_s": round((play_end - play_start).total_seconds(), 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_PROBE_ROUNDS", "5")))
    parser.add_argument("--name", default="probe", help="results file name (benchmarks/results/NAME.json)")
    parser.add_argument("--round", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--order", help=argparse.SUPPRESS)
    parser.add_argument("--round-json", help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.chdir(bl.REPO)
    if args.round_json:  # inside the stack lock
        mine = [run_playbook(tag, args.round) for tag in args.order.split(",")]
        Path(args.round_json).write_text(json.dumps(mine), encoding="utf-8")
        return 0
    runs: list[dict[str, t.Any]] = []
    started = time.monotonic()
    for number, order in enumerate(bl.round_orders(list(CONTESTANTS), args.rounds), start=1):
        with tempfile.NamedTemporaryFile(suffix=".json") as handle:
            argv = [sys.executable, __file__, "--round", str(number), "--order", ",".join(order)]
            bl.run(bl.under_stack_lock([*argv, "--round-json", handle.name]))
            for result in json.loads(Path(handle.name).read_text(encoding="utf-8")):
                bl.log(f"round {number}: {result['contestant']}: task {result.get('task_s')} s")
                runs.append(result)
    summary = bl.summarize([r for r in runs if r["ok"]], METRICS, [("health_probe", "uri_loop")])
    bl.record(args.name, {"benchmark": "probe", "urls": 20, "rounds": args.rounds}, started, runs, summary)
    return 0 if all(r["ok"] for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
