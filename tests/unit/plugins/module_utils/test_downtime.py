"""The downtime summary and the poller's request, against a real loopback HTTP server."""

from __future__ import annotations

import http.server
import json
import socket
import threading
import typing as t
from pathlib import Path

import pytest

from ansible_collections.ablage.ops.plugins.module_utils import _downtime


def s(t_: float, ok: bool, status: int | None = 200, error: str | None = None) -> dict[str, t.Any]:
    return {"t": t_, "ok": ok, "status": status, "error": error, "latency_ms": 1.0}


def test_no_outage() -> None:
    summary = _downtime.summarize([s(100, True), s(100.5, True), s(101, True)])
    assert summary["downtime_s"] == 0 and summary["outages"] == []
    assert summary["samples"] == 3 and summary["observed_s"] == 1.0 and summary["availability_percent"] == 100.0


def test_outage_runs_from_first_failure_to_next_success() -> None:
    samples = [
        s(10, True),
        s(11, False, 503),
        s(12, False, None, "ConnectionRefusedError: x"),
        s(13.5, True),
        s(14, True),
    ]
    summary = _downtime.summarize(list(reversed(samples)))  # order of the file does not matter
    assert summary["downtime_s"] == 2.5
    (outage,) = summary["outages"]
    assert outage["start"] == _downtime.iso(11) and outage["end"] == _downtime.iso(13.5)
    assert outage["failed_samples"] == 2 and not outage["open"]
    assert outage["reasons"] == {"status 503": 1, "ConnectionRefusedError: x": 1}
    assert summary["availability_percent"] == 37.5


def test_two_outages_and_one_still_open() -> None:
    samples = [s(0, True), s(1, False, 500), s(2, True), s(3, False, 503), s(5, False, 503)]
    summary = _downtime.summarize(samples)
    assert [o["duration_s"] for o in summary["outages"]] == [1.0, 2.0]
    assert summary["outages"][1]["open"] is True
    assert summary["downtime_s"] == 3.0 and summary["failed_samples"] == 3


def test_maintenance_window_beside_the_downtime() -> None:
    summary = _downtime.summarize([s(0, True)], {"on": "2026-01-27T10:15:00Z", "off": "2026-01-27T10:15:12.5Z"})
    assert summary["maintenance_window"]["duration_s"] == 12.5


def test_empty() -> None:
    summary = _downtime.summarize([])
    assert summary["samples"] == 0 and summary["downtime_s"] == 0 and summary["availability_percent"] is None


def test_torn_last_line_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "samples.jsonl"
    path.write_text(json.dumps(s(1, True)) + "\n" + '{"t": 2, "ok": fa', encoding="utf-8")
    assert _downtime.read_samples(str(path)) == [s(1, True)]
    assert _downtime.read_samples(str(tmp_path / "missing.jsonl")) == []


class _Handler(http.server.BaseHTTPRequestHandler):
    status = 200
    seen_headers: t.ClassVar[list[str]] = []

    def do_GET(self) -> None:
        _Handler.seen_headers.append(self.headers.get("Authorization", ""))
        self.send_response(_Handler.status)
        if _Handler.status == 302:
            self.send_header("Location", "/login")
        self.end_headers()

    def log_message(self, *_args: t.Any) -> None:
        pass


@pytest.fixture
def server() -> t.Iterator[str]:
    httpd = http.server.HTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/probe"
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize(("status", "ok"), [(200, True), (404, True), (503, False), (302, False)])
def test_probe_once_judges_the_status(server: str, status: int, ok: bool) -> None:
    _Handler.status = status
    sample = _downtime.probe_once(server, {"Authorization": "Bearer u"}, 2, [200, 404])
    assert sample["status"] == status and sample["ok"] is ok and sample["error"] is None
    assert _Handler.seen_headers[-1] == "Bearer u"


def test_probe_once_refused_connection_is_down() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sample = _downtime.probe_once(f"http://127.0.0.1:{port}/", {}, 1, [200])
    assert sample["ok"] is False and sample["status"] is None and "Refused" in sample["error"]


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_lock_watch_follows_the_deploy_it_measures(tmp_path: Path) -> None:
    lock = tmp_path / "deploy.lock"
    clock = _Clock()
    watch = _downtime.LockWatch(str(lock), grace=60, now=clock)
    assert not watch.ended()  # the deploy has not taken its lock yet
    lock.write_text(json.dumps({"run_id": "run-1"}))
    assert not watch.ended() and watch.owner == "run-1"
    clock.now += 3600  # a long deploy: the grace only counts before the lock
    assert not watch.ended()
    lock.write_text(json.dumps({"run_id": "rollback-2"}))  # the recovery broke the killed run's lock
    assert watch.ended()


def test_lock_watch_ends_when_the_lock_is_released_or_never_taken(tmp_path: Path) -> None:
    lock = tmp_path / "deploy.lock"
    lock.write_text("")  # unreadable, still a lock
    watch = _downtime.LockWatch(str(lock), grace=60, now=_Clock())
    assert not watch.ended() and watch.owner == "(unreadable)"
    lock.unlink()
    assert watch.ended()
    clock = _Clock()
    never = _downtime.LockWatch(str(tmp_path / "other.lock"), grace=60, now=clock)
    assert not never.ended()
    clock.now += 61
    assert never.ended()
