#!/usr/bin/python
# Copyright (c) ablage.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: compose_services
short_description: Stop compose services in order, or start them all at once, without recreating or health gates
version_added: 0.3.0
description:
  - Two things M(community.docker.docker_compose_v2) cannot do inside a maintenance window, where every second is
    an outage.
  - V(stopped) only stops (C(docker compose stop)); Compose stops the services in reverse dependency order, each
    with its C(stop_grace_period), so a worker finishes its job before the backend it depends on goes. (The
    collection module's V(stopped) first runs C(up --no-start), which recreates the containers when the release
    pointer already moved, in dependency order, so the backend before the worker.)
  - V(started) creates (or recreates) the containers exactly as C(docker compose up --no-start) does, so Compose's
    record of each container's configuration stays the one a later C(docker compose up) compares against, then
    starts every container of O(services) that is not running, all in one C(docker start). Compose itself starts a
    service only after each dependency with the condition C(service_healthy) passed its healthcheck, so each level of
    the dependency graph waits out at least one healthcheck interval; when the dependencies already run, that is
    outage spent on nothing. Readiness is better told by the application itself, polled at a short interval with
    M(ablage.ops.health_probe).
  - Waits for nothing. A container that is not running right after its start fails the module (RV(containers)
    names it).
author:
  - ablage.ops maintainers (@ablage-system)
extends_documentation_fragment:
  - ablage.ops._attributes
attributes:
  check_mode:
    support: full
    details:
      - V(started) asks C(docker compose up --no-start --dry-run) which containers would be created or recreated.
        Nothing is started or stopped.
  diff_mode:
    support: none
  idempotent:
    support: full
options:
  project_src:
    description:
      - The compose project directory.
    type: path
    required: true
  services:
    description:
      - The services to start or stop.
    type: list
    elements: str
    required: true
  state:
    description:
      - V(started) creates what is missing or outdated and starts every container of O(services) at once.
      - V(stopped) stops the running containers of O(services) in reverse dependency order; nothing is created.
    type: str
    choices: [started, stopped]
    required: true
  dependencies:
    description:
      - With O(state=started), also create the services O(services) depend on (without it, C(--no-deps)), as in
        M(community.docker.docker_compose_v2). Only O(services) are started either way.
      - Compose keeps the dependencies in each container's configuration hash only for the services a command
        names; use the same O(services) and O(dependencies) as the project's other C(up) calls, or a later one
        recreates the containers.
    type: bool
    default: false
  docker_cli:
    description:
      - The Docker CLI with the Compose v2 plugin.
    type: str
    default: docker
notes:
  - Needs the Docker CLI with Compose v2 on the target host.
  - The images must be on the host already (pulled before); nothing is pulled or built.
seealso:
  - module: community.docker.docker_compose_v2
  - module: ablage.ops.health_probe
"""

EXAMPLES = r"""
- name: Stop the application, the worker before the backend
  ablage.ops.compose_services:
    project_src: /srv/ablage
    services: [backend, worker]
    state: stopped

- name: Start the release, infrastructure untouched when it runs
  ablage.ops.compose_services:
    project_src: /srv/ablage
    services: [postgres, redis, minio, backend, worker]
    state: started

- name: Wait until the application answers
  ablage.ops.health_probe:
    base_url: http://127.0.0.1:8000
    url: [/api/v1/health, /api/v1/health/complete]
    delay: 0.25
    total_timeout: 180
"""

RETURN = r"""
containers:
  description: Each container of O(services), after the module ran (in check mode, as it would be).
  returned: always
  type: list
  elements: dict
  contains:
    service:
      description: The compose service (empty for a container a check-mode run would create).
      type: str
      sample: backend
    name:
      description: The container's name.
      type: str
      sample: ablage-backend-1
    state_before:
      description: The container's state before it was started or stopped (V(created) for one just created).
      type: str
      sample: exited
    state:
      description: The container's state afterwards.
      type: str
      sample: running
    created:
      description: Whether Compose created or recreated the container (a new image or configuration).
      type: bool
      sample: true
changed_containers:
  description: Names of the containers this module started or stopped (in check mode, would have).
  returned: always
  type: list
  elements: str
  sample: [ablage-backend-1, ablage-worker-1]
"""

import json
import re

from ansible.module_utils.basic import AnsibleModule

# `docker compose up` reports each container it touches on stderr: "Container ablage-backend-1  Recreated".
# A dry run prefixes "DRY-RUN MODE - " and names a container it would recreate "<12 hex>_<name>".
_EVENT = re.compile(r"^\s*(?:DRY-RUN MODE -\s+)?Container\s+(?P<name>\S+)\s+(?P<event>\S+)\s*$")
_CREATED_EVENTS = frozenset({"Created", "Recreated"})
# What `docker compose ps` calls a container that does not run; "restarting" counts as running (it will).
_NOT_RUNNING = frozenset({"created", "exited", "dead", "paused", "removing"})


def created_names(stderr: str) -> set[str]:
    """Containers `docker compose up --no-start` created or recreated, from its progress lines."""
    names = set()
    for line in stderr.splitlines():
        match = _EVENT.match(line)
        if match and match.group("event") in _CREATED_EVENTS:
            names.add(re.sub(r"^[0-9a-f]{12}_", "", match.group("name")))
    return names


def parse_ps(out: str) -> list[dict[str, str]]:
    """`docker compose ps --format json`: one object per line (Compose >= 2.21) or one array (older)."""
    text = out.strip()
    if not text:
        return []
    if text.startswith("["):
        rows = json.loads(text)
    else:
        rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    return [
        {"service": str(row.get("Service", "")), "name": str(row.get("Name", "")), "state": str(row.get("State", ""))}
        for row in rows
    ]


class ComposeServices:
    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.params = module.params
        self.check = module.check_mode
        self.cli = module.get_bin_path(self.params["docker_cli"], required=True)

    def docker(self, *args: str, what: str) -> tuple[str, str]:
        rc, out, err = self.module.run_command([self.cli, *args], cwd=self.params["project_src"])
        if rc != 0:
            self.module.fail_json(
                msg=f"{what} failed in {self.params['project_src']}: {(err or out).strip()}",
                cmd=" ".join([self.cli, *args]),
            )
        return str(out), str(err)

    def compose(self, *args: str, what: str) -> tuple[str, str]:
        return self.docker("compose", "--project-directory", self.params["project_src"], *args, what=what)

    def containers(self) -> list[dict[str, str]]:
        out = self.compose("ps", "--all", "--format", "json", "--", *self.params["services"], what="compose ps")[0]
        wanted = set(self.params["services"])
        return [c for c in parse_ps(out) if c["service"] in wanted]

    def create(self) -> set[str]:
        up = ["up", "--no-start", "--no-color"]
        if not self.params["dependencies"]:
            up.append("--no-deps")
        if self.check:
            up.append("--dry-run")
        err = self.compose(*up, "--", *self.params["services"], what="docker compose up --no-start")[1]
        return created_names(err)

    def run(self) -> None:
        starting = self.params["state"] == "started"
        created = self.create() if starting else set()
        before = self.containers()
        if self.check and created:
            # The dry run created nothing: a container it would create is not listed yet.
            known = {c["name"] for c in before}
            before += [{"service": "", "name": n, "state": "created"} for n in sorted(created - known)]
        if starting:
            acting = [c["name"] for c in before if c["state"] in _NOT_RUNNING]
        else:
            acting = [c["name"] for c in before if c["state"] not in _NOT_RUNNING]
        after = {c["name"]: c["state"] for c in before}
        if acting and self.check:
            after.update(dict.fromkeys(acting, "running" if starting else "exited"))
        elif acting and starting:
            self.docker("start", *acting, what=f"docker start {' '.join(acting)}")
            after = {c["name"]: c["state"] for c in self.containers()}
        elif acting:
            # compose orders the stop (reverse dependencies) and gives each service its stop_grace_period.
            self.compose("stop", "--", *self.params["services"], what="docker compose stop")
            after = {c["name"]: c["state"] for c in self.containers()}
        result = [
            {
                "service": c["service"],
                "name": c["name"],
                "state_before": c["state"],
                "state": after.get(c["name"], ""),
                "created": c["name"] in created,
            }
            for c in before
        ]
        changed = bool(created or acting)
        wrong = [str(c["name"]) for c in result if (c["state"] in _NOT_RUNNING) == starting]
        if wrong:
            verb = "is not running right after its start" if starting else "still runs after the stop"
            self.module.fail_json(
                msg=f"{', '.join(wrong)} {verb}: read its log (docker logs {wrong[0]}) for why.",
                changed=changed,
                containers=result,
                changed_containers=acting,
            )
        self.module.exit_json(changed=changed, containers=result, changed_containers=acting)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "project_src": {"type": "path", "required": True},
            "services": {"type": "list", "elements": "str", "required": True},
            "state": {"type": "str", "choices": ["started", "stopped"], "required": True},
            "dependencies": {"type": "bool", "default": False},
            "docker_cli": {"type": "str", "default": "docker"},
        },
        supports_check_mode=True,
    )
    ComposeServices(module).run()


if __name__ == "__main__":
    main()
