"""Helpers for the reference stack tests: constants, HTTP, compose and polling.

Named refstack (not conftest) so that imports stay unambiguous when pytest runs
this suite together with tests/unit and tests/integration, which have their own
conftest.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

ROOT = Path(__file__).resolve().parents[3]
STACK = ROOT / "scripts" / "stack.sh"
PROJECT_DIR = Path(os.environ.get("ABLAGE_PROJECT_DIR", "/srv/ablage"))
REGISTRY = os.environ.get("ABLAGE_REGISTRY", "127.0.0.1:5000")
BASE_URL = os.environ.get("ABLAGE_BASE_URL", "http://127.0.0.1:8000")
API = f"{BASE_URL}/api/v1"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def read_env_file(path: Path) -> dict[str, str]:
    env = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _sep, value = line.partition("=")
            env[key.strip()] = value.strip()
    return env


def wait_for(check: Callable[[], Any], timeout: float, interval: float = 0.1, what: str = "condition") -> Any:
    """Poll check() until it returns something truthy; fail with `what` after timeout seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout}s waiting for {what} (last value: {last!r})")


def compose(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    cmd = ["docker", "compose", "--project-directory", str(PROJECT_DIR), "-f", str(PROJECT_DIR / "compose.yml"), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def compose_bytes(*args: str, timeout: float = 60) -> bytes:
    cmd = ["docker", "compose", "--project-directory", str(PROJECT_DIR), "-f", str(PROJECT_DIR / "compose.yml"), *args]
    proc = subprocess.run(cmd, capture_output=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.decode(errors='replace')}")
    return proc.stdout


def run(cmd: list[str], timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def login(username: str, password: str) -> str:
    response = requests.post(f"{API}/auth/login", json={"username": username, "password": password}, timeout=10)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "bearer"
    return str(body["access_token"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def upload(headers: dict[str, str], filename: str, data: bytes, content_type: str) -> dict[str, Any]:
    response = requests.post(
        f"{API}/documents/", headers=headers, files={"file": (filename, data, content_type)}, timeout=30
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def start_ocr(headers: dict[str, str], document_id: str, **extra: Any) -> dict[str, Any]:
    response = requests.post(
        f"{API}/ocr/process", headers=headers, json={"document_id": document_id, "backend": "auto", **extra}, timeout=10
    )
    assert response.status_code == 202, response.text
    return dict(response.json())


def wait_job(headers: dict[str, str], job_id: str, timeout: float = 30) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        job = requests.get(f"{API}/ocr/jobs/{job_id}", headers=headers, timeout=10).json()
        return job if job["status"] in ("completed", "failed") else None

    return dict(wait_for(done, timeout, what=f"OCR job {job_id}"))


def pipeline() -> dict[str, Any]:
    return dict(requests.get(f"{API}/health/pipeline", timeout=10).json())


def dump(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=True)
