#!/usr/bin/python
# Copyright (c) ablage.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: compose_release
short_description: Read or point the release of a docker compose project, and resolve its images
version_added: 0.2.0
description:
  - The release a compose project runs is one variable in the project's C(.env) (O(variable), C(ABLAGE_VERSION) for
    Ablage-System). This module reads it, points it at O(version) with O(state=present), and resolves the images the
    app services (O(services)) run at that version with C(docker compose config), so any image naming works.
  - With O(check_registry=true) it asks the registry of every resolved image whether the image exists, through
    C(docker manifest inspect) with the host's Docker credentials (HTTPS, authenticated registries, OCI image indexes;
    plain HTTP only for registries the engine itself treats as insecure).
  - The version must be a Docker tag; anything else (empty, a newline, C(;)) fails before any file is read.
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
      - The diff is the version line of the env file before and after; no other line is shown.
  idempotent:
    support: full
options:
  project_dir:
    description:
      - The compose project directory (holds the compose file and the env file).
    type: path
    required: true
  env_file:
    description:
      - The env file compose reads the version from, relative to O(project_dir).
    type: str
    default: .env
  variable:
    description:
      - The name of the version variable in O(env_file) that the compose file reads for the app images.
    type: str
    default: ABLAGE_VERSION
  version:
    description:
      - The release to resolve the images for; with O(state=present), the release the env file is pointed at.
      - Default the version the env file holds now.
    type: str
  state:
    description:
      - V(query) changes nothing; V(present) sets O(variable) to O(version) in the env file (every other line is kept,
        the file keeps its mode and owner).
    type: str
    choices: [query, present]
    default: query
  services:
    description:
      - The app services whose image follows the release. Each must exist in the project and have an C(image).
    type: list
    elements: str
    default: []
  check_registry:
    description:
      - Ask each image's registry whether the image of O(version) exists (C(docker manifest inspect)).
    type: bool
    default: false
  running:
    description:
      - Also read the app services' running containers (C(docker compose ps)) and their image IDs, and tell in
        RV(up_to_date) whether every app service already runs the registry's image of O(version). The registry is
        asked for that only when the env file already points at O(version).
    type: bool
    default: false
  docker_cli:
    description:
      - The Docker CLI with the Compose v2 plugin.
    type: str
    default: docker
notes:
  - Needs the Docker CLI with Compose v2 on the target host; C(docker compose config) also validates the project.
seealso:
  - module: community.docker.docker_compose_v2
  - module: community.docker.docker_image_pull
"""

EXAMPLES = r"""
- name: Which release runs, and which images would 1.1.0 use?
  ablage.ops.compose_release:
    project_dir: /srv/ablage
    version: 1.1.0
    services: [backend, worker]
    check_registry: true
  register: release

- name: Point the project at 1.1.0 (another application reads OCRDESK_RELEASE)
  ablage.ops.compose_release:
    project_dir: /srv/ocrdesk
    variable: OCRDESK_RELEASE
    version: 1.1.0
    state: present
"""

RETURN = r"""
current_version:
  description: The version the env file held before the module ran; V(null) when it has no such variable.
  returned: always
  type: str
  sample: 1.0.0
version:
  description: The version the images were resolved for.
  returned: always
  type: str
  sample: 1.1.0
images:
  description: Each app service's image at RV(version), as C(docker compose config) resolves it.
  returned: always
  type: dict
  sample: {"backend": "127.0.0.1:5000/ablage/backend:1.1.0", "worker": "127.0.0.1:5000/ablage/worker:1.1.0"}
current_images:
  description: Each app service's image at RV(current_version) (what runs now, unless the project was changed by hand).
  returned: when the env file holds a version
  type: dict
static_services:
  description: App services whose image is the same at both versions (they do not read O(variable)).
  returned: when both versions are known and differ
  type: list
  elements: str
running:
  description: Per app service, its container's state and image ID (C(sha256:...)); no entry when it has no container.
  returned: when O(running=true)
  type: dict
  sample: {"backend": {"state": "running", "image_id": "sha256:98f4...", "container": "3c1f..."}}
up_to_date:
  description: Every app service runs the registry's image of O(version) and the env file points at it.
  returned: when O(running=true)
  type: bool
up_to_date_reason:
  description: Why RV(up_to_date) is what it is, in one sentence.
  returned: when O(running=true)
  type: str
  sample: backend runs sha256:98f40e5a3f95, the registry's 127.0.0.1:5000/ablage/backend:1.1.0 is sha256:c50d96edcdc2
registry:
  description: Per image, whether its registry has it, and what it has (media type, config digest or index platforms).
  returned: when O(check_registry=true)
  type: dict
  sample: {"127.0.0.1:5000/ablage/backend:1.1.0": {"exists": true, "manifest": "manifest ..., config sha256:..."}}
"""

import json
import os
import typing as t

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ablage.ops.plugins.module_utils._release import (
    ReleaseError,
    config_digest,
    follows_version,
    images_of,
    insecure_registries,
    is_insecure,
    manifest_summary,
    read_variable,
    registry_of,
    set_variable,
    up_to_date,
    variable_problem,
    version_problem,
)


class ComposeRelease:
    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.params = module.params
        self.env_path = os.path.join(self.params["project_dir"], self.params["env_file"])
        self.result: dict[str, t.Any] = {"changed": False}

    def run(self) -> None:
        problem = variable_problem(self.params["variable"])
        if self.params["version"] is not None:
            problem = problem or version_problem(self.params["version"])
        if self.params["state"] == "present" and self.params["version"] is None:
            problem = problem or "state=present needs the version to point the project at"
        if problem:
            self.module.fail_json(msg=problem, **self.result)
        text = self.read_env()
        try:
            current = read_variable(text, self.params["variable"])
        except ReleaseError as exc:
            self.module.fail_json(msg=f"{self.env_path}: {exc}", **self.result)
        version = self.params["version"] or current
        self.result.update(current_version=current, version=version)
        if version is None:
            self.module.fail_json(
                msg=f"{self.env_path} has no {self.params['variable']}= line with a value of its own (not one from "
                "the environment): the compose project does not say which release it runs. Set "
                "ablage_version_variable to the variable the compose file reads for the app images, or add the line "
                "(playbooks/setup.yml writes it).",
                **self.result,
            )
        self.result["images"] = self.resolve(version)
        if current is not None:
            self.result["current_images"] = self.result["images"] if current == version else self.resolve(current)
            if current != version and self.params["services"]:
                self.result["static_services"] = follows_version(self.result["images"], self.result["current_images"])
        if self.params["check_registry"]:
            self.result["registry"] = self.check_registry(sorted(set(self.result["images"].values())))
        if self.params["running"]:
            self.result["running"] = self.running()
            # The registry is asked only when its answer decides: the project already points at the version.
            registry = self.result.get("registry")
            if registry is None and current == version:
                registry = self.check_registry(sorted(set(self.result["images"].values())))
            self.result["up_to_date"], self.result["up_to_date_reason"] = up_to_date(
                current, version, self.result["images"], self.result["running"], registry or {}
            )
        if self.params["state"] == "present":
            self.point(text, current, version)
        self.module.exit_json(**self.result)

    def read_env(self) -> str:
        if not os.path.isdir(self.params["project_dir"]):
            self.module.fail_json(msg=f"the compose project directory {self.params['project_dir']} does not exist")
        try:
            with open(self.env_path, encoding="utf-8") as handle:
                return handle.read()
        except FileNotFoundError:
            return ""

    def docker(self, args: list[str], env: dict[str, str] | None = None) -> tuple[int, str, str]:
        cli = self.module.get_bin_path(self.params["docker_cli"], required=True)
        rc, out, err = self.module.run_command([cli, *args], cwd=self.params["project_dir"], environ_update=env)
        return rc, out, err

    def resolve(self, version: str) -> dict[str, str]:
        rc, out, err = self.docker(
            ["compose", "--project-directory", self.params["project_dir"], "config", "--format", "json"],
            env={self.params["variable"]: version},
        )
        if rc != 0:
            self.module.fail_json(
                msg=f"docker compose config failed in {self.params['project_dir']} for {self.params['variable']}="
                f"{version}: {err.strip() or out.strip()}. The compose project is not valid; fix the compose file "
                "or its env files.",
                **self.result,
            )
        try:
            return images_of(json.loads(out), self.params["services"])
        except (ValueError, ReleaseError) as exc:
            self.module.fail_json(msg=str(exc), **self.result)
        raise AssertionError("unreachable")

    def check_registry(self, images: list[str]) -> dict[str, dict[str, t.Any]]:
        rc, out, err = self.docker(["info", "--format", "{{json .RegistryConfig}}"])
        insecure = insecure_registries(json.loads(out)) if rc == 0 and out.strip().startswith("{") else set()
        found = {}
        for image in images:
            args = ["manifest", "inspect"]
            if is_insecure(registry_of(image), insecure):
                args.append("--insecure")
            rc, out, err = self.docker([*args, image])
            if rc == 0:
                found[image] = {"exists": True, "manifest": manifest_summary(out), "config_digest": config_digest(out)}
            else:
                found[image] = {"exists": False, "error": (err.strip() or out.strip())[:300]}
        return found

    def running(self) -> dict[str, dict[str, t.Any]]:
        services = self.params["services"]
        rc, out, err = self.docker(
            ["compose", "--project-directory", self.params["project_dir"], "ps", "--all", "-q", *services]
        )
        ids = out.split() if rc == 0 else []
        if not ids:
            return {}
        rc, out, err = self.docker(["inspect", *ids])
        if rc != 0:
            self.module.fail_json(msg=f"docker inspect of the app containers failed: {err.strip()}", **self.result)
        found: dict[str, dict[str, t.Any]] = {}
        for container in json.loads(out):
            labels = (container.get("Config") or {}).get("Labels") or {}
            service = str(labels.get("com.docker.compose.service", ""))
            if service in services and labels.get("com.docker.compose.oneoff") != "True":
                found[service] = {
                    "state": (container.get("State") or {}).get("Status"),
                    "image_id": container.get("Image"),
                    "container": str(container.get("Id", ""))[:12],
                }
        return found

    def point(self, text: str, current: str | None, version: str) -> None:
        if current == version:
            return
        self.result["changed"] = True
        variable = self.params["variable"]
        if self.module._diff:
            self.result["diff"] = {
                "before": f"{variable}={current}\n" if current is not None else "",
                "after": f"{variable}={version}\n",
                "before_header": self.env_path,
                "after_header": self.env_path,
            }
        if self.module.check_mode:
            return
        new_text = set_variable(text, variable, version)
        tmp = f"{self.env_path}.ablage-tmp"
        mode = os.stat(self.env_path).st_mode & 0o7777 if os.path.exists(self.env_path) else 0o644
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(new_text)
        self.module.atomic_move(tmp, self.env_path)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "project_dir": {"type": "path", "required": True},
            "env_file": {"type": "str", "default": ".env"},
            "variable": {"type": "str", "default": "ABLAGE_VERSION"},
            "version": {"type": "str"},
            "state": {"type": "str", "choices": ["query", "present"], "default": "query"},
            "services": {"type": "list", "elements": "str", "default": []},
            "check_registry": {"type": "bool", "default": False},
            "running": {"type": "bool", "default": False},
            "docker_cli": {"type": "str", "default": "docker"},
        },
        supports_check_mode=True,
    )
    ComposeRelease(module).run()


if __name__ == "__main__":
    main()
