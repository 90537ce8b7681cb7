#!/usr/bin/python
# Copyright (c) ablage.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: env_file
short_description: Write a dotenv file (such as .env.production) from secret values, showing only which keys change
version_added: 0.3.0
description:
  - Sets keys of a dotenv file on the target host, such as the compose project's C(.env.production), to values that
    come from the vault, so that a host can be prepared with C(--check --diff) first.
  - Every value is treated as a secret. The result, the diff, warnings and failure messages name keys only; the diff
    shows each key as V(<unchanged>), V(<changed>), V(<added>) or V(<removed>).
  - An existing file is edited in place; comments, blank lines, the order of the keys and every line of a key that does
    not change are kept as they are. New keys are appended in the order of O(values).
  - Values are written so that C(docker compose) (C(env_file:) and C(--env-file)) reads them back exactly and never
    interpolates them. Values made only of letters, digits and C(_./:@,+=%-) are written bare; others in single
    quotes, which compose reads literally; a value with a C(') or a trailing C(\) goes into double quotes with C(\),
    C(") and C($) escaped (docker compose 2.20 or later reads these as written).
  - A value is unchanged only when compose would read exactly that value from the file. A key whose current value
    refers to another variable (C($NAME), C(${NAME})) or to the environment (a line with the key alone) is rewritten
    with the literal value.
  - The file is written to a temporary file in the same directory and moved into place, so a reader never sees half a
    file, and it gets O(mode), O(owner) and O(group) before the new values land in it.
author:
  - ablage.ops maintainers (@ablage-system)
extends_documentation_fragment:
  - ablage.ops._attributes
  - ansible.builtin.files
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details:
      - The diff lists the keys of the file before and after, each with V(<unchanged>), V(<old value>) and
        V(<changed>), V(<added>) or V(<removed>), never a value. File attributes that change are shown as well.
  idempotent:
    support: full
options:
  path:
    description:
      - The dotenv file on the target host. Its directory must exist. A symbolic link is followed; the file it points
        to is written.
    type: path
    required: true
  values:
    description:
      - The keys to set and their values. Keys must be variable names (C(^[A-Za-z_][A-Za-z0-9_]*$)).
      - Values must be strings (numbers are written as Python prints them; quote them in YAML to be sure). A value must
        not contain a line break.
      - Every value is hidden from the output (C(no_log)). Like every C(no_log) value in Ansible, a very short value
        such as V(1) or V(true) is also masked wherever that text appears in the task's output.
    type: dict
    required: true
  state:
    description:
      - V(present) sets the keys of O(values) and keeps every other line of the file.
      - V(exact) makes the file hold exactly the keys of O(values) - every other assignment, and earlier assignments of a
        key that compose overrides anyway, are removed. Comments and blank lines are kept.
    type: str
    choices: [present, exact]
    default: present
  mode:
    description:
      - The permissions of the file, as in M(ansible.builtin.copy). The default keeps the secrets readable by the
        owner only.
    type: raw
    default: '0600'
  backup:
    description:
      - Keep a copy of the previous file (with a timestamp in its name) when its content changes.
    type: bool
    default: false
seealso:
  - module: ablage.ops.env_file_check
notes:
  - The dotenv rules are those of compose-go, the parser of docker compose v2; a file written by this module can also
    be read by M(ablage.ops.env_file_check).
"""

EXAMPLES = r"""
- name: Prepare .env.production from the vault (--check --diff shows which keys would change)
  ablage.ops.env_file:
    path: /srv/ablage/.env.production
    values:
      DATABASE_URL: "{{ vault_database_url }}"
      SECRET_KEY: "{{ vault_secret_key }}"
      JWT_SECRET_KEY: "{{ vault_jwt_secret_key }}"
      GPU_MEMORY_LIMIT_GB: "13.6"
    owner: ablage
    group: ablage
    backup: true

- name: The file holds exactly these keys; anything else is removed
  ablage.ops.env_file:
    path: /srv/ablage/.env.production
    state: exact
    values: "{{ vault_ablage_env }}"
  register: env_file

- name: Restart only when a key changed
  ansible.builtin.debug:
    msg: "Changed: {{ env_file.added + env_file.changed_keys + env_file.removed }}"
  when: env_file.changed
"""

RETURN = r"""
path:
  description: The dotenv file.
  returned: always
  type: str
  sample: /srv/ablage/.env.production
added:
  description: Keys of O(values) that the file did not have.
  returned: success
  type: list
  elements: str
  sample: [JWT_SECRET_KEY]
changed_keys:
  description: Keys of O(values) whose line is rewritten, because the value differs or an older line of the key goes.
  returned: success
  type: list
  elements: str
  sample: [SECRET_KEY]
removed:
  description: Keys removed because they are not in O(values) (only with O(state=exact)).
  returned: success
  type: list
  elements: str
  sample: [OLD_API_TOKEN]
unchanged:
  description: Keys of O(values) that already had their value.
  returned: success
  type: list
  elements: str
  sample: [DATABASE_URL]
backup_file:
  description: The copy of the previous file.
  returned: when O(backup=true) and the content changed
  type: str
  sample: /srv/ablage/.env.production.12345.2026-05-04@10:21:33~
"""

import os
import tempfile
import typing as t

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ablage.ops.plugins.module_utils._dotenv import (
    DotenvError,
    Plan,
    as_text,
    key_diff,
    key_problem,
    plan,
)


def wanted_values(module: AnsibleModule) -> dict[str, str]:
    """The values as text; every bad key and value is named at once, so one fix round suffices."""
    problems = [problem for problem in map(key_problem, module.params["values"]) if problem]
    wanted: dict[str, str] = {}
    for key, value in module.params["values"].items():
        try:
            wanted[key] = as_text(key, value)
        except DotenvError as exc:
            problems.append(str(exc))
    if problems:
        module.fail_json(msg="; ".join(problems), path=module.params["path"])
    return wanted


def read_existing(module: AnsibleModule, path: str) -> str | None:
    """The current text, or None when there is no file; the content itself never goes into a message."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        module.fail_json(
            msg=f"Cannot read {path}: {exc.strerror}. Fix its permissions or point path at a file.", path=path
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        module.fail_json(
            msg=f"{path} is not UTF-8 text (byte {exc.start}); compose reads env files as UTF-8. Fix or move the file.",
            path=path,
        )


def write_atomic(module: AnsibleModule, path: str, text: str) -> None:
    directory = os.path.dirname(path) or "."
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        module.fail_json(msg=f"Cannot create a temporary file in {directory}: {exc.strerror}", path=path)
    # A failure below must not leave a copy of the secrets behind.
    module.add_cleanup_file(tmp)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(text.encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        module.fail_json(msg=f"Cannot write {tmp}: {exc.strerror}", path=path)
    # atomic_move gives a new file 0666 & ~umask; with 077 it is 0600 until the wanted mode is set.
    umask = os.umask(0o077)
    try:
        module.atomic_move(tmp, path, unsafe_writes=module.params["unsafe_writes"])
    finally:
        os.umask(umask)


def apply(
    module: AnsibleModule, path: str, result: Plan, before: str | None
) -> tuple[dict[str, t.Any], dict[str, t.Any]]:
    """Write when needed and set the attributes; returns the result fields and the attributes' diff."""
    file_args = module.load_file_common_arguments(module.params, path=path)
    attr_diff: dict[str, t.Any] = {}
    outcome: dict[str, t.Any] = {"changed": result.text != before}
    if before is not None:
        if outcome["changed"] and module.params["backup"] and not module.check_mode:
            outcome["backup_file"] = module.backup_local(path)
        # Tighten mode and owner first: atomic_move copies them onto the file with the new values.
        outcome["changed"] |= module.set_fs_attributes_if_different(file_args, False, diff=attr_diff)
    if result.text != before and not module.check_mode:
        write_atomic(module, path, result.text)
        outcome["changed"] |= module.set_fs_attributes_if_different(file_args, False)
    return outcome, attr_diff


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "values": {"type": "dict", "required": True, "no_log": True},
            "state": {"type": "str", "choices": ["present", "exact"], "default": "present"},
            "mode": {"type": "raw", "default": "0600"},
            "backup": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
        add_file_common_args=True,
    )
    path = module.params["path"]
    wanted = wanted_values(module)
    # atomic_move would replace a link (.env -> .env.production) with a file of its own.
    target = os.path.realpath(path)
    before = read_existing(module, target)
    try:
        result = plan(before or "", wanted, exact=module.params["state"] == "exact")
    except DotenvError as exc:
        module.fail_json(msg=f"{path}: {exc}", path=path)
    outcome, attr_diff = apply(module, target, result, before)
    if module._diff:
        before_keys, after_keys = key_diff(result)
        outcome["diff"] = [{"before_header": path, "after_header": path, "before": before_keys, "after": after_keys}]
        if attr_diff:
            outcome["diff"].append(attr_diff)
    module.exit_json(
        path=path,
        added=sorted(result.added),
        changed_keys=sorted(result.changed),
        removed=sorted(result.removed),
        unchanged=sorted(result.unchanged),
        **outcome,
    )


if __name__ == "__main__":
    main()
