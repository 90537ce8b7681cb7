#!/usr/bin/python
# Copyright (c) ablage.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: gpu_check
short_description: Check that the host's NVIDIA GPUs are present, the right model, and have memory to spare
version_added: 0.1.0
description:
  - Reads every NVIDIA GPU of the host through NVML (the C(pynvml) module of C(nvidia-ml-py)), the library
    C(nvidia-smi) is built on; no output parsing.
  - Checks the number of GPUs, their model name, the memory in use (as a percentage and in GB), the free memory,
    and the driver and CUDA versions. Optionally checks that a container sees the GPU, by running an image with a GPU
    device request (C(docker run --gpus all IMAGE nvidia-smi)) through the Docker API.
  - Returns everything it measured, also when a check fails; the failure message lists every failed check.
  - Implements the deployment checklist's "GPU Verfügbarkeit" item (RTX 4080 detected, GPU visible in a container)
    and its "GPU Memory < 85 % (13.6 GB of 16 GB)" item.
  - GB here means GiB (1024^3 bytes), the unit C(nvidia-smi) and C(GPU_MEMORY_LIMIT_GB) use.
author:
  - ablage.ops maintainers (@ablage-system)
requirements:
  - nvidia-ml-py (import name C(pynvml)) on the managed host, and the NVIDIA driver (C(libnvidia-ml.so.1)).
  - For O(container) only, the Docker SDK for Python (C(docker)), and a Docker engine with the NVIDIA Container
    Toolkit.
extends_documentation_fragment:
  - ablage.ops._attributes
attributes:
  check_mode:
    support: full
    details:
      - The module only reads, so it runs the same in check mode.
      - The O(container) check also runs in check mode; it creates a throw-away container and removes it again.
  diff_mode:
    support: N/A
    details:
      - This action does not modify state.
  idempotent:
    support: full
    details:
      - This action does not modify state; RV(ignore:changed) is always V(false).
options:
  required:
    description:
      - Whether a GPU must be present.
      - With V(false), a host without the NVIDIA driver, with the driver not loaded, or without any GPU is not an
        error; the module returns RV(gpu_present=false). The checks below still apply when a GPU is present.
      - Without C(pynvml) the module fails either way, since it cannot tell whether a GPU is present.
    type: bool
    default: true
  min_count:
    description:
      - Fewest GPUs the host must have.
    type: int
    default: 1
  device_indices:
    description:
      - NVML indices of the GPUs to check (model, memory). All GPUs when unset.
      - Every GPU is still returned in RV(devices).
    type: list
    elements: int
  expected_model:
    description:
      - Python regular expression the name of every checked GPU must contain (case does not matter), for example
        V(RTX 4080) (matches C(NVIDIA GeForce RTX 4080)).
    type: str
  max_memory_used_percent:
    description:
      - Highest share of a GPU's memory that may be in use, in percent. V(100) turns the check off.
    type: float
    default: 85.0
  max_memory_used_gb:
    description:
      - Highest memory in use per GPU, in GB (GiB). The checklist's C(GPU_MEMORY_LIMIT_GB=13.6).
    type: float
  min_memory_free_gb:
    description:
      - Least free memory per GPU, in GB (GiB), for example what the OCR worker will allocate.
    type: float
  min_driver_version:
    description:
      - Oldest acceptable NVIDIA driver version, for example V(535.104).
    type: str
  min_cuda_version:
    description:
      - Oldest CUDA version the driver must support, for example V(12.0).
    type: str
  container:
    description:
      - When set, also check that a container sees the GPU, by running O(container.image) with a request for all
        GPUs (like C(docker run --rm --gpus all IMAGE nvidia-smi)) and expecting exit code 0.
      - With the default command, the container must list at least one GPU.
    type: dict
    suboptions:
      image:
        description:
          - Image with C(nvidia-smi), for example V(nvidia/cuda:12.0.0-base-ubuntu22.04).
        type: str
        required: true
      command:
        description:
          - Command to run in the container.
        type: list
        elements: str
        default: [nvidia-smi, "--query-gpu=index,name,memory.total", "--format=csv,noheader"]
      docker_host:
        description:
          - Docker daemon to talk to. Defaults to the E(DOCKER_HOST) environment variable, else the local socket.
        type: str
        default: unix:///var/run/docker.sock
      timeout:
        description:
          - Seconds the container may run (and the Docker API may take to answer).
        type: float
        default: 120.0
      pull:
        description:
          - Pull the image before running it. Otherwise the image must be present.
        type: bool
        default: false
notes:
  - RV(ignore:changed) is always V(false).
seealso:
  - name: NVML API reference
    description: The NVIDIA Management Library the module reads.
    link: https://docs.nvidia.com/deploy/nvml-api/
"""

EXAMPLES = r"""
- name: "Checklist 4. GPU Verfügbarkeit: RTX 4080, < 85 % and < 13.6 GB in use, visible in a container"
  ablage.ops.gpu_check:
    expected_model: RTX 4080
    max_memory_used_percent: 85
    max_memory_used_gb: 13.6
    container:
      image: nvidia/cuda:12.0.0-base-ubuntu22.04
  register: __preflight_gpu

- name: Staging has no GPU; report it without failing
  ablage.ops.gpu_check:
    required: false
  register: __preflight_gpu

- name: Fail early when the driver is too old for the worker's CUDA build
  ablage.ops.gpu_check:
    min_driver_version: "535.0"
    min_cuda_version: "12.0"
"""

RETURN = r"""
gpu_present:
  description: Whether NVML works and found at least one GPU.
  returned: always
  type: bool
  sample: true
device_count:
  description: GPUs NVML found.
  returned: always
  type: int
  sample: 1
driver_version:
  description: NVIDIA driver version.
  returned: when NVML works
  type: str
  sample: "550.54.15"
cuda_version:
  description: Highest CUDA version the driver supports.
  returned: when NVML works
  type: str
  sample: "12.4"
devices:
  description: Every GPU with its memory.
  returned: always
  type: list
  elements: dict
  contains:
    index:
      description: NVML index.
      type: int
      sample: 0
    name:
      description: Model name.
      type: str
      sample: NVIDIA GeForce RTX 4080
    uuid:
      description: GPU UUID.
      type: str
      sample: GPU-5c3f0c1e-7f21-4a0e-9a3b-2a1f4c8d9e10
    memory_total_bytes:
      description: Total memory in bytes.
      type: int
      sample: 17171480576
    memory_used_bytes:
      description: Memory in use in bytes.
      type: int
      sample: 1073741824
    memory_free_bytes:
      description: Free memory in bytes.
      type: int
      sample: 16097738752
    memory_total_gb:
      description: Total memory in GB (GiB), two decimals.
      type: float
      sample: 15.99
    memory_used_gb:
      description: Memory in use in GB (GiB).
      type: float
      sample: 1.0
    memory_free_gb:
      description: Free memory in GB (GiB).
      type: float
      sample: 14.99
    memory_used_percent:
      description: Memory in use in percent of the total.
      type: float
      sample: 6.3
    error:
      description: Why the GPU could not be read completely.
      type: str
      returned: when a reading failed
checks:
  description: Every check made, in order.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: What was checked, with the GPU index where it applies (C(memory_used_percent[0])).
      type: str
      sample: model[0]
    ok:
      description: Whether it passed.
      type: bool
      sample: true
    detail:
      description: Measured value against the limit.
      type: str
      sample: "'NVIDIA GeForce RTX 4080' matches 'RTX 4080'"
failed_checks:
  description: The C(detail) of every failed check, prefixed with its name.
  returned: always
  type: list
  elements: str
  sample: ["memory_used_percent[0]: 91.2 % in use, limit 85 %"]
container:
  description: What the container check saw.
  returned: when O(container) is set and a GPU is present
  type: dict
  contains:
    image:
      description: The image run.
      type: str
      sample: nvidia/cuda:12.0.0-base-ubuntu22.04
    command:
      description: The command run.
      type: list
      elements: str
      sample: [nvidia-smi, "--query-gpu=index,name,memory.total", "--format=csv,noheader"]
    exit_code:
      description: The container's exit code; V(null) when it could not run.
      type: int
      sample: 0
    output:
      description: Its output (stdout and stderr, first 4 KiB).
      type: str
      sample: "0, NVIDIA GeForce RTX 4080, 16376 MiB"
    gpus_seen:
      description: GPUs listed in the output (with the default command), else V(null).
      type: int
      sample: 1
    error:
      description: Why the container could not run.
      type: str
      returned: when it could not run
nvml_error:
  description: Name of the NVML error when NVML could not start (C(NVMLError_LibraryNotFound), ...).
  returned: when NVML could not start
  type: str
  sample: NVMLError_LibraryNotFound
errors:
  description: Readings that failed after NVML started; the rest is still returned.
  returned: always
  type: list
  elements: str
  sample: []
"""

import re
import traceback
import typing as t

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible.module_utils.common.parameters import env_fallback

from ansible_collections.ablage.ops.plugins.module_utils import _docker, _nvml

DEFAULT_CONTAINER_COMMAND = ["nvidia-smi", "--query-gpu=index,name,memory.total", "--format=csv,noheader"]


def _version_tuple(version: str) -> tuple[int, ...]:
    parts = re.findall(r"\d+", version)
    return tuple(int(p) for p in parts)


class GpuChecker:
    """Reads the GPUs once, then judges each reading against the limits."""

    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.params = module.params
        self.checks: list[dict[str, t.Any]] = []
        self.result: dict[str, t.Any] = {
            "changed": False,
            "gpu_present": False,
            "device_count": 0,
            "devices": [],
            "checks": self.checks,
            "failed_checks": [],
            "errors": [],
        }

    def check(self, name: str, ok: bool, detail: str) -> None:
        self.checks.append({"name": name, "ok": bool(ok), "detail": detail})

    def validate(self) -> None:
        percent = self.params["max_memory_used_percent"]
        if not 0 < percent <= 100:
            self.module.fail_json(msg=f"max_memory_used_percent must be in (0, 100], got {percent:g}")
        if self.params["expected_model"] is not None:
            try:
                re.compile(self.params["expected_model"])
            except re.error as exc:
                self.module.fail_json(msg=f"expected_model is not a valid regular expression: {exc}")
        for key in ("min_driver_version", "min_cuda_version"):
            if self.params[key] is not None and not _version_tuple(self.params[key]):
                self.module.fail_json(msg=f"{key} must be a version such as 535.104, got {self.params[key]!r}")

    def no_gpu(self, reason: str) -> t.NoReturn:
        """Exit without a GPU: fine with required=false, a failure otherwise."""
        if self.params["required"]:
            self.module.fail_json(
                msg=f"no usable GPU: {reason}; or set required=false on hosts that have no GPU", **self.result
            )
        self.result["msg"] = f"no GPU on this host (required=false): {reason}"
        self.module.exit_json(**self.result)
        raise AssertionError("unreachable")  # pragma: no cover - exit_json exits

    def read(self) -> None:
        if not _nvml.HAS_PYNVML:
            self.module.fail_json(
                msg=missing_required_lib("nvidia-ml-py (import name pynvml)")
                + " Install it with pip into the Python that runs the module (ansible_python_interpreter).",
                exception=_nvml.PYNVML_IMPORT_ERROR,
                **self.result,
            )
        try:
            snapshot = _nvml.read_gpus()
        except _nvml.NvmlUnavailable as exc:
            self.result["nvml_error"] = exc.error_name
            if exc.no_gpu:
                self.no_gpu(exc.message)
            self.module.fail_json(msg=exc.message, exception=traceback.format_exc(), **self.result)
        self.result.update(snapshot)
        self.result["gpu_present"] = snapshot["device_count"] > 0
        if snapshot["device_count"] == 0:
            if snapshot["errors"]:
                self.module.fail_json(msg="NVML started but " + "; ".join(snapshot["errors"]), **self.result)
            self.no_gpu("NVML works, but found no GPU; check nvidia-smi and that the GPU is seated and powered")

    def judge_devices(self) -> None:
        params = self.params
        count = self.result["device_count"]
        self.check("device_count", count >= params["min_count"], f"{count} GPU(s), at least {params['min_count']}")
        devices = self.result["devices"]
        if params["device_indices"] is not None:
            wanted = params["device_indices"]
            for index in wanted:
                if not 0 <= index < count:
                    self.check(f"device[{index}]", False, f"no GPU with index {index} (found {count})")
            devices = [d for d in devices if d["index"] in wanted]
        pattern = re.compile(params["expected_model"], re.IGNORECASE) if params["expected_model"] else None
        for dev in devices:
            i = dev["index"]
            if pattern is not None:
                name = dev["name"] or ""
                matched = pattern.search(name) is not None
                verb = "matches" if matched else "does not match"
                self.check(f"model[{i}]", matched, f"{name!r} {verb} {params['expected_model']!r}")
            if "error" in dev:
                self.check(f"readable[{i}]", False, dev["error"])
                continue
            percent = dev["memory_used_percent"]
            limit = params["max_memory_used_percent"]
            self.check(
                f"memory_used_percent[{i}]",
                percent is not None and percent <= limit,
                f"{percent} % in use, limit {limit:g} %",
            )
            if params["max_memory_used_gb"] is not None:
                limit_gb = params["max_memory_used_gb"]
                used_gb = dev["memory_used_bytes"] / _nvml.GIB
                self.check(
                    f"memory_used_gb[{i}]",
                    used_gb <= limit_gb,
                    f"{dev['memory_used_gb']} GB in use, limit {limit_gb:g} GB",
                )
            if params["min_memory_free_gb"] is not None:
                need_gb = params["min_memory_free_gb"]
                free_gb = dev["memory_free_bytes"] / _nvml.GIB
                self.check(
                    f"memory_free_gb[{i}]",
                    free_gb >= need_gb,
                    f"{dev['memory_free_gb']} GB free, need {need_gb:g} GB",
                )

    def judge_versions(self) -> None:
        for key, label in (("min_driver_version", "driver_version"), ("min_cuda_version", "cuda_version")):
            wanted = self.params[key]
            if wanted is None:
                continue
            have = self.result.get(label)
            ok = have is not None and _version_tuple(have) >= _version_tuple(wanted)
            self.check(label, ok, f"{label.replace('_', ' ')} {have}, at least {wanted}")

    def judge_container(self) -> None:
        spec = self.params["container"]
        if spec is None:
            return
        if not _docker.HAS_DOCKER:
            self.module.fail_json(
                msg=missing_required_lib("docker (the Docker SDK for Python)")
                + " It is needed for the container check.",
                exception=_docker.DOCKER_IMPORT_ERROR,
                **self.result,
            )
        command = list(spec["command"])
        evidence: dict[str, t.Any] = {"image": spec["image"], "command": command, "exit_code": None, "output": ""}
        try:
            evidence.update(
                _docker.run_gpu_container(
                    spec["image"], command, docker_host=spec["docker_host"], timeout=spec["timeout"], pull=spec["pull"]
                )
            )
        except _docker.DockerGpuError as exc:
            evidence["error"] = str(exc)
        default_command = command == DEFAULT_CONTAINER_COMMAND
        evidence["gpus_seen"] = _docker.count_csv_lines(evidence["output"]) if default_command else None
        self.result["container"] = evidence
        if "error" in evidence:
            self.check("container", False, evidence["error"])
        elif evidence["exit_code"] != 0:
            self.check(
                "container",
                False,
                f"{spec['image']} exited with {evidence['exit_code']}: {evidence['output'].strip()[:300]}",
            )
        elif default_command and not evidence["gpus_seen"]:
            self.check("container", False, f"{spec['image']} ran, but nvidia-smi listed no GPU")
        else:
            seen = f"{evidence['gpus_seen']} GPU(s)" if default_command else "exit code 0"
            self.check("container", True, f"{spec['image']} sees the GPU: {seen}")

    def run(self) -> None:
        self.validate()
        self.read()
        self.judge_devices()
        self.judge_versions()
        self.judge_container()
        failed = [f"{c['name']}: {c['detail']}" for c in self.checks if not c["ok"]]
        self.result["failed_checks"] = failed
        if failed:
            self.module.fail_json(msg=f"GPU check failed ({len(failed)}): " + "; ".join(failed), **self.result)
        names = ", ".join(sorted({d["name"] or "?" for d in self.result["devices"]}))
        self.result["msg"] = f"{self.result['device_count']} GPU(s) OK: {names}"
        self.module.exit_json(**self.result)


def main() -> None:
    argument_spec: dict[str, t.Any] = {
        "required": {"type": "bool", "default": True},
        "min_count": {"type": "int", "default": 1},
        "device_indices": {"type": "list", "elements": "int"},
        "expected_model": {"type": "str"},
        "max_memory_used_percent": {"type": "float", "default": 85.0},
        "max_memory_used_gb": {"type": "float"},
        "min_memory_free_gb": {"type": "float"},
        "min_driver_version": {"type": "str"},
        "min_cuda_version": {"type": "str"},
        "container": {
            "type": "dict",
            "options": {
                "image": {"type": "str", "required": True},
                "command": {"type": "list", "elements": "str", "default": list(DEFAULT_CONTAINER_COMMAND)},
                "docker_host": {
                    "type": "str",
                    "default": _docker.DEFAULT_DOCKER_HOST,
                    "fallback": (env_fallback, ["DOCKER_HOST"]),
                },
                "timeout": {"type": "float", "default": 120.0},
                "pull": {"type": "bool", "default": False},
            },
        },
    }
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    GpuChecker(module).run()


if __name__ == "__main__":
    main()
