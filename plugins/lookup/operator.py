# Copyright (c) ablage.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Who runs this playbook: the name the deploy lock, the history and the report show.

One place for the answer, so that the lock holder and the report's "Who ran it" agree, and so that a run
from cron, systemd or an execution environment (no ``$USER``) still names someone instead of "unknown".
"""

from __future__ import annotations

DOCUMENTATION = r"""
name: operator
short_description: The person (or AWX user) running this playbook
version_added: 0.1.0
description:
  - Returns one name, the first that is known of
  - the AWX/Tower user who launched the job (the C(awx_user_name) or C(tower_user_name) extra variable AWX sets);
  - the user who ran C(sudo ansible-playbook) (C(SUDO_USER)), shown as C(<user> (sudo));
  - C(LOGNAME) or C(USER) of the controller's environment;
  - the account of the controller process's uid (from the password database), or C(uid <n>) where it has no name.
  - Runs on the controller, like every lookup.
author:
  - ablage.ops maintainers (@ablage-system)
options: {}
seealso:
  - module: ablage.ops.deploy_lock
"""

EXAMPLES = r"""
- name: Take the deploy lock in the operator's name
  ablage.ops.deploy_lock:
    state_dir: /var/lib/ablage-deploy
    run_id: "{{ run_id }}"
    holder: "{{ lookup('ablage.ops.operator') }}"
"""

RETURN = r"""
_raw:
  description: One name.
  type: list
  elements: str
"""

import os
import pwd
import typing as t

from ansible.errors import AnsibleError
from ansible.plugins.lookup import LookupBase


def operator_name(variables: t.Mapping[str, t.Any], environ: t.Mapping[str, str], uid: int) -> str:
    """The first known name: AWX's user, the sudo caller, the login name, the uid's account."""
    for var in ("awx_user_name", "tower_user_name"):
        value = variables.get(var)
        if isinstance(value, str) and value.strip():
            return value.strip()
    sudo_user = environ.get("SUDO_USER", "").strip()
    if sudo_user and sudo_user != "root":
        return f"{sudo_user} (sudo)"
    for var in ("LOGNAME", "USER"):
        value = environ.get(var, "").strip()
        if value:
            return value
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


class LookupModule(LookupBase):
    def run(self, terms: list[t.Any], variables: dict[str, t.Any] | None = None, **kwargs: t.Any) -> list[str]:
        if terms:
            raise AnsibleError("lookup('ablage.ops.operator') takes no terms: it names whoever runs the playbook")
        return [operator_name(variables or {}, os.environ, os.getuid())]
