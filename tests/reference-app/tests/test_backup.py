"""Full backup through the API: pg_dump -Fc into the backups volume, checksum, status."""

from __future__ import annotations

import hashlib
from typing import Any

import requests
from refstack import API, compose, compose_bytes, wait_for


def test_full_backup_completes_and_file_is_valid(admin: dict[str, str]) -> None:
    response = requests.post(f"{API}/backup/full", headers=admin, timeout=10)
    assert response.status_code == 202, response.text
    started = response.json()
    backup_id = started["backup_id"]
    assert started["status"] == "running"

    def finished() -> dict[str, Any] | None:
        status = requests.get(f"{API}/backup/status", headers=admin, timeout=10).json()
        return status if status["status"] != "running" else None

    status = wait_for(finished, 30, 0.1, "the backup")
    assert status["status"] == "completed", status
    assert status["backup_id"] == backup_id
    assert status["file"].startswith("/backups/") and status["file"].endswith(".dump")
    assert status["size_bytes"] > 0 and len(status["sha256"]) == 64
    assert status["started_at"] and status["finished_at"]
    by_id = requests.get(f"{API}/backup/status", params={"backup_id": backup_id}, headers=admin, timeout=10)
    assert by_id.json() == status

    # the file is in the backups volume, with that size and checksum, and pg_restore reads it
    content = compose_bytes("exec", "-T", "backend", "cat", status["file"])
    assert len(content) == status["size_bytes"]
    assert hashlib.sha256(content).hexdigest() == status["sha256"]
    assert content.startswith(b"PGDMP")
    listing = compose("exec", "-T", "backend", "pg_restore", "--list", status["file"]).stdout
    assert "TABLE public documents" in listing and "TABLE public ocr_jobs" in listing


def test_backup_status_unknown_id(admin: dict[str, str]) -> None:
    response = requests.get(f"{API}/backup/status", params={"backup_id": "nope"}, headers=admin, timeout=10)
    assert response.status_code == 404
