"""maintenance_toggle: main() against a real HTTP server implementing the maintenance API."""

from __future__ import annotations

import json
import typing as t

import pytest

from ansible_collections.ablage.ops.plugins.modules import maintenance_toggle

Backend = t.Any  # the conftest's Backend (tests do not import conftest)
Run = t.Callable[..., t.Any]

ENABLE = "/api/v1/admin/maintenance/enable"
DISABLE = "/api/v1/admin/maintenance/disable"
STATUS = "/api/v1/admin/maintenance"


def args(backend: Backend, state: str, **extra: t.Any) -> dict[str, t.Any]:
    return {"state": state, "api_url": backend.url, "admin_token": backend.admin_token, "verify_delay": 0.05, **extra}


def test_enable_check_real_repeat(run_module: Run, backend: Backend) -> None:
    # check mode: would change, sends no POST, does not verify
    check = run_module(maintenance_toggle.main, args(backend, "enabled"), check_mode=True, diff=True)
    assert check.rc == 0, check["msg"]
    assert check["changed"] is True
    assert (check["enabled_before"], check["enabled_after"]) == (False, True)
    assert check["diff"] == {"before": {"enabled": False}, "after": {"enabled": True}}
    assert check["verification"] == {"performed": False}
    assert check["msg"] == "maintenance would be on (changed)"
    assert backend.count("POST", ENABLE) == 0
    assert backend.maintenance is False

    # real run: changes, reads back, verifies 503 for anonymous requests
    real = run_module(maintenance_toggle.main, args(backend, "enabled"), diff=True)
    assert real.rc == 0, real["msg"]
    assert real["changed"] is True
    assert (real["enabled_before"], real["enabled_after"]) == (False, True)
    assert real["diff"] == {"before": {"enabled": False}, "after": {"enabled": True}}
    verification = real["verification"]
    assert verification["performed"] is True
    assert verification["url"] == f"{backend.url}/api/v1/documents/"
    assert verification["status"] == 503
    assert verification["expected"] == "503"
    assert verification["ok"] is True
    assert verification["attempts"] == 1
    assert verification["latency_ms"] > 0
    assert backend.count("POST", ENABLE) == 1
    assert backend.maintenance is True
    assert real["msg"] == "maintenance is on (changed)"

    # repeat: nothing to do, still verified
    again = run_module(maintenance_toggle.main, args(backend, "enabled"))
    assert again.rc == 0
    assert again["changed"] is False
    assert (again["enabled_before"], again["enabled_after"]) == (True, True)
    assert again["verification"]["status"] == 503
    assert "diff" not in again
    assert backend.count("POST", ENABLE) == 1
    assert again["msg"] == "maintenance is on (unchanged)"


def test_disable_check_real_repeat(run_module: Run, backend: Backend) -> None:
    backend.state.maintenance = True
    check = run_module(maintenance_toggle.main, args(backend, "disabled"), check_mode=True)
    assert (check["changed"], check["enabled_after"]) == (True, False)
    assert backend.count("POST", DISABLE) == 0

    real = run_module(maintenance_toggle.main, args(backend, "disabled"))
    assert real.rc == 0, real["msg"]
    assert (real["changed"], real["enabled_before"], real["enabled_after"]) == (True, True, False)
    assert real["verification"]["status"] == 401  # anonymous, but not blocked by maintenance
    assert real["verification"]["expected"] == "not 503"
    assert backend.maintenance is False

    again = run_module(maintenance_toggle.main, args(backend, "disabled"))
    assert again["changed"] is False
    assert backend.count("POST", DISABLE) == 1


def test_reason_is_sent_with_enable_only(run_module: Run, backend: Backend) -> None:
    assert run_module(maintenance_toggle.main, args(backend, "enabled", reason="deploy 1.1.0")).rc == 0
    enable = [r for r in backend.requests if r.path == ENABLE][-1]
    assert json.loads(enable.body) == {"reason": "deploy 1.1.0"}
    assert run_module(maintenance_toggle.main, args(backend, "disabled", reason="deploy 1.1.0")).rc == 0
    disable = [r for r in backend.requests if r.path == DISABLE][-1]
    assert disable.body == b""


def test_check_mode_without_change_verifies(run_module: Run, backend: Backend) -> None:
    result = run_module(maintenance_toggle.main, args(backend, "disabled"), check_mode=True, diff=True)
    assert result["changed"] is False
    assert result["verification"]["performed"] is True
    assert result["diff"] == {"before": {"enabled": False}, "after": {"enabled": False}}
    assert result["msg"] == "maintenance would be off (unchanged)"


def test_user_token_for_verification(run_module: Run, backend: Backend) -> None:
    result = run_module(maintenance_toggle.main, args(backend, "disabled", verify_token=backend.user_token))
    assert result.rc == 0
    assert result["verification"]["status"] == 200
    probe = [r for r in backend.requests if r.path == "/api/v1/documents/"][-1]
    assert probe.headers["Authorization"] == f"Bearer {backend.user_token}"
    admin_calls = [r for r in backend.requests if r.path.startswith("/api/v1/admin/")]
    assert all(r.headers["Authorization"] == f"Bearer {backend.admin_token}" for r in admin_calls)


def test_tokens_are_never_printed(run_module: Run, backend: Backend) -> None:
    result = run_module(maintenance_toggle.main, args(backend, "enabled", verify_token=backend.user_token))
    assert result.rc == 0
    assert backend.admin_token not in result["_raw"]
    assert backend.user_token not in result["_raw"]


def test_verify_off(run_module: Run, backend: Backend) -> None:
    result = run_module(maintenance_toggle.main, args(backend, "enabled", verify=False))
    assert result.rc == 0
    assert result["verification"] == {"performed": False}
    assert not any(r.path == "/api/v1/documents/" for r in backend.requests)


def test_custom_paths(run_module: Run, backend: Backend) -> None:
    backend.script("GET", "/ops/maint", backend.Reply(200, {"enabled": False}))
    backend.script("POST", "/ops/maint/on", backend.Reply(204))
    result = run_module(
        maintenance_toggle.main,
        args(
            backend,
            "enabled",
            status_path="/ops/maint",
            enable_path="/ops/maint/on",
            disable_path="/ops/maint/off",
            verify=False,
        ),
    )
    # the scripted status endpoint never flips: the module notices
    assert result.rc == 1
    assert backend.count("POST", "/ops/maint/on") == 1
    assert "the API accepted the enable request, but /ops/maint still reports enabled=False" in result["msg"]
    assert result["enabled_after"] is False


def test_toggle_accepted_but_not_applied(run_module: Run, backend: Backend) -> None:
    backend.state.toggle_ignored = True
    result = run_module(maintenance_toggle.main, args(backend, "enabled"))
    assert result.rc == 1
    assert "still reports enabled=False; check the backend's logs" in result["msg"]
    assert result["enabled_before"] is False


def test_middleware_not_blocking(run_module: Run, backend: Backend) -> None:
    backend.state.middleware_off = True
    result = run_module(maintenance_toggle.main, args(backend, "enabled", verify_timeout=1.0))
    assert result.rc == 1
    assert result["changed"] is True
    assert result["enabled_after"] is True
    assert result["verification"]["ok"] is False
    assert result["verification"]["status"] == 401
    assert result["verification"]["attempts"] >= 2
    assert "maintenance is on according to the API, but GET" in result["msg"]
    assert "answered HTTP 401 (expected 503)" in result["msg"]
    assert "does not block non-admin requests" in result["msg"]


def test_still_blocked_after_disable_is_retried(run_module: Run, backend: Backend) -> None:
    backend.state.maintenance = True
    backend.state.stale_503_after_disable = 2
    result = run_module(maintenance_toggle.main, args(backend, "disabled"))
    assert result.rc == 0, result["msg"]
    assert result["verification"]["attempts"] == 3
    assert result["verification"]["status"] == 401


def test_still_blocked_after_disable_times_out(run_module: Run, backend: Backend) -> None:
    backend.state.maintenance = True
    backend.state.stale_503_after_disable = 10_000
    result = run_module(maintenance_toggle.main, args(backend, "disabled", verify_timeout=1.0))
    assert result.rc == 1
    assert "answered HTTP 503 (expected not 503)" in result["msg"]
    assert "still blocked" in result["msg"]
    assert "raise verify_timeout" in result["msg"]


def test_verification_target_unreachable(run_module: Run, backend: Backend, free_port: int) -> None:
    unreachable = f"http://127.0.0.1:{free_port}/x"
    result = run_module(maintenance_toggle.main, args(backend, "disabled", verify_path=unreachable, verify_timeout=0.5))
    assert result.rc == 1
    assert result["verification"]["status"] is None
    assert "refused" in result["verification"]["error"].lower()
    assert "refused" in result["msg"].lower()


def test_wrong_admin_token(run_module: Run, backend: Backend) -> None:
    result = run_module(maintenance_toggle.main, {**args(backend, "enabled"), "admin_token": "user-is-not-admin"})
    assert result.rc == 1
    assert result["status"] == 403
    assert "admin_token was rejected" in result["msg"]
    assert "POST /api/v1/auth/login" in result["msg"]
    assert backend.count("POST", ENABLE) == 0


def test_status_path_not_found(run_module: Run, backend: Backend) -> None:
    result = run_module(maintenance_toggle.main, args(backend, "enabled", status_path="/api/v1/admin/nope"))
    assert result.rc == 1
    assert "answered 404: the maintenance API is not at this path" in result["msg"]


def test_status_not_json(run_module: Run, backend: Backend) -> None:
    backend.script("GET", STATUS, backend.Reply(200, "<html>login</html>"))
    result = run_module(maintenance_toggle.main, args(backend, "enabled"))
    assert result.rc == 1
    assert 'did not answer {"enabled": true|false}' in result["msg"]
    assert "<html>login</html>" in result["msg"]


def test_status_wrong_shape(run_module: Run, backend: Backend) -> None:
    backend.script("GET", STATUS, backend.Reply(200, {"enabled": "yes"}))
    result = run_module(maintenance_toggle.main, args(backend, "enabled"))
    assert result.rc == 1
    assert "check that status_path points at the maintenance status endpoint" in result["msg"]


def test_server_error_on_enable(run_module: Run, backend: Backend) -> None:
    backend.script("POST", ENABLE, backend.Reply(500, {"detail": "database is locked"}))
    result = run_module(maintenance_toggle.main, args(backend, "enabled"))
    assert result.rc == 1
    assert result["status"] == 500
    assert "answered 500" in result["msg"]
    assert "database is locked" in result["msg"]
    assert result["enabled_before"] is False


def test_api_unreachable(run_module: Run, free_port: int) -> None:
    result = run_module(
        maintenance_toggle.main,
        {"state": "enabled", "api_url": f"http://127.0.0.1:{free_port}", "admin_token": "x" * 20},
    )
    assert result.rc == 1
    assert result["msg"].startswith("cannot reach the admin API: GET http://127.0.0.1:")
    assert "check that the service is running" in result["msg"]


@pytest.mark.parametrize(
    ("missing", "message"),
    [
        ("state", "missing required arguments: state"),
        # api_url and admin_token are required with the default method=api only
        ("api_url", "method is api but all of the following are missing: api_url"),
        ("admin_token", "method is api but all of the following are missing: admin_token"),
    ],
)
def test_required_options(run_module: Run, backend: Backend, missing: str, message: str) -> None:
    module_args = args(backend, "enabled")
    del module_args[missing]
    result = run_module(maintenance_toggle.main, module_args)
    assert result.rc == 1
    assert message in result["msg"]


def test_tls_backend(run_module: Run, tls_backend: Backend, pki: t.Any) -> None:
    unverified = run_module(maintenance_toggle.main, args(tls_backend, "enabled"))
    assert unverified.rc == 1
    assert "set ca_path" in unverified["msg"]
    result = run_module(maintenance_toggle.main, args(tls_backend, "enabled", ca_path=str(pki.ca)))
    assert result.rc == 0, result["msg"]
    assert result["verification"]["status"] == 503
