"""Full database backup: pg_dump -Fc into BACKUP_DIR in the background, state in Redis."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import subprocess  # nosec B404 - pg_dump is run with a fixed argument list, no shell
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from app.services import BACKUP_LATEST_KEY, BACKUP_PREFIX, Services

log = logging.getLogger("ablage.backup")
STATE_TTL_SECONDS = 30 * 24 * 3600


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def libpq_env(database_url: str) -> tuple[dict[str, str], str]:
    """PG* variables for pg_dump from DATABASE_URL, so the password is not on the command line."""
    parts = urlsplit(database_url.replace("postgresql+psycopg2://", "postgresql://"))
    env = {
        "PGHOST": parts.hostname or "127.0.0.1",
        "PGPORT": str(parts.port or 5432),
        "PGUSER": unquote(parts.username or "postgres"),
        "PGPASSWORD": unquote(parts.password or ""),
        "PGCONNECT_TIMEOUT": "5",
    }
    return env, parts.path.lstrip("/") or "postgres"


class BackupManager:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.dir = Path(services.settings.backup_dir)
        self._lock = threading.Lock()

    def _save(self, state: dict[str, Any]) -> None:
        r = self.services.redis
        r.set(BACKUP_PREFIX + state["backup_id"], json.dumps(state), ex=STATE_TTL_SECONDS)
        r.set(BACKUP_LATEST_KEY, state["backup_id"], ex=STATE_TTL_SECONDS)

    def get(self, backup_id: str | None = None) -> dict[str, Any] | None:
        r = self.services.redis
        backup_id = backup_id or r.get(BACKUP_LATEST_KEY)
        if not backup_id:
            return None
        raw = r.get(BACKUP_PREFIX + str(backup_id))
        return json.loads(raw) if raw else None

    def mark_interrupted(self) -> None:
        """At startup: a backup still 'running' was cut off by a restart."""
        state = self.get()
        if state and state.get("status") == "running":
            state.update(status="failed", error="interrupted by a backend restart", finished_at=_now())
            self._save(state)

    def start(self, requested_by: str) -> tuple[dict[str, Any], bool]:
        """Start a backup; returns (state, started). A running backup is returned, not doubled."""
        with self._lock:
            current = self.get()
            if current and current.get("status") == "running":
                return current, False
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
            backup_id = f"full-{stamp}-{secrets.token_hex(3)}"
            state: dict[str, Any] = {
                "backup_id": backup_id,
                "type": "full",
                "format": "pg_dump custom (-Fc)",
                "status": "running",
                "file": str(self.dir / f"ablage_{backup_id}.dump"),
                "size_bytes": None,
                "sha256": None,
                "started_at": _now(),
                "finished_at": None,
                "requested_by": requested_by,
                "error": None,
            }
            self._save(state)
        threading.Thread(target=self._run, args=(state,), name=f"backup-{backup_id}", daemon=True).start()
        return state, True

    def _run(self, state: dict[str, Any]) -> None:
        target = Path(state["file"])
        partial = target.with_suffix(".partial")
        env, dbname = libpq_env(self.services.settings.database_url)
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            proc = subprocess.run(  # nosec B603 B607 - fixed argv, pg_dump from the image
                ["pg_dump", "-Fc", "--no-password", "-f", str(partial), "-d", dbname],
                env={**os.environ, **env},
                capture_output=True,
                text=True,
                timeout=3600,
                check=False,
            )
            if proc.returncode != 0:
                raise RuntimeError(f"pg_dump exited {proc.returncode}: {proc.stderr.strip()[:500]}")
            digest = hashlib.sha256()
            with partial.open("rb") as fh:
                for chunk in iter(lambda: fh.read(1024 * 1024), b""):
                    digest.update(chunk)
            partial.rename(target)
            target.chmod(0o600)
            state.update(
                status="completed",
                size_bytes=target.stat().st_size,
                sha256=digest.hexdigest(),
                finished_at=_now(),
            )
            log.info("backup %s completed: %s (%d bytes)", state["backup_id"], target, state["size_bytes"])
        except Exception as exc:  # report any failure in the backup state
            partial.unlink(missing_ok=True)
            state.update(status="failed", error=str(exc)[:1000], finished_at=_now())
            log.error("backup %s failed: %s", state["backup_id"], exc)
        self._save(state)
