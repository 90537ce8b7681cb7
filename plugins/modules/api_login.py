#!/usr/bin/python
# Copyright (c) ablage.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: api_login
short_description: Log in to Ablage-System's API and return the bearer token
version_added: 0.3.0
description:
  - >-
    Sends the login request of the application contract (docs/contract.md), C(POST) O(login_path) with the JSON
    C({"username": ..., "password": ...}), and returns the token found at O(token_field) of the answer.
  - The one login of the collection, used by the playbooks, the rollback and the day-2 operations, so the login
    path and the token field are settings in one place and pre-flight checks the same request the deploy sends.
  - With O(required=false) a login that gets no answer or is refused returns an empty RV(token) and RV(error)
    instead of failing (a day-2 run or a recovery while the backend is down).
author:
  - ablage.ops maintainers (@ablage-system)
extends_documentation_fragment:
  - ablage.ops._attributes
  - ablage.ops._http
attributes:
  check_mode:
    support: full
    details:
      - Logs in in check mode too; a login changes nothing, and the checks that follow need the token.
  diff_mode:
    support: none
  idempotent:
    support: full
options:
  api_url:
    description: Base URL of the backend, for example V(http://127.0.0.1:8000).
    type: str
    required: true
  username:
    description: The user to log in as.
    type: str
    required: true
  password:
    description: The user's password.
    type: str
    required: true
  login_path:
    description: The login endpoint (C(ablage_login_path)).
    type: str
    default: /api/v1/auth/login
  token_field:
    description: Dotted path of the token in the JSON answer, for example V(access_token) or V(data.token).
    type: str
    default: access_token
  required:
    description:
      - Fail when the login gets no answer, is refused, or the answer holds no token. With V(false) the module
        returns an empty RV(token) and says why in RV(error).
    type: bool
    default: true
notes:
  - >-
    The password is never logged. The token is returned, so the task that calls this module must set
    C(no_log: true) to keep it out of the output (the collection's tasks do).
seealso:
  - module: ablage.ops.http_flow
"""

EXAMPLES = r"""
- name: Log in as the admin user
  ablage.ops.api_login:
    api_url: "{{ ablage_api_url }}"
    login_path: "{{ ablage_login_path }}"
    username: "{{ ablage_admin_username }}"
    password: "{{ ablage_admin_password }}"
  register: __admin_login
  no_log: true

- name: Log in if the backend answers (it may be down during a recovery)
  ablage.ops.api_login:
    api_url: "{{ ablage_api_url }}"
    username: "{{ ablage_admin_username }}"
    password: "{{ ablage_admin_password }}"
    required: false
  register: __admin_login
  no_log: true
"""

RETURN = r"""
token:
  description: The bearer token; empty when the login failed with O(required=false).
  returned: always
  type: str
  sample: eyJhbGciOi...
status:
  description: HTTP status of the login answer; V(null) when there was no answer.
  returned: always
  type: int
  sample: 200
error:
  description: Why there is no token (no answer, the status and the answer's start, or no token field); empty on success.
  returned: always
  type: str
  sample: "POST http://127.0.0.1:8000/api/v1/auth/login answered 401: Invalid credentials"
"""

import typing as t

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ablage.ops.plugins.module_utils._http import (
    HttpClient,
    HttpConnectionError,
    json_at,
    tls_argument_spec,
)


def log_in(client: HttpClient, path: str, username: str, password: str, token_field: str) -> dict[str, t.Any]:
    """The token, the status and, when there is no token, why: what every caller of a login needs."""
    try:
        response = client.post(path, json_body={"username": username, "password": password})
    except HttpConnectionError as exc:
        return _no_token(None, f"{exc}; {exc.hint}")
    if response.status != 200:
        return _no_token(response.status, f"POST {response.url} answered {response.status}: {response.text[:200]}")
    _is_json, document = response.json_or_none()
    found, token = json_at(token_field, document)
    if not found or not isinstance(token, str) or not token:
        return _no_token(
            response.status, f"POST {response.url} answered 200 without a token at {token_field!r} (set token_field)"
        )
    return {"token": token, "status": response.status, "error": ""}


def _no_token(status: int | None, error: str) -> dict[str, t.Any]:
    """A login without a token: the same keys as a successful one, so callers read one shape."""
    return {"token": "", "status": status, "error": error}  # nosec B105 - an empty token, not a password


def main() -> None:
    argument_spec: dict[str, t.Any] = {
        "api_url": {"type": "str", "required": True},
        "username": {"type": "str", "required": True},
        "password": {"type": "str", "required": True, "no_log": True},
        "login_path": {"type": "str", "default": "/api/v1/auth/login"},
        "token_field": {"type": "str", "default": "access_token", "no_log": False},
        "required": {"type": "bool", "default": True},
    }
    argument_spec.update(tls_argument_spec())
    module = AnsibleModule(
        argument_spec=argument_spec, required_by={"client_key": "client_cert"}, supports_check_mode=True
    )
    client = HttpClient.from_params(module.params, base_url=module.params["api_url"])
    result = log_in(
        client,
        module.params["login_path"],
        module.params["username"],
        module.params["password"],
        module.params["token_field"],
    )
    if result["error"] and module.params["required"]:
        module.fail_json(msg=f"Login as {module.params['username']} failed: {result['error']}", changed=False, **result)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
