"""alembic_migrate: main() with a simulated alembic command line (no Alembic, no database)."""

from __future__ import annotations

import sys
import threading
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
        # ("start" | "end", subcommand) in the order they happened, across the module's threads.
        self.events: list[tuple[str, str]] = []
        # `history` waits (bounded) for an offline render to start, so running both at once is deterministic.
        self.history_waits_for_render = False
        self.render_started = threading.Event()
        self.history_saw_render: bool | None = None
        # What a squawk binary answers (rc, JSON, stderr), and the SQL it was given on stdin.
        self.squawk_answer: tuple[int, str, str] = (0, "[]", "")
        self.squawk_inputs: list[str] = []

    def history(self) -> str:
        entries = []
        for i, rev in reversed(list(enumerate(ORDER))):
            head = " (head)" if i == len(ORDER) - 1 else ""
            parent = ORDER[i - 1] if i else "<base>"
            entries.append(f"Rev: {rev}{head}\nParent: {parent}\nPath: /p/{rev}.py\n\n    revision {rev}\n")
        return "\n".join(entries)

    def render(self, verb: str, rng: str) -> tuple[int, str, str]:
        start, dummy, dest = rng.rpartition(":")
        dest = ORDER[-1] if dest in ("head", "heads") else dest
        unknown = [r for r in (start, dest) if r not in [*ORDER, "", "base"]]
        if unknown:
            return 1, "", f"FAILED: Can't locate revision identified by '{unknown[0]}'\n"
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
        if argv[0].endswith("squawk"):
            self.squawk_inputs.append(kwargs["data"])
            return self.squawk_answer
        self.calls.append(argv)
        self.envs.append(dict(kwargs.get("environ_update") or {}))
        args = argv[argv.index("alembic") + 1 :] if "alembic" in argv else argv[1:]
        while args and args[0] in ("-c", "-x"):
            args = args[2:]
        self.events.append(("start", " ".join(args)))
        try:
            return self.answer(args, argv)
        finally:
            self.events.append(("end", " ".join(args)))

    def waves(self) -> list[list[str]]:
        """The alembic calls grouped into waves: a wave starts when no other call is running."""
        waves: list[list[str]] = []
        running = 0
        for event, call in self.events:
            if event == "start":
                if not running:
                    waves.append([])
                waves[-1].append(call)
                running += 1
            else:
                running -= 1
        return waves

    def answer(self, args: list[str], argv: list[str]) -> tuple[int, str, str]:
        if args[-1:] == ["--sql"]:
            self.render_started.set()
        if args == ["history", "--verbose"]:
            if self.history_waits_for_render:
                # Bounded: a module that renders only after the graph makes this False, not a hang.
                self.history_saw_render = self.render_started.wait(10)
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
    # Whether squawk is installed here must not change the results; test_online_preview_adds_squawk sets one.
    monkeypatch.setattr(alembic_migrate, "find_squawk", lambda module: None)
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
    assert "online" not in result, "online is part of the check-mode preview only"
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
    # documents exists since 0001: its index built without CONCURRENTLY locks writes.
    assert result["online"] == {
        "mode": "maintenance",
        "reason": "CREATE INDEX without CONCURRENTLY on documents (revision 0005) locks writes while the index is "
        "built; build it CONCURRENTLY in its own migration.",
        "blockers": [
            {
                "kind": "create_index_not_concurrently",
                "statement": "CREATE INDEX ix ON documents (id)",
                "table": "documents",
                "column": None,
                "revision": "0005",
                "reason": "locks writes while the index is built; build it CONCURRENTLY in its own migration",
            }
        ],
    }


def test_online_preview_of_expand_only_and_nothing_pending(run_module: Run, fake: FakeAlembic) -> None:
    fresh = run_module(alembic_migrate.main, dict(BASE, revision="0001"), check_mode=True)
    assert fresh.rc == 0, fresh.get("msg")
    assert fresh["online"]["mode"] == "online"
    assert fresh["online"]["blockers"] == []
    assert fresh["online"]["reason"].startswith("All 2 pending statement(s) of revision(s) 0001 only add")
    fake.current = "0005"
    nothing = run_module(alembic_migrate.main, BASE, check_mode=True)
    assert nothing["pending"] == []
    assert nothing["online"]["mode"] == "online"
    assert nothing["online"]["reason"].startswith("Nothing is pending")
    status = run_module(alembic_migrate.main, dict(BASE, action="status"), check_mode=True)
    assert "online" not in status


def test_online_preview_adds_squawk(run_module: Run, fake: FakeAlembic, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(alembic_migrate, "find_squawk", lambda module: "/usr/local/bin/squawk")
    fake.current = None
    # 0-based line 3 of the rendered SQL is the CREATE TABLE users of revision 0001.
    fake.squawk_answer = (
        1,
        (
            '[{"file": "migration.sql", "line": 3, "column": 0, "level": "Warning", "message": "Tables need a schema.",'
            ' "help": null, "rule_name": "require-table-schema", "column_end": 5, "line_end": 3},'
            ' {"file": "migration.sql", "line": 3, "column": 20, "level": "Warning", "message": "Use text.",'
            ' "help": null, "rule_name": "prefer-text-field", "column_end": 25, "line_end": 3}]'
        ),
        "",
    )
    result = run_module(alembic_migrate.main, dict(BASE, revision="0001"), check_mode=True)
    assert result.rc == 0, result.get("msg")
    assert fake.squawk_inputs == [result["sql"]]
    assert result["online"]["mode"] == "maintenance"
    assert [(b["kind"], b["table"], b["revision"]) for b in result["online"]["blockers"]] == [
        ("squawk:require-table-schema", "users", "0001")
    ]
    assert result["destructive"] == [], "squawk adds to online only"


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
    online = result["online"]
    assert online["mode"] == "maintenance"
    assert [(b["kind"], b["revision"]) for b in online["blockers"]] == [
        ("offline_sql_unavailable", "0002"),
        ("set_not_null", "0003"),
        ("drop_column", "0004"),
        ("create_index_not_concurrently", "0005"),
    ]
    assert online["reason"].startswith(
        "a migration that cannot be rendered as offline SQL (AttributeError: 'NoneType' object has no attribute "
        "'fetchall') (revision 0002) cannot be checked"
    )
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
    assert [(b["kind"], b["revision"]) for b in preview["online"]["blockers"]] == [
        ("drop_index_not_concurrently", "0005")
    ]
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
    dsns: list[t.Any] = []
    state = {"rev": ["0002"]}

    def fake_connect(*args: t.Any, keywords: t.Any = None, **kwargs: t.Any) -> FakeConn:
        dsns.append(keywords)
        return conn

    monkeypatch.setattr(alembic_migrate, "connect", fake_connect)
    monkeypatch.setattr(alembic_migrate, "alembic_revision", lambda c, table, schema: state["rev"])
    monkeypatch.setattr(alembic_migrate, "table_has_rows", lambda c, schema, table: table == "users")
    url = "postgresql+psycopg2://app:pw-xyz@db:5432/ablage"
    result = run_module(alembic_migrate.main, dict(BASE, database_url=url, revision="0003"), check_mode=True)
    assert result.get("failed")
    assert result["destructive"][0]["table_has_rows"] is True
    assert dsns == [{"host": "db", "port": "5432", "user": "app", "password": "pw-xyz", "dbname": "ablage"}]
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


# ------------------------------------------------------- the offline SQL rendered next to `alembic history`

URL = "postgresql://app:pw@db:5432/ablage"


@pytest.fixture
def db(fake: FakeAlembic, monkeypatch: pytest.MonkeyPatch) -> FakeAlembic:
    """database_url set: the version table follows the fake's revision; users has rows."""
    monkeypatch.setattr(alembic_migrate, "connect", lambda **kw: FakeConn())
    monkeypatch.setattr(
        alembic_migrate, "alembic_revision", lambda c, table, schema: [fake.current] if fake.current else None
    )
    monkeypatch.setattr(alembic_migrate, "table_has_rows", lambda c, schema, table: table == "users")
    return fake


def sequential(monkeypatch: pytest.MonkeyPatch) -> None:
    """The path before: every offline render starts after the graph is known (a prefetched one is ignored)."""
    monkeypatch.setattr(
        alembic_migrate.AlembicMigrateManager,
        "_render_range",
        lambda self, graph, start, dest: self.cli.render(self.action, start, dest),
    )


def test_database_url_renders_while_history_runs(run_module: Run, db: FakeAlembic) -> None:
    db.current = "0004"
    db.history_waits_for_render = True
    result = run_module(alembic_migrate.main, dict(BASE, database_url=URL))
    assert result.rc == 0, result.get("msg")
    assert db.history_saw_render is True, "the offline SQL must start while `alembic history` runs"
    # Two waves instead of three: graph and SQL at once, then the upgrade; the revisions are read by SQL.
    assert [sorted(w) for w in db.waves()] == [["history --verbose", "upgrade 0004:head --sql"], ["upgrade 0005"]]
    assert (result["current_before"], result["current_after"]) == ("0004", "0005")


def test_preview_is_one_wave(run_module: Run, db: FakeAlembic) -> None:
    db.current = "0003"
    db.history_waits_for_render = True
    preview = run_module(alembic_migrate.main, dict(BASE, database_url=URL, revision="0005"), check_mode=True)
    assert preview.failed, "0004 drops a column"
    assert db.history_saw_render is True
    assert [sorted(w) for w in db.waves()] == [["history --verbose", "upgrade 0003:0005 --sql"]]


SCENARIOS: dict[str, tuple[str | None, dict[str, t.Any], bool, bool]] = {
    # name: (revision before, module arguments, check mode, whether the render started with the graph is used)
    "refused, unrenderable 0002 and destructive": ("0001", {}, True, True),
    "refused by revision id": ("0003", {"revision": "0004"}, False, True),
    "allowed": ("0002", {"allow_destructive": True}, False, True),
    "from base to heads": (None, {"revision": "heads", "allow_destructive": True}, False, True),
    "downgrade to an id": ("0005", {"action": "downgrade", "revision": "0003"}, True, True),
    "downgrade to base": ("0002", {"action": "downgrade", "revision": "base", "allow_destructive": True}, False, True),
    "nothing pending": ("0005", {}, False, False),
    "relative": ("0003", {"revision": "+1"}, True, False),
    "ambiguous prefix": ("0003", {"revision": "000"}, True, False),
    "unknown to the project": ("0009", {}, True, False),
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_same_result_as_rendering_after_the_graph(
    run_module: Run, db: FakeAlembic, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    before, extra, check_mode, used = SCENARIOS[name]
    db.current = before
    early = run_module(alembic_migrate.main, dict(BASE, database_url=URL, **extra), check_mode=check_mode, diff=True)
    early_renders = [c for c in db.calls if c[-1] == "--sql"]
    sequential(monkeypatch)
    db.current, db.calls = before, []
    late = run_module(alembic_migrate.main, dict(BASE, database_url=URL, **extra), check_mode=check_mode, diff=True)
    assert early == late
    # Where it is used, the render started with the graph replaces the first one after it.
    assert len(early_renders) == len([c for c in db.calls if c[-1] == "--sql"]) - used


def test_fallback_renders_after_the_graph(run_module: Run, db: FakeAlembic) -> None:
    db.current = "0003"
    relative = run_module(alembic_migrate.main, dict(BASE, database_url=URL, revision="+1"), check_mode=True)
    assert relative.failed
    assert relative["pending"] == ["0004"]
    assert [(f["kind"], f["revision"]) for f in relative["destructive"]] == [("drop_column", "0004")]
    # +N needs the graph: nothing is rendered before it, then the range to the resolved id.
    assert [c[3:] for c in db.calls] == [["history", "--verbose"], ["upgrade", "0003:0004", "--sql"]]

    db.calls = []
    down = run_module(alembic_migrate.main, dict(BASE, database_url=URL, action="downgrade", revision="-1"))
    assert down.rc == 0, down.get("msg")
    assert down["current_after"] == "0002"
    assert [c[3:] for c in db.calls] == [
        ["history", "--verbose"],
        ["downgrade", "0003:0002", "--sql"],
        ["downgrade", "0002"],
    ]

    db.calls = []
    ambiguous = run_module(alembic_migrate.main, dict(BASE, database_url=URL, revision="000"), check_mode=True)
    assert "revision '000' is ambiguous: it matches 0001, 0002, 0003, 0004, 0005" in ambiguous["msg"]


def test_status_and_cli_current_render_nothing_early(run_module: Run, db: FakeAlembic) -> None:
    db.current = "0003"
    status = run_module(alembic_migrate.main, dict(BASE, database_url=URL, action="status"))
    assert status["pending"] == ["0004", "0005"]
    assert [c[3:] for c in db.calls] == [["history", "--verbose"]]
    db.calls = []
    # Without database_url the revision comes from `alembic current`, next to `history`; the SQL follows.
    preview = run_module(alembic_migrate.main, BASE, check_mode=True)
    assert preview.failed
    assert sorted(c[3:] for c in db.calls[:2]) == [["current"], ["history", "--verbose"]]
    assert db.events[-2:] == [("start", "upgrade 0003:0005 --sql"), ("end", "upgrade 0003:0005 --sql")]


def test_a_failing_history_is_reported_before_a_database_error(
    run_module: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        AnsibleModule, "run_command", lambda self, argv, **kw: (1, "", "FAILED: No config file 'x.ini' found\n")
    )

    def refuse(*args: t.Any, **kwargs: t.Any) -> None:
        raise psycopg2.OperationalError("connection refused")

    monkeypatch.setattr(alembic_migrate, "connect", refuse)
    result = run_module(alembic_migrate.main, dict(BASE, database_url=URL))
    assert "while reading the revision history: FAILED: No config file 'x.ini' found" in result["msg"]


# --------------------------------------------------------------------------- passwords with URL characters (issue 14)

# Every piece between two special characters is distinctive, so any fragment in the output is found.
NASTY_SEGMENTS = ["s3gA", "s3gB", "s3gC", "s3gD", "s3gE", "s3gF", "s3gG"]
NASTY_PASSWORD = "s3gA/s3gB@s3gC:s3gD%s3gE#s3gF?s3gG"


def _leaks(text: str) -> list[str]:
    return [segment for segment in NASTY_SEGMENTS if segment in text]


@pytest.mark.parametrize(
    "url",
    [
        # What the roles rendered with Jinja's urlencode, which leaves '/' alone.
        "postgresql+psycopg2://app:s3gA/s3gB%40s3gC%3As3gD%25s3gE%23s3gF%3Fs3gG@127.0.0.1:1/ablage",
        # Every reserved character percent-encoded.
        "postgresql://app:s3gA%2Fs3gB%40s3gC%3As3gD%25s3gE%23s3gF%3Fs3gG@127.0.0.1:1/ablage",
    ],
)
def test_password_with_url_characters_reaches_the_server_and_never_the_output(
    run_module: Run, fake: FakeAlembic, url: str
) -> None:
    # Port 1 refuses: the module got as far as the server, with the right host and port.
    result = run_module(alembic_migrate.main, dict(BASE, database_url=url))
    assert result.get("failed")
    assert "cannot connect to the database of database_url" in result["msg"], result["msg"]
    assert "127.0.0.1" in result["msg"] and "port 1" in result["msg"], result["msg"]
    assert _leaks(result["_raw"]) == [], result["_raw"]


def test_password_with_unescaped_at_sign_is_refused_without_echo(run_module: Run, fake: FakeAlembic) -> None:
    url = "postgresql://app:s3gA@s3gB@127.0.0.1:1/ablage"
    result = run_module(alembic_migrate.main, dict(BASE, database_url=url))
    assert result.get("failed") and "percent-encode" in result["msg"], result["msg"]
    assert _leaks(result["_raw"]) == [], result["_raw"]


def test_decoded_password_is_masked_in_alembic_output(
    run_module: Run, fake: FakeAlembic, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The app's Alembic sees the decoded password; should it print it, the module's output masks it."""
    monkeypatch.setattr(alembic_migrate, "connect", lambda **kw: FakeConn())

    def revision_error(*args: t.Any) -> None:
        raise psycopg2.ProgrammingError(f"role said {NASTY_PASSWORD}")

    monkeypatch.setattr(alembic_migrate, "alembic_revision", revision_error)
    url = "postgresql://app:s3gA%2Fs3gB%40s3gC%3As3gD%25s3gE%23s3gF%3Fs3gG@127.0.0.1:1/ablage"
    result = run_module(alembic_migrate.main, dict(BASE, database_url=url))
    assert result.get("failed")
    assert NASTY_PASSWORD not in result["_raw"]


def test_heads_reads_only_the_graph(run_module: Run, fake: FakeAlembic) -> None:
    # The database may be at a revision these images do not know (a rollback to an older release).
    fake.current = "0009"
    result = run_module(alembic_migrate.main, dict(BASE, action="heads"))
    assert result.rc == 0, result.get("msg")
    assert (result["head"], result["heads"], result["changed"]) == ("0005", ["0005"], False)
    assert [c[-2:] for c in fake.calls] == [["history", "--verbose"]]


def test_from_revision_checks_the_upgrades_that_already_ran(run_module: Run, fake: FakeAlembic) -> None:
    fake.current = "0005"
    args = dict(BASE, from_revision="0003", allow_destructive=True)
    result = run_module(alembic_migrate.main, args, check_mode=True)
    assert result.rc == 0, result.get("msg")
    assert result["pending"] == ["0004", "0005"]
    assert [f["kind"] for f in result["destructive"]] == ["drop_column"]
    assert (result["current_before"], result["target"]) == ("0005", "0005")
    assert [c[-2] for c in fake.calls if c[-1] == "--sql"] == ["0003:0005"]
    assert fake.current == "0005"
    same = run_module(alembic_migrate.main, dict(BASE, from_revision="0005"), check_mode=True)
    assert same["pending"] == [] and same["destructive"] == []


def test_from_revision_only_previews(run_module: Run, fake: FakeAlembic) -> None:
    fake.current = "0005"
    applied = run_module(alembic_migrate.main, dict(BASE, from_revision="0003"))
    assert applied.get("failed") and "in check mode" in applied["msg"], applied
    downgrade = run_module(alembic_migrate.main, dict(BASE, action="downgrade", revision="0001", from_revision="0003"))
    assert downgrade.get("failed")
    assert fake.calls == [] and fake.current == "0005"


# ------------------------------------------------------- reviewed: the check-mode result applied in one call


def review(run_module: Run, db: FakeAlembic, **extra: t.Any) -> t.Any:
    preview = run_module(alembic_migrate.main, dict(BASE, database_url=URL, **extra), check_mode=True)
    db.calls = []
    return preview


def test_reviewed_sql_is_applied_in_one_alembic_call(run_module: Run, db: FakeAlembic) -> None:
    db.current = "0004"
    preview = review(run_module, db)
    assert preview.rc == 0 and preview["pending"] == ["0005"]
    result = run_module(alembic_migrate.main, dict(BASE, database_url=URL, reviewed=dict(preview)))
    assert result.rc == 0, result.get("msg")
    assert [" ".join(c[-2:]) for c in db.calls] == ["upgrade 0005"], "no history, no render: only the upgrade"
    assert result["reviewed_used"] == {"used": True, "reason": ""}
    assert (result["current_before"], result["current_after"]) == ("0004", "0005")
    assert result["sql"] == preview["sql"] and result["pending"] == ["0005"] and result["changed"] is True


def test_reviewed_destructive_sql_is_still_refused(run_module: Run, db: FakeAlembic) -> None:
    db.current = "0003"
    preview = review(run_module, db, allow_destructive=True)
    assert [f["kind"] for f in preview["destructive"]] == ["drop_column"]
    result = run_module(alembic_migrate.main, dict(BASE, database_url=URL, reviewed=dict(preview)))
    assert result.failed and "destructive" in result["msg"]
    assert db.calls == [], "refused before any Alembic call"
    assert db.current == "0003"
    allowed = run_module(
        alembic_migrate.main, dict(BASE, database_url=URL, reviewed=dict(preview), allow_destructive=True)
    )
    assert allowed.rc == 0 and db.current == "0005"


def test_reviewed_is_not_used_when_the_database_moved(run_module: Run, db: FakeAlembic) -> None:
    db.current = "0003"
    preview = review(run_module, db, allow_destructive=True)
    db.current = "0004"  # someone migrated between the review and the window
    result = run_module(
        alembic_migrate.main, dict(BASE, database_url=URL, reviewed=dict(preview), allow_destructive=True)
    )
    assert result.rc == 0, result.get("msg")
    assert result["reviewed_used"] == {"used": False, "reason": "the database moved from 0003 to 0004 since the review"}
    assert any(c[-1] == "--sql" for c in db.calls), "rendered again"
    assert result["pending"] == ["0005"] and result["current_after"] == "0005"


@pytest.mark.parametrize(
    ("reviewed", "extra", "reason"),
    [
        ({"action": "downgrade", "sql": "", "current_before": "0004"}, {}, "not the check-mode result of an upgrade"),
        ({"action": "upgrade", "current_before": "0004"}, {}, "no action, sql or current_before"),
        ({"action": "upgrade", "sql": "", "current_before": "0004", "target": "a,b"}, {}, "several heads"),
        ({"action": "upgrade", "sql": "", "current_before": "0004"}, {"database_url": None}, "database_url is not set"),
    ],
)
def test_reviewed_falls_back_and_says_why(
    run_module: Run, db: FakeAlembic, reviewed: dict[str, t.Any], extra: dict[str, t.Any], reason: str
) -> None:
    db.current = "0004"
    args = dict(BASE, database_url=URL, reviewed=reviewed)
    args.update({k: v for k, v in extra.items() if v is not None})
    for key in [k for k, v in extra.items() if v is None]:
        args.pop(key)
    result = run_module(alembic_migrate.main, args)
    assert result.rc == 0, result.get("msg")
    assert result["reviewed_used"]["used"] is False and reason in result["reviewed_used"]["reason"]
    assert result["current_after"] == "0005"


def test_reviewed_target_not_reached_is_an_error(run_module: Run, db: FakeAlembic) -> None:
    db.current = "0004"
    preview = review(run_module, db)
    db.migrate_ignored = True
    result = run_module(alembic_migrate.main, dict(BASE, database_url=URL, reviewed=dict(preview)))
    assert result.failed and "the target of the reviewed SQL" in result["msg"]
