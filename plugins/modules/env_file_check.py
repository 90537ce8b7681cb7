#!/usr/bin/python
# Copyright (c) ablage.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: env_file_check
short_description: Check an .env file (such as .env.production) against the deployment rules without printing a value
version_added: 0.1.0
description:
  - Reads a dotenv file on the target host as docker compose reads it (C(KEY=value) lines, optional C(export), single
    or double quotes with escapes, values over several lines, C(#) comments) and checks that required variables are
    set, that secrets are long and not placeholders, that numeric settings are numbers in range, and that origin lists
    contain no wildcard.
  - A value compose fills in from the environment (C($VAR), C(${VAR})) is checked as written; a variable named without
    C(=) is not set by the file. A file compose cannot read (a quote that is never closed) fails, naming the line.
  - Only variable names and the rule each one broke are returned; values never leave the host, not even in a failure.
  - Implements the checklist's "Environment Variables gesetzt" (DATABASE_URL, REDIS_URL, MINIO_ENDPOINT, SECRET_KEY
    strong with 32+ characters, JWT_SECRET_KEY, CORS_ORIGINS, GPU_MEMORY_LIMIT_GB=13.6).
author:
  - ablage.ops maintainers (@ablage-system)
extends_documentation_fragment:
  - ablage.ops._attributes
  - ablage.ops._attributes.READ_ONLY
options:
  path:
    description:
      - The dotenv file on the target host.
    type: path
    required: true
  required:
    description:
      - Variables that must be present with a non-empty value.
    type: list
    elements: str
    default: [DATABASE_URL, REDIS_URL, MINIO_ENDPOINT, SECRET_KEY, JWT_SECRET_KEY, CORS_ORIGINS, GPU_MEMORY_LIMIT_GB]
  secrets:
    description:
      - Variables that hold secrets; each must have at least O(min_secret_length) characters, at least
        O(min_distinct_chars) different characters, and must not look like a placeholder.
    type: list
    elements: str
    default: [SECRET_KEY, JWT_SECRET_KEY]
  min_secret_length:
    description:
      - Minimum length of each of O(secrets).
    type: int
    default: 32
  min_distinct_chars:
    description:
      - Minimum number of different characters in each of O(secrets) (rejects C(aaaa…) and similar).
    type: int
    default: 10
  placeholders:
    description:
      - Case-insensitive words that mark a secret as a placeholder when its value contains one.
    type: list
    elements: str
    default: [changeme, change-me, change_me, placeholder, example, secret-key, your-secret, todo, xxxxx, dummy, insecure]
  numbers:
    description:
      - 'Variables that must be numbers, with an inclusive range, for example C({GPU_MEMORY_LIMIT_GB: {min: 1, max: 16}}).'
    type: dict
    default: {GPU_MEMORY_LIMIT_GB: {min: 0.5, max: 80}}
  no_wildcard:
    description:
      - Comma-separated list variables that must not contain C(*), such as CORS origins in production.
    type: list
    elements: str
    default: [CORS_ORIGINS]
"""

EXAMPLES = r"""
- name: Check .env.production (values are never shown)
  ablage.ops.env_file_check:
    path: /srv/ablage/.env.production
  register: env_check

- name: A staging host with a looser GPU budget
  ablage.ops.env_file_check:
    path: /srv/ablage/.env.production
    numbers:
      GPU_MEMORY_LIMIT_GB: {min: 1, max: 24}
"""

RETURN = r"""
variables:
  description: Names of all variables set in the file.
  returned: success
  type: list
  elements: str
missing:
  description: Required variables that are absent or empty.
  returned: always
  type: list
  elements: str
problems:
  description: One sentence per broken rule, naming the variable and the fix, never its value.
  returned: always
  type: list
  elements: str
  sample: ["SECRET_KEY has 12 characters; it needs at least 32 (generate one: openssl rand -base64 48)"]
checked:
  description: Each rule checked, as C({variable, rule, ok}).
  returned: always
  type: list
  elements: dict
"""

import typing as t

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ablage.ops.plugins.module_utils._dotenv import DotenvError, read_assigned


class EnvRules:
    def __init__(self, params: dict[str, t.Any], values: dict[str, str]) -> None:
        self.params = params
        self.values = values
        self.problems: list[str] = []
        self.checked: list[dict[str, t.Any]] = []
        self.missing: list[str] = []

    def record(self, variable: str, rule: str, ok: bool, problem: str = "") -> None:
        self.checked.append({"variable": variable, "rule": rule, "ok": ok})
        if not ok:
            self.problems.append(problem)

    def run(self) -> None:
        for name in self.params["required"]:
            ok = bool(self.values.get(name))
            if not ok:
                self.missing.append(name)
            self.record(name, "required", ok, f"{name} is missing or empty in {self.params['path']}; set it there")
        for name in self.params["secrets"]:
            if self.values.get(name):
                self.check_secret(name, self.values[name])
        for name, bounds in self.params["numbers"].items():
            if self.values.get(name):
                self.check_number(name, self.values[name], bounds or {})
        for name in self.params["no_wildcard"]:
            if self.values.get(name):
                origins = [o.strip() for o in self.values[name].split(",")]
                self.record(
                    name, "no_wildcard", "*" not in origins, f"{name} allows every origin (*); list the origins"
                )

    def check_secret(self, name: str, value: str) -> None:
        need = self.params["min_secret_length"]
        self.record(
            name,
            "min_length",
            len(value) >= need,
            f"{name} has {len(value)} characters; it needs at least {need} (generate one: openssl rand -base64 48)",
        )
        distinct = len(set(value))
        self.record(
            name,
            "distinct_chars",
            distinct >= self.params["min_distinct_chars"],
            f"{name} uses only {distinct} different characters; use a random value",
        )
        lowered = value.lower()
        hit = next((p for p in self.params["placeholders"] if p.lower() in lowered), None)
        self.record(
            name, "not_placeholder", hit is None, f"{name} looks like a placeholder (contains '{hit}'); replace it"
        )

    def check_number(self, name: str, value: str, bounds: dict[str, t.Any]) -> None:
        try:
            number = float(value)
        except ValueError:
            self.record(name, "number", False, f"{name} is not a number; set it to one, e.g. {name}=13.6")
            return
        low, high = bounds.get("min"), bounds.get("max")
        ok = (low is None or number >= float(low)) and (high is None or number <= float(high))
        self.record(name, "range", ok, f"{name}={number:g} is outside [{low}, {high}]")


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "required": {
                "type": "list",
                "elements": "str",
                "default": [
                    "DATABASE_URL",
                    "REDIS_URL",
                    "MINIO_ENDPOINT",
                    "SECRET_KEY",
                    "JWT_SECRET_KEY",
                    "CORS_ORIGINS",
                    "GPU_MEMORY_LIMIT_GB",
                ],
            },
            "secrets": {
                "type": "list",
                "elements": "str",
                "default": ["SECRET_KEY", "JWT_SECRET_KEY"],
                "no_log": False,
            },
            "min_secret_length": {"type": "int", "default": 32, "no_log": False},
            "min_distinct_chars": {"type": "int", "default": 10},
            "placeholders": {
                "type": "list",
                "elements": "str",
                "default": [
                    "changeme",
                    "change-me",
                    "change_me",
                    "placeholder",
                    "example",
                    "secret-key",
                    "your-secret",
                    "todo",
                    "xxxxx",
                    "dummy",
                    "insecure",
                ],
            },
            "numbers": {"type": "dict", "default": {"GPU_MEMORY_LIMIT_GB": {"min": 0.5, "max": 80}}},
            "no_wildcard": {"type": "list", "elements": "str", "default": ["CORS_ORIGINS"]},
        },
        supports_check_mode=True,
    )
    try:
        with open(module.params["path"], encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        module.fail_json(
            msg=f"Cannot read {module.params['path']}: {exc.strerror}. "
            "Create the file on the host (mode 0600) or point the path at it.",
            missing=[],
            problems=[],
            checked=[],
        )
    try:
        values = read_assigned(text)
    except DotenvError as exc:
        # The message names the key and line, never a value.
        module.fail_json(msg=f"{module.params['path']}: {exc}", missing=[], problems=[str(exc)], checked=[])
    rules = EnvRules(module.params, values)
    rules.run()
    result: dict[str, t.Any] = {
        "changed": False,
        "variables": sorted(values),
        "missing": rules.missing,
        "problems": rules.problems,
        "checked": rules.checked,
    }
    if rules.problems:
        module.fail_json(msg=f"{module.params['path']}: " + "; ".join(rules.problems), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
