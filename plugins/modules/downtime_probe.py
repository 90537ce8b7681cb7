#!/usr/bin/python
# Copyright (c) ablage.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: downtime_probe
short_description: Measure the downtime users see during a deploy, outside the maintenance logic
version_added: 0.1.0
description:
  - O(state=started) starts a detached poller on the target host that requests O(url) every O(interval) seconds and
    appends one sample per request to C(downtime-<name>.jsonl) in O(state_dir).
  - O(state=stopped) stops the poller and returns the outage ranges (from the first failed request to the next
    successful one) and the total downtime in seconds, next to the maintenance window when O(maintenance_on) and
    O(maintenance_off) are given.
  - A request counts as served when it answers one of O(status_code); any other status, a timeout or a refused
    connection counts as down. Redirects are not followed.
  - The poller ends by itself after O(max_duration) seconds, so a run that dies never leaves it behind for long.
  - With O(follow_lock=true) it also ends with the deploy it measures, when that deploy was killed too - once the
    deploy lock in O(state_dir) was taken, the poller stops when the lock is released or taken over by another run
    (the recovery of a killed deploy breaks it), and when no lock appears within O(lock_grace) seconds.
author:
  - ablage.ops maintainers (@ablage-system)
extends_documentation_fragment:
  - ablage.ops._attributes
attributes:
  check_mode:
    support: full
    details:
      - In check mode nothing is started or stopped; O(state=stopped) reports the samples recorded so far.
  diff_mode:
    support: none
  idempotent:
    support: full
    details:
      - Starting a running poller or stopping a stopped one changes nothing.
options:
  state:
    description:
      - V(started) starts the poller (a new samples file); V(stopped) stops it and returns the summary.
    type: str
    choices: [started, stopped]
    required: true
  state_dir:
    description:
      - Directory on the target host for the pid file and the samples (the deploy state directory).
      - Created with mode 0700 when missing.
    type: path
    required: true
  name:
    description:
      - Name of this probe; its files are C(downtime-<name>.pid) and C(downtime-<name>.jsonl).
    type: str
    default: deploy
  url:
    description:
      - The URL to request, a public endpoint a user calls (not an admin route, which maintenance mode lets through).
      - Required with O(state=started).
    type: str
  headers:
    description:
      - Request headers, for example a normal user's C(Authorization). Kept in the poller's memory only.
    type: dict
    default: {}
  status_code:
    description:
      - Statuses that mean "served".
    type: list
    elements: int
    default: [200]
  interval:
    description:
      - Seconds from the start of one request to the start of the next.
    type: float
    default: 0.5
  timeout:
    description:
      - Seconds one request may take before it counts as down.
    type: float
    default: 2
  max_duration:
    description:
      - Seconds after which the poller stops by itself.
    type: int
    default: 7200
  follow_lock:
    description:
      - Stop with the deploy whose lock (C(deploy.lock) in O(state_dir)) appears after the start.
    type: bool
    default: false
  lock_grace:
    description:
      - With O(follow_lock=true), seconds to wait for the lock to appear before the poller stops.
    type: int
    default: 300
  validate_certs:
    description:
      - Verify the TLS certificate of an V(https) O(url).
    type: bool
    default: true
  maintenance_on:
    description:
      - With O(state=stopped), when maintenance mode went on (ISO 8601), to show the window beside the downtime.
    type: str
  maintenance_off:
    description:
      - With O(state=stopped), when maintenance mode went off (ISO 8601).
    type: str
notes:
  - The poller is a daemon (double fork, own session) of the module's own Python; the headers never touch the disk.
  - One poller per O(name) and O(state_dir). O(state=started) while one runs (another run's, or one left by a run that
    was killed) reports no change and starts nothing, so a caller should stop only a poller its own start changed;
    a left-over poller ends after O(max_duration).
seealso:
  - module: ablage.ops.maintenance_toggle
"""

EXAMPLES = r"""
- name: Start watching what users see before maintenance goes on
  ablage.ops.downtime_probe:
    state: started
    state_dir: /var/lib/ablage-deploy
    url: https://ablage.example/api/v1/documents/00000000-0000-0000-0000-000000000000
    headers:
      Authorization: "Bearer {{ ablage_user_token }}"
    status_code: [200, 404]
  no_log: true

- name: Stop it at the end and get the downtime
  ablage.ops.downtime_probe:
    state: stopped
    state_dir: /var/lib/ablage-deploy
    maintenance_on: "2026-01-27T10:15:00Z"
    maintenance_off: "2026-01-27T10:16:02Z"
  register: downtime
"""

RETURN = r"""
running:
  description: Whether the poller runs after the task.
  returned: always
  type: bool
  sample: false
pid:
  description: Process id of the poller (started, or the one that was stopped).
  returned: when a poller was found or started
  type: int
  sample: 41234
samples_file:
  description: The samples file on the target host.
  returned: always
  type: str
  sample: /var/lib/ablage-deploy/downtime-deploy.jsonl
summary:
  description: The downtime users saw; empty with O(state=started).
  returned: always
  type: dict
  contains:
    samples:
      description: Requests made.
      type: int
    failed_samples:
      description: Requests that were not served.
      type: int
    observed_from:
      description: First request (UTC).
      type: str
    observed_to:
      description: Last request (UTC).
      type: str
    observed_s:
      description: Seconds between the first and the last request.
      type: float
    downtime_s:
      description: Total seconds of the outage ranges.
      type: float
    outages:
      description:
        - Each outage, with C(start), C(end), C(duration_s), C(failed_samples), C(reasons) (status or error, with counts)
          and C(open) (still down at the last request).
      type: list
      elements: dict
    availability_percent:
      description: Share of the observed time that was served.
      type: float
    max_latency_ms:
      description: Slowest request.
      type: float
    maintenance_window:
      description: O(maintenance_on), O(maintenance_off) and the seconds between them.
      type: dict
      returned: when both were given
  sample:
    samples: 120
    failed_samples: 31
    downtime_s: 15.62
    outages: [{start: "2026-01-27T10:15:00.212Z", end: "2026-01-27T10:15:15.832Z", duration_s: 15.62, failed_samples: 31,
               reasons: {"status 503": 20, "ConnectionRefusedError: [Errno 111] Connection refused": 11}, open: false}]
    maintenance_window: {"on": "2026-01-27T10:15:00Z", "off": "2026-01-27T10:15:15Z", duration_s: 15.0}
"""

import json
import os
import time
import typing as t

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ablage.ops.plugins.module_utils import _downtime, _process


class DowntimeProbe:
    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.params = module.params
        name = self.params["name"]
        self.pid_file = os.path.join(self.params["state_dir"], f"downtime-{name}.pid")
        self.samples_file = os.path.join(self.params["state_dir"], f"downtime-{name}.jsonl")
        self.result: dict[str, t.Any] = {
            "changed": False,
            "running": False,
            "samples_file": self.samples_file,
            "summary": {},
        }

    def read_pid(self) -> int | None:
        if not os.path.exists(self.pid_file):
            return None
        with open(self.pid_file, encoding="utf-8") as handle:
            try:
                return int(json.load(handle)["pid"])
            except (ValueError, KeyError, TypeError):
                return None

    def start(self) -> None:
        pid = self.read_pid()
        if pid is not None and _process.pid_alive(pid):
            self.result.update(running=True, pid=pid)
            return
        self.result["changed"] = True
        if self.module.check_mode:
            return
        state_dir = self.params["state_dir"]
        if not os.path.isdir(state_dir):
            os.makedirs(state_dir, mode=0o700)
        if os.path.exists(self.samples_file):
            os.unlink(self.samples_file)
        params = self.params
        headers = {str(k): str(v) for k, v in (params["headers"] or {}).items()}
        watch = None
        if params["follow_lock"]:
            # Created before the fork: a lock already held now belongs to the deploy being measured.
            watch = _downtime.LockWatch(os.path.join(state_dir, "deploy.lock"), float(params["lock_grace"]))

        def run() -> None:
            _downtime.poll_loop(
                self.samples_file,
                params["url"],
                headers,
                float(params["timeout"]),
                list(params["status_code"]),
                float(params["interval"]),
                float(params["max_duration"]),
                bool(params["validate_certs"]),
                watch,
            )

        pid = _downtime.detach(run)
        fd = os.open(self.pid_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump({"pid": pid, "url": params["url"], "started_at": _downtime.iso(time.time())}, handle)
        self.result.update(running=_process.pid_alive(pid), pid=pid)

    def stop(self) -> None:
        pid = self.read_pid()
        running = pid is not None and _process.pid_alive(pid)
        if pid is not None:
            self.result["pid"] = pid
        if running and not self.module.check_mode:
            _downtime.stop_process(t.cast(int, pid), float(self.params["timeout"]) + float(self.params["interval"]) + 5)
        if pid is not None and not self.module.check_mode:
            os.unlink(self.pid_file)
        self.result["changed"] = running
        self.result["running"] = running and self.module.check_mode
        window = None
        if self.params["maintenance_on"] and self.params["maintenance_off"]:
            window = {"on": self.params["maintenance_on"], "off": self.params["maintenance_off"]}
        samples = _downtime.read_samples(self.samples_file)
        self.result["summary"] = _downtime.summarize(samples, window)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "state": {"type": "str", "choices": ["started", "stopped"], "required": True},
            "state_dir": {"type": "path", "required": True},
            "name": {"type": "str", "default": "deploy"},
            "url": {"type": "str"},
            "headers": {"type": "dict", "default": {}, "no_log": True},
            "status_code": {"type": "list", "elements": "int", "default": [200]},
            "interval": {"type": "float", "default": 0.5},
            "timeout": {"type": "float", "default": 2},
            "max_duration": {"type": "int", "default": 7200},
            "follow_lock": {"type": "bool", "default": False},
            "lock_grace": {"type": "int", "default": 300},
            "validate_certs": {"type": "bool", "default": True},
            "maintenance_on": {"type": "str"},
            "maintenance_off": {"type": "str"},
        },
        required_if=[("state", "started", ("url",))],
        supports_check_mode=True,
    )
    probe = DowntimeProbe(module)
    if module.params["state"] == "started":
        probe.start()
    else:
        probe.stop()
    module.exit_json(**probe.result)


if __name__ == "__main__":
    main()
