"""The application contract's pre-flight gates: each failure names the variable to fix."""

from __future__ import annotations

import typing as t

from ansible_collections.ablage.ops.plugins.filter.contract import (
    contract_gates,
    missing_json_paths,
    release_gates,
)

IDLE = {"queue": {"pending": 0, "processing": 0}}


def _checks(**over: t.Any) -> dict[str, t.Any]:
    checks: dict[str, t.Any] = {
        "admin_login": {"status": 200, "token": "adm", "error": ""},
        "admin_status": {"status": 200, "json": {"enabled": False}},
        "status_path": "/api/v1/admin/maintenance",
        "smoke_login": {"status": 200, "token": "usr", "error": ""},
        "login_path": "/api/v1/auth/login",
        "queue": {"status": 200, "json": {"queue": {"pending": 3, "processing": 1}}},
        "queue_path": "/api/v1/health/pipeline",
        "queue_idle": IDLE,
        "health": {"results": [{"url": "http://h/api/v1/health", "ok": True, "status": 200}]},
    }
    checks.update(over)
    return checks


def _by_gate(checks: dict[str, t.Any]) -> dict[str, dict[str, t.Any]]:
    return {g["gate"]: g for g in contract_gates(checks)}


def test_a_system_that_fits_passes_every_gate_and_no_token_is_in_the_evidence() -> None:
    gates = contract_gates(_checks())
    assert [g["ok"] for g in gates] == [True, True, True, True]
    assert "adm" not in repr(gates).replace("admin", "") and "usr" not in repr(gates)


def test_wrong_admin_token_names_the_variable() -> None:
    gate = _by_gate(_checks(admin_login={"skipped": True}, admin_status={"status": 401}))["admin API access"]
    assert not gate["ok"] and "ablage_admin_token" in gate["evidence"] and "401" in gate["evidence"]


def test_wrong_admin_password_fails_at_the_login() -> None:
    gate = _by_gate(
        _checks(
            admin_login={"status": 401, "token": "", "error": "POST /api/v1/auth/login answered 401: no"},
            admin_status={"status": 401},
        )
    )["admin API access"]
    assert not gate["ok"] and "ablage_admin_password" in gate["evidence"]


def test_status_path_that_is_not_the_maintenance_endpoint() -> None:
    gate = _by_gate(_checks(admin_status={"status": 404, "json": None}))["admin API access"]
    assert not gate["ok"] and "status_path" in gate["evidence"]


def test_smoke_login_failure_and_token_only() -> None:
    gate = _by_gate(_checks(smoke_login={"status": 401, "token": "", "error": "POST /x answered 401: bad"}))[
        "smoke user login"
    ]
    assert not gate["ok"] and "ablage_smoke_password" in gate["evidence"]
    assert _by_gate(_checks(smoke_login={"skipped": True}))["smoke user login"]["ok"]


def test_queue_answer_without_the_configured_fields() -> None:
    queue = {"status": 200, "json": {"jobs": {"waiting": 0, "active": 0}}}
    gate = _by_gate(_checks(queue=queue))["queue drain condition"]
    assert not gate["ok"]
    assert "queue.pending" in gate["evidence"] and "ablage_queue_idle" in gate["evidence"]
    ok = _by_gate(_checks(queue=queue, queue_idle={"jobs": {"waiting": 0, "active": 0}}))["queue drain condition"]
    assert ok["ok"]


def test_queue_path_that_does_not_exist() -> None:
    gate = _by_gate(_checks(queue={"status": 404, "json": {"detail": "Not Found"}}))["queue drain condition"]
    assert not gate["ok"] and "ablage_queue_path" in gate["evidence"]
    gate = _by_gate(_checks(queue={"status": -1, "msg": "refused"}))["queue drain condition"]
    assert not gate["ok"] and "no answer (refused)" in gate["evidence"]


def test_health_path_failing() -> None:
    health = {"results": [{"url": "http://h/x", "ok": False, "status": 404, "reason": "status 404"}]}
    gate = _by_gate(_checks(health=health))["health endpoints"]
    assert not gate["ok"] and "ablage_health_paths" in gate["evidence"]


def test_missing_json_paths_compares_no_values() -> None:
    assert missing_json_paths({"queue": {"pending": 5, "processing": 2}}, IDLE) == []
    assert missing_json_paths({"queue": 3}, IDLE) == ["queue.pending", "queue.processing"]


def test_release_gates() -> None:
    release = {
        "current_version": "1.0.0",
        "images": {"api": "r/o/server:1.1.0", "ocr": "r/o/server:1.1.0"},
        "static_services": [],
        "registry": {"r/o/server:1.1.0": {"exists": False, "error": "no such manifest"}},
    }
    gates = release_gates(release, "OCRDESK_RELEASE", "1.1.0")
    assert gates[0]["ok"] and "OCRDESK_RELEASE=1.0.0" in gates[0]["evidence"]
    assert gates[1] == {
        "section": "infra",
        "gate": "image r/o/server:1.1.0",
        "ok": False,
        "evidence": "not in its registry: no such manifest",
    }
    static = release_gates(dict(release, static_services=["api"], registry={}), "V", "1.1.0")
    assert not static[1]["ok"] and "ablage_version_variable" in static[1]["evidence"]
    failed = release_gates({"failed": True, "msg": "no V= line"}, "V", "1.1.0")
    assert failed == [{"section": "infra", "gate": "release 1.1.0", "ok": False, "evidence": "no V= line"}]


def test_smoke_items_map_steps_to_checklist_items_and_hide_secrets() -> None:
    from ansible_collections.ablage.ops.plugins.filter.contract import smoke_items

    steps = [
        {
            "name": "login",
            "method": "POST",
            "url": "http://h:8100/api/v1/auth/login",
            "status": 200,
            "ok": True,
            "captured": {"access_token": "********"},
        },
        {
            "name": "upload",
            "method": "POST",
            "url": "http://h:8100/api/v1/documents/",
            "status": 500,
            "ok": False,
            "captured": {},
        },
    ]
    checklist = {"login": "login", "upload": "upload", "export": "export as json"}
    items = smoke_items(steps, checklist, "step 'upload': expected status 200, got 500")
    assert items["login"] == {
        "ran": True,
        "ok": True,
        "step": "login",
        "evidence": "POST /api/v1/auth/login answered 200, captured access_token (secret, not shown)",
    }
    assert not items["upload"]["ok"] and "expected status 200, got 500" in items["upload"]["evidence"]
    assert items["export"] == {"ran": False, "step": "export as json"}


def test_monitoring_gate_before_the_window() -> None:
    from ansible_collections.ablage.ops.plugins.filter.contract import monitoring_gate

    up = {"status": 200, "json": {"data": {"activeTargets": [{"labels": {"job": "ablage"}, "health": "up"}]}}}
    quiet = {"status": 200, "json": {"data": {"alerts": [{"labels": {"alertname": "X"}, "state": "pending"}]}}}
    assert monitoring_gate("", []) is None
    assert (monitoring_gate("http://p", [up, quiet]) or {})["ok"]
    fresh = {"status": 200, "json": {"data": {"activeTargets": [{"labels": {"job": "a"}, "health": "unknown"}]}}}
    assert "1 not scraped yet" in (monitoring_gate("http://p", [fresh, quiet]) or {})["evidence"]
    down = {"status": 200, "json": {"data": {"activeTargets": [{"labels": {"job": "ablage"}, "health": "down"}]}}}
    gate = monitoring_gate("http://p", [down, quiet]) or {}
    assert not gate["ok"] and "down: ablage" in gate["evidence"]
    firing = {"status": 200, "json": {"data": {"alerts": [{"labels": {"alertname": "GpuHot"}, "state": "firing"}]}}}
    gate = monitoring_gate("http://p", [up, firing]) or {}
    assert not gate["ok"] and "firing: GpuHot" in gate["evidence"]
    gate = monitoring_gate("http://p", [{"status": -1, "msg": "refused"}, {}]) or {}
    assert not gate["ok"] and "ablage_prometheus_url" in gate["evidence"]
