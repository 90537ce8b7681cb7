"""The ocrdesk host after deploy.yml: 1.1.0 runs in ocrdesk's own shape, data and deploy state
are as promised. Runs after converge (1.0.0 -> 1.1.0) and again after the side effect
(1.2.0-broken rolled back), so everything here holds in both states."""

from __future__ import annotations

import json

import pytest

PROJECT = "/srv/ocrdesk"
STATE_DIR = "/var/lib/ocrdesk-deploy"
API = "http://127.0.0.1:8100/api/v1"
VERSION = "1.1.0"
IMAGE = f"127.0.0.1:5000/ocrdesk/server:{VERSION}"
# the role is not the db container's OS user: psql over TCP, with the password from the env_file
PSQL = (
    "docker compose --project-directory %s exec -T db sh -c "
    """'PGPASSWORD="$POSTGRES_PASSWORD" psql -h 127.0.0.1 -p 5433 -U "$POSTGRES_USER" -d "$POSTGRES_DB" -Atc "$1"' """
    "psql %s"
)


def psql(host, sql: str) -> str:
    cmd = host.run(PSQL, PROJECT, sql)
    assert cmd.rc == 0, cmd.stderr
    return cmd.stdout.strip()


def env_production(host) -> dict[str, str]:
    lines = host.file(f"{PROJECT}/.env.production").content_string.splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))


def admin_token(host) -> str:
    env = env_production(host)
    body = json.dumps({"username": env["ADMIN_USERNAME"], "password": env["ADMIN_PASSWORD"]})
    out = host.check_output("curl -fsS -m 10 -H 'Content-Type: application/json' -d %s %s/auth/login", body, API)
    return str(json.loads(out)["access_token"])


def test_env_names_the_version_in_its_own_variable(host) -> None:
    env = host.file(f"{PROJECT}/.env")
    assert f"OCRDESK_RELEASE={VERSION}" in env.content_string.splitlines()
    assert "ABLAGE_VERSION" not in env.content_string
    assert env.mode == 0o644
    assert host.file(f"{PROJECT}/.env.production").mode == 0o600


@pytest.mark.parametrize("service", ["api", "ocr"])
def test_app_containers_run_the_one_server_image(host, service: str) -> None:
    out = host.check_output("docker inspect -f '{{.Config.Image}} {{.State.Health.Status}}' ocrdesk-%s-1", service)
    logs = host.run("docker logs --tail 50 ocrdesk-%s-1", service).stdout
    assert out == f"{IMAGE} healthy", logs


def test_no_container_of_the_reference_shape_in_the_project(host) -> None:
    services = host.check_output(
        "docker compose --project-directory %s ps --all --format '{{.Service}}'", PROJECT
    ).split()
    assert sorted(services) == ["api", "cache", "db", "metrics", "objects", "ocr"]


def test_api_reports_the_version(host) -> None:
    health = json.loads(host.check_output("curl -fsS -m 10 %s/health", API))
    assert health == {"status": "healthy", "version": VERSION}


def test_database_at_the_new_revision_with_the_rows_intact(host) -> None:
    assert psql(host, "SELECT version_num FROM alembic_version") == "0002"
    assert psql(host, "SELECT count(*) FROM documents WHERE filename LIKE 'survivor-%'") == "3"
    jobs = psql(
        host,
        "SELECT count(*) FROM ocr_jobs j JOIN documents d ON d.id = j.document_id"
        " WHERE d.filename LIKE 'survivor-%' AND j.status = 'completed'",
    )
    assert jobs == "1"
    # 0002's backfill ran: page_count from the OCR text, so only the OCR'd survivor has one
    assert psql(host, "SELECT count(*) FROM documents WHERE filename LIKE 'survivor-%' AND page_count = 1") == "1"


def test_maintenance_is_off(host) -> None:
    token = admin_token(host)
    state = json.loads(
        host.check_output("curl -fsS -m 10 -H %s %s/admin/maintenance", f"Authorization: Bearer {token}", API)
    )
    assert state["enabled"] is False
    assert host.check_output("curl -s -o /dev/null -w '%%{http_code}' %s/documents/", API) != "503"


def test_queue_drained_under_its_own_field_names(host) -> None:
    pipeline = json.loads(host.check_output("curl -fsS -m 10 %s/health/pipeline", API))
    assert pipeline["jobs"] == {"waiting": 0, "active": 0}


def test_lock_free_and_state_recorded(host) -> None:
    assert not host.file(f"{STATE_DIR}/deploy.lock").exists
    state = json.loads(host.file(f"{STATE_DIR}/state.json").content_string)
    assert state["current_version"] == VERSION
    history = [json.loads(line) for line in host.file(f"{STATE_DIR}/history.jsonl").content_string.splitlines()]
    deploys = [h for h in history if h["action"] == "deploy"]
    assert deploys[0]["version"] == VERSION and deploys[0]["result"] == "success"
    for record in deploys[1:]:
        assert record["version"] == "1.2.0-broken" and record["result"] != "success", record


def test_backups_are_private(host) -> None:
    backups = host.file(f"{STATE_DIR}/backups")
    assert backups.is_directory and backups.mode == 0o700
    dumps = host.check_output("find %s/backups -name '*.dump'", STATE_DIR).split()
    assert dumps
    for dump in dumps:
        assert host.file(dump).mode == 0o600
