"""rollback.yml -e rollback_version=X goes back to a release that ran here two deploys ago.

Before: the rollback knew only the last deploy's rollback point (issue 16). Here the reference stack
goes 1.0.0 -> 1.1.0 -> 1.4.0 (Alembic 0001 -> 0002 -> 0005, both additive), then back to 1.0.0 while
a user reads and writes: 1.0.0's head is read from its images, the upgrades since are checked
(nothing removed data), the database is downgraded through both migrations with the newest images,
and every write users made survives. A release that never ran here is refused before anything is
changed, the lock released.
"""

from __future__ import annotations

import json
import subprocess
import time
import typing as t
from pathlib import Path

import pytest
from reference_stack import Stack, playbook_cli, prepared_stack
from user_load import UserLoad, audit

pytestmark = pytest.mark.stack

STATE_DIR = Path("/var/lib/ablage-deploy")
QUICK = ("-e", "preflight_quality_enabled=false")


def _sql(query: str) -> str:
    return subprocess.run(
        ["docker", "exec", "ablage-postgres-1", "psql", "-U", "postgres", "-d", "ablage", "-tAc", query],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()


def _history() -> list[dict[str, t.Any]]:
    lines = (STATE_DIR / "history.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


@pytest.fixture(scope="module")
def stack() -> t.Iterator[Stack]:
    yield from prepared_stack()


def test_back_two_releases_keeps_every_write(stack: Stack) -> None:
    for version in ("1.1.0", "1.4.0"):
        run = playbook_cli("deploy.yml", "-e", f"ablage_version={version}", *QUICK)
        assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    assert (stack.version(), _sql("SELECT version_num FROM alembic_version")) == ("1.4.0", "0005")
    state_before = (STATE_DIR / "state.json").read_text(encoding="utf-8")

    never = playbook_cli("rollback.yml", "-e", "rollback_version=1.2.0-broken")
    out = never.stdout + never.stderr
    assert never.returncode != 0
    assert "1.2.0-broken never ran on this host (releases that did, oldest first: 1.0.0, 1.1.0, 1.4.0)" in out, out[
        -3000:
    ]
    assert "Nothing was changed" in out and "Rollback FAILED" not in out
    assert not (STATE_DIR / "deploy.lock").exists(), "a refused rollback keeps no lock"
    assert (STATE_DIR / "state.json").read_text(encoding="utf-8") == state_before
    assert stack.version() == "1.4.0" and not stack.maintenance()

    load = UserLoad()
    load.start()
    started = time.time()
    try:
        time.sleep(2)  # users write on 1.4.0 before the rollback begins
        back = playbook_cli("rollback.yml", "-e", "rollback_version=1.0.0", "-e", "rollback_note=two back")
        time.sleep(2)  # and on 1.0.0 after it
    finally:
        load.stop()
    out = back.stdout + back.stderr
    assert back.returncode == 0, out[-4000:]
    assert stack.version() == "1.0.0" and not stack.maintenance()
    assert _sql("SELECT version_num FROM alembic_version") == "0001"
    assert (
        _sql(
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'documents' "
            "AND column_name IN ('page_count', 'reviewed_at')"
        )
        == "0"
    )
    documents, jobs = load.confirmed(started)
    assert documents, "the user load confirmed no write"
    found = audit(stack.user_token, documents, jobs)
    assert not found["lost_documents"] and not found["lost_jobs"], found
    record = _history()[-1]
    assert (record["action"], record["version"], record["from_version"], record["database"]) == (
        "rollback",
        "1.0.0",
        "1.4.0",
        "downgrade",
    ), record

    again = playbook_cli("rollback.yml")
    assert again.returncode == 0, (again.stdout + again.stderr)[-3000:]
    assert "Nothing to undo: already rolled back to 1.0.0" in again.stdout
