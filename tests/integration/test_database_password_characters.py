"""A database password with '/ @ : % # ?' works end to end and never shows in a module's output (issue 14).

A role with such a password owns a fresh database on the real PostgreSQL server. alembic_migrate migrates it
through the fixture Alembic project (the application's side: SQLAlchemy reads DATABASE_URL) and reads the version
table itself; pg_backup dumps it with the password as an option. Every piece of the password between two special
characters is distinctive, and none may appear in the returned JSON or the failure message.
"""

from __future__ import annotations

import secrets
import typing as t
import urllib.parse
from pathlib import Path

import jinja2
import pytest

from ansible_collections.ablage.ops.plugins.filter.postgres import postgres_url
from ansible_collections.ablage.ops.plugins.modules import alembic_migrate, pg_backup

pytestmark = pytest.mark.integration

CONFIG = str(Path(__file__).resolve().parent / "fixtures" / "alembic_project" / "alembic.ini")
SEGMENTS = ["s3gA", "s3gB", "s3gC", "s3gD", "s3gE", "s3gF", "s3gG"]
PASSWORD = "s3gA/s3gB@s3gC:s3gD%s3gE#s3gF?s3gG"


def leaks(text: str) -> list[str]:
    return [segment for segment in SEGMENTS if segment in text]


@pytest.fixture
def role(pg_server: t.Any, fresh_db: str) -> t.Iterator[str]:
    name = f"app_{secrets.token_hex(3)}"
    pg_server.execute("postgres", f'CREATE ROLE "{name}" LOGIN PASSWORD %s', (PASSWORD,))
    pg_server.execute("postgres", f'ALTER DATABASE "{fresh_db}" OWNER TO "{name}"')
    yield name
    pg_server.execute("postgres", f'ALTER DATABASE "{fresh_db}" OWNER TO "{pg_server.user}"')
    pg_server.execute(fresh_db, f'DROP OWNED BY "{name}"')
    pg_server.execute("postgres", f'DROP ROLE "{name}"')


def _urls(pg_server: t.Any, db: str, user: str, password: str = PASSWORD) -> dict[str, str]:
    connection = {"user": user, "password": password, "host": pg_server.host, "port": pg_server.port, "database": db}
    # What roles/deploy/vars/main.yml rendered so far: Jinja's urlencode keeps the '/'.
    jinja = jinja2.Environment(autoescape=False).from_string(  # noqa: S701
        "postgresql+psycopg2://{{ u | urlencode }}:{{ p | urlencode }}@{{ h }}:{{ port }}/{{ d }}"
    )
    return {
        "postgres_url": postgres_url(dict(connection, scheme="postgresql+psycopg2")),
        "jinja_urlencode": jinja.render(u=user, p=password, h=pg_server.host, port=pg_server.port, d=db),
    }


@pytest.mark.parametrize("built_by", ["postgres_url", "jinja_urlencode"])
def test_alembic_migrate_with_the_password(
    run_module: t.Any, pg_server: t.Any, fresh_db: str, role: str, built_by: str
) -> None:
    url = _urls(pg_server, fresh_db, role)[built_by]
    args = {"config": CONFIG, "database_url": url, "revision": "0001"}
    check = run_module(alembic_migrate.main, args, check_mode=True)
    assert check.rc == 0, check.get("msg")
    assert check["current_before"] is None and check["pending"] == ["0001"]
    real = run_module(alembic_migrate.main, args)
    assert real.rc == 0, real.get("msg")
    assert pg_server.execute(fresh_db, "SELECT version_num FROM alembic_version") == [("0001",)]
    assert pg_server.execute(fresh_db, "SELECT tableowner FROM pg_tables WHERE tablename = 'documents'") == [(role,)]
    again = run_module(alembic_migrate.main, args)
    assert again.rc == 0 and again["changed"] is False
    for result in (check, real, again):
        assert leaks(result["_raw"]) == [], result["_raw"]


def test_failures_name_no_part_of_the_password(run_module: t.Any, pg_server: t.Any, fresh_db: str, role: str) -> None:
    wrong_password = _urls(pg_server, fresh_db, role, password=PASSWORD + "x")["postgres_url"]
    wrong_db = _urls(pg_server, fresh_db + "_missing", role)["postgres_url"]
    unescaped = f"postgresql://{role}:{PASSWORD}@{pg_server.host}:{pg_server.port}/{fresh_db}"
    for url, expected in (
        (wrong_password, "password authentication failed"),
        (wrong_db, "does not exist"),
        (unescaped, "percent-encode"),
    ):
        result = run_module(alembic_migrate.main, {"config": CONFIG, "database_url": url})
        assert result.failed and expected in result["msg"], result["msg"]
        assert leaks(result["_raw"]) == [], result["_raw"]
        assert leaks(result["msg"]) == []


def test_pg_backup_with_the_password(
    run_module: t.Any, pg_server: t.Any, fresh_db: str, role: str, tmp_path: Path
) -> None:
    pg_server.execute(fresh_db, f'CREATE TABLE t (x int); ALTER TABLE t OWNER TO "{role}"')
    args = {
        "host": pg_server.host,
        "port": pg_server.port,
        "user": role,
        "password": PASSWORD,
        "database": fresh_db,
        "backup_dir": str(tmp_path / "backups"),
        "pg_bin_dir": pg_server.bin_dir,
        "label": "1.0.0",
    }
    backup = run_module(pg_backup.main, args)
    assert backup.rc == 0, backup.get("msg")
    assert leaks(backup["_raw"]) == [], backup["_raw"]
    refused = run_module(pg_backup.main, dict(args, password=PASSWORD + "x"))
    assert refused.failed and leaks(refused["_raw"]) == [], refused["_raw"]
    assert urllib.parse.quote(PASSWORD, safe="") not in refused["_raw"]
