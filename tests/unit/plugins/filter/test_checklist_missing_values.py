"""A value nobody recorded never reaches the checklist as "?", "None" or "None %" (issue 16).

Each test takes the full evidence of test_checklist.py, removes what a real run can lack (a
checksum, the switch's verification, the probe's availability, a GPU's percentage, ...) and
reads the sentence: the value is left out, or the sentence says plainly what is missing.
"""

from __future__ import annotations

import copy
import json
import re
import typing as t

import pytest

from ansible_collections.ablage.ops.plugins.filter import checklist
from ansible_collections.ablage.ops.plugins.module_utils._checklist_common import join_known, known

from .test_checklist import REGISTERED, by_id, evidence

# "?" standing alone (not inside a URL's query), "None" as a word, or a bare "%" after nothing.
PLACEHOLDER = re.compile(r"(?<![\w/=&])\?(?![\w=])|\bNone\b|\(\s*%\)|\{\}")


# An empty part: evidence that starts or ends with a separator, or two separators in a row.
EMPTY_PART = re.compile(r"^\s*[;:,]|[;:,]\s*$|[;:,]\s*[;:,]")


def placeholders(report: dict[str, t.Any]) -> list[str]:
    """Every evidence sentence and Markdown line that shows a placeholder or an empty part."""
    texts = [f"{i['id']}: {i['evidence']}" for i in report["items"] if EMPTY_PART.search(i["evidence"])]
    texts += [f"{i['id']}: (no evidence)" for i in report["items"] if not i["evidence"]]
    lines = [f"{i['id']}: {i['evidence']}" for i in report["items"]] + checklist.checklist_markdown(report).splitlines()
    return texts + [text for text in lines if PLACEHOLDER.search(text)]


def report_with(registered: dict[str, t.Any] | None = None, **over: t.Any) -> dict[str, t.Any]:
    return checklist.checklist_report(evidence(registered=registered or copy.deepcopy(REGISTERED), **over))


def test_known_and_join_known_leave_out_only_what_was_not_recorded() -> None:
    assert [known(v) for v in (None, "", "  ", [], {})] == [None] * 5
    assert [known(v) for v in (0, 0.0, False, "x", [1])] == [0, 0.0, False, "x", [1]]
    assert join_known(("a", None, "", 0, False, "b")) == "a, 0, False, b"
    assert join_known((None, ""), "; ") == ""


def test_backup_without_checksum_says_so() -> None:
    registered = copy.deepcopy(REGISTERED)
    del registered["deploy_pg_backup"]["checksum"]
    report = report_with(registered)
    items = by_id(report)
    assert items[("pre_deployment", "backup")]["evidence"] == (
        "/b/pre.dump, 5.4 KiB (5515 bytes), checksum not recorded, test restore equal (tables and revision match)"
    )
    assert items[("deployment", "backup")]["evidence"].startswith(
        "API full backup completed: /backups/f.dump, 10 bytes, checksum not recorded; pg_backup: /b/pre.dump"
    )
    assert report["backup"]["sha256"] is None  # the data keeps its null; only sentences change
    markdown = checklist.checklist_markdown(report)
    assert "| Backup | /b/pre.dump (5515 bytes), checksum not recorded, test restore equal |" in markdown
    assert placeholders(report) == []


def test_backup_without_size_or_verification_leaves_them_out() -> None:
    registered = copy.deepcopy(REGISTERED)
    registered["deploy_pg_backup"] = {"backup_path": "/b/pre.dump", "checksum": "c" * 64}
    report = report_with(registered)
    assert by_id(report)[("pre_deployment", "backup")]["evidence"] == (
        f"/b/pre.dump, sha256 {'c' * 64}, verification not recorded"
    )
    assert f"| Backup | /b/pre.dump, sha256 {'c' * 64}, verification not recorded |" in (
        checklist.checklist_markdown(report)
    )


def test_failed_api_backup_gives_the_reason_not_placeholders() -> None:
    failed = {"failed": True, "msg": "backup 'full-1' failed: disk full", "backup": {}}
    item = by_id(report_with(dict(REGISTERED, deploy_api_backup=failed)))[("deployment", "backup")]
    assert item["evidence"].startswith("API full backup failed: backup 'full-1' failed: disk full; pg_backup: ")


def test_failed_maintenance_switch_without_verification() -> None:
    switch = {"failed": True, "msg": "ingress patch refused"}
    report = report_with(
        dict(REGISTERED, deploy_maintenance_on=switch),
        failure='"Deploy | Switch maintenance mode on": ingress patch refused',
    )
    item = by_id(report)[("deployment", "maintenance_on")]
    assert item["status"] == "not_checked"
    assert item["evidence"].endswith(
        "on at 2026-01-01T10:00:00Z; not verified: the switch failed before a user request was tried"
    )
    assert placeholders(report) == []


def test_maintenance_without_time_or_verdict_leaves_them_out() -> None:
    state = {k: v for k, v in evidence()["state"].items() if k != "maintenance_on_at"}
    items = by_id(report_with(state=state, maintenance_off_at=None))
    assert items[("deployment", "maintenance_on")]["evidence"] == "a user request answered 503 (verified: True)"
    # the switch off recorded a status but no verdict
    assert items[("deployment", "maintenance_off")]["evidence"] == "a user request answered 405"
    registered = dict(REGISTERED, verify_maintenance_off={"changed": True})
    item = by_id(report_with(registered))[("deployment", "maintenance_off")]
    assert item["evidence"] == "off at 2026-01-01T10:00:30Z; not verified: no user request was recorded"


def test_downtime_without_availability() -> None:
    report = report_with()
    assert report["downtime"]["availability_percent"] is None
    markdown = checklist.checklist_markdown(report)
    assert "| Downtime users saw | 12.5 s in 1 outage(s), 100 requests |" in markdown
    assert "- a → b: 12.5 s\n" in markdown  # no empty "()" for the reasons either
    downtime = evidence()["downtime"]
    downtime["summary"]["availability_percent"] = 87.5
    markdown = checklist.checklist_markdown(report_with(downtime=downtime))
    assert "| Downtime users saw | 12.5 s in 1 outage(s), 100 requests, availability 87.5 % |" in markdown


def test_open_outage_without_end_or_duration() -> None:
    downtime = {"summary": {"samples": 10, "outages": [{"start": "10:00:01", "open": True}]}}
    report = report_with(downtime=downtime)
    markdown = checklist.checklist_markdown(report)
    assert "- from 10:00:01 — still down at the last request" in markdown
    assert "| Downtime users saw | 1 outage(s), 10 requests |" in markdown
    assert placeholders(report) == []


def test_gpu_without_memory_percent() -> None:
    device = {"name": "NVIDIA GeForce RTX 4080", "memory_used_gb": 2.1, "memory_total_gb": 16.0}
    registered = dict(REGISTERED, verify_gpu={"device_count": 1, "devices": [device]})
    gpu = by_id(report_with(registered))[("post_deployment", "gpu_memory")]
    assert (gpu["status"], gpu["evidence"]) == ("checked", "NVIDIA GeForce RTX 4080: 2.1 of 16.0 GB")


def test_gpu_that_could_not_be_read_names_what_is_missing_and_why_it_failed() -> None:
    device = {"index": 0, "error": "NVML: memory info not supported"}
    registered = dict(
        REGISTERED,
        verify_gpu={
            "device_count": 1,
            "devices": [device],
            "failed": True,
            "failed_checks": ["readable[0]: NVML: memory info not supported"],
        },
    )
    gpu = by_id(report_with(registered))[("post_deployment", "gpu_memory")]
    assert gpu["status"] == "not_checked"
    assert gpu["evidence"] == (
        "GPU 0: memory not recorded, NVML: memory info not supported; readable[0]: NVML: memory info not supported"
    )


def test_deploy_without_digest_or_revision_after() -> None:
    registered = dict(
        REGISTERED,
        deploy_pull={"results": [{"item": "backend", "image": {}}]},
        deploy_migration={"current_before": "0001", "pending": ["0002"], "failed": True, "msg": "lock timeout"},
    )
    item = by_id(report_with(registered))[("deployment", "deploy")]
    assert item["evidence"] == (
        "pulled backend (digest not recorded); Alembic from 0001, revision after the migration not recorded "
        "(applied ['0002']); migration FAILED: lock timeout"
    )
    assert item["details"]["images"] == ["backend (digest not recorded)"]


def test_plan_without_pull_does_not_say_pulled() -> None:
    registered = {"deploy_migration": {"current_before": "0001", "head": "0002", "pending": ["0002"]}}
    report = report_with(registered, check_mode=True, state={}, downtime={})
    item = by_id(report)[("deployment", "deploy")]
    assert item["evidence"] == "Alembic 0001 -> 0002 (planned, pending ['0002'])"
    assert placeholders(report) == []


def test_probe_results_with_missing_fields() -> None:
    registered = dict(
        REGISTERED,
        deploy_queue={"results": [{}]},
        verify_health={"results": [{"url": "http://h/api/v1/health", "ok": False}]},
        verify_prom_targets={
            "results": [
                {
                    "json": {
                        "data": {
                            "activeTargets": [{"labels": {}, "health": "up", "scrapeUrl": "http://b:8000/metrics"}]
                        }
                    }
                }
            ]
        },
        verify_prom_alerts={"results": [{"json": {"data": {"alerts": [{"state": "firing", "labels": {}}]}}}]},
        verify_smoke=dict(REGISTERED["verify_smoke"], login={"ran": True, "ok": True, "step": "login"}),
    )
    report = report_with(registered, latency_max_ms=None, notify={"configured": True, "ok": False, "status": None})
    items = by_id(report)
    assert items[("deployment", "stop")]["evidence"].startswith(
        "OCR queue drained (pending 0, processing 0) instead of a fixed sleep 30; "
    )
    assert items[("deployment", "health")]["evidence"] == "http://h/api/v1/health FAILED"
    assert items[("post_deployment", "prometheus")]["evidence"] == (
        "http://b:8000/metrics up; firing alerts: an alert without name"
    )
    assert items[("post_deployment", "response_times")]["evidence"].endswith("(no limit set)")
    assert items[("post_deployment", "login")]["evidence"] == "passed, its evidence was not recorded"
    assert items[("deployment", "smoke")]["evidence"].startswith("login: passed, its evidence was not recorded; ")
    assert items[("post_deployment", "team_informed")]["evidence"] == (
        "the notification webhook did not answer the summary's POST (no HTTP status recorded)"
    )
    assert placeholders(report) == []


def test_rollback_without_versions_or_backup_path() -> None:
    registered = dict(
        REGISTERED,
        rollback_restore={"changed": True},
        rollback_health={"results": [{"url": "u", "status": 200, "ok": True, "latency_ms": 4}]},
    )
    report = report_with(registered, state={}, result="rolled_back", failure='"Verify | health": down')
    items = by_id(report)
    assert items[("rollback", "rollback_images")]["evidence"] == (
        "images back to the previous release (its version is not recorded)"
    )
    assert items[("rollback", "rollback_database")]["evidence"] == (
        "restored the backup (its path is not recorded); comparison not recorded"
    )
    registered = dict(registered, rollback_downgrade={"current_after": "0001"})
    del registered["rollback_restore"]
    report = report_with(registered, result="rolled_back", failure='"Verify | health": down')
    assert by_id(report)[("rollback", "rollback_database")]["evidence"] == (
        "alembic downgrade to 0001 (revision before not recorded)"
    )


def test_grafana_without_version_or_reason() -> None:
    probe = {
        "failed": True,
        "results": [
            {"url": "http://g/api/health", "status": 503, "ok": False, "json": {}},
            {"url": "http://g/api/dashboards/uid/ocr-pipeline", "status": 500, "ok": False, "name": "dashboard OCR"},
            {"url": "http://g/api/alertmanager/grafana/api/v2/alerts", "status": 500, "ok": False},
        ],
    }
    item = by_id(report_with(dict(REGISTERED, verify_grafana=probe)))[("post_deployment", "grafana")]
    assert item["evidence"] == (
        "Grafana (FAILED); dashboard dashboard OCR (ocr-pipeline) not confirmed; firing alerts not read"
    )


def test_extra_item_without_name_or_evidence() -> None:
    report = checklist.checklist_report(
        {"playbook": "restart", "sections": ["rollback"], "extra_items": [{"id": "restart", "status": "checked"}]}
    )
    extra = by_id(report)[("extra", "restart")]
    assert (extra["item"], extra["evidence"]) == ("restart", "no evidence recorded")


@pytest.mark.parametrize("check_mode", [False, True])
def test_a_run_that_recorded_almost_nothing_shows_no_placeholder(check_mode: bool) -> None:
    """Every result present but empty of fields: each sentence must still read without "?" or "None"."""
    registered: dict[str, t.Any] = {name: {"changed": True} for name in REGISTERED}
    registered["verify_smoke"] = {"login": {"ran": True, "ok": False}}  # the step's name not recorded either
    registered["verify_grafana"] = {"results": [{"url": "http://g/api/health", "ok": True}]}
    registered["rollback_health"] = {"results": [{}]}
    registered["rollback_downgrade"] = {"changed": True}
    report = checklist.checklist_report(
        {
            "playbook": "deploy",
            "check_mode": check_mode,
            "registered": registered,
            "preflight": [{"section": "quality", "ok": True}, {"section": "database", "ok": False}],
            "downtime": {"samples": 3, "outages": [{}]},
            "notify": {"configured": True},
            "failure": '"Deploy | Pull the images": registry down',
        }
    )
    assert placeholders(report) == [], json.dumps(placeholders(report), indent=1)


def test_deploy_says_when_the_release_answered_and_that_the_reviewed_sql_ran() -> None:
    ready = {"results": [{"url": "/api/v1/health", "elapsed_s": 0.2}, {"url": "/complete", "elapsed_s": 0.71}]}
    migration = dict(REGISTERED["deploy_migration"], reviewed_used={"used": True, "reason": ""})
    registered = dict(REGISTERED, deploy_ready=ready, deploy_migration=migration)
    state = {"current_version": "1.1.0", "started_services_at": "2026-01-01T10:00:20Z"}
    item = by_id(report_with(registered, state=state))[("deployment", "deploy")]
    assert "(applied ['0002'] as reviewed before the window)" in item["evidence"]
    assert item["evidence"].endswith(
        "services started at 2026-01-01T10:00:20Z, every health endpoint answered 0.71 s later (polled, no fixed wait)"
    )
    failed_ready = dict(registered, deploy_ready=dict(ready, failed=True))
    item = by_id(report_with(failed_ready, state=state))[("deployment", "deploy")]
    assert item["evidence"].endswith("services started at 2026-01-01T10:00:20Z")
