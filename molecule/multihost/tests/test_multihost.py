"""Two app hosts after a rolling deploy.yml (ablage_serial=1): both run 1.1.0, the shared
database was backed up and migrated once, by the primary, and the node restarted after it."""

from __future__ import annotations

import json

import pytest

PRIMARY = {"project": "/srv/ablage", "state": "/var/lib/ablage-deploy", "prefix": "ablage"}
NODE = {"project": "/srv/ablage-node2", "state": "/var/lib/ablage-deploy-node2", "prefix": "ablage-node2"}


def state(host, where: dict[str, str]) -> dict:
    return json.loads(host.file(f"{where['state']}/state.json").content_string)


def history(host, where: dict[str, str]) -> list[dict]:
    return [json.loads(line) for line in host.file(f"{where['state']}/history.jsonl").content_string.splitlines()]


@pytest.mark.parametrize("where", [PRIMARY, NODE], ids=["primary", "node"])
@pytest.mark.parametrize("service", ["backend", "worker"])
def test_both_hosts_run_the_new_release(host, where: dict[str, str], service: str) -> None:
    assert "ABLAGE_VERSION=1.1.0" in host.file(f"{where['project']}/.env").content_string
    out = host.check_output(
        "docker inspect -f '{{.Config.Image}} {{.State.Health.Status}}' %s-%s-1", where["prefix"], service
    )
    assert out == f"127.0.0.1:5000/ablage/{service}:1.1.0 healthy"


def test_the_primary_migrated_the_shared_database_once(host) -> None:
    primary, node = state(host, PRIMARY), state(host, NODE)
    assert (primary["migrated"], primary["alembic_revision_before"], primary["alembic_revision_after"]) == (
        True,
        "0001",
        "0002",
    )
    assert node["migrated"] is False
    assert node["alembic_revision_before"] is None
    assert node.get("maintenance_on_at") is None


def test_only_the_primary_took_a_backup(host) -> None:
    assert state(host, PRIMARY)["backup"]["path"].startswith(f"{PRIMARY['state']}/backups/")
    assert state(host, NODE)["backup"] is None
    assert not host.file(f"{NODE['state']}/backups").exists


def test_each_host_recorded_its_deploy(host) -> None:
    for where in (PRIMARY, NODE):
        deploys = [h for h in history(host, where) if h["action"] == "deploy"]
        assert [(h["version"], h["result"]) for h in deploys] == [("1.1.0", "success")], where
        assert not host.file(f"{where['state']}/deploy.lock").exists


def test_the_node_was_restarted_after_the_primary_finished(host) -> None:
    finished = state(host, PRIMARY)["finished_at"]
    started = host.check_output("docker inspect -f '{{.State.StartedAt}}' ablage-node2-backend-1")
    # Both are UTC ISO 8601; the container's has fractions of a second, which sort after "Z".
    assert started[:19] >= finished[:19], (started, finished)


def test_the_data_survived(host) -> None:
    count = host.check_output(
        "docker compose --project-directory %s exec -T postgres psql -U postgres -d ablage -Atc %s",
        PRIMARY["project"],
        "SELECT count(*) FROM documents WHERE filename LIKE 'survivor-%'",
    )
    assert count == "3"
