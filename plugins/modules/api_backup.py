#!/usr/bin/python
# Copyright (c) ablage.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: api_backup
short_description: Take Ablage-System's full backup through its admin API and wait until it completed
version_added: 0.1.0
description:
  - Starts the application's own full backup with C(POST /api/v1/backup/full) (step 2 of the deployment checklist,
    Backup erstellen) and polls C(GET /api/v1/backup/status?backup_id=ID) until the backup is C(completed) or
    C(failed), bounded by O(wait_timeout).
  - >-
    When a backup is already running (for example one an operator started), the API answers HTTP 409 with that
    backup's fields. The module then attaches to it and waits for it instead of failing, and says so with
    RV(attached=true). That backup's snapshot is from when it started (perhaps before maintenance mode); the deploy's
    rollback point is the dump of M(ablage.ops.pg_backup), taken with the application stopped.
  - One module run replaces a start request and a polled C(until) loop of M(ansible.builtin.uri), so the wait is
    not rounded up to a multiple of a two-second delay and costs one module start instead of one per poll.
  - A backup that ends C(failed) fails the module with the API's error text.
author:
  - ablage.ops maintainers (@ablage-system)
extends_documentation_fragment:
  - ablage.ops._attributes
  - ablage.ops._http
attributes:
  check_mode:
    support: full
    details:
      - Sends no request at all; reports RV(ignore:changed=true) (a backup would be taken) and RV(plan).
  diff_mode:
    support: none
  idempotent:
    support: none
    details:
      - Every run takes (or attaches to) a backup, so every run reports a change.
options:
  api_url:
    description:
      - Base URL of the backend, for example V(http://127.0.0.1:8000). O(start_path) and O(status_path) are appended.
    type: str
    required: true
  admin_token:
    description:
      - Bearer token of an admin user (from C(POST /api/v1/auth/login)).
    type: str
    required: true
  start_path:
    description:
      - Path that a C(POST) starts a full backup with (HTTP 202, or 409 while one runs).
    type: str
    default: /api/v1/backup/full
  status_path:
    description:
      - 'Path that answers C(GET ...?backup_id=ID) with the backup''s record (C({"status": "running|completed|failed", ...})).'
    type: str
    default: /api/v1/backup/status
  wait:
    description:
      - Wait until the backup completed (or failed). With V(false) the module returns right after the start request,
        with the record the API answered it with.
    type: bool
    default: true
  wait_timeout:
    description:
      - Seconds from the start request until the backup must have finished; a backup still running then fails the
        module (the backup itself goes on in the backend).
    type: float
    default: 600.0
  poll_interval:
    description:
      - Seconds between two status requests while the backup runs.
    type: float
    default: 0.5
notes:
  - The admin token is never logged.
  - O(timeout) bounds each request; O(wait_timeout) bounds the whole wait.
seealso:
  - module: ablage.ops.pg_backup
  - module: ablage.ops.maintenance_toggle
"""

EXAMPLES = r"""
- name: "Checklist 2. Backup erstellen (curl -X POST .../api/v1/backup/full), waited for"
  ablage.ops.api_backup:
    api_url: http://127.0.0.1:8000
    admin_token: "{{ ablage_admin_token }}"
    wait_timeout: 600
  register: __deploy_api_backup_status

- name: Show where the backup went
  ansible.builtin.debug:
    msg: "{{ __deploy_api_backup_status.backup.file }} sha256 {{ __deploy_api_backup_status.backup.sha256 }}"

- name: Only start the backup, over TLS with a private CA
  ablage.ops.api_backup:
    api_url: https://ablage.example.com
    admin_token: "{{ ablage_admin_token }}"
    ca_path: /etc/ssl/certs/ablage-ca.pem
    wait: false
"""

RETURN = r"""
backup:
  description:
    - The backup's record as the API reported it last (after the wait, the finished backup).
    - With O(wait=false), the record the start request answered with. Empty in check mode.
  returned: always
  type: dict
  sample:
    backup_id: full-20261127T104500Z-a1b2c3
    type: full
    status: completed
    file: /backups/ablage_full-20261127T104500Z-a1b2c3.dump
    size_bytes: 5515
    sha256: 0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0
    started_at: "2026-11-27T10:45:00Z"
    finished_at: "2026-11-27T10:45:02Z"
    requested_by: admin
    error: null
backup_id:
  description: ID of the backup started or attached to; V(null) in check mode.
  returned: always
  type: str
  sample: full-20261127T104500Z-a1b2c3
attached:
  description: Whether a backup was already running (HTTP 409) and the module waited for that one instead.
  returned: always
  type: bool
  sample: false
elapsed_s:
  description: Seconds from the start request until the backup finished (or the module gave up).
  returned: always
  type: float
  sample: 2.113
polls:
  description: Status requests sent.
  returned: always
  type: int
  sample: 5
plan:
  description: In check mode, what the module would do.
  returned: in check mode
  type: dict
  sample:
    start: http://127.0.0.1:8000/api/v1/backup/full
    status: http://127.0.0.1:8000/api/v1/backup/status
    wait: true
    wait_timeout: 600.0
"""

import time
import typing as t
import urllib.parse

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ablage.ops.plugins.module_utils._http import (
    HttpClient,
    HttpConnectionError,
    HttpResponse,
    admin_token_rejected,
    retry_until,
    tls_argument_spec,
)

FINISHED = ("completed", "failed")
KNOWN = ("running", "completed", "failed")


class BackupRunner:
    """Starts (or attaches to) the API's full backup and waits for it."""

    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.params = module.params
        self.client = HttpClient.from_params(
            self.params, base_url=self.params["api_url"], bearer_token=self.params["admin_token"]
        )
        self.started = time.monotonic()
        self.result: dict[str, t.Any] = {
            "changed": False,
            "backup": {},
            "backup_id": None,
            "attached": False,
            "elapsed_s": 0.0,
            "polls": 0,
        }

    def elapsed(self) -> float:
        return round(time.monotonic() - self.started, 3)

    def fail(self, msg: str, **kwargs: t.Any) -> t.NoReturn:
        self.result["elapsed_s"] = self.elapsed()
        self.module.fail_json(msg=msg, **self.result, **kwargs)
        raise AssertionError("unreachable")  # pragma: no cover - fail_json exits

    def fail_if_rejected(self, response: HttpResponse) -> None:
        rejected = admin_token_rejected(response)
        if rejected:
            self.fail(rejected, status=response.status)

    def record(self, response: HttpResponse) -> dict[str, t.Any]:
        """The backup record of a JSON answer, or fail naming what came instead."""
        is_json, body = response.json_or_none()
        if not is_json or not isinstance(body, dict) or not body.get("backup_id"):
            self.fail(
                f"{response.method} {response.url} answered {response.status} without a backup record "
                f"(no backup_id): {response.text[:300]!r}; check api_url, start_path and status_path",
                status=response.status,
            )
        return {key: value for key, value in body.items() if key != "detail"}

    def start(self) -> dict[str, t.Any]:
        try:
            response = self.client.post(self.params["start_path"])
        except HttpConnectionError as exc:
            self.fail(f"cannot reach the backup API: {exc}; {exc.hint} (api_url={self.params['api_url']!r})")
        self.fail_if_rejected(response)
        if response.status == 409:
            self.result["attached"] = True
        elif not response.ok:
            self.fail(f"POST {response.url} answered {response.status}: {response.text[:300]}", status=response.status)
        backup = self.record(response)
        self.result.update(changed=True, backup=backup, backup_id=str(backup["backup_id"]))
        return backup

    def wait_for(self, backup: dict[str, t.Any]) -> dict[str, t.Any]:
        """Poll the status of the backup until it finished; returns its last record."""
        query = urllib.parse.urlencode({"backup_id": self.result["backup_id"]})
        path = f"{self.params['status_path']}?{query}"
        request_timeout = self.params["timeout"]
        last: dict[str, t.Any] = {"backup": backup, "error": None}

        def attempt(number: int, seconds_left: float) -> tuple[dict[str, t.Any], bool]:
            self.result["polls"] = number
            try:
                response = self.client.get(path, timeout=min(request_timeout, seconds_left))
            except HttpConnectionError as exc:
                # The backend may be restarting; its answer decides once it is back (a cut-off backup is failed).
                last["error"] = f"{exc.reason} ({exc.hint})"
                return last, False
            self.fail_if_rejected(response)
            if response.status >= 500:
                last["error"] = f"HTTP {response.status}: {response.text[:200]}"
                return last, False
            if not response.ok:
                self.fail(
                    f"GET {response.url} answered {response.status}: {response.text[:300]}; the backend does not "
                    f"know backup {self.result['backup_id']!r} (restarted with its state lost?)",
                    status=response.status,
                )
            record = self.record(response)
            if record.get("status") not in KNOWN:
                self.fail(
                    f"GET {response.url} reported the unknown status {record.get('status')!r} for backup "
                    f"{self.result['backup_id']!r}; expected one of {', '.join(KNOWN)}",
                    backup=record,
                )
            last.update(backup=record, error=None)
            return last, record["status"] in FINISHED

        seconds_left = self.params["wait_timeout"] - (time.monotonic() - self.started)
        outcome = retry_until(attempt, 1_000_000_000, self.params["poll_interval"], max(seconds_left, 0.0))
        self.result["backup"] = last["backup"]
        if not outcome.ok:
            seen = last["error"] or f"status {last['backup'].get('status')!r}"
            self.fail(
                f"backup {self.result['backup_id']!r} did not finish within wait_timeout={self.params['wait_timeout']:g} s "
                f"(last answer: {seen}, after {self.result['polls']} status requests); the backup may still be "
                "running in the backend: raise wait_timeout (deploy_api_backup_timeout in the deploy role) or check "
                "the backend's log"
            )
        return dict(last["backup"])

    def run(self) -> None:
        params = self.params
        if self.module.check_mode:
            self.result.update(
                changed=True,
                plan={
                    "start": self.client.url_for(params["start_path"]),
                    "status": self.client.url_for(params["status_path"]),
                    "wait": params["wait"],
                    "wait_timeout": params["wait_timeout"],
                },
                msg="a full backup would be started through the API (check mode: nothing sent)",
            )
            self.module.exit_json(**self.result)
        if params["wait_timeout"] <= 0 or params["poll_interval"] < 0:
            self.fail("wait_timeout must be positive and poll_interval not negative")

        backup = self.start()
        how = "attached to the running backup" if self.result["attached"] else "started backup"
        if params["wait"] and backup.get("status") not in FINISHED:
            backup = self.wait_for(backup)
        self.result["backup"] = backup
        self.result["elapsed_s"] = self.elapsed()
        status = backup.get("status")
        if status == "failed":
            self.fail(
                f"{how} {self.result['backup_id']!r} failed: {backup.get('error') or 'the API gave no error text'}",
            )
        if status == "completed":
            self.result["msg"] = (
                f"{how} {self.result['backup_id']!r} completed in {self.result['elapsed_s']:g} s: "
                f"{backup.get('file')} ({backup.get('size_bytes')} bytes)"
            )
        else:
            self.result["msg"] = f"{how} {self.result['backup_id']!r} is {status} (not waited for)"
        self.module.exit_json(**self.result)


def main() -> None:
    argument_spec: dict[str, t.Any] = {
        "api_url": {"type": "str", "required": True},
        "admin_token": {"type": "str", "required": True, "no_log": True},
        "start_path": {"type": "str", "default": "/api/v1/backup/full"},
        "status_path": {"type": "str", "default": "/api/v1/backup/status"},
        "wait": {"type": "bool", "default": True},
        "wait_timeout": {"type": "float", "default": 600.0},
        "poll_interval": {"type": "float", "default": 0.5},
    }
    argument_spec.update(tls_argument_spec())
    module = AnsibleModule(
        argument_spec=argument_spec,
        required_by={"client_key": "client_cert"},
        supports_check_mode=True,
    )
    BackupRunner(module).run()


if __name__ == "__main__":
    main()
