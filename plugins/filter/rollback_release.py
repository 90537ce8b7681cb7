# Copyright (c) ablage.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A rollback to a release further back than the one the last deploy replaced (``rollback_version``).

The last deploy's state knows only its own rollback point. Going further back needs what the
host can still tell about the target: its images' Alembic head (read from those images), the
upgrades that ran since that head (rendered from the newest images and checked for data they
removed), and the newest verified backup at that head. The role gathers those facts; the
decision is here, with unit tests. Users have been served since, so their writes are kept by
default (a downgrade); a backup is restored only when a person asks for it.
"""

from __future__ import annotations

import typing as t

from ansible.errors import AnsibleFilterError

from ansible_collections.ablage.ops.plugins.filter.rollback import METHODS, nothing_to_undo

Dict = t.Dict[str, t.Any]

FINISHED = ("", "done", "rolled_back", "failed")


def rollback_to_release(state: Dict, version: str) -> bool:
    """Whether ``version`` is a release other than the one the recorded run replaced.

    Empty, or the recorded previous version of a run that is not already rolled back: the
    ordinary rollback of that run (rollback_plan).
    """
    if not version:
        return False
    return not (version == state.get("previous_version") and state.get("phase") != "rolled_back")


def _ran_here(history: t.Sequence[t.Mapping[str, t.Any]]) -> list[str]:
    """Versions that ran on this host, oldest first: what a deploy or rollback started from, and what a
    deploy, rollback or restore that succeeded left running."""
    seen: list[str] = []
    for record in history:
        ran = [str(record.get("from_version") or "")]
        if record.get("result") == "success":
            ran.append(str(record.get("version") or ""))
        seen += [version for version in ran if version and version not in seen]
    return seen


def _findings(upgrades: Dict) -> list[str]:
    found = [str(d.get("statement") or d) for d in upgrades.get("destructive") or []]
    found += [
        f"revision {f.get('revision')} cannot be checked ({f.get('reason')})"
        for f in upgrades.get("offline_sql_failures") or []
    ]
    return found


def _refuse(reason: str) -> Dict:
    return {"refuse": f"Refused to roll back: {reason}. Nothing was changed."}


def _error(result: t.Mapping[str, t.Any]) -> str:
    return str(result.get("msg") or "failed") if result.get("failed") else ""


def read_facts(facts: Dict) -> Dict:
    """The module results the role registered, as the plan reads them.

    ``heads``: alembic_migrate action=heads with the target's images; ``upgrades``: its check-mode
    run with from_revision=<that head> and the newest images; ``backup``: pg_backup's check-mode
    restore of backup=latest with backup_revision=<that head>. A skipped task counts as not known.
    """
    heads = facts.get("heads") or {}
    upgrades = facts.get("upgrades") or {}
    backup = facts.get("backup") or {}
    known = not (upgrades.get("skipped") or upgrades.get("failed"))
    found = not (backup.get("skipped") or backup.get("failed")) and backup.get("backup_path")
    return {
        "history": facts.get("history") or [],
        "head": None if heads.get("failed") else heads.get("head"),
        "head_error": _error(heads),
        "current": upgrades.get("current_before") if known else None,
        "upgrades": upgrades if known else {"error": _error(upgrades) or "not checked"},
        "backup": (
            {"path": backup["backup_path"], "created_at": (backup.get("manifest") or {}).get("created_at")}
            if found
            else {"error": _error(backup) or "not looked for"}
        ),
    }


def _database(version: str, facts: Dict, method: str) -> Dict:
    """The database step: untouched, a downgrade to the target's head, or a restore of a backup at that head."""
    head, current = facts.get("head"), facts.get("current")
    upgrades = facts.get("upgrades") or {}
    if head == current and not upgrades.get("error"):
        return {"database": "untouched", "revision": head, "backup": None}
    backup = facts.get("backup") or {}
    path = backup.get("path")
    can_downgrade = not upgrades.get("error")
    lost = _findings(upgrades) if can_downgrade else []
    taken = backup.get("created_at") or "at an unknown time"
    restore_choice = (
        f"-e rollback_database_method=restore restores {path} (taken {taken}) and LOSES every write since then"
        if path
        else f"no verified backup at revision {head} is kept ({backup.get('error') or 'none found'}), "
        "so a restore is no choice"
    )
    downgrade_choice = (
        "-e rollback_database_method=downgrade keeps users' writes and LOSES the data those upgrades removed"
    )
    if method == "downgrade" and not can_downgrade:
        return _refuse(
            f"the newest images cannot downgrade the database from {current} to {version}'s head {head} "
            f"({upgrades.get('error')}); {restore_choice}"
        )
    if method == "restore" and not path:
        return _refuse(f"{restore_choice}; -e rollback_database_method=downgrade or auto downgrades instead")
    if method == "auto" and not can_downgrade:
        if not path:
            return _refuse(
                f"neither a downgrade nor a restore can bring the database to {version}'s head {head}: the newest "
                f"images cannot downgrade from {current} ({upgrades.get('error')}), and {restore_choice}"
            )
        return _refuse(
            f"the newest images cannot downgrade from {current} to {head} ({upgrades.get('error')}); only a restore "
            f"is left, and it is a choice for a person: {restore_choice}"
        )
    if method == "auto" and lost:
        return _refuse(
            f"the upgrades since {version} ({head} -> {current}) removed data a downgrade cannot bring back "
            f"({'; '.join(lost)[:300]}). Choose one and run playbooks/rollback.yml again: {restore_choice}; "
            f"{downgrade_choice}"
        )
    chosen = "restore" if method == "restore" else "downgrade"
    return {"database": chosen, "revision": head, "backup": path if chosen == "restore" else None}


def rollback_release_plan(state: Dict, version: str, facts: Dict, method: str = "auto") -> Dict:
    """The steps of a rollback to ``version``, a release that ran on this host before.

    ``facts``: ``history`` (deploy_state's history) and the registered results ``heads``,
    ``upgrades`` and ``backup`` (read_facts). The result has rollback_plan's keys plus
    ``revision`` (to downgrade to) and ``backup`` (to restore).
    """
    if method not in METHODS:
        raise AnsibleFilterError(f"rollback_release_plan: method must be one of {', '.join(METHODS)}, got {method!r}")
    facts = read_facts(facts)
    phase = state.get("phase") or ""
    running = state.get("current_version") or ""
    plan: Dict = {**nothing_to_undo("", state), "version": version, "from_version": running}
    if phase not in FINISHED:
        return {
            **plan,
            "reason": f"the last deploy ({state.get('target_version')}) did not finish (phase {phase})",
            **_refuse(
                f"the last deploy ({state.get('target_version')}) did not finish (phase {phase}); roll it back first "
                "with playbooks/rollback.yml without rollback_version, then go further back"
            ),
        }
    if version == running:
        return {**plan, "reason": f"{version} is already running"}
    ran = _ran_here(facts.get("history") or [])
    if version not in ran:
        return {
            **plan,
            "reason": f"{version} never ran on this host",
            **_refuse(
                f"{version} never ran on this host (releases that did, oldest first: "
                f"{', '.join(ran) or 'none recorded'}); a rollback goes back to one of those. To run {version}, "
                "deploy it with playbooks/deploy.yml"
            ),
        }
    if facts.get("head_error") or not facts.get("head"):
        return {
            **plan,
            "reason": f"the images of {version} cannot be read",
            **_refuse(f"the images of {version} cannot be read ({facts.get('head_error') or 'no Alembic head'})"),
        }
    database = _database(version, facts, method)
    plan.update(database)
    plan["reason"] = (
        f"back from {running} to {version}, which ran here before; users were served, their writes are kept"
    )
    if plan["refuse"]:
        return plan
    touched = plan["database"] != "untouched"
    plan.update(
        undo=True,
        point_back=True,
        stop=touched,
        start=True,
        maintenance_on=True,
        users_backup=touched,
        maintenance_off=True,
    )
    return plan


class FilterModule:
    def filters(self) -> dict[str, t.Callable[..., t.Any]]:
        return {"rollback_to_release": rollback_to_release, "rollback_release_plan": rollback_release_plan}
