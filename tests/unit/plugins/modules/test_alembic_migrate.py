"""alembic_migrate: main() with a simulated alembic command line (no Alembic, no database)."""

from __future__ import annotations

import sys
import typing as t

import psycopg2
import pytest

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ablage.ops.plugins.modules import alembic_migrate

Run = t.Callable[..., t.Any]

# revision -> (upgrade SQL, downgrade SQL); None: cannot be rendered offline (reads data).
PROJECT: dict[str, tuple[str | None, str | None]] = {
    "0001": (
        "CREATE TABLE documents (id int);\nCREATE TABLE users (id int, email text, legacy bool);",
        "DROP TABLE users;",
    ),
    "0002": (None, "ALTER TABLE documents DROP COLUMN status;"),
    "0003": (
        "ALTER TABLE users ALTER COLUMN email SET NOT NULL;",
        "ALTER TABLE users ALTER COLUMN email DROP NOT NULL;",
    ),
    "0004": ("ALTER TABLE users DROP COLUMN legacy;", "ALTER TABLE users ADD COLUMN legacy bool;"),
    "0005": ("CREATE INDEX ix ON documents (id);", "DROP INDEX ix;"),
}
ORDER = list(PROJECT)
TRACEBACK = "Traceback (most recent call last):\n  ...\nAttributeError: 'NoneType' object has no attribute 'fetchall'\n"


class FakeAlembic:
    """Answers the alembic subcommands the module runs, for a linear project."""

    def __init__(self, current: str | None = None, markers: bool = True) -> None:
        self.current = current
        self.markers = markers
        self.calls: list[list[str]] = []
        self.envs: list[dict[str, str]] = []
        self.migrate_rc = 0
        self.migrate_ignored = False

    def history(self) -> str:
        entries = []
        for i, rev in reversed(list(enumerate(ORDER))):
            head = " (head)" if i == len(ORDER) - 1 else ""
            parent = ORDER[i - 1] if i else "<base>"
            entries.append(f"Rev: {rev}{head}\nParent: {parent}\nPath: /p/{rev}.py\n\n    revision {rev}\n")
        return "\n".join(entries)

    def render(self, verb: str, rng: str) -> tuple[int, str, str]:
        start, dummy, dest = rng.rpartition(":")
        i = ORDER.index(start) + 1 if start not in ("", "base") else 0
        j = ORDER.index(dest) + 1 if dest != "base" else 0
        out = ["BEGIN;"]
        steps = ORDER[i:j] if verb == "upgrade" else list(reversed(ORDER[j:i]))
        for rev in steps:
            idx = ORDER.index(rev)
            prev = ORDER[idx - 1] if idx else ""
            if self.markers:
                marker = (
                    f"-- Running upgrade {prev} -> {rev}"
                    if verb == "upgrade"
                    else f"-- Running downgrade {rev} -> {prev}"
                )
                out.append(marker)
            sql = PROJECT[rev][0 if verb == "upgrade" else 1]
            if sql is None:
                return (
                    1,
                    "\n".join(out) + "\nALTER TABLE documents ADD COLUMN status text;\n",
                    TRACEBACK,
                )
            out.append(sql)
        out.append("COMMIT;")
        return 0, "\n".join(out) + "\n", ""

    def run_command(self, argv: list[str], **kwargs: t.Any) -> tuple[int, str, str]:
        """Stands in for AnsibleModule.run_command (a bound method set on the class is not re-bound)."""
        self.calls.append(argv)
        self.envs.append(dict(kwargs.get("environ_update") or {}))
        args = argv[argv.index("alembic") + 1 :] if "alembic" in argv else argv[1:]
        while args and args[0] in ("-c", "-x"):
            args = args[2:]
        if args == ["history", "--verbose"]:
            return 0, self.history(), ""
        if args == ["current"]:
            return 0, f"{self.current} (head)\n" if self.current else "", "INFO  [alembic] Context impl\n"
        if len(args) == 3 and args[2] == "--sql":
            return self.render(args[0], args[1])
        if len(args) == 2 and args[0] in ("upgrade", "downgrade"):
            if self.migrate_rc:
                return self.migrate_rc, "", "sqlalchemy.exc.OperationalError: connection refused\n"
            if not self.migrate_ignored:
                self.current = None if args[1] == "base" else args[1]
            return 0, "", f"INFO  [alembic.runtime.migration] Running {args[0]} to {args[1]}\n"
        raise AssertionError(f"unexpected alembic call {argv}")


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeAlembic:
    alembic = FakeAlembic()
    monkeypatch.setattr(AnsibleModule, "run_command", alembic.run_command)
    return alembic


BASE = {"command": ["alembic"], "config": "/srv/app/alembic.ini"}


def test_nothing_to_do_is_not_changed(run_module: Run, fake: FakeAlembic) -> None:
    fake.current = "0005"
    result = run_module(alembic_migrate.main, BASE)
    assert result.rc == 0, result.get("msg")
    assert result["changed"] is False
    assert (result["current_before"], result["current_after"], result["head"]) == ("0005", "0005", "0005")
    assert result["pending"] == []
    assert "sql" not in result
    assert sorted(c[3:] for c in fake.calls) == [["current"], ["history", "--verbose"]]


def test_check_mode_previews_safe_sql(run_module: Run, fake: FakeAlembic) -> None:
    fake.current = "0004"
    result = run_module(alembic_migrate.main, BASE, check_mode=True, diff=True)
    assert result.rc == 0, result.get("msg")
    assert result["changed"] is True
    assert result["pending"] == ["0005"]
    assert "CREATE INDEX ix" in result["sql"]
    assert result["destructive"] == []
    assert result["offline_sql_available"] is True
    assert result["current_after"] == "0004"
    assert result["diff"][0] == {
        "before": "revision: 0004\n",
        "after": "revision: 0005\n",
        "before_header": "alembic revision",
        "after_header": "alembic revision",
    }
    assert fake.current == "0004"
    assert not any(c[-1] == "0005" for c in fake.calls), "check mode must not migrate"


def test_destructive_sql_is_refused_then_allowed(run_module: Run, fake: FakeAlembic) -> None:
    fake.current = "0003"
    refused = run_module(alembic_migrate.main, dict(BASE, revision="0004"))
    assert refused.get("failed")
    assert "changed" not in refused
    assert refused["destructive"][0]["kind"] == "drop_column"
    assert refused["destructive"][0]["revision"] == "0004"
    assert (
        "refusing to upgrade from 0003 to 0004: 1 destructive statement(s) (drop_column users.legacy"
        in (refused["msg"])
    )
    assert "allow_destructive=true" in refused["msg"]
    assert fake.current == "0003"

    done = run_module(alembic_migrate.main, dict(BASE, revision="0004", allow_destructive=True))
    assert done.rc == 0, done.get("msg")
    assert (done["current_before"], done["current_after"]) == ("0003", "0004")
    assert "Running upgrade to 0004" in done["output"]


def test_unrenderable_revision_is_located_and_the_rest_still_checked(run_module: Run, fake: FakeAlembic) -> None:
    fake.current = "0001"
    result = run_module(alembic_migrate.main, BASE, check_mode=True)
    assert result.get("failed")
    assert result["offline_sql_available"] is False
    assert result["offline_sql_failures"] == [
        {"revision": "0002", "reason": "AttributeError: 'NoneType' object has no attribute 'fetchall'"}
    ]
    # 0003's SET NOT NULL cannot be checked without a database: reported; 0004 drops a column.
    assert [(f["kind"], f["revision"]) for f in result["destructive"]] == [
        ("set_not_null", "0003"),
        ("drop_column", "0004"),
    ]
    assert "-- revision 0002: offline SQL not available" in result["sql"]
    # One range render that stopped at 0002, one from 0002 on: not one call per revision.
    renders = [c for c in fake.calls if c[-1] == "--sql"]
    assert [c[-2] for c in renders] == ["0001:0005", "0002:0005"]


def test_unrenderable_without_markers_falls_back_to_each_revision(run_module: Run, fake: FakeAlembic) -> None:
    fake.current = "0001"
    fake.markers = False
    result = run_module(alembic_migrate.main, dict(BASE, revision="0003"), check_mode=True)
    assert result.get("failed")
    assert [f["revision"] for f in result["offline_sql_failures"]] == ["0002"]
    renders = [c[-2] for c in fake.calls if c[-1] == "--sql"]
    assert renders == ["0001:0003", "0001:0002", "0002:0003"]


def test_downgrade(run_module: Run, fake: FakeAlembic) -> None:
    fake.current = "0005"
    preview = run_module(
        alembic_migrate.main, dict(BASE, action="downgrade", revision="-2"), check_mode=True, diff=True
    )
    assert preview.rc == 0, preview.get("msg")
    assert preview["pending"] == ["0005", "0004"]
    assert preview["target"] == "0003"
    assert "DROP INDEX ix" in preview["sql"]
    done = run_module(alembic_migrate.main, dict(BASE, action="downgrade", revision="0001", allow_destructive=True))
    assert done.rc == 0, done.get("msg")
    assert done["pending"] == ["0005", "0004", "0003", "0002"]
    assert done["destructive"][0]["kind"] == "drop_column"
    assert done["current_after"] == "0001"
    to_base = run_module(alembic_migrate.main, dict(BASE, action="downgrade", revision="base", allow_destructive=True))
    assert to_base["current_after"] is None
    assert [f["kind"] for f in to_base["destructive"]] == ["drop_table"]


def test_downgrade_requires_a_revision(run_module: Run, fake: FakeAlembic) -> None:
    result = run_module(alembic_migrate.main, dict(BASE, action="downgrade"))
    assert result.get("failed")
    assert "action is downgrade but all of the following are missing: revision" in result["msg"]


def test_wrong_direction_names_the_fix(run_module: Run, fake: FakeAlembic) -> None:
    fake.current = "0004"
    result = run_module(alembic_migrate.main, dict(BASE, revision="0002"))
    assert result.get("failed")
    assert "below the current revision 0004: use action=downgrade" in result["msg"]


def test_status_reports_without_rendering(run_module: Run, fake: FakeAlembic) -> None:
    fake.current = "0002"
    result = run_module(alembic_migrate.main, dict(BASE, action="status"))
    assert result.rc == 0
    assert result["changed"] is False
    assert result["pending"] == ["0003", "0004", "0005"]
    assert not any(c[-1] == "--sql" for c in fake.calls)
    older = run_module(alembic_migrate.main, dict(BASE, action="status", revision="base"))
    assert older["pending"] == ["0002", "0001"]
    assert older["changed"] is False


def test_failed_migration_and_unexpected_result(run_module: Run, fake: FakeAlembic) -> None:
    fake.current = "0004"
    fake.migrate_rc = 1
    failed = run_module(alembic_migrate.main, BASE)
    assert failed.get("failed")
    assert "failed with exit code 1: sqlalchemy.exc.OperationalError: connection refused" in failed["msg"]
    assert "connection refused" in failed["stderr"]
    fake.migrate_rc = 0
    fake.migrate_ignored = True
    lied = run_module(alembic_migrate.main, BASE)
    assert lied.get("failed")
    assert "but the database is at 0004 instead of 0005" in lied["msg"]


def test_history_failure(run_module: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        AnsibleModule, "run_command", lambda self, argv, **kw: (1, "", "FAILED: No config file 'x.ini' found\n")
    )
    result = run_module(alembic_migrate.main, BASE)
    assert result.get("failed")
    assert "while reading the revision history: FAILED: No config file 'x.ini' found" in result["msg"]


def test_environment_and_secrets(run_module: Run, fake: FakeAlembic) -> None:
    fake.current = "0005"
    secret = "hunter2-very-secret"
    result = run_module(
        alembic_migrate.main,
        dict(
            BASE, environment={"APP_ENV": "production"}, secret_environment={"DB_PASSWORD": secret}, x_arguments=["t=1"]
        ),
    )
    assert result.rc == 0
    assert fake.envs[0] == {"APP_ENV": "production", "DB_PASSWORD": secret}
    assert ["alembic", "-c", "/srv/app/alembic.ini", "-x", "t=1", "history", "--verbose"] in fake.calls
    assert secret not in result["_raw"]


def test_default_command(run_module: Run, fake: FakeAlembic, monkeypatch: pytest.MonkeyPatch) -> None:
    fake.current = "0005"
    monkeypatch.setattr(AnsibleModule, "get_bin_path", lambda self, name, *a, **kw: None)
    result = run_module(alembic_migrate.main, {})
    assert result.rc == 0, result.get("msg")
    assert fake.calls[0][:3] == [sys.executable, "-m", "alembic"]
    monkeypatch.setattr(alembic_migrate, "alembic_importable", lambda: False)
    missing = run_module(alembic_migrate.main, {})
    assert missing.get("failed")
    assert "alembic was not found" in missing["msg"]
    assert "docker, compose, run" in missing["msg"]


class FakeConn:
    closed = False

    def close(self) -> None:
        self.closed = True


def test_database_url_reads_the_version_table(
    run_module: Run, fake: FakeAlembic, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = FakeConn()
    dsns: list[str | None] = []
    state = {"rev": ["0002"]}

    def fake_connect(*args: t.Any, dsn: str | None = None, **kwargs: t.Any) -> FakeConn:
        dsns.append(dsn)
        return conn

    monkeypatch.setattr(alembic_migrate, "connect", fake_connect)
    monkeypatch.setattr(alembic_migrate, "alembic_revision", lambda c, table, schema: state["rev"])
    monkeypatch.setattr(alembic_migrate, "table_has_rows", lambda c, schema, table: table == "users")
    url = "postgresql+psycopg2://app:pw-xyz@db:5432/ablage"
    result = run_module(alembic_migrate.main, dict(BASE, database_url=url, revision="0003"), check_mode=True)
    assert result.get("failed")
    assert result["destructive"][0]["table_has_rows"] is True
    assert dsns == ["postgresql://app:pw-xyz@db:5432/ablage"]
    assert fake.envs[0]["DATABASE_URL"] == url
    assert conn.closed
    assert "pw-xyz" not in result["_raw"]
    assert not any(c[-1] == "current" for c in fake.calls), "the version table replaces `alembic current`"

    state["rev"] = ["ffff"]
    unknown = run_module(alembic_migrate.main, dict(BASE, database_url=url))
    assert "revision ffff, which this Alembic project does not know" in unknown["msg"]

    bad = run_module(alembic_migrate.main, dict(BASE, database_url="sqlite:///x.db"))
    assert "database_url is not a PostgreSQL URL" in bad["msg"]


def test_database_url_errors(run_module: Run, fake: FakeAlembic, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: t.Any, **kwargs: t.Any) -> None:
        raise psycopg2.OperationalError("connection to server at 127.0.0.1 port 1 failed: Connection refused")

    monkeypatch.setattr(alembic_migrate, "connect", refuse)
    result = run_module(alembic_migrate.main, dict(BASE, database_url="postgresql://u:p@127.0.0.1:1/x"))
    assert result.get("failed")
    assert "cannot connect to the database of database_url: connection to server" in result["msg"]
    assert "Check the URL" in result["msg"]

    monkeypatch.setattr(alembic_migrate, "connect", lambda **kw: FakeConn())

    def broken(*args: t.Any) -> None:
        raise psycopg2.ProgrammingError("permission denied for table alembic_version")

    monkeypatch.setattr(alembic_migrate, "alembic_revision", broken)
    denied = run_module(alembic_migrate.main, dict(BASE, database_url="postgresql://u:p@127.0.0.1:1/x"))
    assert "PostgreSQL error while reading the Alembic version table: permission denied" in denied["msg"]

    monkeypatch.setattr(alembic_migrate, "HAS_PSYCOPG2", False)
    missing = run_module(alembic_migrate.main, dict(BASE, database_url="postgresql://u:p@127.0.0.1:1/x"))
    assert "psycopg2" in missing["msg"]
    assert "needed because database_url is set" in missing["msg"]


def test_missing_pglast(run_module: Run, fake: FakeAlembic, monkeypatch: pytest.MonkeyPatch) -> None:
    fake.current = "0004"
    monkeypatch.setattr(alembic_migrate, "HAS_PGLAST", False)
    result = run_module(alembic_migrate.main, BASE)
    assert result.get("failed")
    assert "pglast" in result["msg"]
    assert "must be analysed before it is applied" in result["msg"]
    # Reading the state does not need pglast.
    fake.current = "0005"
    assert run_module(alembic_migrate.main, BASE).rc == 0
