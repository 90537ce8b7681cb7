"""The checklist filters: statuses, evidence, failure mapping, plan mode, redaction, Markdown."""

from __future__ import annotations

import json
import typing as t
from pathlib import Path

from ansible_collections.ablage.ops.plugins.filter import checklist

GATES = [
    {"section": "quality", "gate": "pytest", "ok": True, "evidence": "exit 0, coverage 91.5 % (min 80 %)"},
    {"section": "quality", "gate": "mypy --strict", "ok": True, "evidence": "exit 0"},
    {"section": "quality", "gate": "ruff check", "ok": True, "evidence": "exit 0"},
    {
        "section": "quality",
        "gate": "dependency audit",
        "ok": True,
        "waived": True,
        "evidence": "exit 1, WAIVED: offline",
    },
    {
        "section": "database",
        "gate": "migration preview",
        "ok": True,
        "sql": "ALTER TABLE x ADD COLUMN y INT;",
        "evidence": "0001 -> 0002, pending 1, destructive [], offline SQL available",
    },
    {"section": "config", "gate": "environment variables", "ok": True, "evidence": "25 variables"},
    {"section": "config", "gate": "no secrets in code", "ok": True, "evidence": "no findings"},
    {"section": "config", "gate": "TLS certificate", "ok": False, "evidence": "expires in 3 days"},
    {"section": "infra", "gate": "image ablage/backend:1.1.0", "ok": True, "evidence": "sha256:aa"},
    {"section": "infra", "gate": "GPU", "ok": True, "evidence": "no GPU"},
    {"section": "infra", "gate": "disk space", "ok": True, "evidence": "80 GB"},
    {"section": "infra", "gate": "memory", "ok": True, "evidence": "22 GB"},
]

REGISTERED: dict[str, t.Any] = {
    "deploy_alembic_before": {"current_before": "0001"},
    "deploy_pull": {"results": [{"item": "backend", "image": {"RepoDigests": ["r/backend@sha256:abcdef0123456789"]}}]},
    "deploy_maintenance_on": {"changed": True, "verification": {"status": 503, "ok": True}},
    "deploy_api_backup": {
        "changed": True,
        "attached": False,
        "backup_id": "full-1",
        "backup": {"backup_id": "full-1", "status": "completed", "file": "/backups/f.dump", "size_bytes": 10},
    },
    "deploy_pg_backup": {
        "backup_path": "/b/pre.dump",
        "size": 5515,
        "checksum": "c" * 64,
        "verification": {"level": "restore", "restore": {"equal": True}},
        "invocation": {"module_args": {"password": "hunter2-db-password"}},
    },
    "deploy_queue": {"results": [{"elapsed_s": 0.1}]},
    "deploy_stop": {"changed": True},
    "deploy_migration": {"current_before": "0001", "current_after": "0002", "head": "0002", "pending": ["0002"]},
    "verify_health": {"results": [{"name": "/api/v1/health", "status": 200, "ok": True, "latency_ms": 3.0}]},
    "verify_latency": {"results": [{"latency_ms": v} for v in (5.0, 6.0, 7.0)]},
    "verify_maintenance_off": {"changed": True, "verification": {"status": 405}},
    "verify_smoke": {
        "login": {"ran": True, "ok": True, "step": "login", "evidence": "POST /api/v1/auth/login answered 200"},
        "upload": {"ran": True, "ok": True, "step": "upload", "evidence": "POST /api/v1/documents/ answered 201"},
        "ocr": {"ran": True, "ok": True, "step": "ocr result", "evidence": "GET /api/v1/ocr/jobs/j1 answered 200"},
        "export": {"ran": True, "ok": True, "step": "export", "evidence": "GET /api/v1/documents/d1/export: 200"},
        "admin_panel": {"ran": True, "ok": True, "step": "admin panel", "evidence": "GET /admin answered 200"},
    },
    "verify_prom_targets": {
        "results": [{"json": {"data": {"activeTargets": [{"labels": {"job": "ablage-backend"}, "health": "up"}]}}}]
    },
    "verify_prom_alerts": {"results": [{"json": {"data": {"alerts": []}}}]},
    "verify_logs": {"stdout_lines": ["INFO started"]},
    "verify_gpu": {"device_count": 0},
    # no Grafana configured: the verify role's Grafana block was skipped
    "verify_grafana": {"changed": False, "skipped": True, "skip_reason": "Conditional result was False"},
}

CONTACTS = [{"role": "DevOps Lead", "name": "On-call", "availability": "24/7"}]


def results(steps: dict[str, t.Any]) -> dict[str, dict[str, t.Any]]:
    """The roles' published step results from flat "<role>_<step>" keys (deploy_pg_backup -> deploy.pg_backup)."""
    nested: dict[str, dict[str, t.Any]] = {}
    for key, value in steps.items():
        role, step = key.split("_", 1)
        nested.setdefault(role, {})[step] = value
    return nested


def evidence(**over: t.Any) -> dict[str, t.Any]:
    """An evidence spec as the report role builds it; ``registered`` gives the steps as flat keys."""
    over["results"] = results(over.pop("registered", REGISTERED))
    ev: dict[str, t.Any] = {
        "playbook": "deploy",
        "host": "h1",
        "run_id": "r1",
        "who": "alice",
        "check_mode": False,
        "version_from": "1.0.0",
        "version_to": "1.1.0",
        "preflight": GATES,
        "state": {
            "previous_version": "1.0.0",
            "target_version": "1.1.0",
            "current_version": "1.1.0",
            "maintenance_on_at": "2026-01-01T10:00:00Z",
        },
        "maintenance_off_at": "2026-01-01T10:00:30Z",
        "contacts": CONTACTS,
        "latency_max_ms": 50,
        "downtime": {
            "summary": {
                "samples": 100,
                "downtime_s": 12.5,
                "outages": [{"start": "a", "end": "b", "duration_s": 12.5}],
                "maintenance_window": {"on": "x", "off": "y", "duration_s": 30.0},
            }
        },
        "release_notes": {"path": "/r/notes.md"},
        "changelog": {"path": "/s/CHANGELOG.md"},
    }
    ev.update(over)
    return ev


def by_id(report: dict[str, t.Any]) -> dict[str, dict[str, t.Any]]:
    return {(i["section"], i["id"]): i for i in report["items"]}


SEED_ITEMS_FILE = Path(__file__).resolve().parents[3] / "seed_checklist_items.txt"
SEED_ITEMS = {
    line for line in SEED_ITEMS_FILE.read_text(encoding="utf-8").splitlines() if line and not line.startswith("#")
}


def test_every_seed_item_with_status_and_evidence() -> None:
    report = checklist.checklist_report(evidence())
    names = {i["item"] for i in report["items"]}
    assert names >= SEED_ITEMS
    assert all(i["status"] in checklist.STATUSES and i["evidence"] for i in report["items"])
    items = by_id(report)
    assert items[("pre_deployment", "tests")]["details"]["coverage_percent"] == 91.5
    assert items[("pre_deployment", "security_scan")]["status"] == "waived"
    assert items[("pre_deployment", "tls")]["status"] == "not_checked"
    assert items[("post_deployment", "gpu_memory")]["status"] == "waived"
    assert items[("deployment", "deploy")]["status"] == "checked"
    assert items[("rollback", "rollback_images")]["status"] == "not_run"
    assert report["backup"] == {
        "path": "/b/pre.dump",
        "size_bytes": 5515,
        "sha256": "c" * 64,
        "verification": "restore",
        "test_restore": "equal",
        "failed": False,
    }
    assert report["alembic"]["from"] == "0001" and report["alembic"]["to"] == "0002"
    assert report["alembic"]["sql_preview"] == "ALTER TABLE x ADD COLUMN y INT;"
    assert report["downtime"]["users_saw_s"] == 12.5 and report["downtime"]["maintenance_window"]["duration_s"] == 30.0
    # A not_checked pre-flight item (TLS) brings the contacts in, even though the result is success.
    assert report["result"] == "success" and report["escalation_contacts"] == CONTACTS


def test_failed_deploy_marks_the_failed_step_and_shows_rollback_and_contacts() -> None:
    registered = dict(REGISTERED)
    for name in [n for n in registered if n.startswith("verify_")]:
        del registered[name]
    registered["rollback_restore"] = {
        "backup_path": "/b/pre.dump",
        "comparison": {"equal": True, "actual_revision": "0001"},
    }
    registered["rollback_health"] = {"results": [{"url": "u/complete", "status": 200, "ok": True, "latency_ms": 4}]}
    report = checklist.checklist_report(
        evidence(
            registered=registered,
            result="rolled_back",
            failure='"Deploy | Start the backend and wait until healthy": container ablage-backend-1 is unhealthy',
            state={"previous_version": "1.0.0", "target_version": "1.2.0", "current_version": "1.0.0"},
        )
    )
    items = by_id(report)
    assert items[("deployment", "deploy")]["status"] == "not_checked"
    assert items[("deployment", "deploy")]["evidence"].startswith("FAILED here:")
    assert items[("deployment", "health")]["status"] == "not_run"
    assert items[("rollback", "rollback_images")]["status"] == "checked"
    assert items[("rollback", "rollback_database")]["status"] == "checked"
    assert report["alembic"]["after_rollback"] == "0001" and report["versions"]["running"] == "1.0.0"
    assert report["escalation_contacts"] == CONTACTS
    markdown = checklist.checklist_markdown(report)
    assert "**Result: ROLLED BACK**" in markdown and "## Notfall-Kontakte" in markdown and "On-call" in markdown
    assert "rolled back to 0001" in markdown and "running now: 1.0.0" in markdown


def test_stop_item_says_whether_the_stop_was_reached() -> None:
    """The queue drains before the backups: a failure between drain and stop must not read as stopped."""
    item = by_id(checklist.checklist_report(evidence()))[("deployment", "stop")]
    assert item["status"] == "checked"
    assert item["evidence"] == (
        "OCR queue drained (pending 0, processing 0) after 0.1 s instead of a fixed sleep 30; "
        "worker stopped, then backend"
    )

    not_stopped = dict(REGISTERED)
    del not_stopped["deploy_stop"]
    state = dict(evidence()["state"], phase="maintenance")
    item = by_id(checklist.checklist_report(evidence(registered=not_stopped, state=state)))[("deployment", "stop")]
    assert item["evidence"].endswith("; stop not reached")

    # Another app host: the primary drained the queue, this host stopped its own containers.
    other = dict(REGISTERED, deploy_queue={"skipped": True})
    item = by_id(checklist.checklist_report(evidence(registered=other)))[("deployment", "stop")]
    assert (item["status"], item["evidence"]) == ("checked", "worker stopped, then backend")


def test_backup_item_reads_the_api_backup_module() -> None:
    item = by_id(checklist.checklist_report(evidence()))[("deployment", "backup")]
    assert item["status"] == "checked"
    assert item["evidence"].startswith(
        "API full backup completed: /backups/f.dump, 10 bytes, checksum not recorded; pg_backup: "
    )
    attached = dict(REGISTERED["deploy_api_backup"], attached=True)
    registered = dict(REGISTERED, deploy_api_backup=attached)
    item = by_id(checklist.checklist_report(evidence(registered=registered)))[("deployment", "backup")]
    assert item["evidence"].startswith("API full backup completed (attached to the one already running): ")
    failed = {"failed": True, "msg": "backup 'full-1' failed: disk full", "backup": {"status": "failed"}}
    registered = dict(REGISTERED, deploy_api_backup=failed)
    item = by_id(checklist.checklist_report(evidence(registered=registered)))[("deployment", "backup")]
    assert item["status"] == "not_checked"
    assert item["evidence"].startswith("API full backup failed: ")
    planned = {"changed": True, "backup": {}, "plan": {"start": "http://h/api/v1/backup/full"}}
    registered = {k: v for k, v in REGISTERED.items() if k != "deploy_pg_backup"}
    registered["deploy_api_backup"] = planned
    report = checklist.checklist_report(evidence(check_mode=True, registered=registered, state={}, downtime={}))
    item = by_id(report)[("deployment", "backup")]
    assert item["status"] == "planned"
    assert "would be started" in item["evidence"]


def test_check_mode_is_the_plan() -> None:
    registered = {k: v for k, v in REGISTERED.items() if k in ("deploy_alembic_before", "deploy_migration")}
    registered["deploy_migration"] = {
        "current_before": "0001",
        "current_after": "0001",
        "head": "0002",
        "pending": ["0002"],
        "sql": "ALTER TABLE x ADD COLUMN y INT;",
    }
    report = checklist.checklist_report(evidence(check_mode=True, registered=registered, state={}, downtime={}))
    items = by_id(report)
    assert report["result"] == "planned" and report["alembic"]["to"] is None
    for item_id in ("maintenance_on", "backup", "stop", "deploy", "health", "maintenance_off", "smoke"):
        assert items[("deployment", item_id)]["status"] == "planned", item_id
    assert items[("pre_deployment", "linting")]["status"] == "checked"  # pre-flight is real in check mode
    assert report["backup"] is None and report["downtime"]["measured"] is False
    assert "```sql" in checklist.checklist_markdown(report)


def test_secrets_are_redacted_and_invocations_never_copied() -> None:
    secret = "s3cr3t-admin-token"
    report = checklist.checklist_report(
        evidence(failure=f'"Verify | Smoke | Upload the test document": token {secret}'), redact=[secret, "", None]
    )
    text = json.dumps(report) + checklist.checklist_markdown(report)
    assert secret not in text and "********" in text
    assert "hunter2-db-password" not in text
    assert by_id(report)[("post_deployment", "upload")]["status"] == "not_checked"
    assert by_id(report)[("deployment", "smoke")]["status"] == "not_checked"


def test_sections_and_extra_items_for_day2_playbooks() -> None:
    report = checklist.checklist_report(
        {
            "playbook": "restore",
            "sections": ["rollback"],
            "extra_items": [
                {
                    "section": "rollback",
                    "id": "restore",
                    "item": "Aus Backup wiederherstellen",
                    "status": "checked",
                    "evidence": "ok",
                },
                {"section": "rollback", "id": "bogus", "item": "x", "status": "maybe", "evidence": "?"},
            ],
        }
    )
    assert {i["section"] for i in report["items"]} == {"rollback"}
    assert [i["status"] for i in report["items"] if i["id"] in ("restore", "bogus")] == ["checked", "not_run"]
    assert report["result"] == "success" and "escalation_contacts" not in report


def test_preflight_only_shows_the_planned_revisions_from_the_preview() -> None:
    report = checklist.checklist_report({"playbook": "preflight", "sections": ["pre_deployment"], "preflight": GATES})
    assert (
        report["alembic"]["from"] == "0001" and report["alembic"]["head"] == "0002" and report["alembic"]["to"] is None
    )
    assert "| Alembic revision | 0001 → 0002 (planned) |" in checklist.checklist_markdown(report)
    assert "| Alembic revision | - |" in checklist.checklist_markdown(
        checklist.checklist_report({"playbook": "verify"})
    )


def test_gpu_memory_with_a_gpu_is_checked_or_failed() -> None:
    device = {
        "name": "NVIDIA GeForce RTX 4080",
        "memory_used_gb": 2.1,
        "memory_total_gb": 16.0,
        "memory_used_percent": 13.1,
    }
    registered = dict(REGISTERED, verify_gpu={"device_count": 1, "devices": [device]})
    gpu = by_id(checklist.checklist_report(evidence(registered=registered)))[("post_deployment", "gpu_memory")]
    assert gpu["status"] == "checked" and "RTX 4080: 2.1 of 16.0 GB (13.1 %)" in gpu["evidence"]
    registered["verify_gpu"] = {"device_count": 1, "devices": [device], "failed": True, "failures": ["memory 91 %"]}
    gpu = by_id(checklist.checklist_report(evidence(registered=registered)))[("post_deployment", "gpu_memory")]
    assert gpu["status"] == "not_checked" and "memory 91 %" in gpu["evidence"]


GRAFANA = "http://127.0.0.1:3000"
GRAFANA_ALERTS = f"{GRAFANA}/api/alertmanager/grafana/api/v2/alerts?active=true&silenced=false&inhibited=false"


def grafana_probe(*, missing: str = "", alerts: list[dict[str, t.Any]] | None = None, status: int = 200) -> t.Any:
    """The verify role's registered health_probe of Grafana, with Grafana's own response shapes."""
    results: list[dict[str, t.Any]] = [
        {
            "name": "Grafana health",
            "url": f"{GRAFANA}/api/health",
            "status": 200,
            "ok": True,
            "json": {"commit": "abc1234", "database": "ok", "version": "11.3.0"},
        }
    ]
    for uid, title in (("system-overview", "System Overview"), ("ocr-pipeline", "OCR Pipeline")):
        if uid == missing:
            results.append(
                {
                    "name": f"dashboard {title} (uid {uid})",
                    "url": f"{GRAFANA}/api/dashboards/uid/{uid}",
                    "status": 404,
                    "ok": False,
                    "json": {"message": "Dashboard not found"},
                    "reason": "status 404 not in [200]",
                }
            )
        else:
            results.append(
                {
                    "name": f"dashboard {title} (uid {uid})",
                    "url": f"{GRAFANA}/api/dashboards/uid/{uid}",
                    "status": status,
                    "ok": status == 200,
                    "json": {"dashboard": {"uid": uid, "title": title}, "meta": {"slug": uid}}
                    if status == 200
                    else {"message": "Unauthorized"},
                    "reason": "ok" if status == 200 else f"status {status} not in [200]",
                }
            )
    firing = alerts or []
    results.append(
        {
            "name": "firing alerts",
            "url": GRAFANA_ALERTS,
            "status": status,
            "ok": status == 200 and not firing,
            "json": firing if status == 200 else {"message": "Unauthorized"},
            "reason": "ok"
            if status == 200 and not firing
            else ("forbidden: ..." if status == 200 else f"status {status} not in [200]"),
        }
    )
    failed = not all(r["ok"] for r in results)
    return {"changed": False, "failed": failed, "results": results, "msg": "x of y URLs failed" if failed else "ok"}


def grafana_item(registered_grafana: t.Any, **over: t.Any) -> dict[str, t.Any]:
    registered = dict(REGISTERED, verify_grafana=registered_grafana)
    report = checklist.checklist_report(evidence(registered=registered, **over))
    return by_id(report)[("post_deployment", "grafana")]


def test_grafana_green_shows_version_dashboards_and_no_alerts() -> None:
    item = grafana_item(grafana_probe())
    assert item["status"] == "checked"
    assert item["evidence"] == (
        "Grafana 11.3.0, database ok; dashboard System Overview (system-overview) found; "
        "dashboard OCR Pipeline (ocr-pipeline) found; 0 firing alert(s)"
    )
    assert item["details"] == {
        "version": "11.3.0",
        "database": "ok",
        "dashboards": {
            "system-overview": {"found": True, "title": "System Overview"},
            "ocr-pipeline": {"found": True, "title": "OCR Pipeline"},
        },
        "firing_alerts": [],
    }


def test_grafana_not_configured_says_why_it_did_not_run() -> None:
    item = grafana_item(REGISTERED["verify_grafana"])
    assert item["status"] == "not_run"
    assert item["evidence"] == "not run: no Grafana is configured for this host (verify_grafana_url is empty)"
    registered = {k: v for k, v in REGISTERED.items() if k != "verify_grafana"}
    report = checklist.checklist_report(evidence(registered=registered))
    item = by_id(report)[("post_deployment", "grafana")]
    assert item["status"] == "not_run" and item["evidence"] == "not run (the Grafana check skipped by tags or settings)"


def test_grafana_missing_dashboard_and_firing_alert_fail_with_names() -> None:
    alert = {
        "labels": {"alertname": "HighGPUMemory", "grafana_folder": "Ablage"},
        "annotations": {"__dashboardUid__": "system-overview", "__panelId__": "4", "summary": "GPU > 85 %"},
        "status": {"state": "active", "silencedBy": [], "inhibitedBy": []},
        "fingerprint": "5d4c3b2a1f0e9d8c",
    }
    item = grafana_item(
        grafana_probe(missing="ocr-pipeline", alerts=[alert]),
        failure='"Verify | Grafana | What is not green": dashboard OCR Pipeline (uid ocr-pipeline) not found',
    )
    assert item["status"] == "not_checked"
    assert item["evidence"].startswith("FAILED here: ")
    assert "dashboard OCR Pipeline (ocr-pipeline) NOT FOUND (404)" in item["evidence"]
    assert "1 firing alert(s): HighGPUMemory (dashboard System Overview)" in item["evidence"]
    assert item["details"]["firing_alerts"] == ["HighGPUMemory (dashboard System Overview)"]
    assert item["details"]["dashboards"]["ocr-pipeline"] == {"found": False, "title": None}


def test_grafana_refused_token_names_the_variable() -> None:
    item = grafana_item(grafana_probe(status=401))
    assert item["status"] == "not_checked"
    assert "firing alerts not read (status 401 not in [200])" in item["evidence"]
    assert "dashboard System Overview (system-overview) not confirmed (status 401 not in [200])" in item["evidence"]
    assert item["evidence"].endswith("Grafana refused the token: check verify_grafana_token")


def test_grafana_in_check_mode_is_planned() -> None:
    assert grafana_item(grafana_probe(), check_mode=True)["status"] == "planned"


def test_a_release_that_never_answers_fails_the_deploy_item() -> None:
    """The deploy's readiness wait (roles/deploy/tasks/start.yml) is the start: its failure is the deploy item's."""
    tasks = Path(__file__).resolve().parents[4] / "roles" / "deploy" / "tasks" / "start.yml"
    start = next(
        line.split("name: ", 1)[1]
        for line in tasks.read_text().splitlines()
        if line.startswith("- name: Deploy | Wait until")
    )
    report = checklist.checklist_report(
        evidence(result="rolled_back", failure=f'"{start}": 3 of 5 URLs failed: status 503 not in [200]')
    )
    items = by_id(report)
    assert items[("deployment", "deploy")]["status"] == "not_checked"
    assert items[("deployment", "deploy")]["evidence"].startswith("FAILED here:")


def test_zero_downtime_waives_maintenance_and_shows_the_switch() -> None:
    """A zero-downtime run: maintenance was not needed (with the reason), the deploy item shows the switch."""
    zero = dict(REGISTERED)
    del zero["deploy_maintenance_on"]
    zero["deploy_queue"] = {"skipped": True}
    zero["deploy_mode"] = {"mode": "zero_downtime", "reason": "no migration is pending", "refuse": None}
    zero["deploy_zero_downtime"] = {
        "proxy": "127.0.0.1:8080",
        "surge_ready": {"results": [{"elapsed_s": 2.1}, {"elapsed_s": 2.4}]},
        "to_surge_at": "2026-01-01T10:00:05Z",
        "to_main_at": "2026-01-01T10:00:20Z",
        "surge_removed": True,
    }
    state = dict(evidence()["state"], started_services_at="2026-01-01T10:00:15Z")
    del state["maintenance_on_at"]
    items = by_id(checklist.checklist_report(evidence(registered=zero, state=state)))
    maintenance = items[("deployment", "maintenance_on")]
    assert maintenance["status"] == "waived"
    assert maintenance["evidence"] == (
        "not needed: zero-downtime deploy (no migration is pending); users were served through the reverse proxy "
        "on 127.0.0.1:8080 throughout"
    )
    assert items[("deployment", "stop")]["evidence"].startswith("old worker stopped after its job in progress")
    assert (
        "zero downtime: the new release answered in the surge slot after 2.4 s, took the traffic at "
        "2026-01-01T10:00:05Z, main slot replaced and back at 2026-01-01T10:00:20Z, surge slot removed"
    ) in items[("deployment", "deploy")]["evidence"]


def test_a_window_run_keeps_the_maintenance_item() -> None:
    window = dict(REGISTERED, deploy_mode={"mode": "window", "reason": "ablage_deploy_strategy is window"})
    item = by_id(checklist.checklist_report(evidence(registered=window)))[("deployment", "maintenance_on")]
    assert item["status"] == "checked" and item["evidence"].startswith("on at 2026-01-01T10:00:00Z")


def test_an_extra_infra_gate_is_listed() -> None:
    gates = [*GATES, {"section": "infra", "gate": "reverse proxy", "ok": False, "evidence": "no answer"}]
    items = [i for i in checklist.checklist_report(evidence(preflight=gates))["items"] if i["id"] == "infra_extra"]
    assert [(i["item"], i["status"], i["evidence"]) for i in items] == [
        ("reverse proxy", "not_checked", "reverse proxy: no answer")
    ]


def prometheus_item(**registered: t.Any) -> dict[str, t.Any]:
    failure = registered.pop("failure", None)
    report = checklist.checklist_report(evidence(registered={**REGISTERED, **registered}, failure=failure))
    return by_id(report)[("post_deployment", "prometheus")]


BACKEND_DOWN = {"labels": {"alertname": "AblageBackendDown"}, "state": "firing", "activeAt": "2026-01-01T10:00:05Z"}


def test_an_alert_of_the_window_that_resolved_shows_the_wait() -> None:
    item = prometheus_item(
        verify_prom_alerts_seen={"results": [{"json": {"data": {"alerts": [BACKEND_DOWN]}}}]},
        verify_prom_alerts={"results": [{"json": {"data": {"alerts": []}}, "elapsed_s": 12.4}]},
    )
    assert item["status"] == "checked"
    assert item["evidence"] == (
        "ablage-backend up; firing alerts: none "
        "(at the first read AblageBackendDown, begun during this deploy; resolved after 12.4 s)"
    )
    assert item["details"]["firing_at_first_read"] == ["AblageBackendDown"]


def test_an_alert_older_than_the_deploy_fails_naming_it() -> None:
    item = prometheus_item(
        verify_prom_alerts_seen={"results": [{"json": {"data": {"alerts": [BACKEND_DOWN]}}}]},
        verify_prom_alerts={"changed": False, "skipped": True},
        failure='"Verify | Prometheus | No alert firing that began before this deploy": 1 alert(s) firing',
    )
    assert item["status"] == "not_checked"
    assert "firing alerts: AblageBackendDown" in item["evidence"] and "resolved" not in item["evidence"]


POINT_RESULT = {
    "changed": True,
    "name": "ablage-deploy-r1",
    "lsn": "0/9000090",
    "created_at": "2026-01-01T10:00:10Z",
    "revision": ["0001"],
    "row_counts": {"public.documents": 3, "public.ocr_jobs": 2},
    "archived": True,
    "backup": {"label": "20260101-095900F_20260101-095950I", "type": "incr", "stop": "2026-01-01T09:59:55Z"},
}


def test_a_restore_point_is_the_backup_of_a_pitr_deploy() -> None:
    registered = {k: v for k, v in REGISTERED.items() if k != "deploy_pg_backup"}
    registered["deploy_base_backup"] = {"changed": True, "backup": POINT_RESULT["backup"]}
    registered["deploy_restore_point"] = POINT_RESULT
    item = by_id(checklist.checklist_report(evidence(registered=registered)))[("deployment", "backup")]
    assert item["status"] == "checked"
    assert item["evidence"].endswith(
        "pgBackRest: restore point ablage-deploy-r1 at 0/9000090 (2026-01-01T10:00:10Z), archived; revision 0001, "
        "2 tables, 5 rows; base backup 20260101-095900F_20260101-095950I (incr, 2026-01-01T09:59:55Z)"
    )
    assert "pg_backup:" not in item["evidence"]


def test_a_failed_base_backup_fails_the_backup_item() -> None:
    registered = {k: v for k, v in REGISTERED.items() if k != "deploy_pg_backup"}
    registered["deploy_base_backup"] = {"failed": True, "msg": "pgBackRest backup failed (exit 82): WAL not archived"}
    item = by_id(checklist.checklist_report(evidence(registered=registered)))[("deployment", "backup")]
    assert item["status"] == "not_checked"
    assert "the pgBackRest base backup failed: pgBackRest backup failed (exit 82)" in item["evidence"]


def test_a_recovery_to_the_restore_point_is_the_database_rollback() -> None:
    registered = {k: v for k, v in REGISTERED.items() if not k.startswith("verify_")}
    registered["rollback_recovery"] = {
        "changed": True,
        "name": "ablage-deploy-r1",
        "elapsed_s": 9.8,
        "recovered_in_s": 0.51,
        "timeline": 4,
        "comparison": {"equal": True, "actual_revision": ["0001"], "tables": 2, "rows": 5, "differences": []},
    }
    report = checklist.checklist_report(
        evidence(
            registered=registered,
            result="rolled_back",
            failure='"Deploy | Wait until the started release answers": 3 of 5 URLs failed',
            state={"previous_version": "1.0.0", "target_version": "1.2.0", "current_version": "1.0.0"},
        )
    )
    item = by_id(report)[("rollback", "rollback_database")]
    assert item["status"] == "checked"
    assert item["evidence"] == (
        "recovered the cluster to restore point ablage-deploy-r1 with pgBackRest in 9.8 s "
        "(server up 0.51 s after its start, timeline 4) "
        "(revision 0001, 2 tables, 5 rows, equal to the restore point)"
    )
