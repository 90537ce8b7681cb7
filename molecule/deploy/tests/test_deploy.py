"""The host after deploy.yml: the new version runs, data and deploy state are as promised.

Runs after converge (1.0.0 -> 1.1.0) and again after the side effect (1.2.0-broken rolled
back), so everything here must hold in both states.
"""

from __future__ import annotations

import json
from pathlib import Path

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


# --------------------------------------------------------------------------- the checklist report
REPORT_DIR = "/tmp/ablage-molecule/deploy-reports"  # noqa: S108 - the path converge.yml writes the reports to
ENV_FILE = f"{PROJECT}/.env.production"
SEED_ITEMS_FILE = Path(__file__).resolve().parents[3] / "tests" / "seed_checklist_items.txt"
SEED_ITEMS = {
    line for line in SEED_ITEMS_FILE.read_text(encoding="utf-8").splitlines() if line and not line.startswith("#")
}


def reports(host) -> list[tuple[str, dict]]:
    paths = host.check_output("find %s -maxdepth 1 -name '*.json' | sort", REPORT_DIR).split()
    return [(p, json.loads(host.file(p).content_string)) for p in paths]


@pytest.fixture
def deploy_report(host) -> tuple[str, dict]:
    """The report of converge's real 1.0.0 -> 1.1.0 deploy (the check run and the failed deploys have their own)."""
    found = [
        (p, r)
        for p, r in reports(host)
        if r["playbook"] == "deploy"
        and not r["check_mode"]
        and r["versions"]["to"] == "1.1.0"
        and r["result"] == "success"
    ]
    assert len(found) == 1, [p for p, _report in reports(host)]
    return found[0]


def test_report_has_every_checklist_item_with_evidence(host, deploy_report) -> None:
    _path, report = deploy_report
    assert {i["item"] for i in report["items"]} >= SEED_ITEMS
    for item in report["items"]:
        assert item["status"] in {"checked", "not_checked", "not_run", "waived", "planned"}, item
        assert item["evidence"].strip(), item
    failed = [i for i in report["items"] if i["status"] == "not_checked"]
    assert not failed
    statuses = {i["item"]: i["status"] for i in report["items"]}
    for item in SEED_ITEMS - {
        "Tests bestanden",
        "Type Checking clean",
        "Team informiert",
        "GPU Memory",
        "Security Scan",
        "1. Sofortiger Rollback",
        "2. Datenbank Rollback",
    }:
        assert statuses[item] == "checked", (item, statuses[item])
    assert report["run_id"] and report["who"] and report["started_at"] and report["finished_at"]
    assert report["versions"]["from"] == "1.0.0" and report["versions"]["to"] == "1.1.0"


def test_report_backup_is_the_real_file(host, deploy_report) -> None:
    _path, report = deploy_report
    backup = report["backup"]
    dump = host.file(backup["path"])
    assert dump.exists and dump.size == backup["size_bytes"]
    assert host.check_output("sha256sum %s", backup["path"]).split()[0] == backup["sha256"]
    assert backup["test_restore"] == "equal"


def test_report_revisions_are_the_databases(host, deploy_report) -> None:
    _path, report = deploy_report
    assert report["alembic"]["from"] == "0001"
    assert report["alembic"]["to"] == psql(host, "SELECT version_num FROM alembic_version") == "0002"
    assert "ALTER TABLE documents ADD COLUMN page_count" in report["alembic"]["sql_preview"]
    assert report["alembic"]["preview_verdict"].startswith("safe")


def test_report_downtime_as_users_saw_it_next_to_the_window(host, deploy_report) -> None:
    _path, report = deploy_report
    down = report["downtime"]
    assert down["measured"] and down["samples"] > 0
    assert down["users_saw_s"] > 0 and down["outages"] and not down["outages"][-1]["open"]
    window = down["maintenance_window"]
    assert window["on"] and window["off"] and window["duration_s"] > 0
    # Users were refused by maintenance (503) and by the stopped backend (connection refused).
    reasons = {r for o in down["outages"] for r in o["reasons"]}
    assert "status 503" in reasons
    history = [json.loads(line) for line in host.file(f"{STATE_DIR}/history.jsonl").content_string.splitlines()]
    record = next(h for h in history if h.get("run_id") == report["run_id"] and h["action"] == "deploy")
    assert record["downtime_s"] == down["users_saw_s"] and record["maintenance_window"]["on"] == window["on"]


def test_report_markdown_release_notes_and_changelog(host, deploy_report) -> None:
    path, report = deploy_report
    markdown = host.file(path[: -len(".json")] + ".md").content_string
    assert "**Result: SUCCESS**" in markdown and "1.0.0 → 1.1.0" in markdown and "- [x] **Backup erstellt**" in markdown
    notes = host.file(path[: -len(".json")] + ".release-notes.md").content_string
    assert "1.0.0 → 1.1.0" in notes and "Migrations applied: 0002" in notes
    changelog = host.file(f"{STATE_DIR}/CHANGELOG.md")
    assert changelog.mode == 0o600 and f"deploy run {report['run_id']}" in changelog.content_string


def test_no_secret_in_any_report(host) -> None:
    lines = host.file(ENV_FILE).content_string.splitlines()
    env = dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))
    secrets = [v for k, v in env.items() if any(w in k for w in ("PASSWORD", "SECRET", "KEY")) and len(v) >= 8]
    assert len(secrets) >= 4, sorted(env)
    files = host.check_output("find %s -type f", REPORT_DIR).split()
    assert any(f.endswith(".md") for f in files) and any(f.endswith(".json") for f in files)
    for path in files:
        content = host.file(path).content_string
        for secret in secrets:
            assert secret not in content, path
