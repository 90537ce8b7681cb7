"""The host after deploy.yml: the new version runs, data and deploy state are as promised.

Runs after converge (1.0.0 -> 1.1.0) and again after the side effect (1.2.0-broken rolled
back), so everything here must hold in both states.
"""

from __future__ import annotations

import json

import pytest

PROJECT = "/srv/ablage"
STATE_DIR = "/var/lib/ablage-deploy"


def psql(host, sql: str) -> str:
    cmd = host.run(
        "docker compose --project-directory %s exec -T postgres psql -U postgres -d ablage -Atc %s",
        PROJECT,
        sql,
    )
    assert cmd.rc == 0, cmd.stderr
    return cmd.stdout.strip()


def test_compose_project_points_at_the_deployed_version(host) -> None:
    assert "ABLAGE_VERSION=1.1.0" in host.file(f"{PROJECT}/.env").content_string


@pytest.mark.parametrize("service", ["backend", "worker"])
def test_app_containers_run_the_new_image(host, service: str) -> None:
    out = host.check_output("docker inspect -f '{{.Config.Image}} {{.State.Health.Status}}' ablage-%s-1", service)
    logs = host.run("docker logs --tail 50 ablage-%s-1", service).stdout
    assert out == f"127.0.0.1:5000/ablage/{service}:1.1.0 healthy", logs


def test_database_at_the_new_revision_with_the_data_intact(host) -> None:
    assert psql(host, "SELECT version_num FROM alembic_version") == "0002"
    survivors = psql(host, "SELECT count(*) FROM documents WHERE filename LIKE 'survivor-%'")
    assert survivors == "3"


def test_maintenance_is_off(host) -> None:
    assert host.check_output("curl -s -o /dev/null -w '%%{http_code}' http://127.0.0.1:8000/api/v1/documents/") != "503"


def test_deploy_state_and_history(host) -> None:
    state = json.loads(host.file(f"{STATE_DIR}/state.json").content_string)
    assert state["current_version"] == "1.1.0"
    history = [json.loads(line) for line in host.file(f"{STATE_DIR}/history.jsonl").content_string.splitlines()]
    deploys = [h for h in history if h["action"] == "deploy"]
    assert deploys[0]["version"] == "1.1.0" and deploys[0]["result"] == "success"
    assert not host.file(f"{STATE_DIR}/deploy.lock").exists


def test_backups_are_private(host) -> None:
    backups = host.file(f"{STATE_DIR}/backups")
    assert backups.is_directory and backups.mode == 0o700
    dumps = host.check_output("find %s/backups -name '*.dump'", STATE_DIR).split()
    assert dumps
    for dump in dumps:
        assert host.file(dump).mode == 0o600
