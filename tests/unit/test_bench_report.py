"""benchmarks/report.py's table of what users saw during deploys measured under load."""

from __future__ import annotations

import sys
import typing as t
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import report


def run(contestant: str, *, ok: bool = True, maintenance: float | None, **load: t.Any) -> dict[str, t.Any]:
    reads = {
        "responses": load.get("reads", 100),
        "statuses": load.get("statuses", {"200": load.get("reads", 100)}),
        "errors": load.get("errors", {}),
        "latency": {"median_ms": 5.0, "p99_ms": load.get("read_p99", 30.0), "max_ms": load.get("read_max", 40.0)},
    }
    return {
        "contestant": contestant,
        "ok": ok,
        "maintenance_s": maintenance,
        "user_outage_s": maintenance or 0.0,
        "wall_s": load.get("wall", 50.0),
        "write_load": {
            "requests": load.get("writes", 300),
            "failed": load.get("failed", []),
            "latency": {"median_ms": 9.0, "p99_ms": load.get("write_p99", 20.0), "max_ms": 60.0},
            "jobs": load.get("jobs", 40),
            "jobs_not_completed": load.get("not_completed", []),
            "reads": reads,
        },
    }


def rows(text: str) -> dict[str, list[str]]:
    lines = text.splitlines()[2:]
    return {cells[0]: cells[1:] for cells in ([c.strip() for c in line.strip("|").split("|")] for line in lines)}


def test_counts_are_summed_over_rounds_and_failures_show() -> None:
    table = report.load_table(
        [
            run("zero_downtime", maintenance=None, writes=300, jobs=40, reads=900),
            run("ansible", maintenance=9.5, failed=["503 upload"] * 30, statuses={"200": 800, "503": 95}, reads=895),
            run("zero_downtime", maintenance=None, writes=310, jobs=41, reads=910),
            run("ansible", maintenance=10.5, failed=["503 upload"] * 20, errors={"connection refused": 5}, reads=890),
        ]
    )
    got = rows(table)
    assert got["zero_downtime"][:7] == ["2", "none", "0.00, 0.00", "50.00", "610 / **0**", "1810 / **0**", "81 / 0"]
    assert got["ansible"][:6] == ["2", "10.00", "9.50, 10.50", "50.00", "600 / **50**", "1790 / **100**"]


def test_latency_is_the_median_p99_and_the_largest_maximum() -> None:
    table = report.load_table(
        [
            run("zero_downtime", maintenance=None, read_p99=10.0, read_max=50.0, write_p99=1.0),
            run("zero_downtime", maintenance=None, read_p99=30.0, read_max=1375.6, write_p99=3.0),
            run("zero_downtime", maintenance=None, read_p99=20.0, read_max=70.0, write_p99=2.0),
        ]
    )
    assert rows(table)["zero_downtime"][-2:] == ["2.00 / 60.00", "20.00 / 1375.60"]


def test_a_failed_round_and_unfinished_jobs_are_named() -> None:
    table = report.load_table([run("zero_downtime", ok=False, maintenance=None, not_completed=["job-1", "job-2"])])
    (name, cells) = next(iter(rows(table).items()))
    assert name == "zero_downtime (a round failed)"
    assert cells[6] == "40 / 2"
