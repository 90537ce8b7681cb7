"""rollback_plan: a rollback undoes only what the recorded run did (docs/runbook.md, "Rules of the rollback")."""

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.ablage.ops.plugins.filter.rollback import rollback_plan


def _state(phase: str, **extra: object) -> dict[str, object]:
    base: dict[str, object] = {
        "run_id": "run-2",
        "phase": phase,
        "previous_version": "1.0.0",
        "target_version": "1.1.0",
        "current_version": "1.0.0",
        "migrated": False,
        "maintenance_enabled_by_deploy": False,
    }
    base.update(extra)
    return base


def test_a_run_that_failed_before_touching_anything_is_not_rolled_back() -> None:
    plan = rollback_plan(_state("locked"))
    assert plan["undo"] is False
    assert not (plan["stop"] or plan["start"] or plan["maintenance_off"] or plan["point_back"])


def test_killed_after_pointing_the_release_points_it_back_without_a_restart() -> None:
    plan = rollback_plan(_state("locked", release_pointed=True))
    assert plan["undo"] and plan["point_back"] and plan["version"] == "1.0.0"
    assert not plan["stop"] and not plan["start"] and not plan["maintenance_off"]


def test_killed_during_the_maintenance_switch_switches_it_off_again() -> None:
    plan = rollback_plan(_state("locked", release_pointed=True, maintenance_switching=True))
    assert plan["maintenance_off"] and not plan["stop"] and not plan["start"]


def test_the_state_of_an_earlier_run_is_never_acted_on_after_a_killed_deploy() -> None:
    # The killed run took the lock but died before its first record: state.json is the last deploy's.
    earlier = _state(
        "done", run_id="run-1", previous_version="0.9.0", migrated=True, maintenance_enabled_by_deploy=True
    )
    plan = rollback_plan(earlier, broken_lock={"run_id": "run-2", "version": "1.1.0"})
    assert plan["undo"] is False and "run-2" in plan["reason"]


def test_a_dead_rollback_is_taken_over_and_finished() -> None:
    state = _state("migrating", migrated=True, maintenance_enabled_by_deploy=True, backup={"path": "/b.dump"})
    plan = rollback_plan(state, broken_lock={"run_id": "rollback-7", "version": "rollback"})
    assert plan["undo"] and plan["database"] == "restore"


def test_a_manual_rollback_of_a_finished_deploy_downgrades_and_keeps_users_writes() -> None:
    plan = rollback_plan(_state("done", migrated=True, maintenance_enabled_by_deploy=True))
    assert plan["undo"] and plan["maintenance_on"] and plan["users_backup"] and plan["stop"]
    assert plan["database"] == "downgrade" and plan["refuse"] is None


def test_while_users_were_locked_out_the_backup_is_restored() -> None:
    plan = rollback_plan(_state("started", migrated=True, maintenance_enabled_by_deploy=True))
    assert plan["database"] == "restore" and plan["stop"] and not plan["maintenance_on"] and plan["maintenance_off"]


def test_maintenance_phase_without_migration_starts_the_previous_images_without_a_stop() -> None:
    plan = rollback_plan(_state("maintenance", maintenance_enabled_by_deploy=True, release_pointed=True))
    assert plan["start"] and plan["point_back"] and not plan["stop"] and plan["database"] == "untouched"
    assert plan["maintenance_off"]


def test_another_app_host_switches_no_maintenance() -> None:
    plan = rollback_plan(_state("stopped"))
    assert plan["start"] and not plan["maintenance_off"]


def test_destructive_downgrade_after_users_wrote_is_refused_with_both_choices() -> None:
    state = _state(
        "serving",
        migrated=True,
        maintenance_enabled_by_deploy=True,
        migration_destructive=[{"statement": "ALTER TABLE documents DROP COLUMN notes"}],
        backup={"path": "/var/lib/ablage-deploy/backups/pre-1.1.0.dump"},
    )
    plan = rollback_plan(state)
    assert plan["refuse"] and "DROP COLUMN notes" in plan["refuse"]
    assert (
        "rollback_database_method=restore" in plan["refuse"] and "rollback_database_method=downgrade" in plan["refuse"]
    )
    assert rollback_plan(state, method="restore")["refuse"] is None
    assert rollback_plan(state, method="restore")["database"] == "restore"


def test_already_rolled_back_and_failed_runs_are_left_alone() -> None:
    assert rollback_plan(_state("rolled_back"))["undo"] is False
    assert rollback_plan(_state("failed", previous_version=""))["undo"] is False


def test_restore_yml_names_the_version_to_start() -> None:
    assert rollback_plan(_state("migrating", migrated=True), version="0.9.0")["version"] == "0.9.0"


def test_unknown_phase_and_method_and_no_previous_version_are_refused_with_the_fix() -> None:
    with pytest.raises(AnsibleFilterError, match="unknown phase 'halfway'"):
        rollback_plan(_state("halfway"))
    with pytest.raises(AnsibleFilterError, match="method must be one of"):
        rollback_plan(_state("done"), method="magic")
    with pytest.raises(AnsibleFilterError, match="names no previous version"):
        rollback_plan(_state("started", previous_version=""))


def test_an_unreadable_lock_over_a_finished_state_undoes_nothing() -> None:
    done = _state("done", migrated=True, maintenance_enabled_by_deploy=True)
    assert rollback_plan(done, broken_lock={"unreadable": True, "size": 0})["undo"] is False


def test_zero_downtime_before_the_new_release_served_settles_and_downgrades_online() -> None:
    state = _state(
        "locked",
        strategy="zero_downtime",
        release_pointed=True,
        surge_started=True,
        migrated=True,
        alembic_revision_before="0002",
    )
    plan = rollback_plan(state)
    assert plan["undo"] and plan["settle_proxy"] and plan["point_back"]
    assert plan["database"] == "downgrade" and plan["revision"] == "0002"
    # The old release never stopped and users were never locked out: no stop, no start, no maintenance.
    assert not (plan["stop"] or plan["start"] or plan["maintenance_on"] or plan["maintenance_off"])
    assert "downgraded while it serves" in plan["reason"]


def test_zero_downtime_without_a_migration_leaves_the_database() -> None:
    plan = rollback_plan(_state("locked", strategy="zero_downtime", release_pointed=True, surge_started=True))
    assert plan["settle_proxy"] and plan["database"] == "untouched" and plan["revision"] is None


def test_zero_downtime_after_the_new_release_served_is_the_normal_rollback_keeping_writes() -> None:
    state = _state(
        "serving", strategy="zero_downtime", surge_started=True, migrated=True, alembic_revision_before="0002"
    )
    plan = rollback_plan(state)
    assert plan["settle_proxy"] and plan["start"] and plan["maintenance_on"]
    assert plan["database"] == "downgrade" and plan["users_backup"]


def test_a_window_deploy_never_settles_a_proxy() -> None:
    assert rollback_plan(_state("serving", migrated=True))["settle_proxy"] is False


POINT = {"name": "ablage-deploy-run-2", "lsn": "0/9000090", "revision": ["0001"], "row_counts": {"public.documents": 3}}


def test_a_window_deploy_with_a_restore_point_recovers_to_it_while_users_were_locked_out() -> None:
    state = _state(
        "started",
        migrated=True,
        maintenance_enabled_by_deploy=True,
        backup={"method": "pitr", "path": None, "restore_point": POINT},
    )
    plan = rollback_plan(state)
    assert plan["database"] == "restore" and plan["restore_point"] == POINT and plan["backup"] is None
    assert plan["stop"] and not plan["users_backup"]


def test_a_restore_point_is_never_recovered_to_over_users_writes() -> None:
    state = _state(
        "serving", migrated=True, maintenance_enabled_by_deploy=True, backup={"method": "pitr", "restore_point": POINT}
    )
    plan = rollback_plan(state)
    assert plan["database"] == "downgrade" and plan["users_backup"]


def test_the_refusal_after_a_destructive_migration_names_the_restore_point() -> None:
    state = _state(
        "serving",
        migrated=True,
        maintenance_enabled_by_deploy=True,
        migration_destructive=[{"statement": "ALTER TABLE documents DROP COLUMN notes"}],
        backup={"method": "pitr", "restore_point": POINT},
    )
    plan = rollback_plan(state)
    assert "restores the cluster to restore point ablage-deploy-run-2 and LOSES every write" in plan["refuse"]


@pytest.mark.parametrize(
    "backup",
    [
        {"path": "/b/pre-1.1.0.dump"},  # a dump: no method recorded (deploys before pitr existed)
        {"method": "dump", "path": "/b/pre-1.1.0.dump", "restore_point": {}},
        {"method": "pitr", "restore_point": {"lsn": "0/1"}},  # no name: nothing to recover to
    ],
)
def test_without_a_named_restore_point_the_dump_is_restored(backup: dict[str, object]) -> None:
    state = _state("started", migrated=True, maintenance_enabled_by_deploy=True, backup=backup)
    plan = rollback_plan(state)
    assert plan["restore_point"] is None and plan["backup"] == backup.get("path")
