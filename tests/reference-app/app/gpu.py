"""GPU memory through NVML (pynvml from nvidia-ml-py). No other dependency, so it loads anywhere."""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any

log = logging.getLogger("ablage.health")

HEALTHY, DEGRADED, UNHEALTHY, UNAVAILABLE = "healthy", "degraded", "unhealthy", "unavailable"
_RANK = {HEALTHY: 0, UNAVAILABLE: 0, DEGRADED: 1, UNHEALTHY: 2}
GPU_WARN_PERCENT = 85.0


def worst(statuses: list[str]) -> str:
    return max(statuses, key=lambda s: _RANK.get(s, 2)) if statuses else HEALTHY


def check_gpu(limit_gb: float) -> dict[str, Any]:
    start = time.perf_counter()
    try:
        import pynvml
    except ImportError:
        return {"status": UNAVAILABLE, "reason": "pynvml (nvidia-ml-py) is not installed"}
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        return {
            "status": UNAVAILABLE,
            "reason": f"NVML not available: {exc}",
            "limit_gb": limit_gb,
            "latency_ms": round((time.perf_counter() - start) * 1000, 2),
        }
    try:
        gpus = []
        statuses = []
        driver = pynvml.nvmlSystemGetDriverVersion()
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            mem = pynvml.nvmlDeviceGetMemoryInfo(handle)
            try:
                util: int | None = int(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu)
            except pynvml.NVMLError:
                util = None
            used_gb = mem.used / 1024**3
            total_gb = mem.total / 1024**3
            used_percent = 100.0 * mem.used / mem.total if mem.total else 0.0
            if used_gb > limit_gb:
                status = UNHEALTHY
            elif used_percent >= GPU_WARN_PERCENT:
                status = DEGRADED
            else:
                status = HEALTHY
            statuses.append(status)
            name = pynvml.nvmlDeviceGetName(handle)
            gpus.append(
                {
                    "index": index,
                    "name": name.decode() if isinstance(name, bytes) else str(name),
                    "memory_total_mb": round(mem.total / 1024**2, 1),
                    "memory_used_mb": round(mem.used / 1024**2, 1),
                    "memory_free_mb": round(mem.free / 1024**2, 1),
                    "memory_used_percent": round(used_percent, 2),
                    "memory_total_gb": round(total_gb, 2),
                    "utilization_percent": util,
                    "status": status,
                }
            )
        return {
            "status": worst(statuses) if gpus else UNAVAILABLE,
            "reason": None if gpus else "NVML reports no GPU",
            "driver_version": driver.decode() if isinstance(driver, bytes) else str(driver),
            "gpu_count": len(gpus),
            "gpus": gpus,
            "limit_gb": limit_gb,
            "warn_percent": GPU_WARN_PERCENT,
            "latency_ms": round((time.perf_counter() - start) * 1000, 2),
        }
    except pynvml.NVMLError as exc:
        log.error("GPU check failed: %s", exc)
        return {"status": UNHEALTHY, "error": f"NVML error: {exc}", "limit_gb": limit_gb}
    finally:
        with contextlib.suppress(pynvml.NVMLError):
            pynvml.nvmlShutdown()
