"""deploy.yml with a wrong contract setting fails in pre-flight, names the variable, and changes nothing.

Seen before the contract gate: a wrong admin token passed pre-flight; the deploy took the lock,
recorded maintenance, failed at the switch, and its rollback restarted the healthy application
and kept the lock. Here every wrong setting is one failure of pre-flight, and the containers
(IDs and start times), maintenance, .env, state.json, the history and the lock are as before.
"""

from __future__ import annotations

import json
import subprocess
import typing as t
from pathlib import Path

import pytest
from reference_stack import (
    PROJECT_DIR,
    Stack,
    containers,
    playbook_cli,
    require_stack,
    stack_lock,
)

pytestmark = pytest.mark.stack

STATE_DIR = Path("/var/lib/ablage-deploy")


def _read(path: Path) -> str | None:
    return path.read_text(encoding="utf-8") if path.exists() else None


def snapshot(stack: Stack) -> dict[str, t.Any]:
    return {
        "containers": containers(),
        "maintenance": stack.maintenance(),
        "env": _read(PROJECT_DIR / ".env"),
        "state": _read(STATE_DIR / "state.json"),
        "history": _read(STATE_DIR / "history.jsonl"),
        "lock": _read(STATE_DIR / "deploy.lock"),
    }


def deploy(*extra: str) -> subprocess.CompletedProcess[str]:
    return playbook_cli("deploy.yml", "-e", "preflight_quality_enabled=false", *extra)


@pytest.fixture(scope="module")
def stack() -> t.Iterator[Stack]:
    with stack_lock():
        require_stack()
        yield Stack()


def test_wrong_admin_token_and_queue_path_fail_in_preflight_with_nothing_changed(stack: Stack) -> None:
    before = snapshot(stack)
    run = deploy(
        "-e",
        "ablage_version=1.1.0",
        "-e",
        "ablage_admin_token=not-the-admin-token",
        "-e",
        "ablage_queue_path=/api/v1/health/no-such-queue",
    )
    out = " ".join((run.stdout + run.stderr).split())  # the callback wraps long lines
    assert run.returncode != 0, out[-3000:]
    assert "pre-flight gate(s) failed; nothing was changed" in out, out[-3000:]
    assert "admin API access" in out and "fix ablage_admin_token" in out, out[-3000:]
    assert "queue drain condition" in out and "set ablage_queue_path" in out, out[-3000:]
    assert "not-the-admin-token" not in out
    assert "Take the deploy lock" not in out, "the deploy play ran after a failed pre-flight"
    assert snapshot(stack) == before


def test_another_shapes_queue_fields_and_a_version_with_a_semicolon(stack: Stack) -> None:
    before = snapshot(stack)
    run = deploy(
        "-e",
        "ablage_version='1.1.0;x'",
        "-e",
        '{"ablage_queue_idle": {"jobs": {"waiting": 0, "active": 0}}}',
    )
    out = " ".join((run.stdout + run.stderr).split())  # the callback wraps long lines
    assert run.returncode != 0, out[-3000:]
    assert "has no jobs.waiting, jobs.active" in out and "set ablage_queue_idle" in out, out[-3000:]
    assert "is not a valid release" in out, out[-3000:]
    assert snapshot(stack) == before


def test_deploying_the_running_version_is_a_no_op(stack: Stack) -> None:
    """Same version, same images as the registry's, nothing pending: no lock, no maintenance, changed=0."""
    running = next(
        line.split("=", 1)[1].strip()
        for line in (PROJECT_DIR / ".env").read_text(encoding="utf-8").splitlines()
        if line.startswith("ABLAGE_VERSION=")
    )
    before = snapshot(stack)
    run = deploy("-e", f"ablage_version={running}")
    out = " ".join((run.stdout + run.stderr).split())
    assert run.returncode == 0, out[-3000:]
    assert f"already at {running}: every app service runs the registry" in out, out[-3000:]
    assert " changed=0 " in out, out[-2000:]
    assert "Result: UNCHANGED" in out
    assert snapshot(stack) == before


def test_failure_before_this_runs_rollback_point_touches_nothing(stack: Stack) -> None:
    """A failure right after the lock (a wrong database port) must not act on an earlier run's state.

    Seen before: after a finished deploy, state.json kept maintenance_enabled_by_deploy and migrated from
    that run; a later deploy that failed before recording its own rollback point rolled back on it,
    stopping and restarting the healthy application and downgrading the previous release's migration.
    """
    state_file = STATE_DIR / "state.json"
    earlier = json.loads(state_file.read_text(encoding="utf-8")) if state_file.exists() else {}
    # What a finished deploy leaves behind (the flags of that run are still set).
    earlier.update(phase="done", maintenance_enabled_by_deploy=True, migrated=True, run_id="an-earlier-run")
    state_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # a new machine has no deploy state yet
    state_file.write_text(json.dumps(earlier), encoding="utf-8")
    running = next(
        line.split("=", 1)[1].strip()
        for line in (PROJECT_DIR / ".env").read_text(encoding="utf-8").splitlines()
        if line.startswith("ABLAGE_VERSION=")
    )
    target = "1.0.0" if running != "1.0.0" else "1.1.0"
    before = snapshot(stack)
    run = deploy("--skip-tags", "preflight", "-e", f"ablage_version={target}", "-e", "ablage_db_port=1")
    out = " ".join((run.stdout + run.stderr).split())
    assert run.returncode != 0, out[-3000:]
    assert "Nothing was changed on the running system" in out, out[-3000:]
    assert "Roll back to the recorded version" not in out or "skipping: [ablage-local]" in out
    after = snapshot(stack)
    assert after["containers"] == before["containers"]
    assert after["maintenance"] == before["maintenance"] and after["env"] == before["env"]
    assert after["lock"] is None
    state = json.loads(state_file.read_text(encoding="utf-8"))
    assert state["run_id"] != "an-earlier-run" and state["phase"] == "failed", state


def test_verify_and_day2_playbooks_refuse_while_a_deploy_holds_the_lock(stack: Stack) -> None:
    """verify.yml used to switch maintenance off in the middle of another run's deploy."""
    lock = STATE_DIR / "deploy.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.write_text(json.dumps({"holder": "alice", "run_id": "4711", "version": "9.9.9"}), encoding="utf-8")
    stack.set_maintenance(True)
    try:
        for playbook in ("verify.yml", "maintenance.yml"):
            run = playbook_cli(playbook, "-e", "operate_maintenance_state=disabled", timeout=300)
            out = " ".join((run.stdout + run.stderr).split())
            assert run.returncode != 0, (playbook, out[-2000:])
            assert "A deploy, or a hold of playbooks/lock.yml, holds the lock" in out and "alice" in out, (
                playbook,
                out[-2000:],
            )
            assert stack.maintenance(), f"{playbook} switched maintenance off under another run's deploy"
    finally:
        lock.unlink()
        stack.set_maintenance(False)
