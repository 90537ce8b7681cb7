"""Prometheus metrics: request counts and latency, plus queue, worker and build gauges read at scrape time."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from app.health import queue_depth, worker_heartbeats
from app.release import Release
from app.services import MAINTENANCE_KEY, Services

log = logging.getLogger("ablage.metrics")

REGISTRY = CollectorRegistry(auto_describe=True)
REQUESTS = Counter(
    "ablage_http_requests_total",
    "HTTP requests by method, route and status code",
    ["method", "route", "status"],
    registry=REGISTRY,
)
LATENCY = Histogram(
    "ablage_http_request_duration_seconds",
    "HTTP request latency by method and route",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
    registry=REGISTRY,
)
MAINTENANCE_REJECTED = Counter(
    "ablage_maintenance_rejected_total",
    "Requests answered 503 because maintenance mode was on",
    registry=REGISTRY,
)


class StateCollector(Collector):
    """Reads Redis at scrape time, so the numbers are never stale."""

    def __init__(self, services: Services, release: Release) -> None:
        self.services = services
        self.release = release

    def collect(self) -> Iterator[GaugeMetricFamily]:
        info = GaugeMetricFamily(
            "ablage_build_info", "Build of the running backend", labels=["version", "alembic_head"]
        )
        info.add_metric([self.release.version, self.release.head], 1)
        yield info
        try:
            depth = queue_depth(self.services)
            workers = worker_heartbeats(self.services)
            maintenance = self.services.redis.get(MAINTENANCE_KEY)
        except Exception as exc:  # Redis down: export what we know, the health check reports it
            log.warning("metrics: redis unavailable: %s", exc)
            up = GaugeMetricFamily("ablage_redis_up", "Redis reachable from the backend")
            up.add_metric([], 0)
            yield up
            return
        up = GaugeMetricFamily("ablage_redis_up", "Redis reachable from the backend")
        up.add_metric([], 1)
        yield up
        queue = GaugeMetricFamily("ablage_ocr_queue_depth", "OCR jobs by queue state", labels=["state"])
        queue.add_metric(["pending"], depth["pending"])
        queue.add_metric(["processing"], depth["processing"])
        yield queue
        alive = GaugeMetricFamily("ablage_workers_alive", "Workers with a heartbeat in Redis")
        alive.add_metric([], len(workers))
        yield alive
        age = GaugeMetricFamily(
            "ablage_worker_heartbeat_age_seconds", "Age of the newest worker heartbeat (absent: no worker)"
        )
        if workers:
            age.add_metric([], workers[0]["age_seconds"])
        yield age
        enabled = bool(maintenance and json.loads(maintenance).get("enabled"))
        mm = GaugeMetricFamily("ablage_maintenance_enabled", "1 while maintenance mode is on")
        mm.add_metric([], 1 if enabled else 0)
        yield mm
