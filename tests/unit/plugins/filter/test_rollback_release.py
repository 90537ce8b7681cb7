"""rollback_release_plan: back to any release that ran here, keeping users' writes unless a person chooses."""

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.ablage.ops.plugins.filter.rollback_release import rollback_release_plan, rollback_to_release

STATE = {"phase": "done", "previous_version": "1.1.0", "current_version": "1.4.0", "target_version": "1.4.0"}
# 1.0.0 ran before the first recorded deploy: it is known as that deploy's from_version.
HISTORY = [
    {"action": "deploy", "from_version": "1.0.0", "version": "1.2.0-broken", "result": "rolled_back"},
    {"action": "deploy", "from_version": "1.0.0", "version": "1.1.0", "result": "success"},
    {"action": "deploy", "from_version": "1.1.0", "version": "1.4.0", "result": "success"},
]
BACKUP = {"path": "/b/ablage_20261201T000000Z_pre-1.1.0.dump", "created_at": "2026-12-01T00:00:00Z"}


def _facts(
    head: str | None = "0001",
    head_error: str = "",
    current: str = "0005",
    upgrades: dict[str, object] | None = None,
    backup: dict[str, object] | None = None,
) -> dict[str, object]:
    """The registered module results the role passes (alembic_migrate heads and from_revision, pg_backup)."""
    if upgrades is None:
        upgrades = {"destructive": [], "offline_sql_failures": []}
    elif "error" in upgrades:
        upgrades = {"failed": True, "msg": upgrades["error"]}
    if backup is None:
        backup = BACKUP
    return {
        "history": HISTORY,
        "heads": {"failed": True, "msg": head_error} if head_error else {"head": head, "changed": False},
        "upgrades": {"current_before": current, "pending": ["0002", "0005"], **upgrades},
        "backup": (
            {"failed": True, "msg": backup["error"]}
            if "error" in backup
            else {"backup_path": backup["path"], "manifest": {"created_at": backup["created_at"]}}
        ),
    }


def test_which_rollbacks_need_the_release_facts() -> None:
    assert not rollback_to_release(STATE, "")
    assert not rollback_to_release(STATE, "1.1.0"), "the last deploy's own rollback point"
    assert rollback_to_release(STATE, "1.0.0")
    assert rollback_to_release({**STATE, "phase": "rolled_back", "current_version": "1.1.0"}, "1.1.0")


def test_two_back_downgrades_and_keeps_users_writes() -> None:
    plan = rollback_release_plan(STATE, "1.0.0", _facts())
    assert plan["refuse"] is None, plan["refuse"]
    assert (plan["database"], plan["revision"], plan["backup"]) == ("downgrade", "0001", None)
    assert plan["undo"] and plan["stop"] and plan["start"] and plan["point_back"]
    assert plan["maintenance_on"] and plan["maintenance_off"] and plan["users_backup"]
    assert (plan["version"], plan["from_version"]) == ("1.0.0", "1.4.0")


def test_same_head_leaves_the_database_alone() -> None:
    plan = rollback_release_plan(STATE, "1.0.0", _facts(head="0005"))
    assert plan["undo"] and plan["database"] == "untouched"
    assert not plan["stop"] and not plan["users_backup"]


def test_destructive_upgrades_since_make_it_a_choice_for_a_person() -> None:
    upgrades = {"destructive": [{"statement": "ALTER TABLE documents DROP COLUMN legacy"}]}
    plan = rollback_release_plan(STATE, "1.0.0", _facts(upgrades=upgrades))
    assert not plan["undo"]
    assert "DROP COLUMN legacy" in plan["refuse"]
    assert f"rollback_database_method=restore restores {BACKUP['path']}" in plan["refuse"]
    assert "rollback_database_method=downgrade" in plan["refuse"] and "Nothing was changed" in plan["refuse"]
    chosen = rollback_release_plan(STATE, "1.0.0", _facts(upgrades=upgrades), "restore")
    assert (chosen["database"], chosen["backup"], chosen["refuse"]) == ("restore", BACKUP["path"], None)
    kept = rollback_release_plan(STATE, "1.0.0", _facts(upgrades=upgrades), "downgrade")
    assert (kept["database"], kept["revision"]) == ("downgrade", "0001")


def test_unrenderable_upgrades_count_as_unknown_losses() -> None:
    upgrades = {"destructive": [], "offline_sql_failures": [{"revision": "0005", "reason": "reads data"}]}
    plan = rollback_release_plan(STATE, "1.0.0", _facts(upgrades=upgrades))
    assert "revision 0005 cannot be checked (reads data)" in plan["refuse"]


def test_refused_when_neither_a_backup_nor_a_revision_exists() -> None:
    facts = _facts(upgrades={"error": "Can't locate revision 0001"}, backup={"error": "no backup at 0001"})
    plan = rollback_release_plan(STATE, "1.0.0", facts)
    assert "neither a downgrade nor a restore" in plan["refuse"]
    assert "Can't locate revision 0001" in plan["refuse"] and "no backup at 0001" in plan["refuse"]
    only_restore = rollback_release_plan(STATE, "1.0.0", _facts(upgrades={"error": "Can't locate revision 0001"}))
    assert "only a restore is left" in only_restore["refuse"]
    assert rollback_release_plan(STATE, "1.0.0", facts, "restore")["refuse"]
    assert rollback_release_plan(STATE, "1.0.0", facts, "downgrade")["refuse"]
    no_backup = rollback_release_plan(STATE, "1.0.0", _facts(backup={"error": "none"}), "restore")
    assert "a restore is no choice" in no_backup["refuse"]


@pytest.mark.parametrize(
    ("state", "version", "facts", "expected"),
    [
        ({**STATE, "phase": "migrating"}, "1.0.0", _facts(), "did not finish (phase migrating)"),
        (STATE, "1.2.0-broken", _facts(), "1.2.0-broken never ran on this host"),
        (STATE, "9.9.9", _facts(), "oldest first: 1.0.0, 1.1.0, 1.4.0"),
        (STATE, "1.0.0", _facts(head_error="pull access denied"), "cannot be read (pull access denied)"),
    ],
)
def test_refusals_name_the_reason(
    state: dict[str, object], version: str, facts: dict[str, object], expected: str
) -> None:
    plan = rollback_release_plan(state, version, facts)
    assert not plan["undo"] and expected in plan["refuse"], plan["refuse"]


def test_already_running_is_nothing_to_do() -> None:
    plan = rollback_release_plan(STATE, "1.4.0", _facts())
    assert not plan["undo"] and plan["refuse"] is None and "already running" in plan["reason"]


def test_unknown_method_is_an_error() -> None:
    with pytest.raises(AnsibleFilterError, match="method must be one of"):
        rollback_release_plan(STATE, "1.0.0", _facts(), "yolo")
