"""lock.yml's rules: a hold goes on request, another run's lock only when broken, never under an unfinished deploy."""

from __future__ import annotations

from ansible_collections.ablage.ops.plugins.filter.lock import lock_release_plan, lock_summary

HOLD = {"run_id": "hold", "holder": "anna", "version": "hold: change freeze", "created_at": "2026-12-05T01:00:00Z"}
DEPLOY = {"run_id": "4711", "holder": "awx:bert", "version": "1.1.0", "created_at": "2026-12-05T01:00:00Z"}


def test_summary_names_holder_kind_and_age() -> None:
    assert lock_summary(None) == "free: no run holds the deploy lock"
    assert lock_summary(HOLD, 90.4) == (
        "held by anna (a hold, hold: change freeze, taken 2026-12-05T01:00:00Z, 90 s ago)"
    )
    assert "run 4711, 1.1.0" in lock_summary(DEPLOY)
    torn = lock_summary({"unreadable": True, "size": 0, "modified_at": "2026-12-05T01:00:00+00:00"}, 5)
    assert "unknown run" in torn and "0 bytes" in torn


def test_a_hold_is_released_on_request_and_a_free_lock_is_nothing() -> None:
    assert lock_release_plan(HOLD)["release"] and lock_release_plan(HOLD)["run_id"] == "hold"
    free = lock_release_plan(None)
    assert not free["release"] and free["refuse"] is None


def test_another_runs_lock_goes_only_when_broken() -> None:
    asked = lock_release_plan(DEPLOY, {"run_id": "4711", "phase": "done"})
    assert not asked["release"] and "deploy_lock_break=true" in asked["refuse"]
    broken = lock_release_plan(DEPLOY, {"run_id": "4711", "phase": "done"}, True)
    assert broken["release"] and broken["run_id"] == "4711" and broken["refuse"] is None
    # A run that died before it recorded anything: the state is an earlier run's.
    assert lock_release_plan(DEPLOY, {"run_id": "4700", "phase": "migrating"}, True)["release"]


def test_never_under_an_unfinished_deploy_even_when_broken() -> None:
    state = {"run_id": "4711", "phase": "migrating", "target_version": "1.1.0"}
    plan = lock_release_plan(DEPLOY, state, True)
    assert not plan["release"]
    assert (
        "up to phase migrating" in plan["refuse"]
        and "playbooks/rollback.yml -e deploy_lock_break=true" in plan["refuse"]
    )
