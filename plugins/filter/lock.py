# Copyright (c) ablage.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What playbooks/lock.yml may do with the deploy lock it finds (docs/runbook.md, "A stale lock").

A hold (lock.yml's own lock) is released by asking. Another run's lock is a deploy, rollback or
restore that may still be running, so it goes only with deploy_lock_break=true, and never when
that run recorded an unfinished deploy: removing the lock would leave its half-done work in
place, and the recovery (rollback.yml -e deploy_lock_break=true) is what undoes it.
"""

from __future__ import annotations

import typing as t

Dict = t.Dict[str, t.Any]

HOLD_RUN_ID = "hold"
FINISHED = ("done", "failed", "rolled_back")


def lock_summary(lock: Dict | None, age_s: float = 0.0) -> str:
    """One line for the operator: who holds the lock, since when, for what."""
    if not lock:
        return "free: no run holds the deploy lock"
    if lock.get("unreadable"):
        return (
            f"held by an unknown run: the lock file is unreadable ({lock.get('size')} bytes, last written "
            f"{lock.get('modified_at')}, {age_s:.0f} s ago)"
        )
    what = "a hold" if lock.get("run_id") == HOLD_RUN_ID else f"run {lock.get('run_id')}"
    return (
        f"held by {lock.get('holder') or 'unknown'} ({what}, {lock.get('version') or 'no version'}, "
        f"taken {lock.get('created_at') or 'at an unknown time'}, {age_s:.0f} s ago)"
    )


def lock_release_plan(lock: Dict | None, state: Dict | None = None, break_lock: bool = False) -> Dict:
    """``release`` (bool), ``run_id`` to release as, ``reason``, and ``refuse`` (a message, or None)."""
    state = state or {}
    if not lock:
        return {"release": False, "run_id": HOLD_RUN_ID, "reason": "no run holds the deploy lock", "refuse": None}
    run_id = str(lock.get("run_id") or "")
    if run_id == HOLD_RUN_ID and not lock.get("unreadable"):
        return {"release": True, "run_id": HOLD_RUN_ID, "reason": "the hold is released", "refuse": None}
    recorded = run_id and run_id == str(state.get("run_id") or "")
    phase = str(state.get("phase") or "")
    if recorded and phase not in FINISHED:
        return {
            "release": False,
            "run_id": run_id,
            "reason": f"run {run_id} recorded an unfinished deploy",
            "refuse": (
                f"Refused: the lock belongs to run {run_id}, which recorded the deploy of "
                f"{state.get('target_version') or '?'} up to phase {phase}. Removing the lock would leave that "
                "half-done deploy in place. If the run is dead, recover with playbooks/rollback.yml "
                "-e deploy_lock_break=true (it undoes what the run did and releases the lock; docs/runbook.md, "
                '"A stale lock"). Nothing was changed.'
            ),
        }
    if not break_lock:
        return {
            "release": False,
            "run_id": run_id,
            "reason": "another run's lock",
            "refuse": (
                "Refused: the lock is not a hold but another run's, which may still be running. When that run is "
                "known to be dead (a cancelled job), release it with -e deploy_lock_break=true. Nothing was changed."
            ),
        }
    return {
        "release": True,
        "run_id": run_id or "unknown",
        "reason": "the lock of a run that recorded nothing unfinished is broken on request",
        "refuse": None,
    }


class FilterModule:
    def filters(self) -> dict[str, t.Callable[..., t.Any]]:
        return {"lock_summary": lock_summary, "lock_release_plan": lock_release_plan}
