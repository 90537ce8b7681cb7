"""The "ocrdesk" build (ocrdesk/compose.yml, `scripts/stack.sh ocrdesk up`): the same app in another
shape, running next to the reference stack. Brought up here when it is not running (and taken down
again after), under the stack lock this session holds."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from refstack import FIXTURES, STACK, bearer, read_env_file, wait_for

OCRDESK_DIR = Path(os.environ.get("OCRDESK_PROJECT_DIR", "/srv/ocrdesk"))
OCRDESK_API = "http://127.0.0.1:8100/api/v1"


def _healthy() -> bool:
    try:
        return requests.get(f"{OCRDESK_API}/health", timeout=5).status_code == 200
    except requests.RequestException:
        return False


def _stack(*args: str) -> None:
    proc = subprocess.run(
        ["bash", str(STACK), "ocrdesk", *args], check=False, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


@pytest.fixture(scope="module")
def ocrdesk(stack_lock: None) -> Iterator[dict[str, Any]]:
    started = False
    if not _healthy():
        _stack("up")
        started = True
    env = read_env_file(OCRDESK_DIR / ".env.production")
    release = read_env_file(OCRDESK_DIR / ".env")["OCRDESK_RELEASE"]
    try:
        yield {"env": env, "release": release}
    finally:
        if started:
            _stack("down")


def _login(username: str, password: str) -> dict[str, str]:
    response = requests.post(f"{OCRDESK_API}/auth/login", json={"username": username, "password": password}, timeout=10)
    assert response.status_code == 200, response.text
    return bearer(response.json()["access_token"])


def _inspect(container: str, fmt: str) -> str:
    proc = subprocess.run(
        ["docker", "inspect", "-f", fmt, container], check=False, capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_one_image_two_roles_and_its_own_env(ocrdesk: dict[str, Any]) -> None:
    release = ocrdesk["release"]
    image = f"127.0.0.1:5000/ocrdesk/server:{release}"
    assert _inspect("ocrdesk-api-1", "{{.Config.Image}} {{.State.Health.Status}}") == f"{image} healthy"
    assert _inspect("ocrdesk-ocr-1", "{{.Config.Image}} {{.State.Health.Status}}") == f"{image} healthy"
    assert "ABLAGE_ROLE=worker" in _inspect("ocrdesk-ocr-1", "{{json .Config.Env}}")
    assert (OCRDESK_DIR / ".env.production").stat().st_mode & 0o777 == 0o600
    assert (OCRDESK_DIR / ".env").stat().st_mode & 0o777 == 0o644
    assert (OCRDESK_DIR / "tls" / "ocrdesk.crt").is_file()
    assert "ABLAGE_VERSION" not in (OCRDESK_DIR / ".env").read_text()
    assert requests.get(f"{OCRDESK_API}/health", timeout=5).json() == {"status": "healthy", "version": release}


def test_next_to_the_reference_stack(ocrdesk: dict[str, Any], stack: dict[str, Any]) -> None:
    assert requests.get("http://127.0.0.1:8000/api/v1/health", timeout=5).status_code == 200
    assert ocrdesk["env"]["DATABASE_URL"].endswith("@127.0.0.1:5433/ocrdesk")
    assert ocrdesk["env"]["POSTGRES_PASSWORD"] != stack["env"]["POSTGRES_PASSWORD"]


def test_queue_under_its_own_field_names(ocrdesk: dict[str, Any]) -> None:
    body = requests.get(f"{OCRDESK_API}/health/pipeline", timeout=10).json()
    assert body["status"] == "healthy" and body["workers_alive"] >= 1
    assert "queue" not in body and set(body["jobs"]) == {"waiting", "active"}
    complete = requests.get(f"{OCRDESK_API}/health/complete", timeout=10).json()
    assert set(complete["components"]["pipeline"]["jobs"]) == {"waiting", "active"}


def test_smoke_flow_upload_200_and_json_export(ocrdesk: dict[str, Any]) -> None:
    env = ocrdesk["env"]
    user = _login(env["SMOKE_USERNAME"], env["SMOKE_PASSWORD"])
    pdf = (FIXTURES / "ocrdesk" / "smoke_document.pdf").read_bytes()
    expected = (FIXTURES / "ocrdesk" / "smoke_document.expected.txt").read_text()
    upload = requests.post(
        f"{OCRDESK_API}/documents/", headers=user, files={"file": ("smoke.pdf", pdf, "application/pdf")}, timeout=30
    )
    assert upload.status_code == 200, upload.text
    doc_id = upload.json()["id"]
    job = requests.post(
        f"{OCRDESK_API}/ocr/process", headers=user, json={"document_id": doc_id, "backend": "auto"}, timeout=10
    )
    assert job.status_code == 202, job.text

    def done() -> dict[str, Any] | None:
        body = requests.get(f"{OCRDESK_API}/ocr/jobs/{job.json()['job_id']}", headers=user, timeout=10).json()
        return body if body["status"] in ("completed", "failed") else None

    finished = wait_for(done, 30, what="the OCR job")
    assert finished["status"] == "completed" and finished["text"] == expected, finished
    export_url = f"{OCRDESK_API}/documents/{doc_id}/export"
    export = requests.get(export_url, params={"format": "json"}, headers=user, timeout=10)
    assert export.status_code == 200, export.text
    assert export.json()["document_id"] == doc_id and export.json()["text"] == expected
    assert "filename" not in export.json()
    txt = requests.get(export_url, params={"format": "txt"}, headers=user, timeout=10)
    assert txt.status_code == 400 and "not offered" in txt.json()["detail"]


def test_the_rest_of_the_api_stays(ocrdesk: dict[str, Any]) -> None:
    env = ocrdesk["env"]
    admin = _login(env["ADMIN_USERNAME"], env["ADMIN_PASSWORD"])
    maintenance = requests.get(f"{OCRDESK_API}/admin/maintenance", headers=admin, timeout=10)
    assert maintenance.status_code == 200 and maintenance.json()["enabled"] is False
    base = OCRDESK_API.removesuffix("/api/v1")
    assert f'<strong id="version">{ocrdesk["release"]}</strong>' in requests.get(f"{base}/admin", timeout=10).text
    assert "ablage_build_info" in requests.get(f"{base}/metrics", timeout=10).text
    for path in ("/health/detailed", "/health/gpu-memory"):
        assert requests.get(f"{OCRDESK_API}{path}", timeout=10).status_code == 200, path
    targets = wait_for(
        lambda: [
            t
            for t in requests.get("http://127.0.0.1:9091/api/v1/targets", timeout=10).json()["data"]["activeTargets"]
            if t["labels"]["job"] == "ocrdesk-api" and t["health"] == "up"
        ],
        30,
        interval=1,
        what="Prometheus on 9091 scraping the api",
    )
    assert targets[0]["scrapeUrl"] == "http://127.0.0.1:8100/metrics"
