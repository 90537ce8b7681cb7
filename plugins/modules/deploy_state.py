#!/usr/bin/python
# Copyright (c) ablage.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: deploy_state
short_description: Read and record the deploy state and history of Ablage-System on the target host
version_added: 0.1.0
description:
  - C(state.json) in O(state_dir) holds what a rollback needs, such as the current and previous version, image digests,
    the Alembic revision before and after, the last backup and its checksum, and the phase the deploy reached.
  - C(history.jsonl) holds one line per deploy or rollback (version, time, deployer, result, durations, downtime).
  - Rollback reads only these files, so it works from a fresh controller or AWX job. Writes are atomic.
  - A line of C(history.jsonl) that is not a JSON object (a torn last line of a run killed mid-write) is skipped with a
    warning, and the next record starts on a new line. A C(state.json) that cannot be read fails the task; it is the
    rollback point, so the module does not guess.
  - Without O(update) or O(history) the module only reads.
author:
  - ablage.ops maintainers (@ablage-system)
extends_documentation_fragment:
  - ablage.ops._attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details:
      - The diff is C(state.json) before and after the merge.
  idempotent:
    support: partial
    details:
      - Merging the same O(update) twice reports no change; every O(history) record is appended, so it always changes.
options:
  state_dir:
    description:
      - Deploy state directory on the target host. Created with mode 0700 when something is written.
    type: path
    required: true
  update:
    description:
      - Keys to merge into C(state.json). Nested dictionaries merge key by key; other values replace.
      - C(phase) must be one of V(locked), V(maintenance), V(stopped), V(migrating), V(started), V(serving), V(done),
        V(failed), V(rolled_back); the rollback decides what to undo from it, so any other value fails the task.
      - Never put secrets here; the file is readable by whoever can read the state directory.
    type: dict
    default: {}
  history:
    description:
      - A record to append to C(history.jsonl). C(recorded_at) is added when missing.
    type: dict
  history_limit:
    description:
      - How many of the newest history records to return.
    type: int
    default: 20
"""

EXAMPLES = r"""
- name: Record the rollback point before the deploy touches anything
  ablage.ops.deploy_state:
    state_dir: /var/lib/ablage-deploy
    update:
      phase: locked
      previous_version: 1.0.0
      target_version: 1.1.0
      alembic_revision_before: "0001"

- name: Append the result to the history
  ablage.ops.deploy_state:
    state_dir: /var/lib/ablage-deploy
    history:
      action: deploy
      version: 1.1.0
      result: success
      deployer: alice

- name: Read the state (rollback does this first)
  ablage.ops.deploy_state:
    state_dir: /var/lib/ablage-deploy
  register: deploy_state
"""

RETURN = r"""
state:
  description: Content of C(state.json) after the module ran (empty when there is none).
  returned: always
  type: dict
history:
  description: The newest O(history_limit) records of C(history.jsonl), oldest first.
  returned: always
  type: list
  elements: dict
lock:
  description:
    - The deploy lock as M(ablage.ops.deploy_lock) wrote it (C(holder), C(run_id), C(version), C(created_at)), null
      when no run holds it. An unreadable lock file has C(unreadable=true), its size, first bytes and C(modified_at).
  returned: always
  type: dict
lock_age_s:
  description: Seconds since the lock was taken (0 when there is none).
  returned: always
  type: float
"""

import os
import typing as t

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ablage.ops.plugins.module_utils._deploy_state import (
    HISTORY_FILE,
    LOCK_FILE,
    PHASES,
    STATE_FILE,
    append_jsonl,
    ensure_dir,
    lock_age_seconds,
    merge,
    read_json,
    read_jsonl_tail,
    read_lock,
    utc_now,
    write_json_atomic,
)


class DeployState:
    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.params = module.params
        self.state_path = os.path.join(self.params["state_dir"], STATE_FILE)
        self.history_path = os.path.join(self.params["state_dir"], HISTORY_FILE)

    def read_state(self) -> dict[str, t.Any]:
        try:
            return read_json(self.state_path) or {}
        except ValueError as exc:
            # The rollback point: never guessed, never overwritten by a merge into an empty dict.
            self.module.fail_json(
                msg=f"{self.state_path} cannot be read as a JSON object ({exc}). It is the rollback point, so nothing "
                "is guessed. Restore the file from a copy (a backup of the state directory), or, when the running "
                "version is known, move it aside (mv state.json state.json.broken) and deploy that version again "
                "to record a fresh state.",
            )
            raise  # unreachable: fail_json exits

    def run(self) -> dict[str, t.Any]:
        phase = self.params["update"].get("phase")
        if phase is not None and phase not in PHASES:
            self.module.fail_json(
                msg=f"update.phase {phase!r} is not a phase of a deploy (one of {', '.join(PHASES)}); "
                "the rollback decides what to undo from the phase, so an unknown one is never written.",
            )
        before = self.read_state()
        after = merge(before, self.params["update"])
        record = self.params["history"]
        changed = after != before or record is not None
        if changed and not self.module.check_mode:
            ensure_dir(self.params["state_dir"])
            if after != before:
                write_json_atomic(self.state_path, after)
            if record is not None:
                append_jsonl(self.history_path, {"recorded_at": utc_now(), **record})
        history = read_jsonl_tail(self.history_path, self.params["history_limit"], warn=self.module.warn)
        if record is not None and self.module.check_mode:
            history = ([*history, record])[-self.params["history_limit"] :] if self.params["history_limit"] > 0 else []
        lock_path = os.path.join(self.params["state_dir"], LOCK_FILE)
        lock = read_lock(lock_path) if os.path.exists(lock_path) else None
        result: dict[str, t.Any] = {
            "changed": changed,
            "state": after,
            "history": history,
            "lock": lock,
            "lock_age_s": lock_age_seconds(lock, lock_path),
        }
        if self.module._diff:
            result["diff"] = {"before": before, "after": after}
        return result


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "state_dir": {"type": "path", "required": True},
            "update": {"type": "dict", "default": {}},
            "history": {"type": "dict"},
            "history_limit": {"type": "int", "default": 20},
        },
        supports_check_mode=True,
    )
    try:
        result = DeployState(module).run()
    except (OSError, ValueError) as exc:
        module.fail_json(
            msg=f"Cannot read or write the deploy state in {module.params['state_dir']}: {exc}. "
            "Check the directory's permissions (become: true).",
        )
    module.exit_json(**result)


if __name__ == "__main__":
    main()
