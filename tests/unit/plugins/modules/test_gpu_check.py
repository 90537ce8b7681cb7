"""gpu_check: main() with the NVML functions of pynvml replaced, plus the real "no NVML library" path."""

from __future__ import annotations

import ctypes
import typing as t
from types import SimpleNamespace

import pynvml
import pytest

from ansible_collections.ablage.ops.plugins.module_utils import _docker, _nvml
from ansible_collections.ablage.ops.plugins.modules import gpu_check

Run = t.Callable[..., t.Any]
GIB = 1024**3


def _libnvml_present() -> bool:
    try:
        ctypes.CDLL("libnvidia-ml.so.1")
    except OSError:
        return False
    return True


class FakeNvml:
    """Stands in for the NVML C library behind pynvml's Python functions."""

    def __init__(self) -> None:
        self.devices: list[dict[str, t.Any]] = []
        self.driver: t.Any = "550.54.15"
        self.cuda = 12040
        self.init_error: int | None = None
        self.fail: dict[str, int] = {}  # function name -> NVML error code
        self.calls: list[str] = []

    def add(self, name: t.Any = "NVIDIA GeForce RTX 4080", total_gb: float = 16.0, used_gb: float = 1.0) -> None:
        total = int(total_gb * GIB)
        used = int(used_gb * GIB)
        self.devices.append({"name": name, "total": total, "used": used, "free": total - used})

    def _maybe_fail(self, name: str) -> None:
        self.calls.append(name)
        if name in self.fail:
            raise pynvml.NVMLError(self.fail[name])

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        def init() -> None:
            self.calls.append("nvmlInit")
            if self.init_error is not None:
                raise pynvml.NVMLError(self.init_error)

        def handle(index: int) -> int:
            self._maybe_fail("nvmlDeviceGetHandleByIndex")
            return index

        def name(h: int) -> t.Any:
            self._maybe_fail("nvmlDeviceGetName")
            return self.devices[h]["name"]

        def uuid(h: int) -> str:
            self._maybe_fail("nvmlDeviceGetUUID")
            return f"GPU-0000000{h}-aaaa-bbbb-cccc-dddddddddddd"

        def memory(h: int) -> SimpleNamespace:
            self._maybe_fail("nvmlDeviceGetMemoryInfo")
            d = self.devices[h]
            return SimpleNamespace(total=d["total"], used=d["used"], free=d["free"])

        def count() -> int:
            self._maybe_fail("nvmlDeviceGetCount")
            return len(self.devices)

        def driver() -> t.Any:
            self._maybe_fail("nvmlSystemGetDriverVersion")
            return self.driver

        def cuda() -> int:
            self._maybe_fail("nvmlSystemGetCudaDriverVersion")
            return self.cuda

        def shutdown() -> None:
            self._maybe_fail("nvmlShutdown")

        for attr, func in {
            "nvmlInit": init,
            "nvmlShutdown": shutdown,
            "nvmlSystemGetDriverVersion": driver,
            "nvmlSystemGetCudaDriverVersion": cuda,
            "nvmlDeviceGetCount": count,
            "nvmlDeviceGetHandleByIndex": handle,
            "nvmlDeviceGetName": name,
            "nvmlDeviceGetUUID": uuid,
            "nvmlDeviceGetMemoryInfo": memory,
        }.items():
            monkeypatch.setattr(pynvml, attr, func)


@pytest.fixture
def nvml(monkeypatch: pytest.MonkeyPatch) -> FakeNvml:
    fake = FakeNvml()
    fake.install(monkeypatch)
    return fake


def test_rtx_4080_passes(run_module: Run, nvml: FakeNvml) -> None:
    nvml.add(used_gb=2.0)
    result = run_module(
        gpu_check.main, {"expected_model": "RTX 4080", "max_memory_used_gb": 13.6, "min_memory_free_gb": 10}
    )
    assert result.rc == 0, result["msg"]
    assert result["changed"] is False
    assert result["gpu_present"] is True
    assert result["device_count"] == 1
    assert result["driver_version"] == "550.54.15"
    assert result["cuda_version"] == "12.4"
    (dev,) = result["devices"]
    assert dev["name"] == "NVIDIA GeForce RTX 4080"
    assert dev["uuid"].startswith("GPU-")
    assert dev["memory_total_bytes"] == 16 * GIB
    assert dev["memory_used_bytes"] == 2 * GIB
    assert dev["memory_free_bytes"] == 14 * GIB
    assert (dev["memory_total_gb"], dev["memory_used_gb"], dev["memory_free_gb"]) == (16.0, 2.0, 14.0)
    assert dev["memory_used_percent"] == 12.5
    names = [c["name"] for c in result["checks"]]
    assert names == ["device_count", "model[0]", "memory_used_percent[0]", "memory_used_gb[0]", "memory_free_gb[0]"]
    assert all(c["ok"] for c in result["checks"])
    assert result["failed_checks"] == []
    assert result["errors"] == []
    assert result["msg"] == "1 GPU(s) OK: NVIDIA GeForce RTX 4080"
    assert nvml.calls[0] == "nvmlInit"
    assert nvml.calls[-1] == "nvmlShutdown"


def test_check_mode_is_the_same(run_module: Run, nvml: FakeNvml) -> None:
    nvml.add()
    result = run_module(gpu_check.main, {}, check_mode=True)
    assert result.rc == 0
    assert result["changed"] is False


def test_wrong_model_and_too_much_memory_reports_all_measurements(run_module: Run, nvml: FakeNvml) -> None:
    nvml.add(name="NVIDIA GeForce RTX 3060", total_gb=12, used_gb=11)
    result = run_module(gpu_check.main, {"expected_model": "RTX 4080", "max_memory_used_gb": 10})
    assert result.rc == 1
    assert result["failed_checks"] == [
        "model[0]: 'NVIDIA GeForce RTX 3060' does not match 'RTX 4080'",
        "memory_used_percent[0]: 91.7 % in use, limit 85 %",
        "memory_used_gb[0]: 11.0 GB in use, limit 10 GB",
    ]
    assert result["msg"].startswith("GPU check failed (3): model[0]: ")
    # the measurements are still there
    assert result["devices"][0]["memory_used_gb"] == 11.0
    assert result["driver_version"] == "550.54.15"
    assert result["gpu_present"] is True


def test_model_regex_is_case_insensitive(run_module: Run, nvml: FakeNvml) -> None:
    nvml.add(name=b"NVIDIA GeForce RTX 4080")  # older pynvml versions return bytes
    result = run_module(gpu_check.main, {"expected_model": r"rtx\s*40[89]0"})
    assert result.rc == 0
    assert result["devices"][0]["name"] == "NVIDIA GeForce RTX 4080"


def test_percentage_limit_is_configurable(run_module: Run, nvml: FakeNvml) -> None:
    nvml.add(used_gb=15)
    assert run_module(gpu_check.main, {}).rc == 1
    assert run_module(gpu_check.main, {"max_memory_used_percent": 100}).rc == 0


def test_free_memory_limit(run_module: Run, nvml: FakeNvml) -> None:
    nvml.add(used_gb=8)
    result = run_module(gpu_check.main, {"min_memory_free_gb": 13.6})
    assert result.rc == 1
    assert result["failed_checks"] == ["memory_free_gb[0]: 8.0 GB free, need 13.6 GB"]


def test_min_count_and_device_indices(run_module: Run, nvml: FakeNvml) -> None:
    nvml.add()
    nvml.add(name="NVIDIA A100", used_gb=15)
    only_first = run_module(gpu_check.main, {"device_indices": [0], "expected_model": "4080"})
    assert only_first.rc == 0, only_first["msg"]
    assert len(only_first["devices"]) == 2  # everything is still reported
    assert [c["name"] for c in only_first["checks"]] == ["device_count", "model[0]", "memory_used_percent[0]"]

    result = run_module(gpu_check.main, {"min_count": 3, "device_indices": [0, 5]})
    assert result.rc == 1
    assert result["failed_checks"] == ["device_count: 2 GPU(s), at least 3", "device[5]: no GPU with index 5 (found 2)"]


def test_versions(run_module: Run, nvml: FakeNvml) -> None:
    nvml.add()
    ok = run_module(gpu_check.main, {"min_driver_version": "535.104", "min_cuda_version": "12.0"})
    assert ok.rc == 0
    assert [c["detail"] for c in ok["checks"][-2:]] == [
        "driver version 550.54.15, at least 535.104",
        "cuda version 12.4, at least 12.0",
    ]
    old = run_module(gpu_check.main, {"min_driver_version": "560", "min_cuda_version": "12.6"})
    assert old.rc == 1
    assert old["failed_checks"] == [
        "driver_version: driver version 550.54.15, at least 560",
        "cuda_version: cuda version 12.4, at least 12.6",
    ]


def test_version_unreadable_fails_the_version_check(run_module: Run, nvml: FakeNvml) -> None:
    nvml.add()
    nvml.fail["nvmlSystemGetCudaDriverVersion"] = pynvml.NVML_ERROR_NOT_SUPPORTED
    result = run_module(gpu_check.main, {"min_cuda_version": "12.0"})
    assert result.rc == 1
    assert result["cuda_version"] is None
    assert result["failed_checks"] == ["cuda_version: cuda version None, at least 12.0"]
    assert result["errors"][0].startswith("CUDA version: NVML failed: Not Supported")


def test_memory_unreadable(run_module: Run, nvml: FakeNvml) -> None:
    nvml.add()
    nvml.fail["nvmlDeviceGetMemoryInfo"] = pynvml.NVML_ERROR_GPU_IS_LOST
    result = run_module(gpu_check.main, {"expected_model": "4080"})
    assert result.rc == 1
    assert result["devices"][0]["name"] == "NVIDIA GeForce RTX 4080"
    assert "fell off the bus" in result["devices"][0]["error"]
    assert result["failed_checks"][-1].startswith("readable[0]: GPU 0 memory: a GPU fell off the bus")


def test_handle_unreadable(run_module: Run, nvml: FakeNvml) -> None:
    nvml.add()
    nvml.fail["nvmlDeviceGetHandleByIndex"] = pynvml.NVML_ERROR_NO_PERMISSION
    result = run_module(gpu_check.main, {})
    assert result.rc == 1
    assert "become: true" in result["msg"]
    assert result["devices"][0]["name"] is None


def test_uuid_and_shutdown_errors_are_tolerated(run_module: Run, nvml: FakeNvml) -> None:
    nvml.add()
    nvml.fail["nvmlDeviceGetUUID"] = pynvml.NVML_ERROR_NOT_SUPPORTED
    nvml.fail["nvmlShutdown"] = pynvml.NVML_ERROR_UNINITIALIZED
    result = run_module(gpu_check.main, {})
    assert result.rc == 0
    assert result["devices"][0]["uuid"] is None
    assert len(result["errors"]) == 1


def test_count_unreadable(run_module: Run, nvml: FakeNvml) -> None:
    nvml.fail["nvmlDeviceGetCount"] = pynvml.NVML_ERROR_UNKNOWN
    result = run_module(gpu_check.main, {"required": False})
    assert result.rc == 1
    assert result["msg"].startswith("NVML started but device count: NVML failed: Unknown Error")
    assert "run nvidia-smi on the host" in result["msg"]


def test_no_gpu_found(run_module: Run, nvml: FakeNvml) -> None:
    required = run_module(gpu_check.main, {})
    assert required.rc == 1
    assert required["msg"].startswith("no usable GPU: NVML works, but found no GPU")
    assert "set required=false" in required["msg"]
    optional = run_module(gpu_check.main, {"required": False})
    assert optional.rc == 0
    assert optional["gpu_present"] is False
    assert optional["changed"] is False
    assert optional["msg"].startswith("no GPU on this host (required=false): NVML works, but found no GPU")


@pytest.mark.parametrize(
    ("code", "no_gpu", "words"),
    [
        (pynvml.NVML_ERROR_DRIVER_NOT_LOADED, True, "modprobe nvidia"),
        (pynvml.NVML_ERROR_LIB_RM_VERSION_MISMATCH, False, "reboot the host"),
        (pynvml.NVML_ERROR_INSUFFICIENT_POWER, False, "power cables"),
        (pynvml.NVML_ERROR_CORRUPTED_INFOROM, False, "infoROM"),
        (pynvml.NVML_ERROR_RESET_REQUIRED, False, "nvidia-smi -r"),
        (pynvml.NVML_ERROR_TIMEOUT, False, "run nvidia-smi on the host"),
    ],
)
def test_nvml_init_errors(run_module: Run, nvml: FakeNvml, code: int, no_gpu: bool, words: str) -> None:
    nvml.init_error = code
    required = run_module(gpu_check.main, {})
    assert required.rc == 1
    assert words in required["msg"]
    assert required["nvml_error"] == pynvml.NVMLError(code).__class__.__name__
    assert required["gpu_present"] is False
    optional = run_module(gpu_check.main, {"required": False})
    assert optional.rc == (0 if no_gpu else 1)


@pytest.mark.skipif(_libnvml_present(), reason="this host has the NVIDIA driver; the no-library path needs none")
def test_real_nvml_library_not_found(run_module: Run) -> None:
    """No monkeypatching: pynvml really fails to load libnvidia-ml.so.1 here."""
    required = run_module(gpu_check.main, {"expected_model": "RTX 4080"})
    assert required.rc == 1
    assert required["nvml_error"] == "NVMLError_LibraryNotFound"
    assert "libnvidia-ml.so.1" in required["msg"]
    assert "install the NVIDIA driver" in required["msg"]
    assert "set required=false" in required["msg"]
    optional = run_module(gpu_check.main, {"required": False})
    assert optional.rc == 0
    assert optional["changed"] is False
    assert optional["gpu_present"] is False
    assert optional["device_count"] == 0
    assert optional["nvml_error"] == "NVMLError_LibraryNotFound"


def test_pynvml_not_installed(run_module: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_nvml, "HAS_PYNVML", False)
    monkeypatch.setattr(_nvml, "PYNVML_IMPORT_ERROR", "Traceback: No module named 'pynvml'")
    for required in (True, False):
        result = run_module(gpu_check.main, {"required": required})
        assert result.rc == 1
        assert "Failed to import the required Python library (nvidia-ml-py (import name pynvml))" in result["msg"]
        assert "ansible_python_interpreter" in result["msg"]


@pytest.mark.parametrize(
    ("module_args", "message"),
    [
        ({"max_memory_used_percent": 0}, "max_memory_used_percent must be in (0, 100], got 0"),
        ({"max_memory_used_percent": 101}, "max_memory_used_percent must be in (0, 100], got 101"),
        ({"expected_model": "RTX (4080"}, "expected_model is not a valid regular expression"),
        ({"min_driver_version": "latest"}, "min_driver_version must be a version such as 535.104, got 'latest'"),
        ({"container": {"pull": True}}, "missing required arguments: image found in container"),
    ],
)
def test_invalid_options(run_module: Run, nvml: FakeNvml, module_args: dict[str, t.Any], message: str) -> None:
    result = run_module(gpu_check.main, module_args)
    assert result.rc == 1
    assert message in result["msg"]
    assert "nvmlInit" not in nvml.calls


# --------------------------------------------------------------------------- container check


class FakeDocker:
    def __init__(self) -> None:
        self.result: dict[str, t.Any] = {"exit_code": 0, "output": "0, NVIDIA GeForce RTX 4080, 16376 MiB\n"}
        self.error: str | None = None
        self.calls: list[dict[str, t.Any]] = []

    def __call__(self, image: str, command: list[str], **kwargs: t.Any) -> dict[str, t.Any]:
        self.calls.append({"image": image, "command": command, **kwargs})
        if self.error:
            raise _docker.DockerGpuError(self.error)
        return {"image": image, "command": command, **self.result}


@pytest.fixture
def docker_run(monkeypatch: pytest.MonkeyPatch, nvml: FakeNvml) -> FakeDocker:
    nvml.add()
    fake = FakeDocker()
    monkeypatch.setattr(_docker, "run_gpu_container", fake)
    return fake


IMAGE = "nvidia/cuda:12.0.0-base-ubuntu22.04"


def test_container_sees_gpu(run_module: Run, docker_run: FakeDocker) -> None:
    result = run_module(gpu_check.main, {"container": {"image": IMAGE}})
    assert result.rc == 0, result["msg"]
    assert result["container"]["gpus_seen"] == 1
    assert result["container"]["exit_code"] == 0
    assert result["checks"][-1] == {"name": "container", "ok": True, "detail": f"{IMAGE} sees the GPU: 1 GPU(s)"}
    call = docker_run.calls[0]
    assert call["command"] == gpu_check.DEFAULT_CONTAINER_COMMAND
    assert call["docker_host"] == "unix:///var/run/docker.sock"
    assert (call["timeout"], call["pull"]) == (120.0, False)


def test_container_docker_host_from_environment(
    run_module: Run, docker_run: FakeDocker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:2375")
    assert run_module(gpu_check.main, {"container": {"image": IMAGE}}).rc == 0
    assert docker_run.calls[0]["docker_host"] == "tcp://127.0.0.1:2375"


def test_container_custom_command(run_module: Run, docker_run: FakeDocker) -> None:
    docker_run.result = {"exit_code": 0, "output": "Tue Nov 27 ... NVIDIA-SMI 550.54.15"}
    result = run_module(gpu_check.main, {"container": {"image": IMAGE, "command": ["nvidia-smi"], "pull": True}})
    assert result.rc == 0
    assert result["container"]["gpus_seen"] is None
    assert result["checks"][-1]["detail"] == f"{IMAGE} sees the GPU: exit code 0"
    assert docker_run.calls[0]["pull"] is True


def test_container_exit_code(run_module: Run, docker_run: FakeDocker) -> None:
    docker_run.result = {"exit_code": 127, "output": "exec: nvidia-smi: not found\n"}
    result = run_module(gpu_check.main, {"container": {"image": "debian:12"}})
    assert result.rc == 1
    assert result["failed_checks"] == ["container: debian:12 exited with 127: exec: nvidia-smi: not found"]
    assert result["container"]["output"] == "exec: nvidia-smi: not found\n"


def test_container_lists_no_gpu(run_module: Run, docker_run: FakeDocker) -> None:
    docker_run.result = {"exit_code": 0, "output": "No devices were found\n"}
    result = run_module(gpu_check.main, {"container": {"image": IMAGE}})
    assert result.rc == 1
    assert result["failed_checks"] == [f"container: {IMAGE} ran, but nvidia-smi listed no GPU"]


def test_container_cannot_run(run_module: Run, docker_run: FakeDocker) -> None:
    docker_run.error = "Docker cannot give a GPU to containers (...); install the NVIDIA Container Toolkit"
    result = run_module(gpu_check.main, {"container": {"image": IMAGE}})
    assert result.rc == 1
    assert result["container"]["exit_code"] is None
    assert result["container"]["error"] == docker_run.error
    assert "NVIDIA Container Toolkit" in result["msg"]


def test_container_without_docker_sdk(run_module: Run, docker_run: FakeDocker, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_docker, "HAS_DOCKER", False)
    monkeypatch.setattr(_docker, "DOCKER_IMPORT_ERROR", "No module named 'docker'")
    result = run_module(gpu_check.main, {"container": {"image": IMAGE}})
    assert result.rc == 1
    assert "Failed to import the required Python library (docker (the Docker SDK for Python))" in result["msg"]
    assert result["devices"][0]["name"] == "NVIDIA GeForce RTX 4080"


def test_container_skipped_without_gpu(run_module: Run, monkeypatch: pytest.MonkeyPatch, nvml: FakeNvml) -> None:
    fake = FakeDocker()
    monkeypatch.setattr(_docker, "run_gpu_container", fake)
    result = run_module(gpu_check.main, {"required": False, "container": {"image": IMAGE}})
    assert result.rc == 0
    assert "container" not in result
    assert fake.calls == []
