"""The day-2 playbooks (status, logs, restart, maintenance, backup, restore) against the reference stack.

Each playbook runs as the on-call person runs it: ``ansible-playbook playbooks/<name>.yml -i
inventories/local``. One stack preparation serves the whole module (molecule/shared/prepare_stack.yml:
wiped, 1.0.0, three documents); the tests run in file order, each leaves the stack at 1.0.0, healthy,
with maintenance off, and the module holds the stack lock from the preparation to the end.
"""

from __future__ import annotations

import json
import os
import subprocess
import typing as t
from pathlib import Path

import psycopg2
import pytest
from reference_stack import (
    PROJECT_DIR,
    REPO,
    VENV_BIN,
    Stack,
    ansible_env,
    containers,
    prepared_stack,
    read_env_file,
)

pytestmark = pytest.mark.stack

HOST = "ablage-local"
STATE_DIR = Path(os.environ.get("ABLAGE_STATE_DIR", "/var/lib/ablage-deploy"))
PLAYBOOK_TIMEOUT = 600
CONTACT = "oncall@ablage.example"  # from inventories/local: every failure message must name it


class Run(t.NamedTuple):
    rc: int
    tasks: dict[str, dict[str, t.Any]]  # the host's result by task name (the last one of that name)
    output: str

    def failure(self) -> str:
        failed = [result.get("msg", "") for result in self.tasks.values() if result.get("failed")]
        return " | ".join(str(msg) for msg in failed)


def play(name: str, *extra: str) -> Run:
    command = [str(VENV_BIN / "ansible-playbook"), "-i", str(REPO / "inventories" / "local")]
    command += [str(REPO / "playbooks" / f"{name}.yml"), *extra]
    proc = subprocess.run(
        command, capture_output=True, text=True, env=ansible_env(), timeout=PLAYBOOK_TIMEOUT, check=False
    )
    tasks: dict[str, dict[str, t.Any]] = {}
    try:
        for play_ in json.loads(proc.stdout)["plays"]:
            for task in play_["tasks"]:
                if HOST in task["hosts"]:
                    # Role tasks are named "<role> : <name>".
                    tasks[task["task"]["name"].split(" : ", 1)[-1]] = task["hosts"][HOST]
    except (ValueError, KeyError) as exc:
        pytest.fail(f"{name}.yml gave no JSON result ({exc}): {proc.stdout[-2000:]} {proc.stderr[-2000:]}")
    return Run(proc.returncode, tasks, proc.stdout[-6000:] + proc.stderr[-2000:])


def compose(*args: str) -> None:
    subprocess.run(["docker", "compose", *args], cwd=PROJECT_DIR, check=True, capture_output=True, timeout=300)


def execute(sql: str, params: t.Any = None) -> list[tuple[t.Any, ...]]:
    env = read_env_file(PROJECT_DIR / ".env.production")
    conn = psycopg2.connect(
        host="127.0.0.1", port=5432, user="postgres", password=env["POSTGRES_PASSWORD"], dbname="ablage"
    )
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params)
            return list(cur.fetchall()) if cur.description else []
    finally:
        conn.close()


def query(sql: str) -> list[tuple[t.Any, ...]]:
    return execute(sql)


def document_rows() -> list[tuple[t.Any, ...]]:
    return query("SELECT id, filename, sha256 FROM documents ORDER BY id")


def revision() -> str:
    return str(query("SELECT version_num FROM alembic_version")[0][0])


def health(stack: Stack) -> dict[str, t.Any]:
    response = stack.client.get("/api/v1/health/complete")
    return t.cast(dict[str, t.Any], response.json())


@pytest.fixture(scope="module")
def stack() -> t.Iterator[Stack]:
    yield from prepared_stack(PLAYBOOK_TIMEOUT)


def test_status_works_while_the_worker_is_down_and_names_it(stack: Stack) -> None:
    compose("stop", "worker")
    run = play("status")
    assert run.rc == 0, run.output
    report = run.tasks["Status | Put the parts together"]["ansible_facts"]["operate_status_report"]
    services = {row["service"]: row for row in report["services"]}
    assert report["down"] == ["worker"], report
    assert services["worker"]["state"] == "exited"
    assert services["backend"]["up"] and services["backend"]["version"] == "1.0.0"
    assert report["health"]["status"] != "healthy"
    assert report["health"]["components"]["pipeline"] != "healthy"
    assert report["alembic_revision"] == "0001"
    assert report["maintenance"]["enabled"] is False
    summary = run.tasks["Status | Summary"]["msg"]
    assert summary[0].endswith("DOWN: worker"), summary
    assert any(CONTACT in line for line in summary), summary

    # Back up through restart.yml (a stopped service is started and waited for).
    before = containers()
    run = play("restart", "-e", "operate_restart_service=worker")
    assert run.rc == 0, run.output
    after = containers()
    assert after["worker"][2] == "running"
    assert {s: v for s, v in after.items() if s != "worker"} == {s: v for s, v in before.items() if s != "worker"}
    assert health(stack)["status"] == "healthy"


def test_restart_of_one_service_leaves_the_other_containers_untouched(stack: Stack) -> None:
    before = containers()
    run = play("restart", "-e", "operate_restart_service=backend")
    assert run.rc == 0, run.output
    after = containers()
    assert after["backend"][0] == before["backend"][0], "restarted, not recreated"
    assert after["backend"][1] != before["backend"][1], "the backend was not restarted"
    others = set(before) - {"backend"}
    assert {s: after[s] for s in others} == {s: before[s] for s in others}
    assert health(stack)["status"] == "healthy"


def test_restart_of_postgres_is_refused_while_the_backend_runs(stack: Stack) -> None:
    before = containers()
    run = play("restart", "-e", "operate_restart_service=postgres")
    assert run.rc != 0
    assert "operate_restart_database=true" in run.failure(), run.output
    assert CONTACT in run.failure()
    assert containers() == before


def test_maintenance_on_and_off(stack: Stack) -> None:
    run = play("maintenance", "-e", "operate_maintenance_state=enabled", "-e", "operate_maintenance_reason=day-2 test")
    assert run.rc == 0, run.output
    assert stack.maintenance() is True
    run = play("maintenance", "-e", "operate_maintenance_state=disabled")
    assert run.rc == 0, run.output
    assert stack.maintenance() is False


def test_restore_refuses_without_confirmation_and_changes_nothing(stack: Stack) -> None:
    before = (containers(), document_rows(), revision(), sorted(p.name for p in STATE_DIR.glob("*")))
    run = play("restore")
    assert run.rc != 0
    assert "operate_restore_confirm=true" in run.failure(), run.output
    assert CONTACT in run.failure()
    assert (containers(), document_rows(), revision(), sorted(p.name for p in STATE_DIR.glob("*"))) == before
    assert stack.maintenance() is False


def write_row(name: str) -> None:
    """A document row written after the backup, as the application writes them."""
    execute(
        "INSERT INTO documents (id, filename, content_type, size_bytes, sha256, object_key, owner)"
        " VALUES (gen_random_uuid()::text, %s, 'text/plain', 1, repeat('0', 64), 'after-backup/' || %s, 'day2-test')",
        (name, name),
    )


def test_backup_then_restore_brings_back_exactly_the_rows_of_the_backup(stack: Stack) -> None:
    run = play("backup")
    assert run.rc == 0, run.output
    backup = run.tasks["Backup | Verified pg_dump backup with retention"]
    manifest = backup["manifest"]
    assert manifest["label"] == "1.0.0" and manifest["alembic_revision"] == "0001"
    backed_up = document_rows()
    assert manifest["tables"]["public.documents"] == len(backed_up) == 3
    api_backup = json.loads((STATE_DIR / "state.json").read_text())["last_backup"]["api_backup"]
    assert api_backup["status"] == "completed", api_backup

    write_row("after-backup-1.txt")
    write_row("after-backup-2.txt")
    written = document_rows()
    assert len(written) == 5

    # A version whose images do not match the backup's revision is refused before anything changes.
    before = containers()
    run = play("restore", "-e", "operate_restore_confirm=true", "-e", "operate_restore_version=1.1.0")
    assert run.rc != 0
    assert "have head 0002" in run.failure(), run.output
    assert document_rows() == written and containers() == before
    assert not (STATE_DIR / "deploy.lock").exists()

    run = play("restore", "-e", "operate_restore_confirm=true")
    assert run.rc == 0, run.output
    assert document_rows() == backed_up
    assert revision() == manifest["alembic_revision"]
    assert health(stack)["status"] == "healthy" and health(stack)["version"] == "1.0.0"
    assert stack.maintenance() is False
    assert not (STATE_DIR / "deploy.lock").exists()
    last = json.loads((STATE_DIR / "history.jsonl").read_text().splitlines()[-1])
    assert last["action"] == "restore" and last["version"] == "1.0.0" and last["backup"] == backup["backup_path"]
    assert "ABLAGE_VERSION=1.0.0" in (PROJECT_DIR / ".env").read_text()


def test_logs_are_saved_on_the_controller_and_filtered(stack: Stack, tmp_path: Path) -> None:
    run = play("logs", "-e", f"operate_logs_dir={tmp_path / 'all'}", "-e", "operate_logs_lines=20")
    assert run.rc == 0, run.output
    for service in ("backend", "worker"):
        (saved,) = (tmp_path / "all" / HOST).glob(f"*/{service}.log")
        lines = saved.read_text().splitlines()
        assert 0 < len(lines) <= 20, saved

    # Filtered over the whole log (a window that cannot move between the two reads): exactly the
    # ERROR/WARNING lines that docker compose logs | grep -E "(ERROR|WARNING)" finds.
    every = "1000000"
    run = play(
        "logs",
        "-e",
        f"operate_logs_dir={tmp_path / 'filtered'}",
        "-e",
        "operate_logs_filter=warning",
        "-e",
        f"operate_logs_lines={every}",
    )
    assert run.rc == 0, run.output
    for service in ("backend", "worker"):
        (saved,) = (tmp_path / "filtered" / HOST).glob(f"*/{service}.log")
        logs = subprocess.run(
            ["docker", "compose", "logs", "--no-color", "--timestamps", "--tail", every, service],
            cwd=PROJECT_DIR,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        expected = [line for line in (logs.stdout + logs.stderr).splitlines() if "ERROR" in line or "WARNING" in line]
        assert saved.read_text().splitlines() == expected, service
