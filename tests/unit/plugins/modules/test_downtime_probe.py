"""downtime_probe's real main(): a detached poller against a loopback server, stopped with its summary."""

from __future__ import annotations

import http.server
import json
import threading
import time
import typing as t
from pathlib import Path

import pytest

from ansible_collections.ablage.ops.plugins.module_utils import _downtime, _process
from ansible_collections.ablage.ops.plugins.modules import downtime_probe


class _Handler(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(_Handler.status)
        self.end_headers()

    def log_message(self, *_args: t.Any) -> None:
        pass


@pytest.fixture
def url() -> t.Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


def wait_for_samples(path: Path, predicate: t.Callable[[list[dict[str, t.Any]]], bool]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if predicate(_downtime.read_samples(str(path))):
            return
        time.sleep(0.05)
    raise AssertionError(f"samples never matched: {_downtime.read_samples(str(path))}")


def test_start_observe_an_outage_stop(run_module: t.Any, tmp_path: Path, url: str) -> None:
    args = {
        "state": "started",
        "state_dir": str(tmp_path / "state"),
        "url": url,
        "interval": 0.05,
        "headers": {"Authorization": "Bearer secret-token-4711"},
    }
    _Handler.status = 200
    started = run_module(downtime_probe.main, args)
    assert started["changed"] and started["running"] and started["pid"] > 0
    assert "secret-token-4711" not in json.dumps(started)
    again = run_module(downtime_probe.main, args)
    assert not again["changed"] and again["pid"] == started["pid"]

    samples = tmp_path / "state" / "downtime-deploy.jsonl"
    wait_for_samples(samples, lambda got: any(x["ok"] for x in got))
    _Handler.status = 503
    wait_for_samples(samples, lambda got: not got[-1]["ok"])
    _Handler.status = 200
    wait_for_samples(samples, lambda got: got[-1]["ok"])

    stop_args = {
        "state": "stopped",
        "state_dir": str(tmp_path / "state"),
        "maintenance_on": "2026-01-27T10:15:00Z",
        "maintenance_off": "2026-01-27T10:15:02Z",
    }
    check = run_module(downtime_probe.main, stop_args, check_mode=True)
    assert check["changed"] and _process.pid_alive(started["pid"])
    stopped = run_module(downtime_probe.main, stop_args)
    assert stopped["changed"] and not stopped["running"]
    assert not _process.pid_alive(started["pid"])
    summary = stopped["summary"]
    assert summary["failed_samples"] >= 1 and summary["downtime_s"] > 0
    assert summary["outages"][0]["reasons"].get("status 503", 0) >= 1 and not summary["outages"][-1]["open"]
    assert summary["maintenance_window"]["duration_s"] == 2.0
    assert "secret-token-4711" not in samples.read_text()

    twice = run_module(downtime_probe.main, stop_args)
    assert not twice["changed"] and twice["summary"]["samples"] == summary["samples"]


def test_check_mode_starts_nothing(run_module: t.Any, tmp_path: Path, url: str) -> None:
    result = run_module(
        downtime_probe.main, {"state": "started", "state_dir": str(tmp_path / "s"), "url": url}, check_mode=True
    )
    assert result["changed"] and not result["running"]
    assert not (tmp_path / "s").exists()


def test_started_needs_a_url(run_module: t.Any, tmp_path: Path) -> None:
    result = run_module(downtime_probe.main, {"state": "started", "state_dir": str(tmp_path)})
    assert result.failed and "url" in result["msg"]
