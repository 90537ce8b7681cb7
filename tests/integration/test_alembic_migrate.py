"""ablage.ops.alembic_migrate against a real PostgreSQL 15 server and the fixture Alembic project.

The project (fixtures/alembic_project) has four revisions:
0001 creates documents and users; 0002 adds documents.status with a backfill
computed in Python from the rows (cannot be rendered offline); 0003 creates tags,
an index, and sets users.email NOT NULL (destructive only when users has rows);
0004 drops users.legacy_flag.
"""

from __future__ import annotations

import json
import os
import shutil
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


# ------------------------------------------------------- the offline SQL rendered next to `alembic history`

# A command prefix that runs alembic and logs each call's arguments, start and end (monotonic clock).
# With HISTORY_WAITS_FOR_RENDER set, `history` first waits (bounded) until a `--sql` render has started, so
# running both at once shows deterministically; a module that renders after the graph makes it wait in vain.
WRAPPER = """
import json, os, subprocess, sys, time
log, args = sys.argv[1], sys.argv[2:]
start = time.monotonic()
if args[-1] == "--sql":
    open(log + ".render", "a").close()
elif "history" in args and os.environ.get("HISTORY_WAITS_FOR_RENDER"):
    while not os.path.exists(log + ".render") and time.monotonic() < start + 30:
        time.sleep(0.01)
rc = subprocess.call([sys.executable, "-m", "alembic", *args])
with open(log, "a") as out:
    out.write(json.dumps({"call": " ".join(args[2:]), "start": start, "end": time.monotonic()}) + "\\n")
sys.exit(rc)
"""


@pytest.fixture
def logged(tmp_path: Path) -> t.Callable[[], list[dict[str, t.Any]]]:
    """The calls logged by WRAPPER so far, in the order they started; consumed by each read."""
    log = tmp_path / "calls.jsonl"

    def read() -> list[dict[str, t.Any]]:
        calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
        log.unlink(missing_ok=True)
        (tmp_path / "calls.jsonl.render").unlink(missing_ok=True)
        return sorted(calls, key=lambda c: c["start"])

    (tmp_path / "wrapper.py").write_text(WRAPPER)
    read.command = [sys.executable, str(tmp_path / "wrapper.py"), str(log)]  # type: ignore[attr-defined]
    return read


def waves(calls: list[dict[str, t.Any]]) -> list[list[str]]:
    """Calls grouped into waves: a wave starts when no earlier call is still running."""
    grouped: list[list[str]] = []
    running_until = float("-inf")
    for call in calls:
        if call["start"] >= running_until:
            grouped.append([])
        grouped[-1].append(call["call"])
        running_until = max(running_until, call["end"])
    return [sorted(wave) for wave in grouped]


def sequential(monkeypatch: pytest.MonkeyPatch) -> None:
    """The path before: every offline render starts after the graph is known (a prefetched one is ignored)."""
    monkeypatch.setattr(
        alembic_migrate.AlembicMigrateManager,
        "_render_range",
        lambda self, graph, start, dest: self.cli.render(self.action, start, dest),
    )


def test_offline_sql_renders_while_history_runs(
    run_module: t.Any, pg_server: t.Any, fresh_db: str, args: dict[str, t.Any], logged: t.Any
) -> None:
    alembic(pg_server, fresh_db, "upgrade", "0002")
    wanted = dict(args, command=logged.command, environment={"HISTORY_WAITS_FOR_RENDER": "1"}, allow_destructive=True)
    result = run_module(alembic_migrate.main, wanted)
    assert result.rc == 0, result.get("msg")
    assert (result["current_before"], result["current_after"]) == ("0002", "0004")
    # Two waves, not three: the graph and the offline SQL at once, then the upgrade (revisions read by SQL).
    assert waves(logged()) == [["history --verbose", "upgrade 0002:head --sql"], ["upgrade 0004"]]

    # A check-mode preview (the pre-flight gate) is one wave.
    alembic(pg_server, fresh_db, "downgrade", "0002")
    preview = run_module(alembic_migrate.main, dict(wanted, allow_destructive=False), check_mode=True)
    assert preview.failed
    assert "1 destructive statement(s) (drop_column users.legacy_flag in revision 0004)" in preview["msg"]
    assert waves(logged()) == [["history --verbose", "upgrade 0002:head --sql"]]


SCENARIOS: dict[str, tuple[str, bool, dict[str, t.Any], bool]] = {
    # name: (revision before, whether users has a row, module arguments, check mode)
    "refused: unrenderable 0002, SET NOT NULL on rows, DROP COLUMN": ("0001", True, {}, True),
    "allowed: applied": ("0002", True, {"allow_destructive": True}, False),
    "downgrade to an id": ("0004", False, {"action": "downgrade", "revision": "0002"}, True),
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_same_result_as_rendering_after_the_graph(
    run_module: t.Any,
    pg_server: t.Any,
    fresh_db: str,
    args: dict[str, t.Any],
    logged: t.Any,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
) -> None:
    before, rows, extra, check_mode = SCENARIOS[name]
    results = []
    for db, path in ((fresh_db, "early"), (fresh_db + "_seq", "sequential")):
        if path == "sequential":
            pg_server.execute("postgres", f'CREATE DATABASE "{db}"')  # dropped with fresh_db (same prefix)
            sequential(monkeypatch)
        alembic(pg_server, db, "upgrade", before)
        if rows:
            pg_server.execute(db, "INSERT INTO users (email) VALUES ('a@example.invalid')")
        url = pg_server.url(db).replace("postgresql://", "postgresql+psycopg2://")
        wanted = dict(args, database_url=url, command=logged.command, **extra)
        results.append((run_module(alembic_migrate.main, wanted, check_mode=check_mode, diff=True), logged()))
        results[-1][0].pop("_raw")
    (early, early_calls), (late, late_calls) = results
    assert early == late
    # The early render took the place of the first render after the graph.
    renders = [c["call"] for c in early_calls if c["call"].endswith("--sql")]
    assert len(renders) == len([c for c in late_calls if c["call"].endswith("--sql")]) - 1


def test_relative_revision_and_prefix_render_after_the_graph(
    run_module: t.Any, pg_server: t.Any, fresh_db: str, args: dict[str, t.Any], logged: t.Any, tmp_path: Path
) -> None:
    alembic(pg_server, fresh_db, "upgrade", "0002")
    relative = run_module(alembic_migrate.main, dict(args, command=logged.command, revision="+1"), check_mode=True)
    assert relative.rc == 0, relative.get("msg")
    assert (relative["pending"], relative["destructive"]) == (["0003"], [])
    assert "CREATE TABLE tags" in relative["sql"]
    # +1 needs the graph: nothing renders before it.
    assert waves(logged()) == [["history --verbose"], ["upgrade 0002:0003 --sql"]]

    # A unique prefix is resolved by the graph: the early render (to the prefix as given) is not used.
    project = tmp_path / "project"
    shutil.copytree(ALEMBIC_PROJECT, project)
    script = project / "migrations" / "versions" / "0004_drop_legacy_flag.py"
    script.write_text(script.read_text().replace('revision = "0004"', 'revision = "0004dropflag"'))
    alembic(pg_server, fresh_db, "upgrade", "0003")
    prefix = dict(args, config=str(project / "alembic.ini"), command=logged.command, revision="0004")
    preview = run_module(alembic_migrate.main, prefix, check_mode=True)
    assert preview.failed
    assert (preview["pending"], preview["target"]) == (["0004dropflag"], "0004dropflag")
    assert [(f["kind"], f["revision"]) for f in preview["destructive"]] == [("drop_column", "0004dropflag")]
    assert "refusing to upgrade from 0003 to 0004dropflag" in preview["msg"]
    calls = logged()
    assert [c["call"] for c in calls if c["call"].endswith("--sql")] == [
        "upgrade 0003:0004 --sql",
        "upgrade 0003:0004dropflag --sql",
    ]
    history = next(c for c in calls if c["call"] == "history --verbose")
    assert calls[-1]["start"] >= history["end"], "the render that is used starts after the graph"
