"""Runs last: `scripts/stack.sh down` then `up` keeps PostgreSQL, object store and Redis data."""

from __future__ import annotations

import requests
from refstack import API, STACK, login, run, start_ocr, upload, wait_for, wait_job


def test_down_then_up_keeps_data(env: dict[str, str], version: str, admin: dict[str, str]) -> None:
    user = {"Authorization": f"Bearer {login(env['SMOKE_USERNAME'], env['SMOKE_PASSWORD'])}"}
    doc = upload(user, "bleibt.txt", b"Dieses Dokument bleibt", "text/plain")
    assert wait_job(user, start_ocr(user, doc["id"])["job_id"])["status"] == "completed"
    backup = requests.post(f"{API}/backup/full", headers=admin, timeout=10).json()["backup_id"]
    wait_for(
        lambda: requests.get(f"{API}/backup/status", headers=admin, timeout=10).json()["status"] == "completed",
        30,
        0.1,
        "the backup",
    )

    down = run([str(STACK), "down"], timeout=120)
    assert "volumes kept" in down.stdout
    try:
        requests.get(f"{API}/health", timeout=2)
        raise AssertionError("backend still answering after down")
    except requests.ConnectionError:
        pass
    run([str(STACK), "up", version], timeout=300)

    user = {"Authorization": f"Bearer {login(env['SMOKE_USERNAME'], env['SMOKE_PASSWORD'])}"}
    got = requests.get(f"{API}/documents/{doc['id']}", headers=user, timeout=10)
    assert got.status_code == 200, got.text  # PostgreSQL volume
    assert got.json()["text"] == "Dieses Dokument bleibt"
    again = wait_job(user, start_ocr(user, doc["id"])["job_id"])  # the worker reads the object again
    assert again["status"] == "completed" and again["text"] == "Dieses Dokument bleibt"  # object store volume
    status = requests.get(f"{API}/backup/status", headers=admin, timeout=10).json()
    assert status["backup_id"] == backup and status["status"] == "completed"  # Redis AOF volume
