"""playbooks/lock.yml shows, holds and releases the deploy lock (issue 16), on a state directory of its own.

A hold makes the playbooks that change things refuse; a release lets them run again. Another
run's lock goes only with deploy_lock_break=true, and never while that run recorded an
unfinished deploy: the message names the recovery instead.
"""

from __future__ import annotations

import json
from pathlib import Path

from reference_stack import playbook_cli


def _lock(state_dir: Path, *extra: str) -> tuple[int, str]:
    run = playbook_cli("lock.yml", "-e", f"ablage_state_dir={state_dir}", *extra)
    return run.returncode, run.stdout + run.stderr


def _changed(out: str) -> int:
    recap = [line for line in out.splitlines() if "changed=" in line]
    assert recap, out[-2000:]
    return int(recap[-1].split("changed=")[1].split()[0])


def test_show_hold_release(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    rc, out = _lock(state_dir)
    assert rc == 0 and "free: no run holds the deploy lock" in out, out[-2000:]

    rc, out = _lock(state_dir, "-e", "operate_lock_action=hold", "-e", '{"operate_lock_reason": "change freeze"}')
    assert rc == 0 and _changed(out) == 1, out[-2000:]
    lock = json.loads((state_dir / "deploy.lock").read_text(encoding="utf-8"))
    assert (lock["run_id"], lock["version"]) == ("hold", "hold: change freeze")
    rc, out = _lock(state_dir, "-e", "operate_lock_action=hold", "-e", '{"operate_lock_reason": "change freeze"}')
    assert rc == 0 and _changed(out) == 0, "holding twice is no change"

    rc, out = _lock(state_dir)
    assert rc == 0 and "(a hold, hold: change freeze, taken" in out, out[-2000:]
    refused = playbook_cli(
        "maintenance.yml", "-e", f"ablage_state_dir={state_dir}", "-e", "operate_maintenance_state=enabled"
    )
    assert refused.returncode != 0 and "a hold of playbooks/lock.yml, holds the lock" in refused.stdout

    rc, out = _lock(state_dir, "-e", "operate_lock_action=release")
    assert rc == 0 and _changed(out) == 1 and not (state_dir / "deploy.lock").exists(), out[-2000:]
    rc, out = _lock(state_dir, "-e", "operate_lock_action=release")
    assert rc == 0 and _changed(out) == 0


def test_another_runs_lock_needs_a_break_and_never_under_an_unfinished_deploy(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    state_dir.mkdir(mode=0o700)
    dead = {"run_id": "4711", "holder": "awx:bert", "version": "1.1.0", "created_at": "2026-12-05T01:00:00Z"}
    (state_dir / "deploy.lock").write_text(json.dumps(dead), encoding="utf-8")
    state = {"run_id": "4711", "phase": "migrating", "target_version": "1.1.0", "previous_version": "1.0.0"}
    (state_dir / "state.json").write_text(json.dumps(state), encoding="utf-8")

    rc, out = _lock(state_dir, "-e", "operate_lock_action=release", "-e", "deploy_lock_break=true")
    assert rc != 0 and "up to phase migrating" in out and "rollback.yml -e deploy_lock_break=true" in out, out[-2000:]
    assert (state_dir / "deploy.lock").exists()

    (state_dir / "state.json").write_text(json.dumps({**state, "phase": "done"}), encoding="utf-8")
    rc, out = _lock(state_dir, "-e", "operate_lock_action=release")
    assert rc != 0 and "release it with -e deploy_lock_break=true" in out, out[-2000:]
    rc, out = _lock(state_dir, "-e", "operate_lock_action=release", "-e", "deploy_lock_break=true")
    assert rc == 0 and not (state_dir / "deploy.lock").exists(), out[-2000:]
