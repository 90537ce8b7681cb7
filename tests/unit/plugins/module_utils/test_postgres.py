"""Pure helpers of the PostgreSQL module_utils (the SQL side runs in tests/integration)."""

from __future__ import annotations

import typing as t

import pytest

from ansible_collections.ablage.ops.plugins.module_utils import _postgres
from ansible_collections.ablage.ops.plugins.module_utils._postgres import (
    connect_keywords_from_url,
    connection_argument_spec,
    describe_target,
    libpq_env,
    quote_ident_text,
)


def test_argument_spec_is_a_copy() -> None:
    spec = connection_argument_spec()
    assert spec["password"]["no_log"] is True
    assert spec["database"]["required"] is True
    spec["host"]["default"] = "x"
    assert "default" not in connection_argument_spec()["host"]


def test_libpq_env_leaves_unset_options_to_libpq() -> None:
    assert libpq_env({"host": None, "port": None, "user": "", "password": None}) == {}
    assert libpq_env({"host": "db", "port": 5433, "user": "app", "password": "s3cret"}, database="ablage") == {
        "PGHOST": "db",
        "PGPORT": "5433",
        "PGUSER": "app",
        "PGPASSWORD": "s3cret",
        "PGDATABASE": "ablage",
    }


def test_describe_target(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PGHOST", "PGPORT", "PGUSER", "PGDATABASE"):
        monkeypatch.delenv(name, raising=False)
    assert describe_target({"database": "ablage"}) == "<current OS user>@<local socket>:5432/ablage"
    monkeypatch.setenv("PGHOST", "envhost")
    assert describe_target({"user": "u", "port": 1}, "other") == "u@envhost:1/other"


@pytest.mark.parametrize(
    ("url", "keywords"),
    [
        (
            "postgresql+psycopg2://u:p@h:5432/db",
            {"user": "u", "password": "p", "host": "h", "port": "5432", "dbname": "db"},
        ),
        (
            "postgresql+asyncpg://u@h/db?sslmode=require",
            {"user": "u", "host": "h", "dbname": "db", "sslmode": "require"},
        ),
        ("postgres://h/db", {"host": "h", "dbname": "db"}),
        ("postgresql:///db?host=/run/postgresql", {"dbname": "db", "host": "/run/postgresql"}),
        ("postgresql://u@[::1]:5433/db", {"user": "u", "host": "::1", "port": "5433", "dbname": "db"}),
        # Every reserved character percent-encoded (ablage.ops.postgres_url), and Jinja's urlencode ('/' raw).
        (
            "postgresql://a%3Ab:p%2F%40%3A%25%23%3F@h/db",
            {"user": "a:b", "password": "p/@:%#?", "host": "h", "dbname": "db"},
        ),
        ("postgresql://u:p/%40%3A%25%23%3F@h/db", {"user": "u", "password": "p/@:%#?", "host": "h", "dbname": "db"}),
    ],
)
def test_connect_keywords_from_url(url: str, keywords: dict[str, str]) -> None:
    assert connect_keywords_from_url(url) == keywords


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("sqlite:///x.db", "not a PostgreSQL URL"),
        ("app:secret@db/x", "not a URL of the form"),
        ("postgresql://u:sec@ret@h/db", "percent-encode"),
        ("postgresql://u:sec:ret@h:notaport/db", "percent-encode"),
    ],
)
def test_connect_keywords_refuses_without_echoing_the_url(url: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem) as exc:
        connect_keywords_from_url(url)
    assert "ret" not in str(exc.value) and "secret" not in str(exc.value)


@pytest.mark.parametrize(
    ("stored", "items"),
    [
        ('"$user", public', ["$user", "public"]),
        ('a,"b,c" , "d""e"', ["a", "b,c", 'd"e']),
        ("", []),
    ],
)
def test_split_guc_list(stored: str, items: list[str]) -> None:
    assert _postgres.split_guc_list(stored) == items


def test_quote_ident_text() -> None:
    assert quote_ident_text('we"ird') == '"we""ird"'


def test_connect_passes_only_set_options(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[tuple[t.Any, ...], dict[str, t.Any]]] = []

    class Conn:
        autocommit = False

    def fake_connect(*args: t.Any, **kwargs: t.Any) -> Conn:
        seen.append((args, kwargs))
        return Conn()

    monkeypatch.setattr(_postgres.psycopg2, "connect", fake_connect)
    conn = _postgres.connect({"host": "h", "port": None, "user": "", "password": "p", "database": "d"})
    assert conn.autocommit is True
    assert seen[0][1] == {
        "connect_timeout": 10,
        "application_name": "ablage.ops",
        "host": "h",
        "password": "p",
        "dbname": "d",
    }
    _postgres.connect(dsn="postgresql://x/y", autocommit=False)
    assert seen[1][0] == ("postgresql://x/y",)
