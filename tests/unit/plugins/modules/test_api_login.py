"""api_login: main() against a real HTTP server (scripted replies of the conftest backend)."""

from __future__ import annotations

import json
import typing as t

from ansible_collections.ablage.ops.plugins.modules import api_login

Backend = t.Any  # the conftest's Backend (tests do not import conftest)
Run = t.Callable[..., t.Any]

LOGIN = "/api/v1/auth/login"


def args(backend: Backend, **extra: t.Any) -> dict[str, t.Any]:
    return {"api_url": backend.url, "username": "admin", "password": "s3cret-pw-4711", **extra}


def test_the_token_of_the_answer(run_module: Run, backend: Backend) -> None:
    backend.script("POST", LOGIN, backend.Reply(200, {"access_token": "tok-1", "token_type": "bearer"}))
    result = run_module(api_login.main, args(backend))
    assert result.rc == 0, result["msg"]
    assert (result["token"], result["status"], result["error"], result["changed"]) == ("tok-1", 200, "", False)
    sent = [r for r in backend.requests if r.path == LOGIN]
    assert len(sent) == 1 and json.loads(sent[0].body) == {"username": "admin", "password": "s3cret-pw-4711"}


def test_another_path_and_a_nested_token_field(run_module: Run, backend: Backend) -> None:
    backend.script("POST", "/auth/token", backend.Reply(200, {"data": {"jwt": "tok-2"}}))
    result = run_module(api_login.main, args(backend, login_path="/auth/token", token_field="data.jwt"))
    assert result.rc == 0, result["msg"]
    assert result["token"] == "tok-2"


def test_a_refused_login_fails_with_the_answer_and_never_the_password(run_module: Run, backend: Backend) -> None:
    backend.script("POST", LOGIN, backend.Reply(401, {"detail": "Invalid credentials"}))
    result = run_module(api_login.main, args(backend))
    assert result.rc == 1
    assert "Login as admin failed" in result["msg"] and "answered 401" in result["msg"]
    assert "Invalid credentials" in result["msg"] and result["status"] == 401
    assert "s3cret-pw-4711" not in result["_raw"]


def test_an_answer_without_the_token_names_the_setting(run_module: Run, backend: Backend) -> None:
    backend.script("POST", LOGIN, backend.Reply(200, {"token": "tok-3"}))
    result = run_module(api_login.main, args(backend))
    assert result.rc == 1 and "without a token at 'access_token' (set token_field)" in result["msg"]


def test_not_required_no_answer_is_an_error_not_a_failure(run_module: Run, free_port: int) -> None:
    result = run_module(api_login.main, {**args_for(f"http://127.0.0.1:{free_port}"), "required": False})
    assert result.rc == 0, result["msg"]
    assert result["token"] == "" and result["status"] is None
    assert "check that the service is running" in result["error"]


def test_required_no_answer_fails(run_module: Run, free_port: int) -> None:
    result = run_module(api_login.main, args_for(f"http://127.0.0.1:{free_port}"))
    assert result.rc == 1 and "Login as admin failed" in result["msg"]


def args_for(url: str) -> dict[str, t.Any]:
    return {"api_url": url, "username": "admin", "password": "s3cret-pw-4711", "timeout": 2.0}
