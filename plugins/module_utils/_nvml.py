# Copyright (c) ablage.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""NVIDIA GPU readings through NVML (the pynvml module of nvidia-ml-py).

PRIVATE: this file is an implementation detail of the ablage.ops collection.
It is not a public API and may change or disappear in any release.

pynvml is optional: import it through HAS_PYNVML / PYNVML_IMPORT_ERROR and let
the module fail with missing_required_lib only on the path that needs it.
Every NVML call goes through the ``pynvml`` module attribute at call time, so
tests can replace single functions.
"""

from __future__ import annotations

import contextlib
import traceback
import typing as t

PYNVML_IMPORT_ERROR: str | None
try:
    import pynvml
except ImportError:
    pynvml = None
    HAS_PYNVML = False
    PYNVML_IMPORT_ERROR = traceback.format_exc()
else:
    HAS_PYNVML = True
    PYNVML_IMPORT_ERROR = None

GIB = 1024**3

# NVML errors that mean "this host has no usable GPU" rather than "the GPU is broken".
_NO_GPU_ERRORS = {
    "NVMLError_LibraryNotFound": (
        "the NVML library (libnvidia-ml.so.1) was not found, so the NVIDIA driver is not installed on this host; "
        "install the NVIDIA driver (and reboot)"
    ),
    "NVMLError_DriverNotLoaded": (
        "the NVIDIA kernel driver is not loaded; load it (modprobe nvidia) or reboot after installing the driver"
    ),
}

_BROKEN_GPU_ERRORS = {
    "NVMLError_NoPermission": "NVML refused access; run the task with become: true or add the user to the video group",
    "NVMLError_LibRmVersionMismatch": (
        "the NVIDIA driver library and kernel module have different versions (driver updated without reboot); "
        "reboot the host"
    ),
    "NVMLError_GpuIsLost": "a GPU fell off the bus (Xid 79); check power and cooling, then reset the GPU or reboot",
    "NVMLError_InsufficientPower": "a GPU has not enough power; check its power cables",
    "NVMLError_CorruptedInforom": "a GPU's infoROM is corrupted; contact the hardware vendor",
    "NVMLError_ResetRequired": "a GPU needs a reset (nvidia-smi -r) or a reboot",
}


class NvmlUnavailable(Exception):
    """NVML cannot be used at all (no library, driver not loaded, ...)."""

    def __init__(self, message: str, error_name: str, no_gpu: bool) -> None:
        super().__init__(message)
        self.message = message
        self.error_name = error_name
        self.no_gpu = no_gpu


def explain_nvml_error(exc: BaseException) -> tuple[str, bool]:
    """A sentence with cause and fix for an NVMLError, and whether it means "no GPU on this host"."""
    name = type(exc).__name__
    if name in _NO_GPU_ERRORS:
        return _NO_GPU_ERRORS[name], True
    if name in _BROKEN_GPU_ERRORS:
        return f"{_BROKEN_GPU_ERRORS[name]} ({exc})", False
    return f"NVML failed: {exc} ({name}); run nvidia-smi on the host to see the driver's own error", False


def cuda_version_string(version: int) -> str:
    """NVML's CUDA version integer (12040) as text (12.4)."""
    return f"{version // 1000}.{(version % 1000) // 10}"


def _text(value: t.Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def _gb(value: int) -> float:
    return round(value / GIB, 2)


class _Reader:
    """Collects readings; a failing reading becomes an entry in errors instead of an exception."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def read(self, what: str, func: t.Callable[..., t.Any], *args: t.Any) -> t.Any:
        try:
            return func(*args)
        except pynvml.NVMLError as exc:
            message, dummy = explain_nvml_error(exc)
            self.errors.append(f"{what}: {message}")
            return None


def _device(reader: _Reader, index: int) -> dict[str, t.Any]:
    device: dict[str, t.Any] = {"index": index, "name": None, "uuid": None}
    handle = reader.read(f"GPU {index} handle", pynvml.nvmlDeviceGetHandleByIndex, index)
    if handle is None:
        device["error"] = reader.errors[-1]
        return device
    name = reader.read(f"GPU {index} name", pynvml.nvmlDeviceGetName, handle)
    device["name"] = None if name is None else _text(name)
    uuid = reader.read(f"GPU {index} uuid", pynvml.nvmlDeviceGetUUID, handle)
    device["uuid"] = None if uuid is None else _text(uuid)
    memory = reader.read(f"GPU {index} memory", pynvml.nvmlDeviceGetMemoryInfo, handle)
    if memory is None:
        device["error"] = reader.errors[-1]
        return device
    total, used, free = int(memory.total), int(memory.used), int(memory.free)
    device.update(
        {
            "memory_total_bytes": total,
            "memory_used_bytes": used,
            "memory_free_bytes": free,
            "memory_total_gb": _gb(total),
            "memory_used_gb": _gb(used),
            "memory_free_gb": _gb(free),
            "memory_used_percent": round(100.0 * used / total, 1) if total else None,
        }
    )
    return device


def read_gpus() -> dict[str, t.Any]:
    """Driver, CUDA version and every device's name and memory, in one NVML session.

    Raises NvmlUnavailable when NVML cannot start. Readings that fail after that
    are reported in ``errors`` so that everything else is still returned.
    """
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        message, no_gpu = explain_nvml_error(exc)
        raise NvmlUnavailable(message, type(exc).__name__, no_gpu) from exc
    reader = _Reader()
    try:
        driver = reader.read("driver version", pynvml.nvmlSystemGetDriverVersion)
        cuda = reader.read("CUDA version", pynvml.nvmlSystemGetCudaDriverVersion)
        count = reader.read("device count", pynvml.nvmlDeviceGetCount)
        devices = [_device(reader, index) for index in range(count or 0)]
    finally:
        # The readings are complete; a failing shutdown changes nothing about them.
        with contextlib.suppress(pynvml.NVMLError):
            pynvml.nvmlShutdown()
    return {
        "driver_version": None if driver is None else _text(driver),
        "cuda_version": None if cuda is None else cuda_version_string(int(cuda)),
        "device_count": int(count or 0),
        "devices": devices,
        "errors": reader.errors,
    }
