"""Real checks of PostgreSQL, Redis, the object store, the worker pipeline and the GPU."""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import text

from app.release import Release
from app.services import HEARTBEAT_PREFIX, PROCESSING_KEY, QUEUE_KEY, Services

log = logging.getLogger("ablage.health")

HEALTHY, DEGRADED, UNHEALTHY, UNAVAILABLE = "healthy", "degraded", "unhealthy", "unavailable"
_RANK = {HEALTHY: 0, UNAVAILABLE: 0, DEGRADED: 1, UNHEALTHY: 2}
GPU_WARN_PERCENT = 85.0


def worst(statuses: list[str]) -> str:
    return max(statuses, key=lambda s: _RANK.get(s, 2)) if statuses else HEALTHY


def _timed(check: Callable[[], dict[str, Any]], name: str) -> dict[str, Any]:
    start = time.perf_counter()
    try:
        result = check()
    except Exception as exc:  # any failure of the external system is the finding
        log.error("health check %s failed: %s", name, exc)
        result = {"status": UNHEALTHY, "error": f"{type(exc).__name__}: {exc}"[:500]}
    result["latency_ms"] = round((time.perf_counter() - start) * 1000, 2)
    return result


def schema_state(release: Release, db_revision: str | None) -> str:
    """current: at this release's head; behind: an older revision of this release
    (migrations not applied); ahead: a revision this release does not know (newer)."""
    if db_revision == release.head:
        return "current"
    if db_revision is None or db_revision in release.revision_ids:
        return "behind"
    return "ahead"


def check_database(services: Services, release: Release) -> dict[str, Any]:
    def run() -> dict[str, Any]:
        with services.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            missing = [
                t
                for t in release.required_tables
                if conn.execute(text("SELECT to_regclass(:t)"), {"t": t}).scalar() is None
            ]
        revision = services.alembic_revision()
        state = schema_state(release, revision)
        result: dict[str, Any] = {
            "status": HEALTHY,
            "alembic_revision": revision,
            "alembic_head": release.head,
            "schema": state,
        }
        if missing:
            result["status"] = UNHEALTHY
            result["error"] = "schema check failed: missing table(s) " + ", ".join(missing)
            log.error("database schema check failed: missing table(s) %s", ", ".join(missing))
        elif state == "behind":
            result["status"] = UNHEALTHY
            result["error"] = f"database at revision {revision}, this release needs {release.head}: run the migrations"
            log.error("database schema behind: %s < %s", revision, release.head)
        return result

    return _timed(run, "database")


def check_redis(services: Services) -> dict[str, Any]:
    def run() -> dict[str, Any]:
        if not services.redis.ping():
            return {"status": UNHEALTHY, "error": "PING failed"}
        return {"status": HEALTHY}

    return _timed(run, "redis")


def check_object_store(services: Services) -> dict[str, Any]:
    def run() -> dict[str, Any]:
        bucket = services.settings.minio_bucket
        if not services.minio.bucket_exists(bucket):
            return {"status": UNHEALTHY, "bucket": bucket, "error": f"bucket {bucket} does not exist"}
        return {"status": HEALTHY, "bucket": bucket, "endpoint": services.settings.minio_endpoint}

    return _timed(run, "object_store")


def queue_depth(services: Services) -> dict[str, int]:
    pipe = services.redis.pipeline()
    pipe.llen(QUEUE_KEY)
    pipe.llen(PROCESSING_KEY)
    pending, processing = pipe.execute()
    return {"pending": int(pending), "processing": int(processing)}


def worker_heartbeats(services: Services) -> list[dict[str, Any]]:
    now = time.time()
    workers = []
    for key in services.redis.scan_iter(match=HEARTBEAT_PREFIX + "*", count=100):
        raw = services.redis.get(key)
        if raw is None:
            continue
        beat = json.loads(raw)
        workers.append(
            {
                "worker": beat.get("worker"),
                "version": beat.get("version"),
                "age_seconds": round(max(0.0, now - float(beat.get("ts", 0))), 3),
                "current_job": beat.get("current_job"),
                "jobs_processed": beat.get("jobs_processed", 0),
                "started_at": beat.get("started_at"),
            }
        )
    return sorted(workers, key=lambda w: w["age_seconds"])


def check_pipeline(services: Services) -> dict[str, Any]:
    def run() -> dict[str, Any]:
        interval = services.settings.worker_heartbeat_interval
        workers = worker_heartbeats(services)
        queue = queue_depth(services)
        fresh = [w for w in workers if w["age_seconds"] <= 3 * interval]
        result: dict[str, Any] = {
            "workers": workers,
            "workers_alive": len(fresh),
            "worker_heartbeat_age_seconds": workers[0]["age_seconds"] if workers else None,
            "queue": queue,
        }
        if fresh:
            result["status"] = HEALTHY
        elif workers:
            result["status"] = DEGRADED
            result["error"] = "worker heartbeat is stale"
        else:
            result["status"] = UNHEALTHY
            result["error"] = "no worker heartbeat in Redis"
        return result

    return _timed(run, "pipeline")


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
