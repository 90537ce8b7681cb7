"""Login, JWT (HS256), roles."""

from __future__ import annotations

import base64
import json

import requests
from refstack import API, bearer


def pad(segment: str) -> str:
    return segment + "=" * (-len(segment) % 4)


def claims(token: str) -> dict[str, object]:
    header, payload, _sig = token.split(".")
    assert json.loads(base64.urlsafe_b64decode(pad(header)))["alg"] == "HS256"
    return dict(json.loads(base64.urlsafe_b64decode(pad(payload))))


def test_login_admin_and_user(env: dict[str, str]) -> None:
    for user, role in (("ADMIN", "admin"), ("SMOKE", "user")):
        response = requests.post(
            f"{API}/auth/login",
            json={"username": env[f"{user}_USERNAME"], "password": env[f"{user}_PASSWORD"]},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["token_type"] == "bearer"
        assert body["role"] == role
        c = claims(body["access_token"])
        assert c["sub"] == env[f"{user}_USERNAME"]
        assert c["role"] == role
        assert int(c["exp"]) > int(c["iat"])  # type: ignore[call-overload]


def test_login_form_encoded(env: dict[str, str]) -> None:
    response = requests.post(
        f"{API}/auth/login",
        data={"username": env["SMOKE_USERNAME"], "password": env["SMOKE_PASSWORD"]},
        timeout=10,
    )
    assert response.status_code == 200, response.text


def test_login_rejects_wrong_password(env: dict[str, str]) -> None:
    response = requests.post(
        f"{API}/auth/login", json={"username": env["ADMIN_USERNAME"], "password": "wrong"}, timeout=10
    )
    assert response.status_code == 401
    response = requests.post(f"{API}/auth/login", json={"username": "nobody", "password": "x"}, timeout=10)
    assert response.status_code == 401
    response = requests.post(f"{API}/auth/login", json={"username": "admin"}, timeout=10)
    assert response.status_code == 422


def test_token_required_and_checked(user_token: str) -> None:
    assert requests.get(f"{API}/documents/x", timeout=10).status_code == 401
    tampered = user_token[:-4] + ("AAAA" if not user_token.endswith("AAAA") else "BBBB")
    assert requests.get(f"{API}/documents/x", headers=bearer(tampered), timeout=10).status_code == 401
    assert requests.get(f"{API}/documents/x", headers=bearer(user_token), timeout=10).status_code == 404


def test_admin_endpoints_need_admin_role(user: dict[str, str], admin: dict[str, str]) -> None:
    for method, path in (
        ("GET", "/admin/maintenance"),
        ("POST", "/admin/maintenance/enable"),
        ("POST", "/admin/maintenance/disable"),
        ("POST", "/backup/full"),
        ("GET", "/backup/status"),
    ):
        response = requests.request(method, f"{API}{path}", headers=user, timeout=10)
        assert response.status_code == 403, (path, response.status_code, response.text)
    assert requests.get(f"{API}/admin/maintenance", headers=admin, timeout=10).status_code == 200
