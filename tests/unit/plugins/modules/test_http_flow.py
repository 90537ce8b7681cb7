"""http_flow: main() with real arguments against a tiny real application on 127.0.0.1 (and 127.0.0.2)."""

from __future__ import annotations

import json
import threading
import typing as t
import urllib.parse
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ansible_collections.ablage.ops.plugins.modules import http_flow

Run = t.Callable[..., t.Any]

USERNAME = "smoke"
PASSWORD = "pw-Xq81-never-shown"
ACCESS_TOKEN = "tok-7b1e5a93c0d24f68-smoke-user"
ADMIN_TOKEN = "adm-2c4e6a8b0d1f3e5a-admin"
DOC_ID = "3f1c9a52-7d0e-4c55-9a43-5d1f0c2b8e11"
JOB_ID = "9b2d7e41-0c6a-4f3b-8e15-a7d9c2e4b6f0"
TEXT = "Ablage-System smoke test 4711"
# Bytes a text-mode or base64 round trip would change: CR, LF, NUL, high bytes.
PDF = b"%PDF-1.4\r\n%\xe2\xe3\xcf\xd3\n1 0 obj\x00\xff\r\n(Ablage-System smoke test 4711) Tj\nendobj\r\n%%EOF\n"


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


def _multipart(content_type: str, body: bytes) -> dict[str, tuple[dict[str, str], bytes]]:
    """field name -> (part headers, raw bytes): a strict parser, so a mangled body does not pass."""
    boundary = content_type.split("boundary=", 1)[1].encode()
    parts: dict[str, tuple[dict[str, str], bytes]] = {}
    assert body.endswith(b"--" + boundary + b"--\r\n")
    for chunk in body.split(b"--" + boundary)[1:-1]:
        assert chunk.startswith(b"\r\n") and chunk.endswith(b"\r\n")
        head, data = chunk[2:-2].split(b"\r\n\r\n", 1)
        headers = dict(line.split(": ", 1) for line in head.decode().split("\r\n"))
        name = headers["Content-Disposition"].split('name="', 1)[1].split('"', 1)[0]
        parts[name] = (headers, data)
    return parts


class App:
    """The application under test: login, upload, OCR job, exports, admin page, redirects."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[Seen] = []
        self.other_requests: list[Seen] = []
        self.upload_status = 201
        self.upload_field = "file"
        self.running_polls = 2  # the job answers "running" this often, then finishes
        self.outcome = "completed"
        self.text = TEXT + "\n"
        self.polls = 0
        self.job_unavailable = 0  # the job answers 503 this often first (the backend restarting)
        self.job_missing = False
        self.uploads: list[dict[str, tuple[dict[str, str], bytes]]] = []
        self.url = ""
        self.other_url = ""

    def user(self, headers: t.Mapping[str, str]) -> str | None:
        return {f"Bearer {ACCESS_TOKEN}": "smoke", f"Bearer {ADMIN_TOKEN}": "admin"}.get(
            headers.get("Authorization", "")
        )

    def route(self, seen: Seen) -> tuple[int, t.Any, dict[str, str]]:
        path, _sep, query = seen.path.partition("?")
        params = dict(urllib.parse.parse_qsl(query))
        if (seen.method, path) == ("POST", "/api/v1/auth/login"):
            if seen.headers.get("Content-Type") == "application/x-www-form-urlencoded":
                data = dict(urllib.parse.parse_qsl(seen.body.decode()))
            else:
                data = json.loads(seen.body)
            if data.get("username") == USERNAME and data.get("password") == PASSWORD:
                return 200, {"access_token": ACCESS_TOKEN, "token_type": "bearer", "expires_in": 900}, {}
            return 401, {"detail": "invalid username or password"}, {}
        if path == "/admin":
            return 200, "<html><title>Ablage-System Admin</title><h1>Admin</h1></html>", {}
        if path == "/moved":  # same host: the token goes along
            return 307, "", {"Location": "/api/v1/documents/" + DOC_ID + "/export?format=json"}
        if path == "/elsewhere":  # another host: the token must not go along
            return 302, "", {"Location": f"{self.other_url}/landing?from=app"}
        if self.user(seen.headers) is None:
            return 401, {"detail": "missing or invalid bearer token"}, {}
        if (seen.method, path) == ("POST", "/api/v1/documents/"):
            parts = _multipart(seen.headers["Content-Type"], seen.body)
            self.uploads.append(parts)
            if self.upload_field not in parts:
                return 422, {"detail": f"field {self.upload_field} required"}, {}
            return (
                self.upload_status,
                {"id": DOC_ID, "status": "uploaded", "size_bytes": len(parts[self.upload_field][1])},
                {},
            )
        if (seen.method, path) == ("POST", "/api/v1/ocr/process"):
            data = json.loads(seen.body)
            if data != {"document_id": DOC_ID, "backend": "auto"}:
                return 422, {"detail": f"bad request {data!r}"}, {}
            return 202, {"job_id": JOB_ID, "document_id": DOC_ID, "status": "queued"}, {}
        if (seen.method, path) == ("GET", f"/api/v1/ocr/jobs/{JOB_ID}"):
            if self.job_missing:
                return 404, {"detail": "job not found"}, {}
            with self.lock:
                self.polls += 1
                if self.job_unavailable:
                    self.job_unavailable -= 1
                    self.polls -= 1
                    return 503, "<html>Service Unavailable</html>", {}
                done = self.polls > self.running_polls
            if not done:
                return 200, {"job_id": JOB_ID, "status": "running", "text": None}, {}
            return 200, {"job_id": JOB_ID, "status": self.outcome, "text": self.text, "pages": 1}, {}
        if (seen.method, path) == ("GET", f"/api/v1/documents/{DOC_ID}/export"):
            if params.get("format") == "txt":
                return 200, self.text, {"Content-Type": "text/plain; charset=utf-8"}
            return 200, {"document_id": DOC_ID, "format": "json", "text": self.text, "tags": ["smoke", "ocr"]}, {}
        return 404, {"detail": "Not Found"}, {}


def _handler(app: App, other: bool) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: t.Any) -> None:
            pass

        def handle_any(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            seen = Seen(self.command, self.path, dict(self.headers.items()), self.rfile.read(length) if length else b"")
            with app.lock:
                (app.other_requests if other else app.requests).append(seen)
            status, body, headers = (200, {"landed": True}, {}) if other else app.route(seen)
            if isinstance(body, (dict, list)):
                data, ctype = json.dumps(body).encode(), "application/json"
            else:
                data, ctype = str(body).encode(), "text/html; charset=utf-8"
            self.send_response(status)
            self.send_header("Content-Type", headers.pop("Content-Type", ctype))
            self.send_header("Content-Length", str(len(data)))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = handle_any

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True


@pytest.fixture
def app() -> t.Iterator[App]:
    state = App()
    servers = [_Server(("127.0.0.1", 0), _handler(state, False)), _Server(("127.0.0.2", 0), _handler(state, True))]
    state.url = f"http://127.0.0.1:{servers[0].server_address[1]}"
    state.other_url = f"http://127.0.0.2:{servers[1].server_address[1]}"
    threads = [threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True) for s in servers]
    for thread in threads:
        thread.start()
    try:
        yield state
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


@pytest.fixture
def document(tmp_path: Path) -> Path:
    path = tmp_path / "smoke-document.pdf"
    path.write_bytes(PDF)
    return path


def smoke_steps(document: Path) -> list[dict[str, t.Any]]:
    """The smoke flow of roles/verify/tasks/smoke.yml, with a real login."""
    return [
        {
            "name": "login",
            "method": "POST",
            "path": "/api/v1/auth/login",
            "json": {"username": "{smoke_username}", "password": "{smoke_password}"},
            "capture": {"user_token": "access_token"},
            "capture_secret": True,
        },
        {
            "name": "upload",
            "method": "POST",
            "path": "/api/v1/documents/",
            "auth": "user_token",
            "file": str(document),
            "file_mime_type": "application/pdf",
            "status_code": [201],
            "capture": {"document_id": "id"},
        },
        {
            "name": "ocr",
            "method": "POST",
            "path": "/api/v1/ocr/process",
            "auth": "user_token",
            "json": {"document_id": "{document_id}", "backend": "auto"},
            "status_code": [200, 202],
            "capture": {"job_id": "job_id"},
        },
        {
            "name": "ocr job",
            "path": "/api/v1/ocr/jobs/{job_id}",
            "auth": "user_token",
            "until": {"status": ["completed", "failed"]},
            "timeout": 10,
            "delay": 0.02,
            "expect_json": {"status": "completed"},
            "expect_json_regex": {"text": r"^\s*{expected_text}\s*$"},
        },
        {
            "name": "export",
            "path": "/api/v1/documents/{document_id}/export?format=txt",
            "auth": "user_token",
            "expect_content": r"^\s*{expected_text}\s*$",
        },
        {"name": "admin panel", "path": "/admin", "auth": "admin", "expect_content": "Admin"},
    ]


def flow_args(app: App, steps: list[dict[str, t.Any]], **extra: t.Any) -> dict[str, t.Any]:
    args: dict[str, t.Any] = {
        "base_url": app.url,
        "tokens": {"admin": ADMIN_TOKEN},
        "variables": {"smoke_username": USERNAME, "expected_text": TEXT},
        "secret_variables": {"smoke_password": PASSWORD},
        "steps": steps,
        "timeout": 5,
    }
    args.update(extra)
    return args


def walk(value: t.Any) -> t.Iterator[str]:
    """Every key and scalar of a returned structure, as text."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from walk(item)
    else:
        yield str(value)


def assert_no_secret(result: t.Any) -> None:
    for secret in (ACCESS_TOKEN, PASSWORD, ADMIN_TOKEN):
        assert secret not in result["_raw"]
        assert not [text for text in walk(result) if secret in text]
        assert secret not in json.dumps(result)


# --------------------------------------------------------------------------- success


def test_smoke_flow_passes(run_module: Run, app: App, document: Path) -> None:
    result = run_module(http_flow.main, flow_args(app, smoke_steps(document)))
    assert result.rc == 0, result["msg"]
    assert result["changed"] is False
    assert result["msg"].startswith("all 6 steps passed")
    steps = result["steps"]
    assert [s["name"] for s in steps] == ["login", "upload", "ocr", "ocr job", "export", "admin panel"]
    assert all(s["ok"] for s in steps)
    assert [s["status"] for s in steps] == [200, 201, 202, 200, 200, 200]
    assert [s["attempts"] for s in steps] == [1, 1, 1, 3, 1, 1]  # the job completes after 2 polls
    assert steps[1]["url"] == f"{app.url}/api/v1/documents/"
    assert steps[3]["url"] == f"{app.url}/api/v1/ocr/jobs/{JOB_ID}"
    assert steps[4]["url"] == f"{app.url}/api/v1/documents/{DOC_ID}/export?format=txt"
    assert all(s["elapsed_ms"] >= 0 for s in steps)
    assert steps[3]["elapsed_ms"] >= 40  # two delays of 20 ms
    assert result["captured"] == {"user_token": "********", "document_id": DOC_ID, "job_id": JOB_ID}
    assert steps[0]["captured"] == {"user_token": "********"}
    assert steps[1]["captured"] == {"document_id": DOC_ID}
    assert "excerpt" not in steps[0]  # capture_secret: the login answer is not returned
    assert json.loads(steps[1]["excerpt"])["id"] == DOC_ID
    assert steps[4]["excerpt"] == TEXT
    assert "Admin" in steps[5]["excerpt"]
    assert all(len(s.get("excerpt", "")) <= 200 for s in steps)
    assert_no_secret(result)

    # What the application received: the login JSON, the file's bytes unchanged, the captured token, typed JSON.
    login, upload, ocr = app.requests[0], app.requests[1], app.requests[2]
    assert json.loads(login.body) == {"username": USERNAME, "password": PASSWORD}
    assert "Authorization" not in login.headers
    headers, data = app.uploads[0]["file"]
    assert data == PDF
    assert headers["Content-Type"] == "application/pdf"
    assert 'filename="smoke-document.pdf"' in headers["Content-Disposition"]
    assert upload.headers["Authorization"] == f"Bearer {ACCESS_TOKEN}"
    assert ocr.headers["Content-Type"] == "application/json"
    admin = app.requests[-1]
    assert admin.path == "/admin"
    assert admin.headers["Authorization"] == f"Bearer {ADMIN_TOKEN}"
    assert len(app.requests) == 8


def test_another_build_is_another_step_list(run_module: Run, app: App, document: Path) -> None:
    """Upload answers 200 under another field name, the export is JSON: only the data changes."""
    app.upload_status, app.upload_field = 200, "upload"
    steps = smoke_steps(document)
    steps[1].update(status_code=[200, 201], file_field="upload")
    steps[4] = {
        "name": "export json",
        "path": "/api/v1/documents/{document_id}/export?format=json",
        "auth": "user_token",
        "expect_json": {"document_id": "{document_id}", "format": "json", "tags": ["ocr"]},
        "expect_json_regex": {"text": "^{expected_text}\\n?$"},
        "capture": {"first_tag": "tags.0"},
    }
    result = run_module(http_flow.main, flow_args(app, steps))
    assert result.rc == 0, result["msg"]
    assert result["steps"][1]["status"] == 200
    assert result["captured"]["first_tag"] == "smoke"
    assert "upload" in app.uploads[0]


def test_form_login_and_typed_placeholders(run_module: Run, app: App) -> None:
    steps = [
        {
            "name": "login form",
            "method": "POST",
            "path": "/api/v1/auth/login",
            "form": {"username": "{smoke_username}", "password": "{smoke_password}"},
            "capture": {"token": "access_token", "ttl": "expires_in"},
            "capture_secret": True,
        },
        {
            "name": "typed body",
            "method": "POST",
            "path": "/api/v1/ocr/process",
            "auth": "token",
            "json": {"document_id": "{doc}", "backend": "auto"},
            "status_code": [422],
            "expect_content": "expires_in|bad request",
        },
    ]
    result = run_module(
        http_flow.main, flow_args(app, steps, variables={"smoke_username": USERNAME, "doc": [1, "two"]})
    )
    assert result.rc == 0, result["msg"]
    login, typed = app.requests
    assert urllib.parse.parse_qs(login.body.decode()) == {"username": [USERNAME], "password": [PASSWORD]}
    # a string that is exactly one placeholder keeps the value's type
    assert json.loads(typed.body) == {"document_id": [1, "two"], "backend": "auto"}
    assert result["captured"] == {"token": "********", "ttl": "********"}
    assert_no_secret(result)


# --------------------------------------------------------------------------- redirects


def test_redirect_to_another_host_drops_the_token(run_module: Run, app: App) -> None:
    steps = [{"name": "elsewhere", "path": "/elsewhere", "auth": "admin", "expect_json": {"landed": True}}]
    result = run_module(http_flow.main, flow_args(app, steps))
    assert result.rc == 0, result["msg"]
    assert app.requests[0].headers["Authorization"] == f"Bearer {ADMIN_TOKEN}"
    (landing,) = app.other_requests
    assert landing.path == "/landing?from=app"
    assert "Authorization" not in landing.headers
    assert result["steps"][0]["url"] == f"{app.url}/elsewhere"


def test_redirect_on_the_same_host_keeps_the_token(run_module: Run, app: App) -> None:
    steps = [{"name": "moved", "path": "/moved", "auth": "admin", "expect_json": {"format": "json"}}]
    result = run_module(http_flow.main, flow_args(app, steps))
    assert result.rc == 0, result["msg"]
    _moved, target = app.requests
    assert target.path == f"/api/v1/documents/{DOC_ID}/export?format=json"
    assert target.headers["Authorization"] == f"Bearer {ADMIN_TOKEN}"


def test_post_is_not_redirected(run_module: Run, app: App) -> None:
    steps = [{"name": "post moved", "method": "POST", "path": "/elsewhere", "auth": "admin", "json": {}}]
    result = run_module(http_flow.main, flow_args(app, steps))
    assert result.rc == 1
    assert "expected status [200], got 302 (redirect to http://127.0.0.2:" in result["msg"]
    assert app.other_requests == []


# --------------------------------------------------------------------------- failures


def run_failing(run_module: Run, app: App, steps: list[dict[str, t.Any]], **extra: t.Any) -> t.Any:
    result = run_module(http_flow.main, flow_args(app, steps, **extra))
    assert result.rc == 1
    assert result["failed"] is True
    assert result["changed"] is False
    assert_no_secret(result)
    return result


def test_unexpected_status_names_step_expected_and_came(run_module: Run, app: App, document: Path) -> None:
    app.upload_status = 200  # another build; the step list still says 201
    result = run_failing(run_module, app, smoke_steps(document))
    msg = result["msg"]
    assert msg.startswith(f"step 2 ('upload') POST {app.url}/api/v1/documents/: expected status [201], got 200;")
    assert f'"id": "{DOC_ID}"' in msg  # the body excerpt
    # the steps that ran are returned, the failed one last
    assert [s["name"] for s in result["steps"]] == ["login", "upload"]
    assert [s["ok"] for s in result["steps"]] == [True, False]
    assert result["steps"][1]["status"] == 200
    assert result["captured"] == {"user_token": "********"}
    assert len(app.requests) == 2


def test_failed_login_shows_no_body(run_module: Run, app: App, document: Path) -> None:
    result = run_failing(
        run_module, app, smoke_steps(document), secret_variables={"smoke_password": "wrong-pw-0000000"}
    )
    assert "step 1 ('login')" in result["msg"]
    assert "expected status [200], got 401" in result["msg"]
    # capture_secret step: only the body's shape, never its values
    assert "a JSON object with the keys detail" in result["msg"]
    assert "invalid username" not in result["msg"]
    assert "excerpt" not in result["steps"][0]
    assert "wrong-pw-0000000" not in result["_raw"]


def test_expect_json_mismatch(run_module: Run, app: App, document: Path) -> None:
    app.outcome = "failed"
    result = run_failing(run_module, app, smoke_steps(document))
    msg = result["msg"]
    assert "step 4 ('ocr job')" in msg
    assert 'expect_json: $.status: expected "completed", got "failed"' in msg
    assert '"status": "failed"' in msg
    assert result["steps"][3]["attempts"] == 3


def test_expect_json_regex_mismatch(run_module: Run, app: App, document: Path) -> None:
    app.text = "Ablage-System smoke test 4712"
    result = run_failing(run_module, app, smoke_steps(document))
    assert "step 4 ('ocr job')" in result["msg"]
    assert (
        'expect_json_regex: $.text is "Ablage-System smoke test 4712", which does not match '
        "'^\\\\s*{expected_text}\\\\s*$'" in result["msg"]
    )


def test_expect_content_mismatch(run_module: Run, app: App, document: Path) -> None:
    admin = {"name": "admin", "path": "/admin", "auth": "user_token", "expect_content": "Grafana|{smoke_username}"}
    steps = [*smoke_steps(document)[:1], admin]
    result = run_failing(run_module, app, steps)
    msg = result["msg"]
    assert msg.startswith(f"step 2 ('admin') GET {app.url}/admin: expect_content: the body does not match")
    assert "'Grafana|{smoke_username}'" in msg
    assert "Ablage-System Admin" in msg


def test_placeholder_values_match_literally(run_module: Run, app: App) -> None:
    """A substituted value is escaped: '.' in the value does not match any character."""
    steps = [{"name": "admin", "path": "/admin", "expect_content": "{word}"}]
    result = run_failing(run_module, app, steps, variables={"word": "Ablage.System"})
    assert "expect_content" in result["msg"]
    ok = run_module(http_flow.main, flow_args(app, steps, variables={"word": "Ablage-System"}))
    assert ok.rc == 0, ok["msg"]


def test_until_timeout(run_module: Run, app: App, document: Path) -> None:
    app.running_polls = 10_000
    steps = smoke_steps(document)
    steps[3].update(timeout=0.3, delay=0.05)
    result = run_failing(run_module, app, steps)
    msg = result["msg"]
    assert "step 4 ('ocr job')" in msg
    assert "until not met (after" in msg
    assert "within timeout=0.3 s)" in msg
    assert '$.status is "running", waiting for one of ["completed", "failed"]' in msg
    assert result["steps"][3]["attempts"] >= 3
    assert app.polls == result["steps"][3]["attempts"]


def test_until_waits_through_503_but_not_404(run_module: Run, app: App, document: Path) -> None:
    app.job_unavailable = 2
    result = run_module(http_flow.main, flow_args(app, smoke_steps(document)))
    assert result.rc == 0, result["msg"]
    assert result["steps"][3]["attempts"] == 5
    app.job_missing = True
    result = run_failing(run_module, app, smoke_steps(document))
    assert "step 4 ('ocr job')" in result["msg"]
    assert "expected status [200], got 404 (after 1 attempts within timeout=10 s)" in result["msg"]


def test_capture_path_missing(run_module: Run, app: App, document: Path) -> None:
    steps = smoke_steps(document)
    steps[1]["capture"] = {"document_id": "data.document.id"}
    result = run_failing(run_module, app, steps)
    assert "step 2 ('upload')" in result["msg"]
    assert "capture document_id: nothing at $.data.document.id" in result["msg"]
    assert len(app.requests) == 2


def test_secret_capture_path_missing_keeps_the_body_hidden(run_module: Run, app: App, document: Path) -> None:
    steps = smoke_steps(document)
    steps[0]["capture"] = {"user_token": "token"}
    result = run_failing(run_module, app, steps)
    assert "capture user_token: nothing at $.token" in result["msg"]
    assert "the keys access_token, expires_in, token_type" in result["msg"]


def test_unreachable(run_module: Run, app: App, free_port: int) -> None:
    steps = [{"name": "health", "path": "/api/v1/health"}]
    result = run_failing(run_module, app, steps, base_url=f"http://127.0.0.1:{free_port}", timeout=2)
    assert result["msg"].startswith(f"step 1 ('health') GET http://127.0.0.1:{free_port}/api/v1/health: no answer:")
    assert "check that the service is running" in result["msg"]
    assert result["steps"][0]["status"] is None


def test_unreadable_file_fails_before_any_request(run_module: Run, app: App, tmp_path: Path) -> None:
    result = run_failing(run_module, app, smoke_steps(tmp_path / "missing.pdf"))
    assert "step 2 ('upload'): file" in result["msg"]
    assert "does not exist or cannot be read on the managed host (nothing was sent)" in result["msg"]
    assert app.requests == []


# --------------------------------------------------------------------------- validation before any request


def test_undefined_variable_fails_before_any_request(run_module: Run, app: App, document: Path) -> None:
    steps = smoke_steps(document)
    steps[4]["path"] = "/api/v1/documents/{doc_id}/export?format=txt"
    result = run_failing(run_module, app, steps)
    assert "nothing was sent" in result["msg"]
    assert "step 5 ('export'): path uses {doc_id}, which is not defined" in result["msg"]
    assert "define it in variables or secret_variables, or capture it in an earlier step" in result["msg"]
    assert app.requests == []
    assert result["steps"] == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        pytest.param(
            lambda s: s[1].update(timeuot=5),
            "step 2 ('upload'): unknown key(s) timeuot; known keys are name, method, path",
            id="unknown-key",
        ),
        pytest.param(
            lambda s: s[1].update(status_code=["created"]),
            "step 2 ('upload'): status_code must be a list of HTTP status codes such as [200, 201]",
            id="status-type",
        ),
        pytest.param(
            lambda s: s[2].update(capture="job_id"), "step 3 ('ocr'): capture must be a dict, got str", id="capture"
        ),
        pytest.param(lambda s: s[0].pop("path"), "step 1 ('login'): path is required", id="no-path"),
        pytest.param(lambda s: s[0].pop("name"), "step 1 ('#1'): name is required", id="no-name"),
        pytest.param(
            lambda s: s[5].update(name="ocr"), "step 6 ('ocr'): the name is used by step 3 too", id="duplicate-name"
        ),
        pytest.param(
            lambda s: s[0].update(capture_secret=False),
            "step 2 ('upload'): auth 'user_token' is not secret, so the token would be returned in plain text",
            id="auth-not-secret",
        ),
        pytest.param(
            lambda s: s[5].update(auth="root"), "step 6 ('admin panel'): auth 'root' is not defined", id="auth-unknown"
        ),
        pytest.param(
            lambda s: s.insert(0, s.pop(2)),
            "step 1 ('ocr'): auth 'user_token' is not defined",
            id="order",
        ),
        pytest.param(
            lambda s: s[1].update(path="/api/v1/ocr/jobs/{job_id}"),
            "step 2 ('upload'): path uses {job_id}, which is not defined: it is captured by the later step 3 ('ocr')",
            id="captured-later",
        ),
        pytest.param(
            lambda s: s[3].update(until={"status": ["{job_status}"]}, capture={"job_status": "status"}),
            "step 4 ('ocr job'): until uses {job_status}, which is not defined: a step's captures are available",
            id="captured-same-step",
        ),
        pytest.param(
            lambda s: s[4].update(expect_content="(unclosed"),
            "step 5 ('export'): expect_content '(unclosed' is not a valid regular expression",
            id="regex",
        ),
        pytest.param(
            lambda s: s[3].update(timeout=7200),
            "step 4 ('ocr job'): timeout must be more than 0 and at most 3600 seconds, got 7200",
            id="timeout-bound",
        ),
        pytest.param(
            lambda s: s[4].update(delay=1),
            "step 5 ('export'): delay is only used with until",
            id="delay-without-until",
        ),
        pytest.param(
            lambda s: s[2].update(form={"a": "b"}),
            "step 3 ('ocr'): json cannot be combined with form; choose one body",
            id="two-bodies",
        ),
        pytest.param(
            lambda s: s[4].update(json={"a": 1}),
            "step 5 ('export'): a GET request carries no body (json); set method: POST",
            id="get-body",
        ),
        pytest.param(
            lambda s: s[4].update(headers={"Authorization": "Bearer x"}),
            "step 5 ('export'): headers must not set Authorization; name the token in auth instead",
            id="auth-header",
        ),
        pytest.param(
            lambda s: s[2].update(capture={"document_id": "document_id"}),
            "step 3 ('ocr'): capture 'document_id' is captured by step 2 ('upload') already",
            id="capture-twice",
        ),
        pytest.param(
            lambda s: s[1].update(capture={"expected_text": "id"}),
            "step 2 ('upload'): capture 'expected_text' would replace the given token or variable",
            id="capture-shadows",
        ),
        pytest.param(
            lambda s: s[4].update(file_field="upload"),
            "step 5 ('export'): file_field is only used with file",
            id="file-field-alone",
        ),
    ],
)
def test_invalid_step_list_fails_before_any_request(
    run_module: Run, app: App, document: Path, change: t.Callable[[list[dict[str, t.Any]]], t.Any], expected: str
) -> None:
    steps = smoke_steps(document)
    change(steps)
    result = run_failing(run_module, app, steps)
    assert result["msg"].startswith("the step list cannot run (")
    assert expected in result["msg"]
    assert app.requests == []


def test_a_step_that_is_not_a_dict(run_module: Run, app: App, document: Path) -> None:
    result = run_module(http_flow.main, flow_args(app, [*smoke_steps(document), "GET /metrics"]))
    assert result.rc == 1
    assert "Elements value for option 'steps' is of type str" in result["msg"]  # Ansible's own check, first
    assert app.requests == []


def test_every_problem_is_listed(run_module: Run, app: App, document: Path) -> None:
    steps = smoke_steps(document)
    steps[1]["bogus"] = 1
    steps[5]["auth"] = "nobody"
    result = run_failing(run_module, app, steps)
    assert result["msg"].startswith("the step list cannot run (2 problem(s), nothing was sent)")
    assert "step 2 ('upload'): unknown key(s) bogus" in result["msg"]
    assert "step 6 ('admin panel'): auth 'nobody'" in result["msg"]


def test_name_given_twice(run_module: Run, app: App, document: Path) -> None:
    result = run_failing(run_module, app, smoke_steps(document), tokens={"admin": ADMIN_TOKEN, "smoke_username": "x"})
    assert "'smoke_username' is given in both tokens and variables; use one" in result["msg"]
    assert app.requests == []


# --------------------------------------------------------------------------- check mode


def test_check_mode_sends_nothing(run_module: Run, app: App, document: Path) -> None:
    result = run_module(http_flow.main, flow_args(app, smoke_steps(document)), check_mode=True)
    assert result.rc == 0, result["msg"]
    assert result["changed"] is False
    assert app.requests == []
    assert result["steps"] == [
        {"name": "login", "method": "POST", "url": f"{app.url}/api/v1/auth/login"},
        {"name": "upload", "method": "POST", "url": f"{app.url}/api/v1/documents/"},
        {"name": "ocr", "method": "POST", "url": f"{app.url}/api/v1/ocr/process"},
        {"name": "ocr job", "method": "GET", "url": f"{app.url}/api/v1/ocr/jobs/{{job_id}}"},
        {"name": "export", "method": "GET", "url": f"{app.url}/api/v1/documents/{{document_id}}/export?format=txt"},
        {"name": "admin panel", "method": "GET", "url": f"{app.url}/admin"},
    ]
    assert result["captured"] == {}
    assert "nothing sent" in result["msg"]


def test_check_mode_still_validates(run_module: Run, app: App, document: Path) -> None:
    steps = smoke_steps(document)
    steps[2]["json"] = {"document_id": "{doc}"}
    result = run_module(http_flow.main, flow_args(app, steps), check_mode=True)
    assert result.rc == 1
    assert "step 3 ('ocr'): json uses {doc}, which is not defined" in result["msg"]
    assert app.requests == []


# --------------------------------------------------------------------------- TLS


def test_tls_with_a_private_ca(run_module: Run, tls_backend: t.Any, pki: t.Any) -> None:
    steps = [{"name": "health", "path": "/api/v1/health", "expect_json": {"status": "healthy"}}]
    result = run_module(http_flow.main, {"base_url": tls_backend.url, "ca_path": str(pki.ca), "steps": steps})
    assert result.rc == 0, result["msg"]
    untrusted = run_module(http_flow.main, {"base_url": tls_backend.url, "steps": steps, "timeout": 5})
    assert untrusted.rc == 1
    assert "set ca_path to the CA bundle" in untrusted["msg"]
