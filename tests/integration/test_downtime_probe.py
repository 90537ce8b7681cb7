"""downtime_probe through real ansible-playbook against the reference backend.

The probe asks for a document as the smoke user (404 = served); maintenance mode, switched
on and off through the admin API in between, must show up as one outage of 503 answers.
Needs the reference stack (``make stack``); holds the stack lock while it runs.
"""

from __future__ import annotations

import time
import typing as t
from pathlib import Path

import pytest
from reference_stack import Stack, require_stack, run_playbook, stack_lock

from ansible_collections.ablage.ops.plugins.module_utils import _downtime, _process

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def stack() -> t.Iterator[Stack]:
    with stack_lock():
        require_stack()
        stack = Stack()
        stack.set_maintenance(False)
        yield stack
        stack.set_maintenance(False)


def wait_for(path: Path, predicate: t.Callable[[list[dict[str, t.Any]]], bool]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if predicate(_downtime.read_samples(str(path))):
            return
        time.sleep(0.1)
    raise AssertionError(f"samples never matched: {_downtime.read_samples(str(path))[-5:]}")


def test_maintenance_shows_up_as_the_downtime_users_saw(tmp_path: Path, stack: Stack) -> None:
    state_dir = tmp_path / "state"
    proc, results = run_playbook(
        tmp_path,
        stack,
        f"""\
        - name: start
          ablage.ops.downtime_probe:
            state: started
            state_dir: {state_dir}
            url: "{{{{ api_url }}}}/api/v1/documents/00000000-0000-0000-0000-000000000000"
            headers:
              Authorization: "Bearer {{{{ user_token }}}}"
            status_code: [200, 404]
            interval: 0.1
        """,
    )
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert results["start"]["changed"] and results["start"]["running"]
    samples = state_dir / "downtime-deploy.jsonl"
    try:
        wait_for(samples, lambda got: any(s["ok"] and s["status"] == 404 for s in got))
        stack.set_maintenance(True)
        on = _downtime.iso(time.time())
        wait_for(samples, lambda got: got[-1]["status"] == 503)
    finally:
        stack.set_maintenance(False)
    off = _downtime.iso(time.time())
    wait_for(samples, lambda got: got[-1]["ok"])

    proc, results = run_playbook(
        tmp_path,
        stack,
        f"""\
        - name: stop
          ablage.ops.downtime_probe:
            state: stopped
            state_dir: {state_dir}
            maintenance_on: "{on}"
            maintenance_off: "{off}"
        """,
    )
    assert proc.returncode == 0, proc.stdout[-2000:]
    result = results["stop"]
    assert result["changed"] and not result["running"]
    summary = result["summary"]
    assert summary["downtime_s"] > 0 and len(summary["outages"]) == 1
    (outage,) = summary["outages"]
    assert set(outage["reasons"]) == {"status 503"} and not outage["open"]
    assert summary["maintenance_window"]["on"] == on
    assert stack.user_token not in proc.stdout and stack.user_token not in samples.read_text()
    assert not _process.pid_alive(results["stop"]["pid"])
