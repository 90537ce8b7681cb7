"""The four releases behave as the deploy/rollback tests need them to, on a scratch database.

1.0.0 baseline (0001) -> 1.1.0 adds and backfills documents.page_count (0002, reversible)
-> 1.2.0-broken migrates fine (0003) but fails its health checks
-> 1.3.0-badmigration fails halfway: stays at 0002 with part of its change committed.
"""

from __future__ import annotations

import secrets
import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg2
import pytest
import requests
from refstack import PROJECT_DIR, REGISTRY, compose, run, wait_for


def image(role: str, version: str) -> str:
    return f"{REGISTRY}/ablage/{role}:{version}"


@pytest.fixture(scope="module")
def scratch_db(env: dict[str, str]) -> Iterator[str]:
    """A throwaway database in the stack's PostgreSQL; yields its URL."""
    admin_url = env["DATABASE_URL"]
    name = f"ablage_reftest_{secrets.token_hex(4)}"
    conn = psycopg2.connect(admin_url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(admin_url)
    url = urlunsplit(parts._replace(path=f"/{name}"))
    try:
        yield url
    finally:
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.close()


def alembic(version: str, url: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run(
        [
            "docker",
            "run",
            "--rm",
            "--network",
            "host",
            "-e",
            f"DATABASE_URL={url}",
            image("backend", version),
            "alembic",
            *args,
        ],
        check=check,
    )


def query(url: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall() if cur.description else []


def columns(url: str) -> set[str]:
    rows = query(url, "SELECT column_name FROM information_schema.columns WHERE table_name = 'documents'")
    return {r[0] for r in rows}


def revision(url: str) -> str | None:
    rows = query(url, "SELECT version_num FROM alembic_version")
    return rows[0][0] if rows else None


def insert_document(url: str, text: str | None) -> str:
    doc_id = str(uuid.uuid4())
    query(
        url,
        "INSERT INTO documents (id, filename, content_type, size_bytes, sha256, object_key, owner, status, ocr_text)"
        " VALUES (%s, 'f.pdf', 'application/pdf', 1, %s, 'k', 'smoke', %s, %s)",
        (doc_id, "0" * 64, "processed" if text else "uploaded", text),
    )
    return doc_id


def test_each_image_ships_only_its_migrations(stack_lock: None) -> None:
    expected = {
        "1.0.0": ["0001"],
        "1.1.0": ["0001", "0002"],
        "1.1.1": ["0001", "0002"],
        "1.2.0-broken": ["0001", "0002", "0003"],
        "1.3.0-badmigration": ["0001", "0002", "0004"],
        "1.4.0": ["0001", "0002", "0005"],
    }
    for version, revisions in expected.items():
        out = run(
            [
                "docker",
                "run",
                "--rm",
                image("backend", version),
                "sh",
                "-c",
                "ls migrations/versions; echo VERSION=$APP_VERSION",
            ]
        ).stdout
        shipped = sorted(line[:4] for line in out.split() if line.endswith(".py"))
        assert shipped == revisions, (version, out)
        assert f"VERSION={version}" in out


def test_upgrade_1_0_to_1_1_backfills_and_downgrades(scratch_db: str) -> None:
    out = alembic("1.0.0", scratch_db, "upgrade", "head")
    assert "Running upgrade  -> 0001" in out.stderr
    assert revision(scratch_db) == "0001"
    two_pages = insert_document(scratch_db, "page one\fpage two")
    unprocessed = insert_document(scratch_db, None)

    preview = alembic("1.1.0", scratch_db, "upgrade", "0001:head", "--sql").stdout
    assert "ALTER TABLE documents ADD COLUMN page_count INTEGER" in preview
    assert "UPDATE alembic_version SET version_num='0002'" in preview
    assert revision(scratch_db) == "0001"  # --sql changes nothing

    alembic("1.1.0", scratch_db, "upgrade", "head")
    assert revision(scratch_db) == "0002"
    counts = dict(query(scratch_db, "SELECT id, page_count FROM documents"))
    assert counts == {two_pages: 2, unprocessed: None}
    current = alembic("1.1.0", scratch_db, "current").stdout
    assert "0002 (head)" in current
    history = alembic("1.1.0", scratch_db, "history").stdout
    assert "0001 -> 0002 (head)" in history

    alembic("1.1.0", scratch_db, "downgrade", "0001")
    assert revision(scratch_db) == "0001"
    assert "page_count" not in columns(scratch_db)
    # the old release cannot downgrade what it does not know; the newer image can
    alembic("1.1.0", scratch_db, "upgrade", "head")
    assert alembic("1.0.0", scratch_db, "downgrade", "0001", check=False).returncode != 0


def test_broken_release_migrates_but_fails_health(scratch_db: str, env: dict[str, str]) -> None:
    alembic("1.2.0-broken", scratch_db, "upgrade", "head")
    assert revision(scratch_db) == "0003"
    name = f"ablage-reftest-broken-{secrets.token_hex(3)}"
    run(
        [
            "docker",
            "run",
            "-d",
            "--name",
            name,
            "--network",
            "host",
            "--env-file",
            str(PROJECT_DIR / ".env.production"),
            "-e",
            f"DATABASE_URL={scratch_db}",
            "-e",
            "BACKEND_PORT=8001",
            "--health-interval",
            "1s",
            "--health-start-period",
            "2s",
            "--health-retries",
            "2",
            image("backend", "1.2.0-broken"),
        ]
    )
    try:

        def answering() -> list[requests.Response] | None:
            try:  # a list, since a 503 Response is falsy
                return [requests.get("http://127.0.0.1:8001/api/v1/health", timeout=2)]
            except requests.RequestException:
                return None

        (response,) = wait_for(answering, 30, 0.2, "the 1.2.0-broken backend to answer")
        assert response.status_code == 503
        assert response.json()["status"] == "unhealthy"
        assert "document_tags" in response.json()["errors"]["database"]
        detailed = requests.get("http://127.0.0.1:8001/api/v1/health/detailed", timeout=5)
        assert detailed.status_code == 503
        assert detailed.json()["components"]["database"]["status"] == "unhealthy"

        def container_health() -> str | None:
            state = run(["docker", "inspect", "-f", "{{.State.Health.Status}}", name]).stdout.strip()
            return state if state == "unhealthy" else None

        wait_for(container_health, 20, 0.5, "docker to mark the container unhealthy")
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)
    alembic("1.2.0-broken", scratch_db, "downgrade", "0002")
    assert revision(scratch_db) == "0002"


def test_bad_migration_fails_halfway(scratch_db: str) -> None:
    if revision(scratch_db) != "0002":
        alembic("1.1.0", scratch_db, "upgrade", "head")
    failed = alembic("1.3.0-badmigration", scratch_db, "upgrade", "head", check=False)
    assert failed.returncode != 0
    assert "ablage_detect_language" in failed.stderr
    assert revision(scratch_db) == "0002"
    assert "language" in columns(scratch_db)  # committed before the failure
    indexes = {r[0] for r in query(scratch_db, "SELECT indexname FROM pg_indexes WHERE tablename = 'documents'")}
    assert "ix_documents_language" in indexes
    again = alembic("1.3.0-badmigration", scratch_db, "upgrade", "head", check=False)
    assert again.returncode != 0 and "already exists" in again.stderr


def test_alembic_through_compose_run(version: str) -> None:
    """The checklist's form: docker compose run --rm backend alembic ... in the project dir."""
    start = time.monotonic()
    out = compose("run", "--rm", "-T", "--no-deps", "backend", "alembic", "current")
    assert "(head)" in out.stdout, out.stdout + out.stderr
    assert time.monotonic() - start < 30
