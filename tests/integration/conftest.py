"""Fixtures of the integration tests: a real throwaway PostgreSQL server and module runners.

- ``pg_server`` (session): initdb into a temporary directory owned by the
  ``postgres`` OS user (PostgreSQL refuses to run as root; as non-root the
  current user is used), a server on 127.0.0.1 and a free port with
  scram-sha-256 password authentication for the superuser, ready when
  ``pg_isready`` says so (bounded poll). Stopped and deleted at the end.
  Durability is switched off (fsync, full_page_writes): the data are thrown away.
- ``fresh_db``: an empty database of its own per test, dropped afterwards.
- ``run_module``: a module's real ``main()`` with patched arguments, returning
  the JSON it printed (so no_log masking is part of what is tested).
- ``ansible_cli``: runs ``ansible localhost -m ...`` / ``ansible-playbook`` with
  this checkout as ``ablage.ops``.

Set ``ABLAGE_PG_BIN`` to use other PostgreSQL binaries (default: the PostgreSQL 15
ones of Debian, /usr/lib/postgresql/15/bin). Tests are skipped when none exist.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import typing as t
from pathlib import Path

import psycopg2
import pytest
from reference_stack import ansible_env

REPO = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
ALEMBIC_PROJECT = FIXTURES / "alembic_project"
VENV_BIN = Path(sys.executable).parent


PG_BIN = Path(os.environ.get("ABLAGE_PG_BIN", "/usr/lib/postgresql/15/bin"))
SUPERUSER = "postgres"


@dataclasses.dataclass
class PgServer:
    host: str
    port: int
    user: str
    password: str
    bin_dir: str
    data_dir: str
    log_file: str

    @property
    def params(self) -> dict[str, t.Any]:
        """Connection options as the modules take them."""
        return {"host": self.host, "port": self.port, "user": self.user, "password": self.password}

    def url(self, database: str) -> str:
        return f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{database}"

    def connect(self, database: str = "postgres") -> t.Any:
        conn = psycopg2.connect(host=self.host, port=self.port, user=self.user, password=self.password, dbname=database)
        conn.autocommit = True
        return conn

    def execute(self, database: str, sql: str, params: t.Any = None) -> list[tuple[t.Any, ...]]:
        conn = self.connect(database)
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params)
                return list(cur.fetchall()) if cur.description else []
        finally:
            conn.close()


def _as_postgres(argv: list[str]) -> list[str]:
    """Run as the postgres OS user when we are root (the server refuses root)."""
    if os.geteuid() == 0:
        return ["runuser", "-u", SUPERUSER, "--", *argv]
    return argv


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def pg_server() -> t.Iterator[PgServer]:
    if not (PG_BIN / "initdb").exists():
        pytest.skip(f"no PostgreSQL server binaries in {PG_BIN} (set ABLAGE_PG_BIN)")
    root = Path(tempfile.mkdtemp(prefix="ablage-pg-"))
    data = root / "data"
    password = secrets.token_urlsafe(16)
    pwfile = root / "pwfile"
    pwfile.write_text(password + "\n", encoding="utf-8")
    if os.geteuid() == 0:
        uid, gid = pwd.getpwnam(SUPERUSER).pw_uid, pwd.getpwnam(SUPERUSER).pw_gid
        root.chmod(0o755)
        os.chown(root, uid, gid)
        os.chown(pwfile, uid, gid)
    pwfile.chmod(0o600)
    log_file = root / "server.log"
    port = _free_port()
    started = time.monotonic()
    subprocess.run(
        _as_postgres(
            [
                str(PG_BIN / "initdb"),
                "-D",
                str(data),
                "-U",
                SUPERUSER,
                "--auth=scram-sha-256",
                f"--pwfile={pwfile}",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
                "--no-instructions",
            ]
        ),
        check=True,
        capture_output=True,
    )
    options = " ".join(
        [
            f"-p {port}",
            "-c listen_addresses=127.0.0.1",
            f"-c unix_socket_directories={root}",
            "-c fsync=off",
            "-c full_page_writes=off",
            "-c synchronous_commit=off",
            "-c max_connections=50",
        ]
    )
    subprocess.run(
        _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(log_file), "-o", options, "-W", "start"]),
        check=True,
        capture_output=True,
    )
    server = PgServer("127.0.0.1", port, SUPERUSER, password, str(PG_BIN), str(data), str(log_file))
    try:
        deadline = time.monotonic() + 20
        while True:
            ready = subprocess.run(
                [str(PG_BIN / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(port), "-t", "1"], check=False
            )
            if ready.returncode == 0:
                break
            if time.monotonic() > deadline:
                log = log_file.read_text(encoding="utf-8", errors="replace") if log_file.exists() else ""
                pytest.fail(f"PostgreSQL did not become ready on port {port} within 20 s:\n{log}")
            time.sleep(0.05)
        server_start_s = time.monotonic() - started
        os.environ.setdefault("ABLAGE_TEST_PG_START_S", f"{server_start_s:.2f}")
        yield server
    finally:
        subprocess.run(
            _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]),
            check=False,
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def fresh_db(pg_server: PgServer) -> t.Iterator[str]:
    name = f"t_{secrets.token_hex(4)}"
    pg_server.execute("postgres", f'CREATE DATABASE "{name}"')
    yield name
    with contextlib.suppress(Exception):
        # Also any database a test renamed aside or left behind under this prefix.
        for (other,) in pg_server.execute(
            "postgres", "SELECT datname FROM pg_database WHERE datname LIKE %s", (name + "%",)
        ):
            pg_server.execute("postgres", f'DROP DATABASE IF EXISTS "{other}" WITH (FORCE)')


@dataclasses.dataclass
class CliResult:
    rc: int
    stdout: str
    stderr: str
    result: dict[str, t.Any]


@pytest.fixture(scope="session")
def ansible_cli() -> t.Callable[..., CliResult]:
    """``ansible localhost -m ablage.ops.<module> -a <json>``; returns the module's result."""

    def run(module: str, args: dict[str, t.Any], *extra: str, env: dict[str, str] | None = None) -> CliResult:
        environment = ansible_env(**(env or {}))
        proc = subprocess.run(
            [str(VENV_BIN / "ansible"), "localhost", "-m", f"ablage.ops.{module}", "-a", json.dumps(args), *extra],
            capture_output=True,
            text=True,
            env=environment,
            check=False,
            timeout=300,
        )
        result: dict[str, t.Any] = {}
        try:
            data = json.loads(proc.stdout)
            result = data["plays"][0]["tasks"][0]["hosts"]["localhost"]
        except (ValueError, KeyError, IndexError):
            pass
        return CliResult(proc.returncode, proc.stdout, proc.stderr, result)

    return run
