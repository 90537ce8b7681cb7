"""The zero-downtime deploy on the reference stack, under a user-side load through the proxy.

With the proxy in front (playbooks/proxy.yml) and ablage_deploy_strategy=auto: 1.0.0 -> 1.1.0 still
takes the window (its CHECK constraint is not additive) and says why; 1.1.0 -> 1.2.0-broken starts
the never-healthy release in the surge slot, which never takes traffic, and is undone online (its
additive migration downgraded); 1.1.0 -> 1.1.1 (nothing pending) and 1.1.1 -> 1.4.0 (an additive
migration) switch without maintenance. For each: every request of the load answered as a user expects
(0 failed), every document and OCR job the API confirmed is there and completed.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import typing as t
from pathlib import Path

import pytest
import requests
from reference_stack import PROJECT_DIR, REPO, VENV_BIN, Stack, ansible_env, containers, playbook_cli, prepared_stack
from user_load import UserLoad, audit

PROXY_URL = "http://127.0.0.1:8080"
PROXY_SOCKET = "/run/ablage-proxy/admin.sock"
ZD = ("-e", "ablage_proxy_enabled=true", "-e", f"ablage_api_url={PROXY_URL}", "-e", "ablage_deploy_strategy=auto")
RESULTS = Path(os.environ.get("ABLAGE_ZERO_DOWNTIME_RESULTS", "/tmp/ablage-zero-downtime.json"))


def proxy_servers() -> dict[str, str]:
    """HAProxy's view of the two slots: server name -> status (UP, MAINT, DOWN)."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(PROXY_SOCKET)
        sock.sendall(b"show stat\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    rows = [line.split(",") for line in data.decode().splitlines() if line.startswith("ablage,")]
    return {row[1]: row[17] for row in rows if row[1] in ("main", "surge")}


def surge_containers() -> list[str]:
    out = subprocess.run(
        ["docker", "ps", "-aq", "--filter", "name=ablage-backend-surge"], capture_output=True, text=True, check=True
    )
    return out.stdout.split()


def alembic_revision() -> str:
    query = "SELECT version_num FROM alembic_version"
    argv = ["docker", "compose", "exec", "-T", "postgres", "psql", "-U", "postgres", "-d", "ablage", "-tAc", query]
    return subprocess.run(argv, cwd=PROJECT_DIR, capture_output=True, text=True, check=True).stdout.strip()


def state() -> dict[str, t.Any]:
    return json.loads(Path("/var/lib/ablage-deploy/state.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def stack() -> t.Iterator[Stack]:
    for prepared in prepared_stack():
        proxy = playbook_cli("proxy.yml")
        assert proxy.returncode == 0, proxy.stdout[-3000:]
        try:
            yield prepared
        finally:
            subprocess.run(
                ["docker", "rm", "-f", "ablage-proxy", "ablage-backend-surge"], capture_output=True, check=False
            )


def deploy_under_load(
    stack: Stack, version: str, *extra: str
) -> tuple[subprocess.CompletedProcess[str], UserLoad, dict[str, t.Any]]:
    load = UserLoad(interval=0.1, base_url=PROXY_URL)
    load.start()
    time.sleep(1.0)
    started = time.time()
    proc = playbook_cli("deploy.yml", "-e", f"ablage_version={version}", *ZD, *extra, timeout=900)
    ended = time.time()
    time.sleep(1.0)
    load.stop()
    documents, jobs = load.confirmed()
    checked = audit(stack.user_token, documents, jobs, settle_s=90)
    latencies = sorted(seconds for sent, seconds, _problem in load.requests if started <= sent <= ended)
    summary = {
        "version": version,
        "rc": proc.returncode,
        "requests": len(latencies),
        "failed": load.failures(),
        "latency_ms": {
            "median": round(1000 * latencies[len(latencies) // 2], 1) if latencies else None,
            "p99": round(1000 * latencies[int(len(latencies) * 0.99)], 1) if latencies else None,
            "max": round(1000 * latencies[-1], 1) if latencies else None,
        },
        "deploy_s": round(ended - started, 1),
        "documents": checked["documents"],
        "jobs": checked["jobs"],
        "audit": checked,
    }
    previous = json.loads(RESULTS.read_text(encoding="utf-8")) if RESULTS.exists() else {}
    previous[version] = summary
    RESULTS.write_text(json.dumps(previous, indent=2), encoding="utf-8")
    print(f"zero-downtime {version}: {json.dumps({k: v for k, v in summary.items() if k != 'audit'})}")
    return proc, load, checked


def assert_nothing_lost(load: UserLoad, checked: dict[str, t.Any], stack: Stack) -> None:
    assert load.failures() == [], load.failures()[:20]
    assert checked["documents"] > 0 and checked["jobs"] > 0, checked
    assert not (checked["lost_documents"] or checked["lost_jobs"] or checked["failed_jobs"] or checked["stuck_jobs"]), (
        checked
    )
    headers = {"Authorization": f"Bearer {stack.user_token}"}
    jobs = load.confirmed()[1]
    statuses = {
        requests.get(f"{PROXY_URL}/api/v1/ocr/jobs/{j}", headers=headers, timeout=5).json()["status"] for j in jobs
    }
    assert statuses == {"completed"}, statuses


def assert_settled(version: str) -> None:
    assert proxy_servers() == {"main": "UP", "surge": "MAINT"}
    assert surge_containers() == []
    assert requests.get(f"{PROXY_URL}/api/v1/health", timeout=5).json()["version"] == version
    assert f"ABLAGE_VERSION={version}" in (PROJECT_DIR / ".env").read_text(encoding="utf-8")


def test_required_zero_downtime_is_refused_by_preflight_before_the_lock(stack: Stack) -> None:
    proc = playbook_cli("deploy.yml", "-e", "ablage_version=1.1.0", *ZD, "-e", "ablage_deploy_strategy=zero_downtime")
    assert proc.returncode != 0
    assert "ablage_deploy_strategy=zero_downtime, but the migration needs maintenance" in proc.stdout
    assert "reverse proxy: HAProxy on 127.0.0.1:8080 answers and reaches the backend" in proc.stdout
    assert not Path("/var/lib/ablage-deploy/deploy.lock").exists()
    assert requests.get(f"{PROXY_URL}/api/v1/health", timeout=5).json()["version"] == "1.0.0"
    assert not stack.maintenance()


def test_a_migration_that_needs_maintenance_takes_the_window_and_says_why(stack: Stack) -> None:
    proc = playbook_cli("deploy.yml", "-e", "ablage_version=1.1.0", *ZD, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert "With a maintenance window - the migration needs maintenance: adding a CHECK constraint" in proc.stdout
    assert "deploy mode: maintenance window - the migration needs maintenance" in proc.stdout
    assert_settled("1.1.0")


def test_a_release_that_never_answers_never_takes_traffic_and_is_undone_online(stack: Stack) -> None:
    proc, load, checked = deploy_under_load(stack, "1.2.0-broken", "-e", "deploy_health_timeout=20")
    assert proc.returncode != 0
    assert "Proxy | Wait until the surge slot answers" in proc.stdout
    assert "the additive migration downgraded while it serves" in proc.stdout
    assert_nothing_lost(load, checked, stack)
    assert_settled("1.1.0")
    recorded = state()
    assert recorded["current_version"] == "1.1.0" and recorded["surge_started"] is False
    assert alembic_revision() == "0002"


@pytest.mark.parametrize(("version", "migration"), [("1.1.1", "no migration is pending"), ("1.4.0", "additive (0005")])
def test_zero_downtime_deploy_serves_every_request(stack: Stack, version: str, migration: str) -> None:
    proc, load, checked = deploy_under_load(stack, version)
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert "Without maintenance, through the reverse proxy" in proc.stdout and migration in proc.stdout
    assert "not needed: zero-downtime deploy" in proc.stdout
    assert "deploy mode: zero downtime through the reverse proxy - " in proc.stdout
    assert "| Downtime users saw | 0 s in 0 outage(s)" in proc.stdout
    assert_nothing_lost(load, checked, stack)
    assert_settled(version)


def killed_deploy(version: str, at: str) -> str:
    """deploy.yml killed (SIGKILL, the controller and its workers) when the task named ``at`` begins."""
    proc = subprocess.Popen(
        [
            str(VENV_BIN / "ansible-playbook"),
            "-i",
            str(REPO / "inventories" / "local"),
            "playbooks/deploy.yml",
            "-e",
            f"ablage_version={version}",
            *ZD,
            "-e",
            "ablage_deploy_strategy=zero_downtime",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        env=ansible_env(ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default", ANSIBLE_NOCOLOR="1"),
    )
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("TASK [") and at in line:
            os.killpg(proc.pid, signal.SIGKILL)
            break
    proc.wait(timeout=60)
    out = "".join(lines)
    assert at in out, out[-3000:]
    return out


def recover(stack: Stack, load: UserLoad) -> tuple[subprocess.CompletedProcess[str], dict[str, t.Any]]:
    """The runbook's recovery after a killed deploy, then the audit of what users wrote meanwhile."""
    proc = playbook_cli("rollback.yml", "-e", "deploy_lock_break=true", *ZD, timeout=900)
    time.sleep(1.0)
    load.stop()
    documents, jobs = load.confirmed()
    return proc, audit(stack.user_token, documents, jobs, settle_s=90)


def test_killed_before_the_new_release_served_is_undone_online(stack: Stack) -> None:
    """Killed while the new release starts in the surge slot: no user ever sees a failure, the migration goes back."""
    subprocess.run(
        ["bash", "scripts/stack.sh", "up", "1.1.0"],
        cwd=REPO,
        check=True,
        capture_output=True,
        env=dict(os.environ, ABLAGE_STACK_LOCK_HELD="1"),
    )
    running = containers()
    load = UserLoad(interval=0.1, base_url=PROXY_URL)
    load.start()
    killed_deploy("1.4.0", "Proxy | Wait until the surge slot answers")
    recorded = state()
    assert (recorded["phase"], recorded["strategy"], recorded["surge_started"]) == ("locked", "zero_downtime", True)
    assert alembic_revision() == "0005"
    proc, checked = recover(stack, load)
    assert proc.returncode == 0, proc.stdout[-4000:]
    last = json.loads(Path("/var/lib/ablage-deploy/history.jsonl").read_text(encoding="utf-8").splitlines()[-1])
    assert (last["action"], last["database"], last["version"]) == ("rollback", "downgrade", "1.1.0")
    assert alembic_revision() == "0002"
    assert_nothing_lost(load, checked, stack)
    assert_settled("1.1.0")
    # The old release never stopped: backend and worker are the containers that ran before the deploy.
    assert {s: running[s] for s in ("backend", "worker")} == {s: containers()[s] for s in ("backend", "worker")}
    assert not Path("/var/lib/ablage-deploy/deploy.lock").exists()


def test_killed_after_the_new_release_served_takes_the_normal_rollback(stack: Stack) -> None:
    """Killed while the old worker stops (users already served by the new release): the normal rollback, writes kept."""
    load = UserLoad(interval=0.1, base_url=PROXY_URL)
    load.start()
    killed_deploy("1.1.1", "Deploy | Stop the old worker")
    assert state()["phase"] == "serving"
    proc, checked = recover(stack, load)
    assert proc.returncode == 0, proc.stdout[-4000:]
    # A short maintenance window of the rollback is expected here; nothing users wrote may be lost.
    assert not (checked["lost_documents"] or checked["lost_jobs"] or checked["failed_jobs"] or checked["stuck_jobs"]), (
        checked
    )
    assert checked["documents"] > 0
    assert_settled("1.1.0")
    assert not stack.maintenance()
