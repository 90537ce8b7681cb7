"""_http_flow: placeholders, step validation, bodies and answer checks, without a server."""

from __future__ import annotations

import json
import typing as t

import pytest

from ansible_collections.ablage.ops.plugins.module_utils import _http_flow as flow
from ansible_collections.ablage.ops.plugins.module_utils._http import HttpResponse, origin

VALUES: dict[str, t.Any] = {"doc": "a/b c?d", "n": 5, "flag": True, "items": [1, "x"], "text": "1.5 (ok)"}


def response(body: t.Any, status: int = 200) -> HttpResponse:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return HttpResponse("GET", "http://h/x", status, {}, data, 1.0)


def step(**raw: t.Any) -> flow.Step:
    (parsed,) = flow.parse_steps([{"name": "s", "path": "/x", **raw}], dict.fromkeys(VALUES, False))
    return parsed


def test_placeholders_are_names_in_braces_only() -> None:
    assert flow.placeholders({"a": ["{doc}", {"b": "x{n}y{flag}"}], "c": 1}) == ["doc", "n", "flag"]
    # regex quantifiers and JSON-looking text are not placeholders
    assert flow.placeholders(r"\d{3}x{2,5} {} {1abc} {a-b}") == []


def test_render_json_keeps_the_type_of_a_whole_placeholder() -> None:
    body = {"id": "{n}", "ids": ["{items}", "{flag}"], "label": "doc {n} is {flag}", "k": None}
    assert flow.render_json(body, VALUES) == {"id": 5, "ids": [[1, "x"], True], "label": "doc 5 is true", "k": None}


def test_render_path_percent_encodes_values_unless_the_path_is_one_placeholder() -> None:
    assert flow.render_path("/api/{doc}/export?n={n}", VALUES) == "/api/a%2Fb%20c%3Fd/export?n=5"
    assert flow.render_path("{doc}", VALUES) == "a/b c?d"


def test_render_regex_escapes_values() -> None:
    regex = flow.render_regex(r"^\s*{text}$", VALUES)
    assert regex == r"^\s*1\.5\ \(ok\)$"


def test_multipart_body_is_raw_bytes() -> None:
    data = b"\x00\xff\r\n--x\n"
    body, content_type = flow.multipart_body({"note": "hi"}, "file", 'we"ird\n.pdf', "application/pdf", data)
    boundary = content_type.split("boundary=", 1)[1]
    assert content_type.startswith("multipart/form-data; boundary=ablage-")
    assert body.startswith(f'--{boundary}\r\nContent-Disposition: form-data; name="note"\r\n\r\nhi\r\n'.encode())
    assert b'filename="we%22ird%0A.pdf"\r\nContent-Type: application/pdf\r\n\r\n' + data + b"\r\n" in body
    assert body.endswith(f"--{boundary}--\r\n".encode())


def test_origin_fills_in_default_ports() -> None:
    assert origin("http://Example.com/x") == origin("http://example.com:80/y")
    assert origin("https://example.com/") != origin("http://example.com/")
    assert origin("http://127.0.0.1:8000/") != origin("http://127.0.0.2:8000/")


def test_parse_defaults() -> None:
    parsed = step()
    assert (parsed.method, parsed.status_code, parsed.auth, parsed.has_json) == ("GET", [200], None, False)
    assert (parsed.timeout, parsed.delay) == (60.0, 1.0)
    coerced = step(method="post", status_code="201", json=None, until={"state": "done"}, timeout="5")
    assert (coerced.method, coerced.status_code, coerced.has_json) == ("POST", [201], False)
    assert coerced.until == {"state": ["done"]}
    assert coerced.timeout == 5.0


def test_steps_must_be_a_list() -> None:
    with pytest.raises(flow.FlowError, match="steps must be a non-empty list"):
        flow.parse_steps([], {})
    with pytest.raises(flow.FlowError, match=r"step 1 \('#1'\): must be a dict"):
        flow.parse_steps(["GET /"], {})


def test_check_names() -> None:
    names = flow.check_names({"tokens": {"admin": "t"}, "variables": {"user": "u"}, "secret_variables": {"pw": "p"}})
    assert names == {"admin": True, "user": False, "pw": True}
    with pytest.raises(flow.FlowError, match="'1x' is not a valid name"):
        flow.check_names({"variables": {"1x": "u"}})


def test_request_body_kinds(tmp_path: t.Any) -> None:
    assert flow.request_body(step(), VALUES) == (None, {})
    body, headers = flow.request_body(step(method="POST", json={"n": "{n}"}), VALUES)
    assert (json.loads(body or b""), headers) == ({"n": 5}, {"Content-Type": "application/json"})
    body, headers = flow.request_body(step(method="POST", form={"q": "{doc}", "n": "{n}"}), VALUES)
    assert body == b"q=a%2Fb+c%3Fd&n=5"
    assert headers == {"Content-Type": "application/x-www-form-urlencoded"}
    upload = tmp_path / "scan.png"
    upload.write_bytes(b"\x89PNG")
    body, headers = flow.request_body(step(method="POST", file=str(upload), form={"n": "{n}"}), VALUES)
    assert b'name="file"; filename="scan.png"\r\nContent-Type: image/png\r\n\r\n\x89PNG\r\n' in (body or b"")
    assert b'name="n"\r\n\r\n5\r\n' in (body or b"")


def test_until_problem() -> None:
    waiting = step(until={"job.state": ["done", "failed"]})
    assert flow.until_problem(waiting, response({"job": {"state": "done"}}), VALUES) is None
    assert flow.until_problem(waiting, response({"job": {"state": "busy"}}), VALUES) == (
        '$.job.state is "busy", waiting for one of ["done", "failed"]'
    )
    assert flow.until_problem(waiting, response({}), VALUES) == (
        '$.job.state is missing (waiting for one of ["done", "failed"])'
    )
    assert flow.until_problem(waiting, response(b"<html>"), VALUES) == "the answer is not JSON"


def test_expectation_problem() -> None:
    checks = step(expect_json={"n": "{n}", "items": [{"id": 2}]}, expect_json_regex={"text": "^{text}$"})
    good = {"n": 5, "items": [{"id": 1}, {"id": 2, "x": 0}], "text": "1.5 (ok)"}
    assert flow.expectation_problem(checks, response(good), VALUES) is None
    assert flow.expectation_problem(checks, response({**good, "n": "5"}), VALUES) == (
        'expect_json: $.n: expected 5, got "5"'
    )
    assert flow.expectation_problem(checks, response({**good, "text": "1x5 (ok)"}), VALUES) == (
        "expect_json_regex: $.text is \"1x5 (ok)\", which does not match '^{text}$'"
    )
    assert flow.expectation_problem(checks, response({"items": []}), VALUES) == (
        "expect_json: $.n is missing (expected 5)"
    )
    assert flow.expectation_problem(checks, response(b"plain"), VALUES) == "expect_json: the answer is not JSON"


def test_captures_and_shapes() -> None:
    capturing = step(capture={"first": "data.items.0.id", "all": "$"})
    body = {"data": {"items": [{"id": 7}]}}
    assert flow.captures(capturing, response(body)) == ({"first": 7, "all": body}, None)
    assert (
        flow.captures(capturing, response({"data": {"items": []}}))[1] == "capture first: nothing at $.data.items.0.id"
    )
    assert (
        flow.captures(capturing, response(b"x"))[1]
        == "capture: the answer is not JSON, so all, first cannot be captured"
    )
    assert flow.json_shape(response({"b": 1, "a": 2})) == "a JSON object with the keys a, b"
    assert flow.json_shape(response([1])) == "a JSON list"
    assert flow.json_shape(response(b"secret")) == "a non-JSON body of 6 bytes"


def test_excerpt_is_at_most_200_characters() -> None:
    assert flow.excerpt(response(b"  short \n")) == "short"
    long = flow.excerpt(response(b"x" * 500))
    assert len(long) == 200
    assert long.endswith("...")
