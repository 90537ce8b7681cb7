"""The pure helpers of benchmarks/benchlib.py: medians, ratios, round orders, downtime windows."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import benchlib as bl


def test_median_and_ratio() -> None:
    assert bl.median([3.0, 1.0, 2.0]) == 2.0
    assert bl.median([4, 1, 2, 3]) == 2.5
    assert bl.median([]) is None
    assert bl.ratio(1.0, 3.0) == 0.333
    assert bl.ratio(1.0, 0.0) is None
    assert bl.ratio(None, 2.0) is None


def test_round_orders_rotate_so_no_contestant_always_runs_first() -> None:
    orders = bl.round_orders(["a", "b", "c"], 4)
    assert orders == [["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"], ["a", "b", "c"]]
    assert bl.round_orders(["a", "b"], 3) == [["a", "b"], ["b", "a"], ["a", "b"]]
    assert bl.round_orders([], 2) == []


def test_outage_window_from_first_failure_to_first_success_after_the_last() -> None:
    samples = [(0.0, True), (1.0, False), (2.0, False), (3.0, True), (4.0, False), (5.0, True), (6.0, True)]
    seen = bl.outage_window(samples)
    assert seen["window_s"] == 4.0  # 1.0 .. 5.0
    assert seen["failed_s"] == 3.0  # 1-2, 2-3, 4-5: the good sample at 3.0 does not count
    assert seen["failed_samples"] == 3
    assert (seen["start_s"], seen["end_s"]) == (1.0, 5.0)


def test_outage_window_without_failures_and_without_recovery() -> None:
    assert bl.outage_window([(0.0, True), (1.0, True)])["window_s"] == 0.0
    never_back = bl.outage_window([(0.0, True), (1.0, False), (2.5, False)])
    assert never_back["window_s"] == 1.5
    assert never_back["end_s"] == 2.5


def test_state_window_carries_the_last_known_state_over_unreadable_samples() -> None:
    samples: list[tuple[float, bool | None]] = [
        (0.0, False),
        (1.0, True),
        (2.0, None),  # Redis stopped: still on
        (3.0, None),
        (4.0, True),
        (5.0, False),
        (6.0, False),
    ]
    assert bl.state_window(samples) == {"window_s": 4.0, "start_s": 1.0, "end_s": 5.0}
    assert bl.state_window([(0.0, False), (1.0, None)])["window_s"] is None
    assert bl.state_window([(0.0, True), (1.0, True)]) == {"window_s": None, "start_s": 0.0, "end_s": None}


def test_summarize_medians_and_ratios_of_medians() -> None:
    runs = [
        {"contestant": "a", "x": 1.0, "y": None},
        {"contestant": "a", "x": 3.0, "y": 2.0},
        {"contestant": "a", "x": 2.0, "y": 4.0},
        {"contestant": "b", "x": 4.0, "y": 6.0},
    ]
    summary = bl.summarize(runs, ["x", "y"], [("a", "b"), ("a", "missing")])
    assert summary["medians"] == {"a": {"x": 2.0, "y": 3.0}, "b": {"x": 4.0, "y": 6.0}}
    assert summary["ratios"] == {"a/b": {"x": 0.5, "y": 0.5}}


def test_preflight_command_delta_in_seconds() -> None:
    import bench_preflight

    assert bench_preflight.delta_seconds("0:00:01.500000") == 1.5
    assert bench_preflight.delta_seconds("1:01:00.250000") == 3660.25


def test_latency_summary_in_milliseconds() -> None:
    seconds = [0.010] * 98 + [0.050, 0.200]
    assert bl.latency_summary(seconds) == {"median_ms": 10.0, "p99_ms": 50.0, "max_ms": 200.0}
    assert bl.latency_summary([]) == {"median_ms": None, "p99_ms": None, "max_ms": None}


HEY_OUTPUT = """
Summary:
  Total:	3.0157 secs
  Slowest:	0.0870 secs
  Requests/sec:	39.7920

Latency distribution:
  10% in 0.0009 secs
  50% in 0.0017 secs
  99% in 0.0170 secs

Status code distribution:
  [200]	118 responses
  [503]	2 responses

Error distribution:
  [3]	Get "http://127.0.0.1:8080/x": dial tcp 127.0.0.1:8080: connect: connection refused
  [1]	Get "http://127.0.0.1:8080/x": EOF
"""


def test_parse_hey_counts_statuses_errors_and_latency() -> None:
    parsed = bl.parse_hey(HEY_OUTPUT)
    assert parsed["responses"] == 120
    assert parsed["statuses"] == {"200": 118, "503": 2}
    assert sum(parsed["errors"].values()) == 4 and len(parsed["errors"]) == 2
    assert parsed["latency"] == {"median_ms": 1.7, "p99_ms": 17.0, "max_ms": 87.0}


def test_parse_hey_without_errors() -> None:
    parsed = bl.parse_hey(HEY_OUTPUT.split("Error distribution:", maxsplit=1)[0])
    assert parsed["errors"] == {} and parsed["responses"] == 120
