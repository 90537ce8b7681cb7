"""postgres_url: a database URL that libpq, SQLAlchemy and the modules all read back the same."""

from __future__ import annotations

import jinja2
import pytest
from psycopg2.extensions import parse_dsn
from sqlalchemy.engine import make_url

from ansible.errors import AnsibleFilterError

from ansible_collections.ablage.ops.plugins.filter.postgres import postgres_url
from ansible_collections.ablage.ops.plugins.module_utils._postgres import connect_keywords_from_url

PASSWORDS = ["p/w", "p@w", "p:w", "p%w", "p%2Fw", "p#w", "p?w", "s3gA/s3gB@s3gC:s3gD%s3gE#s3gF?s3gG", "ä ö+&=;'\""]
BASE = {"user": "ablage", "host": "db.internal", "port": 5432, "database": "ablage"}


def test_jinja_urlencode_leaves_the_slash_alone() -> None:
    """Why the roles cannot build the URL with urlencode: libpq then reads the password's start as the port."""
    rendered = jinja2.Environment(autoescape=False).from_string("{{ p | urlencode }}").render(p="a/b")  # noqa: S701
    assert rendered == "a/b"


@pytest.mark.parametrize("password", PASSWORDS)
def test_every_reader_gets_the_password_back(password: str) -> None:
    url = postgres_url(dict(BASE, password=password))
    assert url.startswith("postgresql://ablage:") and url.endswith("@db.internal:5432/ablage")
    libpq = parse_dsn(url)
    assert (libpq["password"], libpq["host"], libpq["port"], libpq["dbname"]) == (
        password,
        "db.internal",
        "5432",
        "ablage",
    )
    sqlalchemy = make_url(url)
    assert (sqlalchemy.password, sqlalchemy.host, sqlalchemy.port) == (password, "db.internal", 5432)
    assert connect_keywords_from_url(url)["password"] == password


def test_user_ipv6_socket_and_driver() -> None:
    connection = {"user": "a:b@c", "password": "x", "host": "::1", "port": "5433", "database": "ablage_2"}
    url = postgres_url(dict(connection, scheme="postgresql+psycopg2"))
    assert url == "postgresql+psycopg2://a%3Ab%40c:x@[::1]:5433/ablage_2"
    assert make_url(url).username == "a:b@c" and connect_keywords_from_url(url)["user"] == "a:b@c"
    socket = postgres_url({"user": "u", "host": "/run/postgresql", "database": "ablage"})
    assert socket == "postgresql://u@/ablage?host=%2Frun%2Fpostgresql"
    assert parse_dsn(socket)["host"] == "/run/postgresql" and make_url(socket).query == {"host": "/run/postgresql"}
    assert postgres_url({"host": "h", "database": "db"}) == "postgresql://h/db"


@pytest.mark.parametrize(
    ("connection", "problem"),
    [
        ({"host": "h"}, "database"),
        ({"host": "h", "database": "d/b"}, "database name"),
        ({"database": "d", "port": "54x"}, "port"),
        ({"database": "d", "scheme": "mysql"}, "scheme"),
        ("postgresql://x", "dict"),
    ],
)
def test_refuses_what_is_not_a_connection(connection: object, problem: str) -> None:
    with pytest.raises(AnsibleFilterError, match=problem):
        postgres_url(connection)  # type: ignore[arg-type]
