"""plugins/module_utils/_docker.py: the GPU container run, with a fake SDK client and, where a
Docker daemon runs on this machine, for real (no GPU here, so the real run must fail clearly)."""

from __future__ import annotations

import importlib
import os
import sys
import typing as t

import docker
import docker.errors
import pytest
import requests.exceptions

from ansible_collections.ablage.ops.plugins.module_utils import _docker

IMAGE = "nvidia/cuda:12.0.0-base-ubuntu22.04"
COMMAND = ["nvidia-smi", "--query-gpu=index,name,memory.total", "--format=csv,noheader"]


class FakeContainer:
    def __init__(self, client: FakeClient) -> None:
        self.client = client

    def start(self) -> None:
        self.client.calls.append("start")
        if self.client.start_error is not None:
            raise self.client.start_error

    def wait(self, timeout: int) -> dict[str, int]:
        self.client.calls.append(f"wait {timeout}")
        if self.client.wait_error is not None:
            raise self.client.wait_error
        return {"StatusCode": self.client.exit_code}

    def logs(self, stdout: bool, stderr: bool) -> bytes:
        return self.client.output

    def remove(self, force: bool) -> None:
        self.client.calls.append(f"remove force={force}")


class FakeClient:
    instances: t.ClassVar[list[FakeClient]] = []

    def __init__(self, base_url: str, timeout: int) -> None:
        self.base_url = base_url
        self.timeout = timeout
        self.calls: list[str] = []
        self.exit_code = 0
        self.output = b"0, NVIDIA GeForce RTX 4080, 16376 MiB\n"
        self.start_error: Exception | None = None
        self.wait_error: Exception | None = None
        self.create_error: Exception | None = None
        self.create_kwargs: dict[str, t.Any] = {}
        self.images = self
        self.containers = self
        FakeClient.instances.append(self)
        configure(self)

    def pull(self, image: str) -> None:
        self.calls.append(f"pull {image}")

    def create(self, image: str, **kwargs: t.Any) -> FakeContainer:
        self.calls.append(f"create {image}")
        self.create_kwargs = kwargs
        if self.create_error is not None:
            raise self.create_error
        return FakeContainer(self)

    def close(self) -> None:
        self.calls.append("close")


def configure(client: FakeClient) -> None:  # replaced per test
    pass


@pytest.fixture
def fake_client(monkeypatch: pytest.MonkeyPatch) -> t.Iterator[list[FakeClient]]:
    FakeClient.instances = []
    monkeypatch.setattr(_docker.docker, "DockerClient", FakeClient)
    yield FakeClient.instances


def set_up(monkeypatch: pytest.MonkeyPatch, **attrs: t.Any) -> None:
    def apply(client: FakeClient) -> None:
        for key, value in attrs.items():
            setattr(client, key, value)

    monkeypatch.setattr(sys.modules[__name__], "configure", apply)


def test_run_gpu_container(fake_client: list[FakeClient]) -> None:
    result = _docker.run_gpu_container(IMAGE, COMMAND, docker_host="unix:///x.sock", timeout=30, pull=True)
    assert result == {
        "image": IMAGE,
        "command": COMMAND,
        "exit_code": 0,
        "output": "0, NVIDIA GeForce RTX 4080, 16376 MiB\n",
    }
    (client,) = fake_client
    assert (client.base_url, client.timeout) == ("unix:///x.sock", 30)
    assert client.calls == [f"pull {IMAGE}", f"create {IMAGE}", "start", "wait 30", "remove force=True", "close"]
    request = client.create_kwargs["device_requests"][0]
    assert request["Count"] == -1
    assert request["Capabilities"] == [["gpu"]]
    assert client.create_kwargs["command"] == COMMAND
    assert client.create_kwargs["network_mode"] == "none"


def test_start_error_still_removes_the_container(
    fake_client: list[FakeClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    error = docker.errors.APIError(
        "500 Server Error", explanation='could not select device driver "" with capabilities: [[gpu]]'
    )
    set_up(monkeypatch, start_error=error)
    with pytest.raises(_docker.DockerGpuError) as exc:
        _docker.run_gpu_container(IMAGE, COMMAND)
    assert "install the NVIDIA Container Toolkit" in str(exc.value)
    assert "nvidia-ctk runtime configure --runtime=docker" in str(exc.value)
    assert fake_client[0].calls[-2:] == ["remove force=True", "close"]


def test_wait_timeout(fake_client: list[FakeClient], monkeypatch: pytest.MonkeyPatch) -> None:
    set_up(monkeypatch, wait_error=requests.exceptions.ReadTimeout("read timed out"))
    with pytest.raises(_docker.DockerGpuError, match=r"raise container.timeout"):
        _docker.run_gpu_container(IMAGE, COMMAND, timeout=0.2)
    assert "wait 1" in fake_client[0].calls


def test_image_not_found(fake_client: list[FakeClient], monkeypatch: pytest.MonkeyPatch) -> None:
    set_up(monkeypatch, create_error=docker.errors.ImageNotFound("No such image"))
    with pytest.raises(_docker.DockerGpuError, match=r"not present on the Docker host; pull it first"):
        _docker.run_gpu_container(IMAGE, COMMAND)
    assert "remove force=True" not in fake_client[0].calls


def test_other_api_error(fake_client: list[FakeClient], monkeypatch: pytest.MonkeyPatch) -> None:
    set_up(monkeypatch, create_error=docker.errors.APIError("409 Conflict"))
    with pytest.raises(_docker.DockerGpuError, match=r"^Docker API error: 409 Conflict"):
        _docker.run_gpu_container(IMAGE, COMMAND)


def test_daemon_unreachable(tmp_path: t.Any) -> None:
    socket_path = tmp_path / "no-docker.sock"
    with pytest.raises(_docker.DockerGpuError) as exc:
        _docker.run_gpu_container(IMAGE, COMMAND, docker_host=f"unix://{socket_path}", timeout=2)
    assert str(exc.value).startswith(f"cannot reach the Docker daemon at unix://{socket_path}")
    assert "start dockerd or set container.docker_host" in str(exc.value)


def test_client_cannot_be_created(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(**kwargs: t.Any) -> None:
        raise docker.errors.DockerException("Error while fetching server API version: Connection refused")

    monkeypatch.setattr(_docker.docker, "DockerClient", refuse)
    with pytest.raises(_docker.DockerGpuError, match=r"^cannot reach the Docker daemon at tcp://127.0.0.1:1 "):
        _docker.run_gpu_container(IMAGE, COMMAND, docker_host="tcp://127.0.0.1:1")


def test_count_csv_lines() -> None:
    assert _docker.count_csv_lines("0, RTX 4080, 16376 MiB\n1, RTX 4080, 16376 MiB\n\n") == 2
    assert _docker.count_csv_lines("No devices were found\n") == 0


def test_import_without_docker_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "docker", None)
    try:
        reloaded = importlib.reload(_docker)
        assert reloaded.HAS_DOCKER is False
        assert "docker" in (reloaded.DOCKER_IMPORT_ERROR or "")
    finally:
        monkeypatch.undo()
        importlib.reload(_docker)
    assert _docker.HAS_DOCKER is True


# --------------------------------------------------------------------------- a real daemon, where there is one


def _local_image() -> str | None:
    if not os.path.exists("/var/run/docker.sock"):
        return None
    try:
        client = docker.DockerClient(base_url=_docker.DEFAULT_DOCKER_HOST, timeout=5)
        try:
            images = client.images.list()
        finally:
            client.close()
    except (docker.errors.DockerException, requests.exceptions.RequestException):
        return None
    tags = [tag for image in images for tag in image.tags]
    return tags[0] if tags else None


LOCAL_IMAGE = _local_image()
needs_daemon = pytest.mark.skipif(LOCAL_IMAGE is None, reason="no Docker daemon with a local image on this machine")


@needs_daemon
def test_real_daemon_without_gpu_support() -> None:
    """dockerd here has no NVIDIA runtime: the GPU device request must fail with the toolkit hint."""
    assert LOCAL_IMAGE is not None
    with pytest.raises(_docker.DockerGpuError) as exc:
        _docker.run_gpu_container(LOCAL_IMAGE, ["true"], timeout=60)
    assert "NVIDIA Container Toolkit" in str(exc.value)
    leftovers = docker.DockerClient(base_url=_docker.DEFAULT_DOCKER_HOST).containers.list(
        all=True, filters={"label": "ablage.ops.check=gpu_check"}
    )
    assert leftovers == []


@needs_daemon
def test_real_daemon_missing_image() -> None:
    with pytest.raises(_docker.DockerGpuError, match=r"image ablage/does-not-exist:0 is not present"):
        _docker.run_gpu_container("ablage/does-not-exist:0", ["true"], timeout=30)
