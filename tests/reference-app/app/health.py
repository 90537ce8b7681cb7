"""Real checks of PostgreSQL, Redis, the object store, the worker pipeline and the GPU."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import text

from app.gpu import DEGRADED, HEALTHY, UNHEALTHY
from app.release import Release
from app.services import HEARTBEAT_PREFIX, PROCESSING_KEY, QUEUE_KEY, Services
from app.shape import queue_view

log = logging.getLogger("ablage.health")


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
            **queue_view(queue, services.settings.queue_fields),
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
