#!/usr/bin/python
# Copyright (c) ablage.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: maintenance_toggle
short_description: Switch the maintenance mode of Ablage-System on or off, idempotently, and prove it took effect
version_added: 0.1.0
description:
  - >-
    Reads the maintenance flag through the admin API (C(GET /api/v1/admin/maintenance) answering
    C({"enabled": true|false})), and only when it differs from O(state) calls C(POST .../enable) or
    C(POST .../disable). A repeated run reports no change.
  - Then verifies the effect as a non-admin client would see it. With O(state=enabled), a request to
    O(verify_path) (without a token, or with O(verify_token)) must answer HTTP 503; with O(state=disabled), it must
    answer anything but 503. The verification is retried until O(verify_timeout), since several backend replicas
    may take a moment to agree.
  - Implements steps 1 and 6 of the deployment checklist (maintenance on before the deploy, off after it) in its
    API mode. The checklist's alternative, a C(custom-http-errors) annotation on a Kubernetes ingress, is not
    implemented by this module.
author:
  - ablage.ops maintainers (@ablage-system)
extends_documentation_fragment:
  - ablage.ops._attributes
  - ablage.ops._http
attributes:
  check_mode:
    support: full
    details:
      - Reads the current state and reports whether it would change it; sends no enable or disable request.
      - The effect is verified in check mode only when nothing would change.
  diff_mode:
    support: full
    details:
      - 'The diff is C({"enabled": before}) against C({"enabled": after}).'
  idempotent:
    support: full
options:
  state:
    description:
      - V(enabled) puts the system into maintenance mode, V(disabled) takes it out.
    type: str
    required: true
    choices: [enabled, disabled]
  api_url:
    description:
      - Base URL of the backend, for example V(http://127.0.0.1:8000). The paths below are appended to it.
    type: str
    required: true
  admin_token:
    description:
      - Bearer token of an admin user (from C(POST /api/v1/auth/login)). Sent to the three admin paths only.
    type: str
    required: true
  status_path:
    description:
      - 'Path that answers C(GET) with C({"enabled": true|false}).'
    type: str
    default: /api/v1/admin/maintenance
  enable_path:
    description:
      - Path that a C(POST) switches maintenance on with.
    type: str
    default: /api/v1/admin/maintenance/enable
  disable_path:
    description:
      - Path that a C(POST) switches maintenance off with.
    type: str
    default: /api/v1/admin/maintenance/disable
  reason:
    description:
      - >-
        Why maintenance is switched on, sent as C({"reason": ...}) in the body of the enable request, so the
        backend can show and log it (for example the release being deployed). Not sent when unset.
    type: str
  verify:
    description:
      - Check the effect with a non-admin request to O(verify_path) after switching (or when nothing had to change).
    type: bool
    default: true
  verify_path:
    description:
      - Non-admin API path that maintenance mode blocks with HTTP 503.
    type: str
    default: /api/v1/documents/
  verify_token:
    description:
      - Bearer token of a normal user for the verification request. Without it the request is anonymous, which
        outside maintenance answers 401; that counts as "not 503", so it is enough to verify either state.
    type: str
  verify_timeout:
    description:
      - Seconds to keep retrying the verification until the expected answer comes.
    type: float
    default: 30.0
  verify_delay:
    description:
      - Seconds between two verification requests.
    type: float
    default: 1.0
notes:
  - The admin token is never logged; the verification token neither.
seealso:
  - module: ablage.ops.health_probe
"""

EXAMPLES = r"""
- name: "Checklist 1. Maintenance Mode aktivieren"
  ablage.ops.maintenance_toggle:
    state: enabled
    api_url: http://127.0.0.1:8000
    admin_token: "{{ __deploy_admin_token }}"
    reason: "deploy of {{ ablage_version }}"
  register: __deploy_maintenance

- name: "Checklist 6. Maintenance Mode deaktivieren (verified with a user token)"
  ablage.ops.maintenance_toggle:
    state: disabled
    api_url: https://ablage.example.com
    admin_token: "{{ __deploy_admin_token }}"
    verify_token: "{{ __deploy_user_token }}"
    ca_path: /etc/ssl/certs/ablage-ca.pem

- name: Only report whether maintenance is on (check mode, with diff)
  ablage.ops.maintenance_toggle:
    state: disabled
    api_url: http://127.0.0.1:8000
    admin_token: "{{ admin_token }}"
  check_mode: true
  diff: true
"""

RETURN = r"""
enabled_before:
  description: Whether maintenance was on before the module ran (as the API reported it).
  returned: always
  type: bool
  sample: false
enabled_after:
  description:
    - Whether maintenance is on after the module ran, read back from the API.
    - In check mode, the state it would have.
  returned: always
  type: bool
  sample: true
verification:
  description: Evidence that the state took effect for non-admin clients.
  returned: always
  type: dict
  contains:
    performed:
      description: Whether the verification request was sent (not with O(verify=false), nor in check mode with a change).
      type: bool
      sample: true
    url:
      description: The URL requested.
      type: str
      sample: http://127.0.0.1:8000/api/v1/documents/
    status:
      description: HTTP status of the last verification request; V(null) when none answered.
      type: int
      sample: 503
    expected:
      description: What counts as success, V(503) or V(not 503).
      type: str
      sample: "503"
    ok:
      description: Whether the last answer was the expected one.
      type: bool
      sample: true
    attempts:
      description: Requests sent.
      type: int
      sample: 1
    latency_ms:
      description: Latency of the last request in milliseconds.
      type: float
      sample: 3.1
"""

import typing as t

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ablage.ops.plugins.module_utils._http import (
    HttpClient,
    HttpConnectionError,
    HttpResponse,
    retry_until,
    tls_argument_spec,
)


class MaintenanceManager:
    """Reads the maintenance flag, switches it when needed, and verifies the effect."""

    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.params = module.params
        self.check_mode = module.check_mode
        self.desired = self.params["state"] == "enabled"
        self.admin = HttpClient.from_params(
            self.params, base_url=self.params["api_url"], bearer_token=self.params["admin_token"]
        )
        self.probe = HttpClient.from_params(
            self.params, base_url=self.params["api_url"], bearer_token=self.params["verify_token"]
        )
        self.result: dict[str, t.Any] = {"changed": False}

    def fail(self, msg: str, **kwargs: t.Any) -> t.NoReturn:
        self.module.fail_json(msg=msg, **self.result, **kwargs)
        raise AssertionError("unreachable")  # pragma: no cover - fail_json exits

    def _call_admin(self, method: str, path: str, json_body: t.Any = None) -> HttpResponse:
        kwargs: dict[str, t.Any] = {} if json_body is None else {"json_body": json_body}
        try:
            response = self.admin.request(method, path, **kwargs)
        except HttpConnectionError as exc:
            self.fail(f"cannot reach the admin API: {exc}; {exc.hint} (api_url={self.params['api_url']!r})")
        if response.status in (401, 403):
            self.fail(
                f"{method} {response.url} answered {response.status}: admin_token was rejected; pass the bearer "
                "token of an admin user (POST /api/v1/auth/login with the admin credentials)",
                status=response.status,
            )
        if response.status == 404:
            self.fail(
                f"{method} {response.url} answered 404: the maintenance API is not at this path; "
                "check api_url and status_path/enable_path/disable_path",
                status=response.status,
            )
        if not response.ok:
            self.fail(
                f"{method} {response.url} answered {response.status}: {response.text[:300]}",
                status=response.status,
            )
        return response

    def read_enabled(self) -> bool:
        response = self._call_admin("GET", self.params["status_path"])
        is_json, body = response.json_or_none()
        if not is_json or not isinstance(body, dict) or not isinstance(body.get("enabled"), bool):
            self.fail(
                f'GET {response.url} did not answer {{"enabled": true|false}} but {response.text[:300]!r}; '
                "check that status_path points at the maintenance status endpoint",
            )
        return bool(body["enabled"])

    def verify(self, enabled: bool) -> dict[str, t.Any]:
        url = self.probe.url_for(self.params["verify_path"])
        evidence: dict[str, t.Any] = {
            "performed": True,
            "url": url,
            "expected": "503" if enabled else "not 503",
            "status": None,
            "latency_ms": None,
        }
        request_timeout = self.params["timeout"]

        def attempt(number: int, seconds_left: float) -> tuple[str | None, bool]:
            try:
                response = self.probe.get(self.params["verify_path"], timeout=min(request_timeout, seconds_left))
            except HttpConnectionError as exc:
                evidence["status"] = None
                evidence["latency_ms"] = None
                return f"{exc.reason} ({exc.hint})", False
            evidence["status"] = response.status
            evidence["latency_ms"] = response.latency_ms
            return None, (response.status == 503) == enabled

        outcome = retry_until(attempt, 1_000_000, self.params["verify_delay"], self.params["verify_timeout"])
        evidence["attempts"] = outcome.attempts
        evidence["ok"] = outcome.ok
        if outcome.value is not None:
            evidence["error"] = outcome.value
        return evidence

    def run(self) -> None:
        before = self.read_enabled()
        self.result["enabled_before"] = before
        changed = before != self.desired
        self.result["changed"] = changed
        after = before
        if changed and not self.check_mode:
            if self.desired:
                reason = self.params["reason"]
                self._call_admin("POST", self.params["enable_path"], None if reason is None else {"reason": reason})
            else:
                self._call_admin("POST", self.params["disable_path"])
            after = self.read_enabled()
            if after != self.desired:
                self.result["enabled_after"] = after
                self.fail(
                    f"the API accepted the {'enable' if self.desired else 'disable'} request, but {self.params['status_path']} "
                    f"still reports enabled={after}; check the backend's logs",
                )
        elif changed:
            after = self.desired
        self.result["enabled_after"] = after
        if self.module._diff:
            self.result["diff"] = {"before": {"enabled": before}, "after": {"enabled": after}}

        if self.params["verify"] and not (self.check_mode and changed):
            evidence = self.verify(after)
            self.result["verification"] = evidence
            if not evidence["ok"]:
                seen = evidence.get("error") or f"HTTP {evidence['status']}"
                if after:
                    cause = "the maintenance middleware does not block non-admin requests"
                else:
                    cause = "non-admin requests are still blocked (another replica still in maintenance?)"
                self.fail(
                    f"maintenance is {'on' if after else 'off'} according to the API, but GET {evidence['url']} "
                    f"answered {seen} (expected {evidence['expected']}) after {evidence['attempts']} attempts: "
                    f"{cause}; check verify_path, or raise verify_timeout",
                )
        else:
            self.result["verification"] = {"performed": False}

        verb = "would be" if self.check_mode else "is"
        state = "on" if after else "off"
        self.result["msg"] = f"maintenance {verb} {state}" + (" (changed)" if changed else " (unchanged)")
        self.module.exit_json(**self.result)


def main() -> None:
    argument_spec: dict[str, t.Any] = {
        "state": {"type": "str", "required": True, "choices": ["enabled", "disabled"]},
        "api_url": {"type": "str", "required": True},
        "admin_token": {"type": "str", "required": True, "no_log": True},
        "status_path": {"type": "str", "default": "/api/v1/admin/maintenance"},
        "enable_path": {"type": "str", "default": "/api/v1/admin/maintenance/enable"},
        "disable_path": {"type": "str", "default": "/api/v1/admin/maintenance/disable"},
        "reason": {"type": "str"},
        "verify": {"type": "bool", "default": True},
        "verify_path": {"type": "str", "default": "/api/v1/documents/"},
        "verify_token": {"type": "str", "no_log": True},
        "verify_timeout": {"type": "float", "default": 30.0},
        "verify_delay": {"type": "float", "default": 1.0},
    }
    argument_spec.update(tls_argument_spec())
    module = AnsibleModule(
        argument_spec=argument_spec,
        required_by={"client_key": "client_cert"},
        supports_check_mode=True,
    )
    MaintenanceManager(module).run()


if __name__ == "__main__":
    main()
