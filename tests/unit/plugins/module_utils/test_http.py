"""plugins/module_utils/_http.py against a real HTTP(S) server on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import typing as t
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ansible_collections.ablage.ops.plugins.module_utils import _http
from ansible_collections.ablage.ops.plugins.module_utils._http import (
    HttpClient,
    HttpConnectionError,
    HttpResponse,
    join_url,
    json_at,
    json_forbidden_items,
    json_subset_mismatch,
    retry_until,
)

Backend = t.Any  # the conftest's Backend (tests do not import conftest)
Pki = t.Any


@pytest.mark.parametrize(
    ("base", "path", "expected"),
    [
        ("http://h:1", "/api/v1/health", "http://h:1/api/v1/health"),
        ("http://h:1/", "api/v1/health", "http://h:1/api/v1/health"),
        ("http://h:1/app", "/api", "http://h:1/app/api"),
        ("http://h:1", "https://other/x", "https://other/x"),
        (None, "http://h/x", "http://h/x"),
        (None, "/x", "/x"),
    ],
)
def test_join_url(base: str | None, path: str, expected: str) -> None:
    assert join_url(base, path) == expected


def test_tls_argument_spec_is_a_fresh_copy() -> None:
    spec = _http.tls_argument_spec()
    spec["timeout"]["default"] = 1
    assert _http.TLS_ARGUMENT_SPEC["timeout"]["default"] == 10.0


def test_get_json_with_bearer_token_and_latency(backend: Backend) -> None:
    client = HttpClient(base_url=backend.url, bearer_token=backend.admin_token, headers={"X-Trace": "1"})
    response = client.get("/api/v1/admin/maintenance")
    assert response.status == 200
    assert response.ok
    assert response.json() == {"enabled": False}
    assert response.url == f"{backend.url}/api/v1/admin/maintenance"
    assert response.headers["content-type"] == "application/json"
    assert 0 < response.latency_ms < 5000
    sent = backend.requests[-1].headers
    assert sent["Authorization"] == f"Bearer {backend.admin_token}"
    assert sent["X-Trace"] == "1"
    assert sent["User-Agent"] == "ablage.ops"


def test_http_error_status_is_a_response_not_an_exception(backend: Backend) -> None:
    response = HttpClient(base_url=backend.url).get("/api/v1/admin/maintenance")
    assert response.status == 401
    assert not response.ok
    assert response.json() == {"detail": "Not authenticated"}


def test_post_sends_json_body(backend: Backend) -> None:
    backend.script("POST", "/echo", backend.Reply(201, {"created": True}))
    client = HttpClient(base_url=backend.url)
    response = client.post("/echo", json_body={"a": [1, 2]})
    assert response.status == 201
    recorded = backend.requests[-1]
    assert json.loads(recorded.body) == {"a": [1, 2]}
    assert recorded.headers["Content-Type"] == "application/json"


def test_post_without_body_sends_empty_body(backend: Backend) -> None:
    backend.script("POST", "/empty", backend.Reply(204))
    response = HttpClient(base_url=backend.url).post("/empty")
    assert response.status == 204
    assert backend.requests[-1].headers["Content-Length"] == "0"
    assert response.json_or_none() == (False, None)


def test_non_json_and_empty_bodies(backend: Backend) -> None:
    backend.script("GET", "/html", backend.Reply(502, "<html>Bad Gateway</html>"))
    response = HttpClient(base_url=backend.url).get("/html")
    assert response.text == "<html>Bad Gateway</html>"
    assert response.json_or_none() == (False, None)
    with pytest.raises(ValueError):
        response.json()
    with pytest.raises(ValueError, match="empty body"):
        HttpResponse("GET", "u", 200, {}, b"", 1.0).json()


def test_connection_refused(free_port: int) -> None:
    client = HttpClient(base_url=f"http://127.0.0.1:{free_port}")
    with pytest.raises(HttpConnectionError) as exc:
        client.get("/api/v1/health")
    assert "refused" in exc.value.reason.lower()
    assert not exc.value.tls
    assert "service is running" in exc.value.hint
    assert str(exc.value).startswith(f"GET http://127.0.0.1:{free_port}/api/v1/health failed")


def test_read_timeout(backend: Backend) -> None:
    backend.script("GET", "/slow", backend.Reply(200, {"ok": True}, delay=1.0))
    with pytest.raises(HttpConnectionError) as exc:
        HttpClient(base_url=backend.url, timeout=0.2).get("/slow")
    assert exc.value.reason == "timed out after 0.2 s"


def test_per_request_timeout_overrides_client_timeout(backend: Backend) -> None:
    backend.script("GET", "/slow", backend.Reply(200, {"ok": True}, delay=0.5))
    client = HttpClient(base_url=backend.url, timeout=0.1)
    assert client.get("/slow", timeout=3).status == 200


def test_invalid_url() -> None:
    with pytest.raises(HttpConnectionError) as exc:
        HttpClient().get("foo://nowhere/x")
    assert "foo" in exc.value.reason


def test_malformed_url() -> None:
    with pytest.raises(HttpConnectionError) as exc:
        HttpClient().get("http://[::1/x")
    assert exc.value.reason.startswith("invalid request: ")


def test_per_request_headers_win(backend: Backend) -> None:
    client = HttpClient(base_url=backend.url, headers={"X-A": "client", "X-B": "client"})
    client.get("/api/v1/health", headers={"X-B": "request"})
    sent = backend.requests[-1].headers
    assert (sent["X-A"], sent["X-B"]) == ("client", "request")


def test_truncated_body(backend: Backend) -> None:
    backend.script("GET", "/cut", backend.Reply(200, "partial", truncate=True))
    with pytest.raises(HttpConnectionError) as exc:
        HttpClient(base_url=backend.url).get("/cut")
    assert "IncompleteRead" in exc.value.reason or "read" in exc.value.reason.lower()


def test_truncated_error_body_still_gives_the_status(backend: Backend) -> None:
    backend.script("GET", "/cut500", backend.Reply(500, "partial", truncate=True))
    response = HttpClient(base_url=backend.url).get("/cut500")
    assert response.status == 500
    assert response.body == b""


def test_tls_verification_is_on_by_default(tls_backend: Backend) -> None:
    with pytest.raises(HttpConnectionError) as exc:
        HttpClient(base_url=tls_backend.url).get("/api/v1/health")
    assert exc.value.tls
    assert "ca_path" in exc.value.hint


def test_tls_with_ca_path(tls_backend: Backend, pki: Pki) -> None:
    client = HttpClient(base_url=tls_backend.url, ca_path=str(pki.ca))
    response = client.get("/tls/whoami")
    assert response.json() == {"client_cn": None}


def test_tls_without_verification(tls_backend: Backend) -> None:
    assert HttpClient(base_url=tls_backend.url, validate_certs=False).get("/api/v1/health").status == 200


@pytest.mark.parametrize("combined", [False, True])
def test_tls_client_certificate(tls_backend: Backend, pki: Pki, combined: bool) -> None:
    if combined:
        client = HttpClient(base_url=tls_backend.url, ca_path=str(pki.ca), client_cert=str(pki.client_combined))
    else:
        client = HttpClient(
            base_url=tls_backend.url,
            ca_path=str(pki.ca),
            client_cert=str(pki.client_cert),
            client_key=str(pki.client_key),
        )
    assert client.get("/tls/whoami").json() == {"client_cn": "ablage-deployer"}


def test_from_params() -> None:
    params = {"validate_certs": False, "ca_path": "/ca", "client_cert": "/c", "client_key": "/k", "timeout": 3.0}
    client = HttpClient.from_params(params, base_url="http://x", bearer_token="tok", headers={"A": "b"})
    assert (client.validate_certs, client.ca_path, client.client_cert, client.client_key, client.timeout) == (
        False,
        "/ca",
        "/c",
        "/k",
        3.0,
    )
    assert client.url_for("/y") == "http://x/y"
    assert client.bearer_token == "tok"


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_retry_until_stops_on_success() -> None:
    clock = FakeClock()
    seen: list[tuple[int, float]] = []

    def attempt(number: int, left: float) -> tuple[str, bool]:
        seen.append((number, left))
        clock.now += 0.5
        return f"try {number}", number == 3

    outcome = retry_until(attempt, attempts=10, delay=1.0, timeout=30, clock=clock, sleep=clock.sleep)
    assert (outcome.value, outcome.ok, outcome.attempts) == ("try 3", True, 3)
    assert clock.sleeps == [1.0, 1.0]
    assert seen[0] == (1, 30.0)
    assert seen[1] == (2, 28.5)
    assert outcome.elapsed_s == 3.5


def test_retry_until_stops_after_attempts() -> None:
    clock = FakeClock()
    outcome = retry_until(lambda n, left: (n, False), attempts=3, delay=2, timeout=100, clock=clock, sleep=clock.sleep)
    assert (outcome.ok, outcome.attempts) == (False, 3)
    assert clock.sleeps == [2, 2]


def test_retry_until_stops_at_deadline() -> None:
    clock = FakeClock()

    def attempt(number: int, left: float) -> tuple[float, bool]:
        clock.now += 1.0
        return left, False

    outcome = retry_until(attempt, attempts=1000, delay=1.0, timeout=5.5, clock=clock, sleep=clock.sleep)
    assert not outcome.ok
    # t=0 try (1 s) + sleep 1, t=2 try + sleep, t=4 try -> t=5: 5+1 >= 5.5, stop
    assert outcome.attempts == 3
    assert outcome.elapsed_s <= 5.5


def test_retry_until_always_tries_once() -> None:
    outcome: t.Any = retry_until(lambda n, left: ("x", False), attempts=0, delay=0, timeout=0)
    assert outcome.attempts == 1
    assert outcome.value == "x"


@pytest.mark.parametrize(
    ("expected", "actual", "problem"),
    [
        ({"status": "healthy"}, {"status": "healthy", "extra": 1}, None),
        ({"a": {"b": {"c": 1}}}, {"a": {"b": {"c": 1, "d": 2}}}, None),
        ({"a": {"b": 1}}, {"a": {"b": 2}}, "$.a.b: expected 1, got 2"),
        ({"a": 1}, {}, "$.a: missing (expected 1)"),
        ({"a": 1}, [1], "$: expected an object, got [1]"),
        ([{"n": "db"}], [{"n": "redis"}, {"n": "db", "s": "up"}], None),
        ([{"n": "gpu"}], [{"n": "db"}], '$[0]: no item matches {"n": "gpu"}'),
        ([1], {"a": 1}, '$: expected a list, got {"a": 1}'),
        ({"up": True}, {"up": 1}, "$.up: expected true, got 1"),
        ({"n": 1}, {"n": True}, "$.n: expected 1, got true"),
        ({"up": True}, {"up": True}, None),
        ("x" * 100, "y", '$: expected "' + "x" * 76 + '..., got "y"'),
        (None, None, None),
    ],
)
def test_json_subset_mismatch(expected: t.Any, actual: t.Any, problem: str | None) -> None:
    assert json_subset_mismatch(expected, actual) == problem


@pytest.mark.parametrize(
    ("path", "document", "found"),
    [
        ("", [1], (True, [1])),
        ("$", {"a": 1}, (True, {"a": 1})),
        ("data.alerts", {"data": {"alerts": []}}, (True, [])),
        ("$.data.alerts", {"data": {"alerts": [1]}}, (True, [1])),
        ("items.1.state", {"items": [{"state": "a"}, {"state": "b"}]}, (True, "b")),
        ("items.-1", {"items": [1, 2]}, (True, 2)),
        ("items.2", {"items": [1, 2]}, (False, None)),
        ("data.missing", {"data": {}}, (False, None)),
        ("data.x", {"data": [1]}, (False, None)),
        ("a", "text", (False, None)),
    ],
)
def test_json_at(path: str, document: t.Any, found: tuple[bool, t.Any]) -> None:
    assert json_at(path, document) == found


ALERTS = [
    {"labels": {"alertname": "HighGPUMemory"}, "annotations": {"__dashboardUid__": "system-overview"}},
    {"labels": {"alertname": "QueueBacklog"}, "annotations": {"__dashboardUid__": "ocr-pipeline"}},
    {"labels": {"alertname": "DiskFull"}, "annotations": {}},
]


@pytest.mark.parametrize(
    ("path", "match", "document", "problem"),
    [
        ("$", {}, [], None),
        ("", {}, [{"a": 1}], '1 forbidden item(s) matching {} at $[0]; first: {"a": 1}'),
        ("$", {"annotations": {"__dashboardUid__": "nope"}}, ALERTS, None),
        (
            "$",
            {"annotations": {"__dashboardUid__": "ocr-pipeline"}},
            ALERTS,
            '1 forbidden item(s) matching {"annotations": {"__dashboardUid__": "ocr-pipeline"}} at $[1]; first: '
            + _http._short(ALERTS[1]),
        ),
        ("data.alerts", {"state": "firing"}, {"data": {"alerts": [{"state": "inactive"}]}}, None),
        (
            "data.alerts",
            {"state": "firing"},
            {"data": {"alerts": [{"state": "firing", "n": i} for i in range(7)]}},
            (
                '7 forbidden item(s) matching {"state": "firing"} at $.data.alerts[0], $.data.alerts[1], '
                '$.data.alerts[2], $.data.alerts[3], $.data.alerts[4], ...; first: {"n": 0, "state": "firing"}'
            ),
        ),
        ("data.alerts", {}, {"data": {}}, "$.data.alerts: missing (expected a list)"),
        ("$.data", {}, {"data": {"alerts": []}}, '$.data: expected a list, got {"alerts": []}'),
    ],
)
def test_json_forbidden_items(path: str, match: t.Any, document: t.Any, problem: str | None) -> None:
    assert json_forbidden_items(path, match, document) == problem


def test_tls_context_built_once_and_bad_ca_reported(tmp_path: t.Any) -> None:
    from ansible_collections.ablage.ops.plugins.module_utils._http import HttpClient, HttpConnectionError

    client = HttpClient(base_url="https://127.0.0.1:9")
    assert client.tls_context() is client.tls_context()
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate")
    with pytest.raises(HttpConnectionError) as exc:
        HttpClient(base_url="https://127.0.0.1:9", ca_path=str(bad)).request("GET", "/")
    assert exc.value.tls and "cannot set up TLS" in exc.value.reason


# --------------------------------------------------------------------------- redirects and the bearer token (issue 14)


class _Recorder(BaseHTTPRequestHandler):
    """Redirects /to?<url> with 302; any other path answers 200 and records the Authorization it got."""

    seen: t.ClassVar[list[tuple[str, str | None]]]

    def do_GET(self) -> None:
        path, _sep, query = self.path.partition("?")
        if path == "/to":
            self.send_response(302)
            self.send_header("Location", urllib.parse.unquote(query))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        auth = self.headers.get("Authorization")
        self.seen.append((f"{self.server.server_address[0]}{path}", auth))
        body = json.dumps({"authorization": auth}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET

    def log_message(self, format: str, *args: t.Any) -> None:
        pass


@pytest.fixture
def two_hosts() -> t.Iterator[tuple[str, str, str, list[tuple[str, str | None]]]]:
    """Servers on 127.0.0.1 and 127.0.0.2 (another origin), plus another port on 127.0.0.1; one shared record."""
    seen: list[tuple[str, str | None]] = []
    handler = type("Recorder", (_Recorder,), {"seen": seen})
    servers = [ThreadingHTTPServer((host, 0), handler) for host in ("127.0.0.1", "127.0.0.2", "127.0.0.1")]
    for server in servers:
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        yield (*(f"http://{s.server_address[0]}:{s.server_address[1]}" for s in servers), seen)  # type: ignore[misc]
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


def test_redirect_to_another_host_drops_the_bearer_token(two_hosts: t.Any) -> None:
    first, other_host, other_port, seen = two_hosts
    client = HttpClient(base_url=first, bearer_token="secret-admin-token")
    for target in (f"{other_host}/landing", f"{other_port}/landing"):
        response = client.get("/to?" + urllib.parse.quote(target, safe=""))
        assert response.status == 200
        assert response.json() == {"authorization": None}
    assert [auth for _where, auth in seen] == [None, None]  # what the servers received


def test_redirect_within_the_origin_keeps_the_bearer_token(two_hosts: t.Any) -> None:
    first, _other, _port, seen = two_hosts
    client = HttpClient(base_url=first, bearer_token="secret-admin-token")
    response = client.get("/to?/landing")
    assert response.status == 200 and response.json() == {"authorization": "Bearer secret-admin-token"}
    assert seen == [("127.0.0.1/landing", "Bearer secret-admin-token")]


def test_redirect_of_a_post_is_returned_not_followed(two_hosts: t.Any) -> None:
    first, other_host, _port, seen = two_hosts
    client = HttpClient(base_url=first, bearer_token="secret-admin-token")
    response = client.post("/to?" + urllib.parse.quote(f"{other_host}/landing", safe=""), json_body={})
    assert response.status == 302 and seen == []
