"""ablage.ops.alembic_migrate against a real PostgreSQL 15 server and the fixture Alembic project.

The project (fixtures/alembic_project) has four revisions:
0001 creates documents and users; 0002 adds documents.status with a backfill
computed in Python from the rows (cannot be rendered offline); 0003 creates tags,
an index, and sets users.email NOT NULL (destructive only when users has rows);
0004 drops users.legacy_flag.
"""

from __future__ import annotations

import os
import subprocess
import sys
import typing as t
from pathlib import Path

import pytest

from ansible_collections.ablage.ops.plugins.modules import alembic_migrate

ALEMBIC_PROJECT = Path(__file__).resolve().parent / "fixtures" / "alembic_project"

pytestmark = pytest.mark.integration

CONFIG = str(ALEMBIC_PROJECT / "alembic.ini")


@pytest.fixture
def args(pg_server: t.Any, fresh_db: str) -> dict[str, t.Any]:
    return {
        "config": CONFIG,
        "database_url": pg_server.url(fresh_db).replace("postgresql://", "postgresql+psycopg2://"),
    }


def alembic(pg_server: t.Any, db: str, *args: str) -> None:
    """Move the database with Alembic itself (test setup, one process instead of a module run)."""
    subprocess.run(
        [sys.executable, "-m", "alembic", "-c", CONFIG, *args],
        env={**os.environ, "DATABASE_URL": pg_server.url(db)},
        check=True,
        capture_output=True,
    )


def tables(pg_server: t.Any, db: str) -> list[str]:
    rows = pg_server.execute(db, "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
    return [r[0] for r in rows]


def revision(pg_server: t.Any, db: str) -> str | None:
    if "alembic_version" not in tables(pg_server, db):
        return None
    rows = pg_server.execute(db, "SELECT version_num FROM alembic_version")
    return rows[0][0] if rows else None


def test_upgrade_check_real_repeat(run_module: t.Any, pg_server: t.Any, fresh_db: str, args: dict[str, t.Any]) -> None:
    """The three-way pattern: check mode -> changed, real -> changed, repeat -> not changed."""
    wanted = dict(args, revision="0001")

    check = run_module(alembic_migrate.main, wanted, check_mode=True, diff=True)
    assert check.rc == 0, check.get("msg")
    assert check["changed"] is True
    assert check["current_before"] is None
    assert check["pending"] == ["0001"]
    assert check["head"] == "0004"
    assert check["offline_sql_available"] is True
    assert check["destructive"] == []
    assert "CREATE TABLE documents" in check["sql"]
    assert check["diff"][0]["after"] == "revision: 0001\n"
    assert check["diff"][1]["after"] == check["sql"]
    assert tables(pg_server, fresh_db) == [], "check mode must not migrate"

    real = run_module(alembic_migrate.main, wanted)
    assert real.rc == 0, real.get("msg")
    assert real["changed"] is True
    assert (real["current_before"], real["current_after"]) == (None, "0001")
    assert "Running upgrade  -> 0001" in real["output"]
    assert tables(pg_server, fresh_db) == ["alembic_version", "documents", "users"]

    again = run_module(alembic_migrate.main, wanted)
    assert again.rc == 0, again.get("msg")
    assert again["changed"] is False
    assert again["pending"] == []
    assert again["current_after"] == "0001"
    # no_log: the URL (with its password) never shows up in the module's output.
    assert pg_server.password not in again["_raw"]


def test_destructive_and_unrenderable_migrations_need_approval(
    run_module: t.Any, pg_server: t.Any, fresh_db: str, args: dict[str, t.Any]
) -> None:
    alembic(pg_server, fresh_db, "upgrade", "0001")
    pg_server.execute(fresh_db, "INSERT INTO documents (title) VALUES ('Old report'), ('New contract')")

    # 0002 reads data: no offline SQL, refused. users is empty, so 0003's SET NOT NULL is no finding.
    to_0003 = run_module(alembic_migrate.main, dict(args, revision="0003"), check_mode=True)
    assert to_0003.failed
    assert to_0003["offline_sql_available"] is False
    assert to_0003["offline_sql_failures"] == [
        {"revision": "0002", "reason": "AttributeError: 'NoneType' object has no attribute 'fetchall'"}
    ]
    assert to_0003["offline_sql_reason"].startswith("0002: AttributeError")
    assert to_0003["destructive"] == []
    assert "CREATE TABLE tags" in to_0003["sql"], "the revisions after the unrenderable one are still rendered"
    assert "allow_destructive=true" in to_0003["msg"]

    # With a row in users, SET NOT NULL is destructive; 0004 drops a column.
    pg_server.execute(fresh_db, "INSERT INTO users (email) VALUES ('a@example.invalid')")
    to_head = run_module(alembic_migrate.main, args)
    assert to_head.failed
    found = {(f["kind"], f["table"], f["column"], f["revision"]) for f in to_head["destructive"]}
    assert found == {("set_not_null", "users", "email", "0003"), ("drop_column", "users", "legacy_flag", "0004")}
    not_null = next(f for f in to_head["destructive"] if f["kind"] == "set_not_null")
    assert not_null["table_has_rows"] is True
    assert not_null["statement"] == "ALTER TABLE users ALTER COLUMN email SET NOT NULL"
    assert "2 destructive statement(s)" in to_head["msg"]
    assert "1 revision(s) without offline SQL" in to_head["msg"]
    assert revision(pg_server, fresh_db) == "0001", "a refused migration changes nothing"

    approved = run_module(alembic_migrate.main, dict(args, allow_destructive=True))
    assert approved.rc == 0, approved.get("msg")
    assert approved["changed"] is True
    assert approved["pending"] == ["0002", "0003", "0004"]
    assert (approved["current_before"], approved["current_after"]) == ("0001", "0004")
    assert len(approved["destructive"]) == 2, "findings are still reported when allowed"
    assert pg_server.execute(fresh_db, "SELECT title, status FROM documents ORDER BY id") == [
        ("Old report", "archived"),
        ("New contract", "active"),
    ]


def test_downgrade_preview_refusal_and_run(
    run_module: t.Any, pg_server: t.Any, fresh_db: str, args: dict[str, t.Any]
) -> None:
    alembic(pg_server, fresh_db, "upgrade", "head")
    down = dict(args, action="downgrade", revision="0002")

    preview = run_module(alembic_migrate.main, down, check_mode=True, diff=True)
    assert preview.failed, "downgrading drops the tags table"
    assert preview["pending"] == ["0004", "0003"]
    assert preview["offline_sql_available"] is True
    assert [(f["kind"], f["table"], f["revision"]) for f in preview["destructive"]] == [("drop_table", "tags", "0003")]
    assert "Running downgrade 0004 -> 0003" in preview["sql"]
    assert "refusing to downgrade from 0004 to 0002" in preview["msg"]

    done = run_module(alembic_migrate.main, dict(down, allow_destructive=True))
    assert done.rc == 0, done.get("msg")
    assert (done["current_before"], done["current_after"]) == ("0004", "0002")
    assert "tags" not in tables(pg_server, fresh_db)

    # Going "up" with action=downgrade is refused and names the fix.
    wrong = run_module(alembic_migrate.main, dict(down, revision="0004"))
    assert wrong.failed
    assert "use action=upgrade" in wrong["msg"]


def test_cli_current_status_and_command_prefix(run_module: t.Any, pg_server: t.Any, fresh_db: str) -> None:
    """Without database_url: the revision comes from `alembic current`; alembic runs through a command."""
    base = {
        "command": [sys.executable, "-m", "alembic"],
        "chdir": str(ALEMBIC_PROJECT),
        "secret_environment": {"DATABASE_URL": pg_server.url(fresh_db)},
        "environment": {"ABLAGE_NOTE": "visible"},
    }
    status = run_module(alembic_migrate.main, dict(base, action="status"))
    assert status.rc == 0, status.get("msg")
    assert status["changed"] is False
    assert status["current_before"] is None
    assert status["pending"] == ["0001", "0002", "0003", "0004"]
    assert "sql" not in status

    up = run_module(alembic_migrate.main, dict(base, revision="+1"))
    assert up.rc == 0, up.get("msg")
    assert (up["current_before"], up["current_after"]) == (None, "0001")
    # SET NOT NULL cannot be checked without a database connection: reported with unknown rows.
    pg_server.execute(fresh_db, "UPDATE alembic_version SET version_num = '0002'")
    unknown = run_module(alembic_migrate.main, dict(base, revision="0003"), check_mode=True)
    assert unknown.failed
    assert [(f["kind"], f["table_has_rows"]) for f in unknown["destructive"]] == [("set_not_null", None)]
    assert pg_server.password not in unknown["_raw"]


def test_database_ahead_of_the_code(run_module: t.Any, pg_server: t.Any, fresh_db: str, args: dict[str, t.Any]) -> None:
    pg_server.execute(
        fresh_db, "CREATE TABLE alembic_version (version_num varchar(32)); INSERT INTO alembic_version VALUES ('9f9f')"
    )
    result = run_module(alembic_migrate.main, args, check_mode=True)
    assert result.failed
    assert "revision 9f9f, which this Alembic project does not know" in result["msg"]


def test_through_ansible(ansible_cli: t.Any, pg_server: t.Any, fresh_db: str, args: dict[str, t.Any]) -> None:
    """ansible localhost -m ablage.ops.alembic_migrate, for real, with --diff."""
    result = ansible_cli("alembic_migrate", dict(args, revision="0001"), "--diff")
    assert result.rc == 0, result.stdout + result.stderr
    assert result.result["changed"] is True
    assert result.result["current_after"] == "0001"
    assert pg_server.password not in result.stdout
    assert revision(pg_server, fresh_db) == "0001"
