"""health_probe: main() with real arguments against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import time
import typing as t

import pytest

from ansible_collections.ablage.ops.plugins.modules import health_probe

Backend = t.Any  # the conftest's Backend (tests do not import conftest)
Run = t.Callable[..., t.Any]


def test_single_url_ok(run_module: Run, backend: Backend) -> None:
    result = run_module(health_probe.main, {"url": [f"{backend.url}/api/v1/health"]})
    assert result.rc == 0
    assert result["changed"] is False
    (entry,) = result["results"]
    assert entry["url"] == f"{backend.url}/api/v1/health"
    assert entry["name"] == entry["url"]
    assert entry["method"] == "GET"
    assert entry["status"] == 200
    assert entry["json"]["status"] == "healthy"
    assert entry["ok"] is True
    assert entry["reason"] == "ok"
    assert entry["attempts"] == 1
    assert entry["latency_ms"] > 0
    assert "content" not in entry
    assert result["summary"]["total"] == 1
    assert result["summary"]["ok"] == 1
    assert result["summary"]["failed"] == 0
    assert result["summary"]["max_latency_ms"] == entry["latency_ms"]
    assert result["failed_urls"] == []
    assert result["msg"].startswith("all 1 URLs healthy")


def test_check_mode_probes_too(run_module: Run, backend: Backend) -> None:
    result = run_module(health_probe.main, {"url": [f"{backend.url}/api/v1/health"]}, check_mode=True)
    assert result.rc == 0
    assert result["changed"] is False
    assert backend.count("GET", "/api/v1/health") == 1


def test_many_urls_are_probed_concurrently(run_module: Run, backend: Backend) -> None:
    paths = [f"/api/v1/health/slow{i}" for i in range(6)]
    for path in paths:
        backend.script("GET", path, backend.Reply(200, {"status": "healthy"}, delay=0.5))
    started = time.monotonic()
    args = {"base_url": backend.url, "url": paths, "expected_json": {"status": "healthy"}}
    result = run_module(health_probe.main, args)
    elapsed = time.monotonic() - started
    assert result.rc == 0
    assert [r["name"] for r in result["results"]] == paths
    # one after another this would take 6 * 0.5 s
    assert elapsed < 2.4
    assert result["summary"]["ok"] == 6
    assert result["summary"]["avg_latency_ms"] >= 500


def test_concurrency_limit_serialises(run_module: Run, backend: Backend) -> None:
    paths = [f"/slow{i}" for i in range(3)]
    for path in paths:
        backend.script("GET", path, backend.Reply(200, {}, delay=0.2))
    started = time.monotonic()
    result = run_module(health_probe.main, {"base_url": backend.url, "url": paths, "concurrency": 1})
    assert result.rc == 0
    assert time.monotonic() - started >= 0.6


def test_failure_lists_every_failed_url_and_keeps_results(run_module: Run, backend: Backend) -> None:
    backend.script("GET", "/api/v1/health/pipeline", backend.Reply(503, {"status": "unhealthy"}))
    backend.script("GET", "/api/v1/health/gpu-memory", backend.Reply(200, {"status": "degraded"}))
    result = run_module(
        health_probe.main,
        {
            "base_url": backend.url,
            "url": ["/api/v1/health", "/api/v1/health/pipeline", "/api/v1/health/gpu-memory"],
            "expected_json": {"status": "healthy"},
        },
    )
    assert result.rc == 1
    assert result["failed"] is True
    assert result["summary"] == {**result["summary"], "total": 3, "ok": 1, "failed": 2}
    assert result["failed_urls"] == [
        f"{backend.url}/api/v1/health/pipeline: status 503 not in [200]",
        f'{backend.url}/api/v1/health/gpu-memory: JSON mismatch: $.status: expected "healthy", got "degraded"',
    ]
    assert result["msg"].startswith("2 of 3 URLs failed: ")
    assert all(url in result["msg"] for url in result["failed_urls"])
    assert result["results"][1]["json"] == {"status": "unhealthy"}
    assert result["results"][0]["ok"] is True


FIRING = {"labels": {"alertname": "HighGPUMemory"}, "annotations": {"__dashboardUid__": "system-overview"}}


def test_forbidden_items_absent_passes(run_module: Run, backend: Backend) -> None:
    backend.script("GET", "/alerts", backend.Reply(200, []))
    backend.script("GET", "/prom", backend.Reply(200, {"data": {"alerts": [{"state": "inactive"}]}}))
    result = run_module(
        health_probe.main,
        {
            "base_url": backend.url,
            "targets": [
                {"url": "/alerts", "forbidden_items": [{}]},
                {"url": "/prom", "forbidden_items": [{"path": "data.alerts", "match": {"state": "firing"}}]},
            ],
        },
    )
    assert result.rc == 0, result["msg"]
    assert [r["reason"] for r in result["results"]] == ["ok", "ok"]


def test_forbidden_item_fails_naming_where_and_what(run_module: Run, backend: Backend) -> None:
    backend.script("GET", "/alerts", backend.Reply(200, [{"labels": {"alertname": "DiskFull"}}, FIRING]))
    result = run_module(
        health_probe.main,
        {
            "url": [f"{backend.url}/alerts"],
            # module-level, the match given as a JSON string
            "forbidden_items": [{"match": '{"annotations": {"__dashboardUid__": "system-overview"}}'}],
        },
    )
    assert result.rc == 1
    entry = result["results"][0]
    assert entry["ok"] is False
    assert entry["reason"].startswith(
        'forbidden: 1 forbidden item(s) matching {"annotations": {"__dashboardUid__": "system-overview"}} '
        "at $[1]; first: "
    )
    assert entry["json"][1] == FIRING
    assert entry["reason"] in result["msg"]


def test_forbidden_items_every_entry_is_checked_and_target_overrides_module(run_module: Run, backend: Backend) -> None:
    backend.script("GET", "/alerts", backend.Reply(200, {"data": {"alerts": [FIRING]}}))
    result = run_module(
        health_probe.main,
        {
            "base_url": backend.url,
            "forbidden_items": [{"path": "data.alerts"}],
            "url": ["/alerts"],
            "targets": [
                {"url": "/alerts", "name": "ocr only", "forbidden_items": [{"path": "data.alerts", "match": {"x": 1}}]},
                {"url": "/alerts", "name": "none", "forbidden_items": []},
                {"url": "/alerts", "name": "two", "forbidden_items": [{"path": "data.alerts"}, {"path": "data.nope"}]},
            ],
        },
    )
    assert result.rc == 1
    reasons = {r["name"]: r["reason"] for r in result["results"]}
    assert reasons["/alerts"].startswith("forbidden: 1 forbidden item(s) matching {} at $.data.alerts[0]")
    assert reasons["ocr only"] == "ok"
    assert reasons["none"] == "ok"
    assert reasons["two"].startswith("forbidden: 1 forbidden item(s) matching {} at $.data.alerts[0]; first: ")
    assert reasons["two"].endswith("; $.data.nope: missing (expected a list)")


def test_forbidden_item_is_retried_until_gone(run_module: Run, backend: Backend) -> None:
    backend.script("GET", "/alerts", backend.Reply(200, [FIRING]), backend.Reply(200, [FIRING]), backend.Reply(200, []))
    result = run_module(
        health_probe.main,
        {"url": [f"{backend.url}/alerts"], "forbidden_items": [{}], "attempts": 5, "delay": 0.05},
    )
    assert result.rc == 0
    assert result["results"][0]["attempts"] == 3


def test_forbidden_items_need_json(run_module: Run, backend: Backend) -> None:
    backend.script("GET", "/html", backend.Reply(200, "<html>login</html>"))
    result = run_module(health_probe.main, {"url": [f"{backend.url}/html"], "forbidden_items": [{}]})
    assert result.rc == 1
    assert result["results"][0]["reason"] == "response is not JSON, but forbidden_items is set"


def test_expected_json_given_as_string(run_module: Run, backend: Backend) -> None:
    result = run_module(
        health_probe.main,
        {"url": [f"{backend.url}/api/v1/health"], "expected_json": '{"components": {"db": {"status": "healthy"}}}'},
    )
    assert result.rc == 0


def test_plain_string_expected_json_must_equal(run_module: Run, backend: Backend) -> None:
    backend.script("GET", "/text", backend.Reply(200, ["pong"]))
    result = run_module(health_probe.main, {"url": [f"{backend.url}/text"], "expected_json": "pong"})
    assert result.rc == 1
    assert 'expected "pong", got ["pong"]' in result["msg"]


def test_non_json_body_with_expected_json(run_module: Run, backend: Backend) -> None:
    backend.script("GET", "/html", backend.Reply(200, "<html>It works</html>"))
    result = run_module(health_probe.main, {"url": [f"{backend.url}/html"], "expected_json": {"status": "healthy"}})
    assert result.rc == 1
    entry = result["results"][0]
    assert entry["reason"] == "response is not JSON, but expected_json is set"
    assert entry["content"] == "<html>It works</html>"
    assert entry["json"] is None


def test_flaky_endpoint_is_retried_until_it_passes(run_module: Run, backend: Backend) -> None:
    backend.script(
        "GET",
        "/flaky",
        backend.Reply(503, {"status": "starting"}),
        backend.Reply(200, {"status": "starting"}),
        backend.Reply(200, {"status": "healthy"}),
    )
    result = run_module(
        health_probe.main,
        {"url": [f"{backend.url}/flaky"], "expected_json": {"status": "healthy"}, "attempts": 5, "delay": 0.05},
    )
    assert result.rc == 0
    assert result["results"][0]["attempts"] == 3
    assert backend.count("GET", "/flaky") == 3


def test_retries_exhausted(run_module: Run, backend: Backend) -> None:
    backend.script("GET", "/down", backend.Reply(502, "bad gateway"))
    result = run_module(health_probe.main, {"url": [f"{backend.url}/down"], "attempts": 3, "delay": 0.01})
    assert result.rc == 1
    entry = result["results"][0]
    assert entry["attempts"] == 3
    assert entry["reason"].startswith("status 502 not in [200] (after 3 attempts in ")
    assert entry["content"] == "bad gateway"


def test_total_timeout_bounds_the_retries(run_module: Run, backend: Backend) -> None:
    backend.script("GET", "/down", backend.Reply(503, {}))
    started = time.monotonic()
    result = run_module(
        health_probe.main, {"url": [f"{backend.url}/down"], "attempts": 1000, "delay": 0.1, "total_timeout": 0.5}
    )
    assert result.rc == 1
    assert time.monotonic() - started < 2
    assert 2 <= result["results"][0]["attempts"] <= 6


def test_neither_attempts_nor_total_timeout_tries_once(run_module: Run, backend: Backend) -> None:
    backend.script("GET", "/down", backend.Reply(503, {}))
    result = run_module(health_probe.main, {"url": [f"{backend.url}/down"], "delay": 0.01})
    assert result.rc == 1
    assert result["results"][0]["attempts"] == 1
    assert result["results"][0]["reason"] == "status 503 not in [200]"
    assert backend.count("GET", "/down") == 1


def test_total_timeout_alone_retries_until_the_deadline(run_module: Run, backend: Backend) -> None:
    # No attempts: the deadline alone bounds the tries, far beyond the one try of the default.
    backend.script("GET", "/down", backend.Reply(503, {}))
    started = time.monotonic()
    result = run_module(health_probe.main, {"url": [f"{backend.url}/down"], "delay": 0.05, "total_timeout": 0.6})
    elapsed = time.monotonic() - started
    assert result.rc == 1
    entry = result["results"][0]
    assert entry["attempts"] >= 5
    assert entry["attempts"] == backend.count("GET", "/down")
    # stopped at the deadline: no try starts after it, and not much earlier than it either
    assert 0.5 <= entry["elapsed_s"] <= 0.6 + 0.5
    assert elapsed < 2
    assert entry["reason"].startswith(f"status 503 not in [200] (after {entry['attempts']} attempts in ")


def test_total_timeout_alone_passes_once_healthy(run_module: Run, backend: Backend) -> None:
    backend.script("GET", "/flaky", *[backend.Reply(503, {})] * 4, backend.Reply(200, {"status": "healthy"}))
    result = run_module(
        health_probe.main,
        {"url": [f"{backend.url}/flaky"], "expected_json": {"status": "healthy"}, "delay": 0.02, "total_timeout": 10},
    )
    assert result.rc == 0, result["msg"]
    assert result["results"][0]["attempts"] == 5
    assert result["results"][0]["elapsed_s"] < 5


def test_attempts_alone_is_bounded_by_attempts(run_module: Run, backend: Backend) -> None:
    backend.script("GET", "/down", backend.Reply(503, {}))
    result = run_module(health_probe.main, {"url": [f"{backend.url}/down"], "attempts": 4, "delay": 0.01})
    assert result.rc == 1
    assert result["results"][0]["attempts"] == 4
    assert backend.count("GET", "/down") == 4


def test_attempts_and_total_timeout_attempts_first(run_module: Run, backend: Backend) -> None:
    backend.script("GET", "/down", backend.Reply(503, {}))
    result = run_module(
        health_probe.main, {"url": [f"{backend.url}/down"], "attempts": 3, "delay": 0.01, "total_timeout": 30}
    )
    assert result.rc == 1
    assert result["results"][0]["attempts"] == 3
    assert result["results"][0]["elapsed_s"] < 5


def test_attempts_and_total_timeout_deadline_first(run_module: Run, backend: Backend) -> None:
    backend.script("GET", "/down", backend.Reply(503, {}))
    result = run_module(
        health_probe.main, {"url": [f"{backend.url}/down"], "attempts": 50, "delay": 0.1, "total_timeout": 0.3}
    )
    assert result.rc == 1
    assert 2 <= result["results"][0]["attempts"] <= 4
    assert result["results"][0]["elapsed_s"] < 1.5


def test_documented_retry_defaults_match_the_argument_spec() -> None:
    # validate-modules: a documented default must equal the argument_spec default; both have none here.
    import yaml

    options = yaml.safe_load(health_probe.DOCUMENTATION)["options"]
    assert "default" not in options["attempts"]
    assert "default" not in options["total_timeout"]
    assert "total_timeout" in " ".join(options["attempts"]["description"])


def test_request_timeout_is_capped_by_total_timeout(run_module: Run, backend: Backend) -> None:
    backend.script("GET", "/hang", backend.Reply(200, {}, delay=2))
    started = time.monotonic()
    result = run_module(
        health_probe.main, {"url": [f"{backend.url}/hang"], "timeout": 30, "total_timeout": 0.3, "attempts": 5}
    )
    assert result.rc == 1
    assert time.monotonic() - started < 1.5
    assert "timed out" in result["results"][0]["reason"]


def test_latency_limit(run_module: Run, backend: Backend) -> None:
    backend.script("GET", "/slow", backend.Reply(200, {"status": "healthy"}, delay=0.3))
    result = run_module(
        health_probe.main,
        {
            "url": [f"{backend.url}/slow"],
            "targets": [{"url": f"{backend.url}/api/v1/health", "max_latency_ms": 5000}],
            "max_latency_ms": 100,
        },
    )
    assert result.rc == 1
    slow, fast = result["results"]
    assert slow["ok"] is False
    assert slow["reason"].startswith("latency ")
    assert slow["reason"].endswith(" ms exceeds max_latency_ms 100")
    assert slow["attempts"] == 1  # a slow answer is not retried
    assert fast["ok"] is True


def test_connection_refused_names_cause_and_fix(run_module: Run, free_port: int) -> None:
    result = run_module(health_probe.main, {"url": [f"http://127.0.0.1:{free_port}/api/v1/health"]})
    assert result.rc == 1
    entry = result["results"][0]
    assert entry["status"] is None
    assert entry["latency_ms"] is None
    assert "refused" in entry["reason"].lower()
    assert "check that the service is running" in entry["reason"]
    assert result["summary"]["max_latency_ms"] is None
    assert result["summary"]["avg_latency_ms"] is None


def test_bearer_token_and_headers_are_sent_but_never_printed(run_module: Run, backend: Backend) -> None:
    result = run_module(
        health_probe.main,
        {
            "url": [f"{backend.url}/api/v1/admin/maintenance"],
            "bearer_token": backend.admin_token,
            "headers": {"X-Api-Key": "header-secret-value-42"},
            "expected_json": {"enabled": False},
        },
    )
    assert result.rc == 0
    sent = backend.requests[-1].headers
    assert sent["Authorization"] == f"Bearer {backend.admin_token}"
    assert sent["X-Api-Key"] == "header-secret-value-42"
    assert backend.admin_token not in result["_raw"]
    assert "header-secret-value-42" not in result["_raw"]


def test_wrong_token_fails_with_status(run_module: Run, backend: Backend) -> None:
    result = run_module(
        health_probe.main,
        {"url": [f"{backend.url}/api/v1/admin/maintenance"], "bearer_token": "nope-not-a-token"},
    )
    assert result.rc == 1
    assert "status 403 not in [200]" in result["msg"]


def test_post_with_json_body(run_module: Run, backend: Backend) -> None:
    backend.script("POST", "/api/v1/ocr/check", backend.Reply(202, {"queued": True}))
    result = run_module(
        health_probe.main,
        {
            "url": [f"{backend.url}/api/v1/ocr/check"],
            "method": "POST",
            "body": {"dry_run": True},
            "status_code": [200, 202],
            "expected_json": {"queued": True},
        },
    )
    assert result.rc == 0
    assert json.loads(backend.requests[-1].body) == {"dry_run": True}
    assert result["results"][0]["method"] == "POST"


def test_post_body_given_as_json_string(run_module: Run, backend: Backend) -> None:
    backend.script("POST", "/p", backend.Reply(200, {}))
    result = run_module(health_probe.main, {"url": [f"{backend.url}/p"], "method": "POST", "body": '{"a": 1}'})
    assert result.rc == 0
    assert json.loads(backend.requests[-1].body) == {"a": 1}


def test_body_with_get_is_refused(run_module: Run, backend: Backend) -> None:
    result = run_module(health_probe.main, {"url": [f"{backend.url}/x"], "body": {"a": 1}})
    assert result.rc == 1
    assert "a body is only sent with method POST, not GET" in result["msg"]
    assert backend.requests == []


def test_head(run_module: Run, backend: Backend) -> None:
    result = run_module(health_probe.main, {"url": [f"{backend.url}/api/v1/health"], "method": "HEAD"})
    assert result.rc == 0
    assert result["results"][0]["json"] is None


def test_targets_override_module_options(run_module: Run, backend: Backend) -> None:
    backend.script("GET", "/metrics", backend.Reply(200, "# HELP up"))
    backend.script("GET", "/admin", backend.Reply(401, {"detail": "login"}))
    result = run_module(
        health_probe.main,
        {
            "base_url": backend.url,
            "url": ["/api/v1/health"],
            "expected_json": {"status": "healthy"},
            "targets": [
                {"url": "/metrics", "name": "prometheus metrics", "expected_json": None},
                {"url": "/admin", "status_code": [401], "expected_json": {"detail": "login"}},
                {"url": "/api/v1/health/complete", "headers": {"X-Per-Target": "yes"}},
            ],
        },
    )
    # /metrics is not JSON but has no expectation of its own -> falls back to module expected_json
    assert result.rc == 1
    names = [r["name"] for r in result["results"]]
    assert names == ["/api/v1/health", "prometheus metrics", "/admin", "/api/v1/health/complete"]
    oks = [r["ok"] for r in result["results"]]
    assert oks == [True, False, True, True]
    assert backend.requests[-1].headers.get("X-Per-Target") == "yes" or any(
        r.headers.get("X-Per-Target") == "yes" for r in backend.requests
    )


def test_target_without_expectations(run_module: Run, backend: Backend) -> None:
    backend.script("GET", "/metrics", backend.Reply(200, "# HELP up"))
    result = run_module(health_probe.main, {"targets": [{"url": f"{backend.url}/metrics", "method": "GET"}]})
    assert result.rc == 0
    assert "content" not in result["results"][0]


def test_relative_url_needs_base_url(run_module: Run) -> None:
    result = run_module(health_probe.main, {"url": ["/api/v1/health"]})
    assert result.rc == 1
    assert "'/api/v1/health' has no scheme" in result["msg"]
    assert "set base_url" in result["msg"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"attempts": 0}, "attempts must be at least 1"),
        ({"concurrency": 0}, "concurrency must be at least 1"),
        ({"delay": -1}, "delay must be >= 0"),
        ({"total_timeout": 0}, "total_timeout and timeout must be > 0"),
        ({"client_key": "/k.pem"}, "missing parameter(s) required by 'client_key': client_cert"),
        ({"method": "DELETE"}, "value of method must be one of: GET, POST, HEAD"),
    ],
)
def test_invalid_options(run_module: Run, args: dict[str, t.Any], message: str) -> None:
    result = run_module(health_probe.main, {"url": ["http://127.0.0.1:1/x"], **args})
    assert result.rc == 1
    assert message in result["msg"]


def test_url_or_targets_required(run_module: Run) -> None:
    result = run_module(health_probe.main, {})
    assert result.rc == 1
    assert "one of the following is required: url, targets" in result["msg"]


def test_urls_alias(run_module: Run, backend: Backend) -> None:
    assert run_module(health_probe.main, {"urls": [f"{backend.url}/api/v1/health"]}).rc == 0


def test_tls_verified_by_default(run_module: Run, tls_backend: Backend) -> None:
    result = run_module(health_probe.main, {"url": [f"{tls_backend.url}/api/v1/health"]})
    assert result.rc == 1
    assert "set ca_path to the CA bundle" in result["msg"]


def test_tls_with_ca_path_and_client_cert(run_module: Run, tls_backend: Backend, pki: t.Any) -> None:
    result = run_module(
        health_probe.main,
        {
            "url": [f"{tls_backend.url}/tls/whoami"],
            "ca_path": str(pki.ca),
            "client_cert": str(pki.client_cert),
            "client_key": str(pki.client_key),
            "expected_json": {"client_cn": "ablage-deployer"},
        },
    )
    assert result.rc == 0, result["msg"]


def test_tls_validate_certs_false(run_module: Run, tls_backend: Backend) -> None:
    result = run_module(health_probe.main, {"url": [f"{tls_backend.url}/api/v1/health"], "validate_certs": False})
    assert result.rc == 0
