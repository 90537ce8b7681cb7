"""/metrics for Prometheus, and Prometheus itself: target up, rules loaded, nothing firing."""

from __future__ import annotations

import re

import requests
from refstack import API, BASE_URL, wait_for

PROMETHEUS = "http://127.0.0.1:9090"


def metric_value(text: str, name: str, labels: str = "") -> float | None:
    pattern = re.compile(rf"^{re.escape(name)}{re.escape(labels)} (\S+)$", re.M)
    match = pattern.search(text)
    return float(match.group(1)) if match else None


def test_metrics_exposition(version: str) -> None:
    requests.get(f"{API}/health", timeout=10)
    response = requests.get(f"{BASE_URL}/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert re.search(
        rf'^ablage_build_info\{{alembic_head="\d{{4}}",version="{re.escape(version)}"\}} 1\.0$', text, re.M
    )
    before = metric_value(text, "ablage_http_requests_total", '{method="GET",route="/api/v1/health",status="200"}')
    assert before is not None and before >= 1
    for name in ("pending", "processing"):
        assert metric_value(text, "ablage_ocr_queue_depth", f'{{state="{name}"}}') is not None
    assert (metric_value(text, "ablage_workers_alive") or 0) >= 1
    assert metric_value(text, "ablage_redis_up") == 1
    assert metric_value(text, "ablage_maintenance_enabled") == 0
    assert "ablage_http_request_duration_seconds_bucket" in text
    requests.get(f"{API}/health", timeout=10)
    after = metric_value(
        requests.get(f"{BASE_URL}/metrics", timeout=10).text,
        "ablage_http_requests_total",
        '{method="GET",route="/api/v1/health",status="200"}',
    )
    assert after is not None and after > before


def test_prometheus_scrapes_backend_and_has_rules(stack: dict[str, object]) -> None:
    def backend_up() -> list[dict[str, object]] | None:
        targets = requests.get(f"{PROMETHEUS}/api/v1/targets", timeout=10).json()["data"]["activeTargets"]
        backend = [t for t in targets if t["labels"]["job"] == "ablage-backend"]
        return backend if backend and backend[0]["health"] == "up" else None

    backend = wait_for(backend_up, 20, 0.5, "prometheus to scrape the backend")
    assert backend[0]["scrapeUrl"] == "http://127.0.0.1:8000/metrics"
    rules = requests.get(f"{PROMETHEUS}/api/v1/rules", timeout=10).json()["data"]["groups"]
    names = {r["name"] for g in rules for r in g["rules"]}
    assert {"AblageBackendDown", "AblageWorkerDown", "AblageOcrQueueBacklog"} <= names
    alerts = requests.get(f"{PROMETHEUS}/api/v1/alerts", timeout=10).json()["data"]["alerts"]
    assert [a for a in alerts if a["state"] == "firing"] == []
    query = requests.get(f"{PROMETHEUS}/api/v1/query", params={"query": "ablage_build_info"}, timeout=10).json()
    assert query["status"] == "success"
