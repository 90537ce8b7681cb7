# Copyright (c) ablage.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""PostgreSQL access shared by ablage.ops modules (psycopg2 + the client tools).

PRIVATE: this file is an implementation detail of the ablage.ops collection.
It is not a public API and may change or disappear in any release.

Connection settings left unset fall through to libpq's own defaults and PG*
environment variables (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE,
PGPASSFILE, PGSSLMODE ...), for psycopg2 and for pg_dump / pg_restore alike.
The password never goes on a command line: it is handed to the client tools
as PGPASSWORD in their environment.
"""

from __future__ import annotations

import contextlib
import os
import re
import traceback
import typing as t
import urllib.parse

PSYCOPG2_IMPORT_ERROR: str | None
try:
    import psycopg2
    import psycopg2.errors
    import psycopg2.extensions
    from psycopg2 import sql as pgsql
except ImportError:  # pragma: no cover - exercised only without psycopg2 installed
    HAS_PSYCOPG2 = False
    PSYCOPG2_IMPORT_ERROR = traceback.format_exc()
    PsycopgError: t.Any = Exception
else:
    HAS_PSYCOPG2 = True
    PSYCOPG2_IMPORT_ERROR = None
    PsycopgError = psycopg2.Error

# Connection options shared by modules that talk to PostgreSQL; documented in each module.
CONNECTION_ARGUMENT_SPEC: dict[str, dict[str, t.Any]] = {
    "host": {"type": "str", "aliases": ["login_host"]},
    "port": {"type": "int", "aliases": ["login_port"]},
    "user": {"type": "str", "aliases": ["login_user"]},
    "password": {"type": "str", "no_log": True, "aliases": ["login_password"]},
    "database": {"type": "str", "required": True, "aliases": ["db"]},
    "maintenance_db": {"type": "str", "default": "postgres"},
}

_SYSTEM_SCHEMAS = ("pg_catalog", "information_schema")
# Settings whose stored value is a list of (possibly double-quoted) elements.
_LIST_SETTINGS = frozenset(
    ("search_path", "temp_tablespaces", "session_preload_libraries", "local_preload_libraries", "datestyle")
)


def sentence(text: t.Any) -> str:
    """An error text as one sentence: stripped, whitespace collapsed, ending with punctuation."""
    flat = " ".join(str(text).split())
    return flat if flat.endswith((".", "?", "!")) else flat + "."


def connection_argument_spec() -> dict[str, dict[str, t.Any]]:
    """A fresh copy of the connection argument_spec entries."""
    return {name: dict(spec) for name, spec in CONNECTION_ARGUMENT_SPEC.items()}


def libpq_env(params: t.Mapping[str, t.Any], database: str | None = None) -> dict[str, str]:
    """PG* variables for the client tools from the module's connection options (unset ones are left out)."""
    env: dict[str, str] = {}
    for option, variable in (("host", "PGHOST"), ("port", "PGPORT"), ("user", "PGUSER"), ("password", "PGPASSWORD")):
        value = params.get(option)
        if value is not None and value != "":
            env[variable] = str(value)
    if database:
        env["PGDATABASE"] = database
    return env


def describe_target(params: t.Mapping[str, t.Any], database: str | None = None) -> str:
    """user@host:port/db for messages, with libpq's defaults named as such."""
    host = params.get("host") or os.environ.get("PGHOST") or "<local socket>"
    port = params.get("port") or os.environ.get("PGPORT") or 5432
    user = params.get("user") or os.environ.get("PGUSER") or "<current OS user>"
    db = database or params.get("database") or os.environ.get("PGDATABASE") or "?"
    return f"{user}@{host}:{port}/{db}"


# SQLAlchemy's own URL grammar (sqlalchemy.engine.url._parse_url): the application's Alembic reads the URL
# with it, so the module must find the same user, password and host. Unlike libpq's URI parser it takes a
# '/', ':', '#' or '?' in the password as part of it; only '@' must be percent-encoded.
_SQLALCHEMY_URL = re.compile(
    r"""
    (?P<scheme>[\w+]+)://
    (?:(?P<user>[^:/]*)(?::(?P<password>[^@]*))?@)?
    (?:\[(?P<ipv6host>[^/?]+)\]|(?P<host>[^/:?]+))?
    (?::(?P<port>[^/?]*))?
    (?:/(?P<database>[^?]*))?
    (?:\?(?P<query>.*))?
    """,
    re.VERBOSE | re.DOTALL,
)


def connect_keywords_from_url(url: str) -> dict[str, str]:
    """libpq keywords (host, port, user, password, dbname, query options) from a SQLAlchemy PostgreSQL URL.

    The connection then never hands the URL to libpq, whose URI errors quote pieces of it (a password
    with a '/' came back as 'invalid integer value "<start of password>" for connection option "port"').
    Error messages here name no part of the URL but the scheme.
    """
    match = _SQLALCHEMY_URL.fullmatch(url.strip())
    if not match:
        raise ValueError("not a URL of the form postgresql://user:password@host:port/database")
    scheme = match.group("scheme")
    if scheme.split("+", 1)[0] not in ("postgresql", "postgres"):
        raise ValueError(f"not a PostgreSQL URL (scheme '{scheme}')")
    keywords: dict[str, str] = {}
    host = match.group("ipv6host") or match.group("host")
    port = match.group("port")
    if (host and "@" in host) or (port and not port.isdigit()):
        raise ValueError(
            "not a valid URL: the user or password holds a character that must be percent-encoded "
            "(an '@', or '/', ':', '#', '?' and '%' for other readers than SQLAlchemy); build the URL with the "
            "ablage.ops.postgres_url filter"
        )
    for keyword, group in (("user", "user"), ("password", "password")):
        value = match.group(group)
        if value:
            keywords[keyword] = urllib.parse.unquote(value)
    if match.group("database"):
        keywords["dbname"] = match.group("database")  # as SQLAlchemy: not percent-decoded
    if host:
        keywords["host"] = urllib.parse.unquote(host)
    if port:
        keywords["port"] = port
    for key, value in urllib.parse.parse_qsl(match.group("query") or "", keep_blank_values=True):
        keywords[key] = value
    return keywords


def connect(
    params: t.Mapping[str, t.Any] | None = None,
    database: str | None = None,
    dsn: str | None = None,
    autocommit: bool = True,
    connect_timeout: int = 10,
    keywords: t.Mapping[str, str] | None = None,
) -> t.Any:
    """A psycopg2 connection from options (unset ones fall back to libpq defaults), a DSN or libpq keywords."""
    if keywords is not None:
        merged = {"connect_timeout": str(connect_timeout), "application_name": "ablage.ops", **keywords}
        conn = psycopg2.connect(**merged)
    elif dsn:
        conn = psycopg2.connect(dsn, connect_timeout=connect_timeout, application_name="ablage.ops")
    else:
        params = params or {}
        kwargs: dict[str, t.Any] = {"connect_timeout": connect_timeout, "application_name": "ablage.ops"}
        for option, keyword in (("host", "host"), ("port", "port"), ("user", "user"), ("password", "password")):
            if params.get(option) not in (None, ""):
                kwargs[keyword] = params[option]
        kwargs["dbname"] = database or params.get("database")
        conn = psycopg2.connect(**kwargs)
    conn.autocommit = autocommit
    return conn


def ident(*names: str) -> t.Any:
    """A safely quoted (possibly qualified) identifier."""
    return pgsql.Identifier(*names)


def server_version(conn: t.Any) -> str:
    with conn.cursor() as cur:
        cur.execute("SHOW server_version")
        return str(cur.fetchone()[0])


def user_tables(conn: t.Any) -> list[tuple[str, str]]:
    """(schema, table) of every ordinary table outside the system schemas and extensions."""
    with conn.cursor() as cur:
        cur.execute(
            """
            SELECT n.nspname, c.relname
              FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind = 'r'
               AND n.nspname NOT IN %s
               AND n.nspname NOT LIKE 'pg\\_toast%%' AND n.nspname NOT LIKE 'pg\\_temp\\_%%'
               AND NOT EXISTS (SELECT 1 FROM pg_depend d
                                WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
             ORDER BY 1, 2
            """,
            (_SYSTEM_SCHEMAS,),
        )
        return [(str(s), str(n)) for s, n in cur.fetchall()]


def row_counts(conn: t.Any) -> dict[str, int]:
    """Exact ``count(*)`` of every user table, keyed ``schema.table``."""
    counts: dict[str, int] = {}
    with conn.cursor() as cur:
        for schema, table in user_tables(conn):
            cur.execute(pgsql.SQL("SELECT count(*) FROM {}").format(ident(schema, table)))
            counts[f"{schema}.{table}"] = int(cur.fetchone()[0])
    return counts


def alembic_revision(conn: t.Any, table: str = "alembic_version", schema: str | None = None) -> list[str] | None:
    """Rows of the Alembic version table (sorted), or None when the table does not exist."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT to_regclass(%s)",
            (f"{quote_ident_text(schema)}.{quote_ident_text(table)}" if schema else quote_ident_text(table),),
        )
        if cur.fetchone()[0] is None:
            return None
        name = ident(schema, table) if schema else ident(table)
        cur.execute(pgsql.SQL("SELECT version_num FROM {}").format(name))
        return sorted(str(row[0]) for row in cur.fetchall())


def quote_ident_text(name: str | None) -> str:
    """Double-quote an identifier as text (for to_regclass)."""
    return '"' + str(name).replace('"', '""') + '"'


def table_has_rows(conn: t.Any, schema: str | None, table: str) -> bool | None:
    """Whether a table has at least one row; None when it does not exist (yet) or cannot be read."""
    name = ident(schema, table) if schema else ident(table)
    with conn.cursor() as cur:
        try:
            cur.execute(pgsql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(name))
            return bool(cur.fetchone()[0])
        except PsycopgError:
            if not conn.autocommit:
                conn.rollback()
            return None


# --- database administration (connections go to the maintenance database) ---


def database_exists(conn: t.Any, name: str) -> bool:
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        return cur.fetchone() is not None


def database_properties(conn: t.Any, name: str) -> dict[str, t.Any] | None:
    """Owner, encoding, locale, settings and grants of a database (None if it does not exist)."""
    with conn.cursor() as cur:
        cur.execute(
            """
            SELECT d.oid, pg_get_userbyid(d.datdba), pg_encoding_to_char(d.encoding), d.datcollate, d.datctype,
                   d.datacl IS NULL
              FROM pg_database d WHERE d.datname = %s
            """,
            (name,),
        )
        row = cur.fetchone()
        if row is None:
            return None
        oid, owner, encoding, collate, ctype, default_acl = row
        cur.execute("SELECT unnest(setconfig) FROM pg_db_role_setting WHERE setdatabase = %s AND setrole = 0", (oid,))
        settings = [str(r[0]) for r in cur.fetchall()]
        cur.execute(
            """
            SELECT CASE WHEN a.grantee = 0 THEN NULL ELSE pg_get_userbyid(a.grantee) END, a.privilege_type
              FROM pg_database d, aclexplode(d.datacl) a
             WHERE d.datname = %s ORDER BY 1, 2
            """,
            (name,),
        )
        grants = [(None if g is None else str(g), str(p)) for g, p in cur.fetchall()]
    return {
        "owner": str(owner),
        "encoding": str(encoding),
        "collate": str(collate),
        "ctype": str(ctype),
        "settings": settings,
        "grants": grants,
        "default_acl": bool(default_acl),
    }


def create_database(conn: t.Any, name: str, like: dict[str, t.Any] | None = None) -> None:
    """CREATE DATABASE from template0, copying owner, encoding and locale of ``like``."""
    query = pgsql.SQL("CREATE DATABASE {} TEMPLATE template0").format(ident(name))
    if like:
        query = pgsql.SQL("{} OWNER {} ENCODING {} LC_COLLATE {} LC_CTYPE {}").format(
            query,
            ident(like["owner"]),
            pgsql.Literal(like["encoding"]),
            pgsql.Literal(like["collate"]),
            pgsql.Literal(like["ctype"]),
        )
    with conn.cursor() as cur:
        cur.execute(query)


def apply_database_properties(conn: t.Any, name: str, props: dict[str, t.Any]) -> None:
    """Per-database settings (ALTER DATABASE SET) and grants of a database copied onto ``name``."""
    with conn.cursor() as cur:
        for setting in props.get("settings") or ():
            key, dummy, value = setting.partition("=")
            values = split_guc_list(value) if key.lower() in _LIST_SETTINGS else [value]
            cur.execute(
                pgsql.SQL("ALTER DATABASE {} SET {} TO {}").format(
                    ident(name), ident(key), pgsql.SQL(", ").join(pgsql.Literal(v) for v in values)
                )
            )
        if props.get("default_acl", True):
            return
        cur.execute(pgsql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(ident(name)))
        for grantee, privilege in props.get("grants") or ():
            target = pgsql.SQL("PUBLIC") if grantee is None else ident(grantee)
            cur.execute(pgsql.SQL("GRANT {} ON DATABASE {} TO {}").format(pgsql.SQL(privilege), ident(name), target))


def split_guc_list(value: str) -> list[str]:
    """Elements of a stored list setting (``"$user", public`` -> ``["$user", "public"]``)."""
    items: list[str] = []
    current: list[str] = []
    quoted = False
    i = 0
    while i < len(value):
        char = value[i]
        if char == '"':
            if quoted and value[i + 1 : i + 2] == '"':
                current.append('"')
                i += 1
            else:
                quoted = not quoted
        elif char == "," and not quoted:
            items.append("".join(current).strip())
            current = []
        else:
            current.append(char)
        i += 1
    items.append("".join(current).strip())
    return [item for item in items if item]


def drop_database(conn: t.Any, name: str) -> None:
    """DROP DATABASE IF EXISTS ... WITH (FORCE): ends its sessions first (PostgreSQL >= 13)."""
    with conn.cursor() as cur:
        if conn.server_version >= 130000:
            cur.execute(pgsql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident(name)))
        else:  # pragma: no cover - only on servers older than 13
            terminate_sessions(conn, name)
            cur.execute(pgsql.SQL("DROP DATABASE IF EXISTS {}").format(ident(name)))


def set_allow_connections(conn: t.Any, name: str, allow: bool) -> None:
    with conn.cursor() as cur:
        cur.execute(
            pgsql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS {}").format(
                ident(name), pgsql.SQL("true" if allow else "false")
            )
        )


def sessions(conn: t.Any, name: str) -> list[dict[str, t.Any]]:
    """Other sessions connected to a database."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT pid, usename, application_name, client_addr::text FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
        return [
            {"pid": pid, "user": user, "application_name": app, "client_addr": addr}
            for pid, user, app, addr in cur.fetchall()
        ]


def terminate_sessions(conn: t.Any, name: str) -> int:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
        return int(cur.fetchone()[0])


def rename_database(conn: t.Any, old: str, new: str) -> None:
    with conn.cursor() as cur:
        cur.execute(pgsql.SQL("ALTER DATABASE {} RENAME TO {}").format(ident(old), ident(new)))


class Snapshot:
    """A REPEATABLE READ transaction whose snapshot is exported for ``pg_dump --snapshot``.

    Row counts and the Alembic revision read through ``conn`` see exactly the data
    pg_dump dumps, so the manifest describes the dump and not a moment near it.
    """

    def __init__(self, conn: t.Any) -> None:
        self.conn = conn
        self.snapshot_id: str | None = None

    def __enter__(self) -> Snapshot:
        self.conn.autocommit = False
        self.conn.set_session(isolation_level="REPEATABLE READ", readonly=True)
        with self.conn.cursor() as cur:
            try:
                cur.execute("SELECT pg_export_snapshot()")
                self.snapshot_id = str(cur.fetchone()[0])
            except PsycopgError:
                # e.g. a hot standby before PostgreSQL 10: fall back to pg_dump's own snapshot.
                self.conn.rollback()
                self.snapshot_id = None
        return self

    def __exit__(self, *exc: t.Any) -> None:
        with contextlib.suppress(PsycopgError):
            self.conn.rollback()
