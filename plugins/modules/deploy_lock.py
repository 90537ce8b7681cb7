#!/usr/bin/python
# Copyright (c) ablage.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: deploy_lock
short_description: Take or release the deploy lock of Ablage-System on the target host
version_added: 0.1.0
description:
  - Keeps a second deploy (another operator, a second AWX job) from running while one is in progress.
  - The lock is a JSON file C(deploy.lock) in O(state_dir), created atomically (C(O_EXCL)); it names its holder, the
    run id, the version being deployed and when it was taken.
  - A lock held by another run is never taken over silently. A lock left behind by a cancelled run is reported with its
    holder and age, and only O(break_lock=true) replaces or removes it; the broken lock is returned.
  - An empty or unparsable lock file (a run killed while taking it) counts as held by an unknown run. It is reported with
    its size, first bytes and modification time (its age), and likewise only O(break_lock=true) replaces or removes it.
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
      - The diff is the lock file's content before and after.
  idempotent:
    support: full
    details:
      - Taking a lock that this O(run_id) already holds, or releasing one that is not there, reports no change.
options:
  state_dir:
    description:
      - Deploy state directory on the target host. Created with mode 0700 if missing.
    type: path
    required: true
  state:
    description:
      - V(present) takes the lock for O(run_id); V(absent) releases it.
    type: str
    choices: [present, absent]
    default: present
  run_id:
    description:
      - Identifies this run (for example the AWX job id or a timestamp chosen once per playbook run).
      - The lock is released only by the run that holds it, unless O(break_lock=true).
    type: str
    required: true
  holder:
    description:
      - Who runs the deploy (user name, AWX user). Shown to anyone who finds the lock taken.
    type: str
    default: unknown
  version:
    description:
      - The version this run deploys, recorded in the lock for whoever finds it.
    type: str
  break_lock:
    description:
      - Replace (O(state=present)) or remove (O(state=absent)) a lock held by another run.
      - Only for a lock whose run is known to be dead, for example a cancelled AWX job.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Take the deploy lock
  ablage.ops.deploy_lock:
    state_dir: /var/lib/ablage-deploy
    run_id: "{{ awx_job_id | default(ansible_date_time.epoch) }}"
    holder: "{{ awx_user_name | default(lookup('ansible.builtin.env', 'USER')) }}"
    version: 1.1.0

- name: Release it at the end
  ablage.ops.deploy_lock:
    state_dir: /var/lib/ablage-deploy
    run_id: "{{ awx_job_id | default(ansible_date_time.epoch) }}"
    state: absent
"""

RETURN = r"""
lock:
  description:
    - The lock as it is after the module ran (V(null) when released).
    - For an unreadable lock file it is C(unreadable=true) with C(size), C(head) (the first bytes) and C(modified_at).
  returned: always
  type: dict
  sample: {"holder": "alice", "run_id": "4711", "version": "1.1.0", "created_at": "2026-11-27T03:00:00+00:00"}
broken:
  description: The lock of another run (or the unreadable lock) that O(break_lock=true) replaced or removed.
  returned: when a lock was broken
  type: dict
age_s:
  description: Age in seconds of the lock that was found, if any (from the file's mtime when it names no valid time).
  returned: always
  type: float
"""

import json
import os
import typing as t

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ablage.ops.plugins.module_utils._deploy_state import (
    LOCK_FILE,
    create_exclusive,
    ensure_dir,
    lock_age_seconds,
    read_lock,
    utc_now,
    write_json_atomic,
)


class DeployLock:
    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.params = module.params
        self.path = os.path.join(self.params["state_dir"], LOCK_FILE)
        self.result: dict[str, t.Any] = {"changed": False}

    def held_elsewhere_msg(self, lock: dict[str, t.Any]) -> str:
        age = lock_age_seconds(lock, self.path)
        if lock.get("unreadable"):
            held = (
                f"The deploy lock {self.path} is unreadable ({lock['size']} bytes, not a JSON object; first bytes "
                f"{json.dumps(lock['head'])}; last written {lock['modified_at']}, {age} s ago), so it is treated as "
                "held by an unknown run. A run may be writing it right now, or one was killed while taking it."
            )
        else:
            held = (
                f"The deploy lock {self.path} is held by {lock.get('holder', '?')} (run {lock.get('run_id', '?')}, "
                f"version {lock.get('version', '?')}, taken {lock.get('created_at', '?')}, {age} s ago)."
            )
        return (
            f"{held} Wait for that run to finish. If it is known to be dead (for example a cancelled job), break the "
            "lock explicitly with break_lock=true (the deploy playbook: -e deploy_lock_break=true)."
        )

    def run(self) -> None:
        check = self.module.check_mode
        if not check:
            ensure_dir(self.params["state_dir"])
        before = read_lock(self.path)
        self.result["age_s"] = lock_age_seconds(before, self.path)
        mine = before is not None and not before.get("unreadable") and before.get("run_id") == self.params["run_id"]
        if before is not None and not mine and not self.params["break_lock"]:
            self.result["lock"] = before
            self.module.fail_json(msg=self.held_elsewhere_msg(before), **self.result)
        after = (before if mine else self.new_lock()) if self.params["state"] == "present" else None
        if before is not None and not mine:
            self.result["broken"] = before
        self.result["changed"] = after != before
        self.result["lock"] = after
        if self.module._diff:
            self.result["diff"] = {"before": before or {}, "after": after or {}}
        if self.result["changed"] and not check:
            self.write(before, after)
        self.module.exit_json(**self.result)

    def new_lock(self) -> dict[str, t.Any]:
        return {
            "holder": self.params["holder"],
            "run_id": self.params["run_id"],
            "version": self.params["version"],
            "created_at": utc_now(),
            "pid": os.getpid(),
        }

    def write(self, before: dict[str, t.Any] | None, after: dict[str, t.Any] | None) -> None:
        if after is None:
            os.unlink(self.path)
        elif before is None:
            if not create_exclusive(self.path, after):
                # Another run took it between our read and our create.
                self.module.fail_json(msg=self.held_elsewhere_msg(read_lock(self.path) or {}), **self.result)
        else:
            write_json_atomic(self.path, after)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "state_dir": {"type": "path", "required": True},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "run_id": {"type": "str", "required": True},
            "holder": {"type": "str", "default": "unknown"},
            "version": {"type": "str"},
            "break_lock": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    try:
        DeployLock(module).run()
    except (OSError, ValueError) as exc:
        module.fail_json(
            msg=f"Cannot use the deploy lock in {module.params['state_dir']}: {exc}. "
            "Check that the directory is writable by the connecting user (become: true).",
        )


if __name__ == "__main__":
    main()
