# Copyright (c) ablage.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Docker Engine API access through the docker SDK (docker-py).

PRIVATE: this file is an implementation detail of the ablage.ops collection.
It is not a public API and may change or disappear in any release.

Only what the modules need that community.docker has no module for: running a
throw-away container with a GPU device request (``docker run --gpus all``) and
reading its output. The SDK is optional: HAS_DOCKER / DOCKER_IMPORT_ERROR.
"""

from __future__ import annotations

import traceback
import typing as t

DOCKER_IMPORT_ERROR: str | None
try:
    import docker
    import requests.exceptions
    from docker.errors import DockerException, ImageNotFound
    from docker.types import DeviceRequest
except ImportError:
    docker = None
    HAS_DOCKER = False
    DOCKER_IMPORT_ERROR = traceback.format_exc()
else:
    HAS_DOCKER = True
    DOCKER_IMPORT_ERROR = None

DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"
_OUTPUT_LIMIT = 4096


class DockerGpuError(Exception):
    """The container check could not run; the message names cause and fix."""


def _explain(exc: BaseException, image: str, docker_host: str) -> str:
    text = str(exc)
    if isinstance(exc, ImageNotFound):
        return f"image {image} is not present on the Docker host; pull it first, or set container.pull=true"
    if "could not select device driver" in text or "nvidia-container-cli" in text:
        return (
            f"Docker cannot give a GPU to containers ({text.strip()}); install the NVIDIA Container Toolkit, run "
            "'nvidia-ctk runtime configure --runtime=docker' and restart dockerd"
        )
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return "the container did not finish in time; raise container.timeout or check the image's command"
    if "Error while fetching server API version" in text or "Connection refused" in text or "No such file" in text:
        return (
            f"cannot reach the Docker daemon at {docker_host} ({text.strip()}); "
            "start dockerd or set container.docker_host"
        )
    return f"Docker API error: {text.strip()}"


def count_csv_lines(output: str) -> int:
    """Non-empty lines of nvidia-smi --format=csv,noheader output (one per GPU)."""
    return sum(1 for line in output.splitlines() if line.strip() and "," in line)


def run_gpu_container(
    image: str,
    command: list[str],
    docker_host: str = DEFAULT_DOCKER_HOST,
    timeout: float = 120.0,
    pull: bool = False,
) -> dict[str, t.Any]:
    """``docker run --rm --gpus all IMAGE COMMAND`` through the Engine API.

    Returns image, command, exit_code and output (stdout and stderr, first 4 KiB).
    Raises DockerGpuError with a sentence a person can act on.
    """
    try:
        client = docker.DockerClient(base_url=docker_host, timeout=int(max(timeout, 1)))
    except (DockerException, requests.exceptions.RequestException) as exc:
        raise DockerGpuError(_explain(exc, image, docker_host)) from exc
    try:
        if pull:
            client.images.pull(image)
        container = client.containers.create(
            image,
            command=command,
            device_requests=[DeviceRequest(count=-1, capabilities=[["gpu"]])],
            labels={"ablage.ops.check": "gpu_check"},
            network_mode="none",
        )
        try:
            container.start()
            status = container.wait(timeout=int(max(timeout, 1)))
            output = container.logs(stdout=True, stderr=True)
        finally:
            container.remove(force=True)
    except (DockerException, requests.exceptions.RequestException) as exc:
        raise DockerGpuError(_explain(exc, image, docker_host)) from exc
    finally:
        client.close()
    text = output.decode("utf-8", errors="replace") if isinstance(output, bytes) else str(output)
    return {
        "image": image,
        "command": list(command),
        "exit_code": int(status.get("StatusCode", -1)),
        "output": text[:_OUTPUT_LIMIT],
    }
