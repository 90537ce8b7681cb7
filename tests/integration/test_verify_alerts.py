"""Verify's Prometheus alerts against the real Prometheus of the reference stack.

Found at 10 GB: a window deploy of 225 s fails by its own downtime, because AblageBackendDown (for: 30s)
began in the window and was still firing when verify read the alerts right after maintenance off.
Here the backend is stopped until that alert really fires, then:
- an alert that began before the run's start (``verify_alerts_since`` after its ``activeAt``) fails at once,
  naming the alert, and verify does not wait for it;
- an alert that began after the start is waited for: the backend is started only once verify has read the
  alert, and verify passes when Prometheus resolves it, the report showing the alert and the wait.
Only the Prometheus tasks run (``--tags alerts``); the tokens are given, so the stopped backend is not asked.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
import typing as t
from pathlib import Path

import pytest
from reference_stack import PROJECT_DIR, REPO, VENV_BIN, Stack, ansible_env, require_stack, stack_lock

from ansible_collections.ablage.ops.plugins.module_utils._http import HttpClient, HttpConnectionError

pytestmark = pytest.mark.stack

PROMETHEUS = HttpClient(base_url="http://127.0.0.1:9090", timeout=5)
ALERT = "AblageBackendDown"
WAIT_TASK = "Verify | Prometheus | No firing alerts"


def firing() -> list[str]:
    response = PROMETHEUS.get("/api/v1/alerts")
    assert response.status == 200, response.text
    return [a["labels"]["alertname"] for a in response.json()["data"]["alerts"] if a["state"] == "firing"]


def wait_for(condition: t.Callable[[], bool], what: str, timeout: float = 150) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(1)


def compose(*args: str) -> None:
    subprocess.run(["docker", "compose", *args], cwd=PROJECT_DIR, check=True, capture_output=True, timeout=300)


def backend_healthy(stack: Stack) -> bool:
    try:
        return stack.client.get("/api/v1/health").status == 200
    except HttpConnectionError:
        return False


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture(scope="module")
def backend_down_alert() -> t.Iterator[Stack]:
    """The stack with its backend stopped until AblageBackendDown fires; afterwards up and no alert firing."""
    with stack_lock():
        require_stack()
        stack = Stack()
        # An earlier test's long window may have left an alert that is still resolving.
        wait_for(lambda: firing() == [], "no alert firing before the test")
        compose("stop", "backend")
        try:
            wait_for(lambda: ALERT in firing(), f"{ALERT} firing after the backend stopped")
            yield stack
        finally:
            compose("start", "backend")
            wait_for(lambda: backend_healthy(stack), "the backend healthy again")
            wait_for(lambda: firing() == [], "no alert firing after the backend came back")


class Run(t.NamedTuple):
    rc: int
    text: str
    prometheus: dict[str, t.Any]  # the report's Prometheus item


def verify_alerts(tmp_path: Path, stack: Stack, since: str, on_wait: t.Callable[[], None] | None = None) -> Run:
    """playbooks/verify.yml --tags alerts; ``on_wait`` runs once verify has read the alerts and begins to wait."""
    reports = tmp_path / "reports"
    variables = {
        "ablage_admin_token": stack.admin_token,
        "ablage_user_token": stack.user_token,
        "ablage_report_dir": str(reports),
        "report_run_id": "alerts-run",
        "verify_alerts_since": since,
        "verify_prometheus_alerts_timeout": 150,
    }
    varsfile = tmp_path / "vars.json"
    varsfile.write_text(json.dumps(variables))
    varsfile.chmod(0o600)
    cmd = [str(VENV_BIN / "ansible-playbook"), "-i", str(REPO / "inventories" / "local"), "-e", f"@{varsfile}"]
    cmd += ["--tags", "alerts", str(REPO / "playbooks" / "verify.yml")]
    env = ansible_env(ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default", ANSIBLE_NOCOLOR="1", PYTHONUNBUFFERED="1")
    lines: list[str] = []
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            # The default callback prints a task's banner when the task begins: the first read is done.
            if on_wait is not None and line.startswith("TASK [") and WAIT_TASK in line:
                on_wait()
                on_wait = None
        rc = proc.wait(timeout=600)
    report = json.loads(next(reports.glob("alerts-run-*.json")).read_text())
    item = next(i for i in report["items"] if i["id"] == "prometheus")
    return Run(rc, "".join(lines), item)


def test_an_alert_older_than_the_run_fails_at_once(tmp_path: Path, backend_down_alert: Stack) -> None:
    run = verify_alerts(tmp_path, backend_down_alert, since=utc_now())
    text = " ".join(run.text.split())
    assert run.rc != 0, text[-3000:]
    assert "alert(s) firing that began before this deploy" in text and ALERT in text, text[-3000:]
    assert "fix their cause in Prometheus, or silence them" in text, text[-3000:]
    assert f"TASK [ablage.ops.verify : {WAIT_TASK}" not in text, "verify waited for an alert older than the run"
    assert run.prometheus["status"] == "not_checked", run.prometheus
    assert run.prometheus["evidence"].startswith("FAILED here:"), run.prometheus
    assert ALERT in run.prometheus["details"]["firing_alerts"], run.prometheus


def test_an_alert_of_the_run_is_waited_for_until_it_resolves(tmp_path: Path, backend_down_alert: Stack) -> None:
    assert ALERT in firing()
    since = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    run = verify_alerts(tmp_path, backend_down_alert, since=since, on_wait=lambda: compose("start", "backend"))
    text = " ".join(run.text.split())
    assert run.rc == 0, text[-3000:]
    assert f"TASK [ablage.ops.verify : {WAIT_TASK}" in text
    assert run.prometheus["status"] == "checked", run.prometheus
    assert run.prometheus["details"]["firing_at_first_read"] == [ALERT], run.prometheus
    assert run.prometheus["details"]["firing_alerts"] == [], run.prometheus
    assert f"(at the first read {ALERT}, begun during this deploy; resolved after " in run.prometheus["evidence"]
    assert firing() == []


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q", "-s"]))
