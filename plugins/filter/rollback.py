# Copyright (c) ablage.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What a rollback undoes, decided from the deploy state alone (docs/runbook.md, "Rules of the rollback").

A rollback acts only on what the run it undoes did. The phase in state.json says how far that
run got, and three flags say what it did before the phase moved on: ``release_pointed`` (the
project's .env names the new version), ``maintenance_switching`` (the switch was requested; a
kill may have landed between the request and its record) and ``maintenance_enabled_by_deploy``.
The same rules serve deploy.yml's rescue and playbooks/rollback.yml after a killed run, so the
one decision lives here, with unit tests, instead of in the role's Jinja.
"""

from __future__ import annotations

import typing as t

from ansible.errors import AnsibleFilterError

from ansible_collections.ablage.ops.plugins.module_utils._deploy_state import PHASES

Dict = t.Dict[str, t.Any]

USERS_SERVED = ("serving", "done")
METHODS = ("auto", "restore", "downgrade")


def nothing_to_undo(reason: str, state: Dict) -> Dict:
    """A plan that undoes nothing; also the skeleton of rollback_release_plan's plans."""
    return {
        "undo": False,
        "reason": reason,
        "version": state.get("current_version") or state.get("previous_version"),
        "point_back": False,
        "stop": False,
        "start": False,
        "maintenance_on": False,
        "users_backup": False,
        "database": "untouched",
        "maintenance_off": False,
        "refuse": None,
        "revision": None,
        "backup": None,
        "restore_point": None,
        "from_version": state.get("target_version") or "",
        "settle_proxy": bool(state.get("surge_started")),
    }


def recorded_restore_point(state: Dict) -> Dict | None:
    """The pgBackRest restore point a window deploy recorded (ablage_backup_method pitr), or None for a dump."""
    backup = state.get("backup") or {}
    point = backup.get("restore_point") or {}
    return point if backup.get("method") == "pitr" and point.get("name") else None


def rollback_plan(state: Dict, broken_lock: Dict | None = None, method: str = "auto", version: str = "") -> Dict:
    """The steps of a rollback of the run recorded in ``state``.

    ``broken_lock`` is the lock a recovery took over (deploy_lock's ``broken``): when it belonged
    to a deploy that never wrote its own state (killed right after the lock), the state is an
    earlier run's and nothing may be undone. ``method`` is rollback_database_method; ``version``
    overrides the version to start (playbooks/restore.yml).
    """
    if method not in METHODS:
        raise AnsibleFilterError(f"rollback_plan: method must be one of {', '.join(METHODS)}, got {method!r}")
    if not isinstance(state, dict):
        raise AnsibleFilterError("rollback_plan: the deploy state must be a dict (ablage.ops.deploy_state's state)")
    phase = state.get("phase") or ""
    if phase and phase not in PHASES:
        raise AnsibleFilterError(
            f"rollback_plan: state.json has the unknown phase {phase!r} (known: {', '.join(PHASES)}); "
            "it was not written by this collection's deploy, so nothing is guessed - read it and roll back by hand"
        )
    if broken_lock and not broken_lock.get("unreadable") and broken_lock.get("version") != "rollback":
        dead_run = str(broken_lock.get("run_id") or "")
        if dead_run and dead_run != str(state.get("run_id") or ""):
            return nothing_to_undo(
                f"the run that held the lock ({dead_run}) ended before it recorded anything, so it changed nothing",
                state,
            )
    if broken_lock and broken_lock.get("unreadable"):
        # The lock is written before a run's first record: a run that left it unreadable recorded nothing.
        return nothing_to_undo("the unreadable lock was left by a run that died before it recorded anything", state)
    if phase == "rolled_back" and state.get("current_version") == state.get("previous_version"):
        return nothing_to_undo(
            f"already rolled back to {state.get('previous_version')} at {state.get('rolled_back_at', '?')}", state
        )
    if phase == "failed":
        return nothing_to_undo("the last deploy failed before it changed anything", state)
    previous = version or state.get("previous_version") or ""
    if not previous:
        raise AnsibleFilterError(
            "state.json names no previous version, so there is nothing to roll back to. Check the state file, "
            "or deploy a known good version with playbooks/deploy.yml."
        )

    switched = bool(state.get("maintenance_enabled_by_deploy") or state.get("maintenance_switching"))
    if phase in ("", "locked"):
        pointed = bool(state.get("release_pointed"))
        plan = nothing_to_undo(
            "the deploy ended before maintenance went on; the running containers were never touched", state
        )
        plan.update(
            undo=pointed or switched,
            version=previous,
            point_back=pointed,
            maintenance_off=switched,
        )
        if plan["undo"]:
            plan["reason"] = (
                "before maintenance was verified on: the release pointer and the maintenance switch are undone"
            )
        if state.get("strategy") == "zero_downtime" and plan["undo"]:
            # No user wrote through the new release yet: its additive migration is taken back online.
            migrated = bool(state.get("migrated"))
            plan.update(
                database="downgrade" if migrated else "untouched",
                revision=state.get("alembic_revision_before") if migrated else None,
                reason="zero-downtime deploy, before the new release took over: the old release never stopped; the "
                "proxy is settled, "
                + ("the additive migration downgraded while it serves, " if migrated else "")
                + "the release pointer undone",
            )
        return plan

    migrated = bool(state.get("migrated"))
    served = phase in USERS_SERVED
    database = "untouched"
    if migrated:
        database = method if method != "auto" else ("downgrade" if served else "restore")
    refuse = None
    destructive = state.get("migration_destructive") or []
    point = recorded_restore_point(state)
    if method == "auto" and served and migrated and destructive:
        backup = (
            f"the cluster to restore point {point['name']}"
            if point
            else (state.get("backup") or {}).get("path") or "the pre-deploy backup"
        )
        statements = "; ".join(str(d.get("statement", d) if isinstance(d, dict) else d) for d in destructive)[:300]
        refuse = (
            f"Refused to roll back the database by itself: the migration of {state.get('target_version', '?')} "
            f"({state.get('alembic_revision_before') or 'base'} -> {state.get('alembic_revision_after') or '?'}) was "
            f"destructive ({statements}), so a downgrade cannot bring that data back, and users have written since "
            f"{state.get('serving_at') or 'maintenance went off'}. Choose one and run playbooks/rollback.yml again: "
            f"-e rollback_database_method=restore restores {backup} and LOSES every write since then; "
            "-e rollback_database_method=downgrade keeps those writes and LOSES the data the migration removed. "
            "Nothing was changed; maintenance and the deploy lock are as they were."
        )
    return {
        "undo": True,
        "reason": (
            f"phase {phase}: users were served since {state.get('serving_at') or '?'}, so their writes are kept"
            if served
            else f"phase {phase}: users were locked out, nothing was written since the pre-deploy backup"
        ),
        "version": previous,
        "point_back": True,
        # Writers off before the database is touched; without a database step compose recreates what changed.
        "stop": database != "untouched",
        "start": True,
        "maintenance_on": served,
        "users_backup": served and database != "untouched",
        "database": database,
        "maintenance_off": served or switched,
        "refuse": refuse,
        # The rollback point of the recorded run: the revision before its migration, the backup before it.
        "revision": state.get("alembic_revision_before"),
        "backup": (state.get("backup") or {}).get("path"),
        # ablage_backup_method pitr: the restore is a recovery of the cluster to this point instead.
        "restore_point": point,
        "from_version": state.get("target_version") or "",
        # A zero-downtime deploy switched the proxy: main takes the traffic again, the surge slot goes.
        "settle_proxy": bool(state.get("surge_started")),
    }


class FilterModule:
    def filters(self) -> dict[str, t.Callable[..., t.Any]]:
        return {"rollback_plan": rollback_plan}
