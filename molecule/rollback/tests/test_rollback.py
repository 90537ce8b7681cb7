"""After playbooks/rollback.yml: the previous version runs on the previous schema, data intact."""

from __future__ import annotations

import json

import pytest

STATE_DIR = "/var/lib/ablage-deploy"


def psql(host, sql: str) -> str:
    cmd = host.run("docker exec ablage-postgres-1 psql -U postgres -d ablage -Atc %s", sql)
    assert cmd.rc == 0, cmd.stderr
    return cmd.stdout.strip()


@pytest.mark.parametrize("service", ["backend", "worker"])
def test_previous_images_run_healthy(host, service: str) -> None:
    out = host.check_output("docker inspect -f '{{.Config.Image}} {{.State.Health.Status}}' ablage-%s-1", service)
    assert out == f"127.0.0.1:5000/ablage/{service}:1.0.0 healthy"


def test_schema_downgraded_and_data_kept(host) -> None:
    assert psql(host, "SELECT version_num FROM alembic_version") == "0001"
    assert psql(host, "SELECT count(*) FROM documents WHERE filename LIKE 'survivor-%'") == "3"
    # Written by the 1.1.0 deploy's smoke test after the backup: a downgrade keeps it, a restore would not.
    assert int(psql(host, "SELECT count(*) FROM documents WHERE filename = 'smoke-document.pdf'")) >= 1


def test_history_records_the_rollback_and_the_lock_is_released(host) -> None:
    lines = host.file(f"{STATE_DIR}/history.jsonl").content_string.splitlines()
    last = json.loads(lines[-1])
    assert last["action"] == "rollback" and last["database"] == "downgrade" and last["version"] == "1.0.0"
    assert last["reason"] == "molecule rollback scenario"
    assert not host.file(f"{STATE_DIR}/deploy.lock").exists
