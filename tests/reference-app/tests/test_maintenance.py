"""Maintenance mode: admin toggle, 503 for everyone else, exemptions, persistence in Redis."""

from __future__ import annotations

import requests
from refstack import API, BASE_URL, compose, wait_for


def state(admin: dict[str, str]) -> dict[str, object]:
    response = requests.get(f"{API}/admin/maintenance", headers=admin, timeout=10)
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_toggle_is_idempotent(admin: dict[str, str]) -> None:
    assert state(admin)["enabled"] is False
    first = requests.post(f"{API}/admin/maintenance/enable", headers=admin, json={"reason": "deploy 1.1.0"}, timeout=10)
    assert first.status_code == 200 and first.json()["enabled"] is True and first.json()["changed"] is True
    again = requests.post(f"{API}/admin/maintenance/enable", headers=admin, timeout=10).json()
    assert again["enabled"] is True and again["changed"] is False
    assert again["reason"] == "deploy 1.1.0"
    current = state(admin)
    assert current["enabled"] is True and current["by"] == "admin" and current["since"]
    off = requests.post(f"{API}/admin/maintenance/disable", headers=admin, timeout=10).json()
    assert off == {"enabled": False, "changed": True}
    assert requests.post(f"{API}/admin/maintenance/disable", headers=admin, timeout=10).json()["changed"] is False


def test_non_admin_calls_get_503_while_enabled(
    admin: dict[str, str], user: dict[str, str], env: dict[str, str]
) -> None:
    requests.post(f"{API}/admin/maintenance/enable", headers=admin, json={"reason": "upgrade"}, timeout=10)
    for headers in (user, {}):
        response = requests.get(f"{API}/documents/anything", headers=headers, timeout=10)
        assert response.status_code == 503, response.text
        body = response.json()
        assert body["maintenance"] is True and body["reason"] == "upgrade"
        assert response.headers["Retry-After"]
    response = requests.post(f"{API}/ocr/process", headers=user, json={"document_id": "x"}, timeout=10)
    assert response.status_code == 503
    assert requests.get(f"{BASE_URL}/admin", timeout=10).status_code == 503
    # exempt: health, metrics, login
    for path in ("/health", "/health/detailed", "/health/pipeline", "/health/gpu-memory", "/health/complete"):
        assert requests.get(f"{API}{path}", timeout=10).status_code == 200, path
    assert requests.get(f"{BASE_URL}/metrics", timeout=10).status_code == 200
    login = requests.post(
        f"{API}/auth/login", json={"username": env["SMOKE_USERNAME"], "password": env["SMOKE_PASSWORD"]}, timeout=10
    )
    assert login.status_code == 200
    # admins pass
    assert requests.get(f"{API}/documents/anything", headers=admin, timeout=10).status_code == 404
    metrics = requests.get(f"{BASE_URL}/metrics", timeout=10).text
    assert "ablage_maintenance_enabled 1.0" in metrics
    requests.post(f"{API}/admin/maintenance/disable", headers=admin, timeout=10)
    assert requests.get(f"{API}/documents/anything", headers=user, timeout=10).status_code == 404


def test_flag_survives_backend_restart(admin: dict[str, str]) -> None:
    requests.post(f"{API}/admin/maintenance/enable", headers=admin, timeout=10)
    compose("restart", "backend")

    def back() -> bool:
        try:
            return requests.get(f"{API}/health", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    wait_for(back, 30, 0.2, "backend back after restart")
    assert state(admin)["enabled"] is True
