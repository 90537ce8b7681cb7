"""api_backup: main() against a real HTTP server answering the backup API (scripted replies of the conftest backend)."""

from __future__ import annotations

import typing as t

from ansible_collections.ablage.ops.plugins.modules import api_backup

Backend = t.Any  # the conftest's Backend (tests do not import conftest)
Run = t.Callable[..., t.Any]

FULL = "/api/v1/backup/full"
STATUS = "/api/v1/backup/status"
BACKUP_ID = "full-20261127T104500Z-a1b2c3"


def record(status: str, backup_id: str = BACKUP_ID, **extra: t.Any) -> dict[str, t.Any]:
    done = status != "running"
    body: dict[str, t.Any] = {
        "backup_id": backup_id,
        "type": "full",
        "status": status,
        "file": f"/backups/ablage_{backup_id}.dump",
        "size_bytes": 5515 if status == "completed" else None,
        "sha256": "c" * 64 if status == "completed" else None,
        "started_at": "2026-11-27T10:45:00Z",
        "finished_at": "2026-11-27T10:45:02Z" if done else None,
        "requested_by": "admin",
        "error": None,
    }
    body.update(extra)
    return body


def args(backend: Backend, **extra: t.Any) -> dict[str, t.Any]:
    return {"api_url": backend.url, "admin_token": backend.admin_token, "poll_interval": 0.02, **extra}


def status_requests(backend: Backend) -> list[t.Any]:
    return [r for r in backend.requests if r.method == "GET" and r.path.startswith(STATUS)]


def test_started_running_completed(run_module: Run, backend: Backend) -> None:
    backend.script("POST", FULL, backend.Reply(202, record("running")))
    backend.script(
        "GET",
        STATUS,
        backend.Reply(200, record("running")),
        backend.Reply(200, record("running")),
        backend.Reply(200, record("completed")),
    )
    result = run_module(api_backup.main, args(backend))
    assert result.rc == 0, result["msg"]
    assert result["changed"] is True
    assert result["attached"] is False
    assert result["backup_id"] == BACKUP_ID
    assert result["backup"] == record("completed")
    assert result["polls"] == 3
    assert result["elapsed_s"] >= 0
    assert "completed" in result["msg"]
    assert backend.count("POST", FULL) == 1
    polls = status_requests(backend)
    assert [r.path for r in polls] == [f"{STATUS}?backup_id={BACKUP_ID}"] * 3
    # the admin token goes to the API, never into the output
    assert all(r.headers["Authorization"] == f"Bearer {backend.admin_token}" for r in backend.requests)
    assert backend.admin_token not in result["_raw"]


def test_conflict_attaches_to_the_running_backup(run_module: Run, backend: Backend) -> None:
    other = "full-20261127T104000Z-0perat"
    backend.script(
        "POST", FULL, backend.Reply(409, {"detail": "a backup is already running", **record("running", other)})
    )
    backend.script(
        "GET", STATUS, backend.Reply(200, record("running", other)), backend.Reply(200, record("completed", other))
    )
    result = run_module(api_backup.main, args(backend))
    assert result.rc == 0, result["msg"]
    assert result["changed"] is True
    assert result["attached"] is True
    assert result["backup_id"] == other
    assert result["backup"]["status"] == "completed"
    assert "detail" not in result["backup"]
    assert "attached" in result["msg"]
    assert backend.count("POST", FULL) == 1
    assert {r.path for r in status_requests(backend)} == {f"{STATUS}?backup_id={other}"}


def test_failed_backup_fails_with_the_api_error(run_module: Run, backend: Backend) -> None:
    backend.script("POST", FULL, backend.Reply(202, record("running")))
    backend.script(
        "GET",
        STATUS,
        backend.Reply(200, record("running")),
        backend.Reply(200, record("failed", error="pg_dump exited 1: connection refused")),
    )
    result = run_module(api_backup.main, args(backend))
    assert result.rc == 1
    assert result["failed"] is True
    assert "pg_dump exited 1: connection refused" in result["msg"]
    assert result["backup"]["status"] == "failed"
    assert result["backup_id"] == BACKUP_ID


def test_timeout_names_wait_timeout(run_module: Run, backend: Backend) -> None:
    backend.script("POST", FULL, backend.Reply(202, record("running")))
    backend.script("GET", STATUS, backend.Reply(200, record("running")))
    result = run_module(api_backup.main, args(backend, wait_timeout=0.5, poll_interval=0.05))
    assert result.rc == 1
    assert "wait_timeout=0.5" in result["msg"]
    assert BACKUP_ID in result["msg"]
    assert result["backup"]["status"] == "running"
    assert result["polls"] >= 2
    assert len(status_requests(backend)) == result["polls"]


def test_rejected_token_names_the_admin_token(run_module: Run, backend: Backend) -> None:
    backend.script("POST", FULL, backend.Reply(401, {"detail": "Not authenticated"}))
    result = run_module(api_backup.main, args(backend, admin_token="not-an-admin-token"))
    assert result.rc == 1
    assert result["status"] == 401
    assert "admin_token was rejected" in result["msg"]
    assert "ablage_admin_token" in result["msg"]
    assert result["changed"] is False
    assert status_requests(backend) == []
    assert "not-an-admin-token" not in result["_raw"]


def test_forbidden_while_polling(run_module: Run, backend: Backend) -> None:
    backend.script("POST", FULL, backend.Reply(202, record("running")))
    backend.script("GET", STATUS, backend.Reply(403, {"detail": "Admin privileges required"}))
    result = run_module(api_backup.main, args(backend))
    assert result.rc == 1
    assert result["status"] == 403
    assert "admin_token was rejected" in result["msg"]


def test_check_mode_sends_nothing(run_module: Run, backend: Backend) -> None:
    result = run_module(api_backup.main, args(backend, wait_timeout=120), check_mode=True)
    assert result.rc == 0, result["msg"]
    assert result["changed"] is True
    assert result["plan"] == {
        "start": f"{backend.url}{FULL}",
        "status": f"{backend.url}{STATUS}",
        "wait": True,
        "wait_timeout": 120.0,
    }
    assert result["backup"] == {}
    assert result["backup_id"] is None
    assert backend.requests == []


def test_no_wait_returns_the_started_record(run_module: Run, backend: Backend) -> None:
    backend.script("POST", FULL, backend.Reply(202, record("running")))
    result = run_module(api_backup.main, args(backend, wait=False))
    assert result.rc == 0, result["msg"]
    assert result["backup"]["status"] == "running"
    assert status_requests(backend) == []


def test_unreachable_api(run_module: Run, free_port: int) -> None:
    result = run_module(
        api_backup.main, {"api_url": f"http://127.0.0.1:{free_port}", "admin_token": "x" * 20, "timeout": 2}
    )
    assert result.rc == 1
    assert "cannot reach the backup API" in result["msg"]
