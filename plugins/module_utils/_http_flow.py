# Copyright (c) ablage.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Steps of the ablage.ops.http_flow module: validation, ``{name}`` placeholders, bodies, redirects, checks.

PRIVATE: this file is an implementation detail of the ablage.ops collection.
It is not a public API and may change or disappear in any release.

A flow is validated as a whole before its first request (:func:`parse_steps`), so a typo in step 7 fails
before step 1 has uploaded anything. Requests go through :func:`send`, that is
:meth:`~._http.HttpClient.request` with a raw body (JSON, url-encoded form or multipart): ``Authorization``
goes only to the origin (scheme, host, port) of the step's own URL, never to another host a redirect
points at.
"""

from __future__ import annotations

import json
import mimetypes
import os
import re
import typing as t
import urllib.error
import urllib.parse
import uuid

from ansible.module_utils.common.text.converters import to_bytes
from ansible.module_utils.common.validation import check_type_bool, check_type_float, check_type_int

from ansible_collections.ablage.ops.plugins.module_utils._http import (
    HttpClient,
    HttpResponse,
    json_at,
    json_subset_mismatch,
)

PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
NO_BODY_METHODS = ("GET", "HEAD", "OPTIONS")
MAX_UNTIL_TIMEOUT = 3600.0
DEFAULT_UNTIL_TIMEOUT = 60.0
DEFAULT_UNTIL_DELAY = 1.0
EXCERPT_CHARS = 200
HIDDEN = "********"
ACCEPT = "application/json, text/plain;q=0.9, */*;q=0.8"

STEP_KEYS = (
    "name",
    "method",
    "path",
    "auth",
    "headers",
    "json",
    "form",
    "file",
    "file_field",
    "file_mime_type",
    "status_code",
    "capture",
    "capture_secret",
    "expect_json",
    "expect_json_regex",
    "expect_content",
    "until",
    "timeout",
    "delay",
)

_UNSET: t.Any = object()


class FlowError(Exception):
    """The step list (or the values it refers to) cannot run; the message names the step and the fix."""


class Step:
    """One validated step; templates still hold their ``{name}`` placeholders."""

    def __init__(self, index: int, name: str) -> None:
        self.index = index
        self.name = name
        self.method = "GET"
        self.path = ""
        self.auth: str | None = None
        self.headers: dict[str, str] = {}
        self.json: t.Any = _UNSET
        self.form: dict[str, t.Any] | None = None
        self.file: str | None = None
        self.file_field = "file"
        self.file_mime_type: str | None = None
        self.status_code: list[int] = [200]
        self.capture: dict[str, str] = {}
        self.capture_secret = False
        self.expect_json: dict[str, t.Any] = {}
        self.expect_json_regex: dict[str, str] = {}
        self.expect_content: str | None = None
        self.until: dict[str, list[t.Any]] = {}
        self.timeout = DEFAULT_UNTIL_TIMEOUT
        self.delay = DEFAULT_UNTIL_DELAY

    @property
    def has_json(self) -> bool:
        return self.json is not _UNSET

    def label(self) -> str:
        return f"step {self.index + 1} ({self.name!r})"


# --------------------------------------------------------------------------- placeholders


def placeholders(value: t.Any) -> list[str]:
    """Names of the ``{name}`` placeholders in the strings of ``value`` (recursively, dict values only)."""
    found: list[str] = []
    if isinstance(value, str):
        found.extend(PLACEHOLDER.findall(value))
    elif isinstance(value, dict):
        for item in value.values():
            found.extend(placeholders(item))
    elif isinstance(value, list):
        for item in value:
            found.extend(placeholders(item))
    return found


def as_text(value: t.Any) -> str:
    """A value as it is put into text: strings as they are, anything else as JSON (``5``, ``true``, ``null``)."""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def render_text(template: str, values: t.Mapping[str, t.Any], quote: t.Callable[[str], str] | None = None) -> str:
    """Replace every ``{name}`` in ``template``; ``quote`` (re.escape, URL quoting) is applied to each value."""

    def replace(match: re.Match[str]) -> str:
        text = as_text(values[match.group(1)])
        return quote(text) if quote else text

    return PLACEHOLDER.sub(replace, template)


def render_json(value: t.Any, values: t.Mapping[str, t.Any]) -> t.Any:
    """Substitute placeholders in the strings of a JSON value; a string that is exactly ``{name}`` keeps the type."""
    if isinstance(value, str):
        whole = PLACEHOLDER.fullmatch(value)
        if whole:
            return values[whole.group(1)]
        return render_text(value, values)
    if isinstance(value, dict):
        return {key: render_json(item, values) for key, item in value.items()}
    if isinstance(value, list):
        return [render_json(item, values) for item in value]
    return value


def render_path(path: str, values: t.Mapping[str, t.Any]) -> str:
    """A step's path with its placeholders replaced.

    A path that is exactly one placeholder takes the value as it is (a URL from an earlier answer); anywhere
    else values are percent-encoded, so an ID with ``/``, ``?`` or spaces stays one path segment or query value.
    """
    whole = PLACEHOLDER.fullmatch(path)
    if whole:
        return as_text(values[whole.group(1)])
    return render_text(path, values, lambda text: urllib.parse.quote(text, safe=""))


def render_regex(template: str, values: t.Mapping[str, t.Any]) -> str:
    """A regex with placeholders replaced by the escaped values (they match literally)."""
    return render_text(template, values, re.escape)


# --------------------------------------------------------------------------- validation


def _key_path(path: str) -> str:
    """A JSON path as shown in messages: ``$`` or ``$.data.items.0``."""
    inner = path.strip().lstrip("$").lstrip(".")
    return f"$.{inner}" if inner else "$"


class _StepParser:
    """Checks one raw step dict; collects every problem instead of stopping at the first."""

    def __init__(self, index: int, raw: t.Any, problems: list[str]) -> None:
        self.index = index
        self.raw = raw
        self.problems = problems
        name = raw.get("name") if isinstance(raw, dict) else None
        self.step = Step(index, name if isinstance(name, str) and name.strip() else f"#{index + 1}")

    def problem(self, text: str) -> None:
        self.problems.append(f"{self.step.label()}: {text}")

    def text(self, key: str, value: t.Any) -> str | None:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        self.problem(f"{key} must be a string, got {type(value).__name__}")
        return None

    def mapping(self, key: str, value: t.Any) -> dict[str, t.Any] | None:
        if isinstance(value, dict):
            return {str(k): v for k, v in value.items()}
        self.problem(f"{key} must be a dict, got {type(value).__name__}")
        return None

    def regex(self, key: str, template: str) -> None:
        # Placeholders become escaped values at run time, so the template compiles iff it compiles with any value.
        try:
            re.compile(render_regex(template, _AnyValue()))
        except re.error as exc:
            self.problem(f"{key} {template!r} is not a valid regular expression: {exc}")

    def number(self, key: str, value: t.Any, low: float, high: float, low_open: bool) -> float | None:
        try:
            number = float(check_type_float(value))
        except TypeError:
            self.problem(f"{key} must be a number of seconds, got {value!r}")
            return None
        if number > high or number < low or (low_open and number == low):
            bound = f"more than {low:g}" if low_open else f"at least {low:g}"
            self.problem(f"{key} must be {bound} and at most {high:g} seconds, got {number:g}")
            return None
        return number

    def parse(self) -> Step:
        raw, step = self.raw, self.step
        if not isinstance(raw, dict):
            self.problem(f"must be a dict with at least name and path, got {type(raw).__name__}")
            return step
        unknown = sorted(str(key) for key in raw if key not in STEP_KEYS)
        if unknown:
            self.problem(f"unknown key(s) {', '.join(unknown)}; known keys are {', '.join(STEP_KEYS)}")
        given = {key: value for key, value in raw.items() if key in STEP_KEYS and value is not None}
        if not isinstance(given.get("name"), str) or not given["name"].strip():
            self.problem("name is required (a non-empty string that names the step in results and errors)")
        if "path" not in given:
            self.problem("path is required (a path relative to base_url, or an absolute URL)")
        else:
            step.path = self.text("path", given["path"]) or ""
        if "method" in given:
            method = str(given["method"]).upper()
            if method not in METHODS:
                self.problem(f"method {given['method']!r} is not one of {', '.join(METHODS)}")
            step.method = method
        if "auth" in given:
            auth = self.text("auth", given["auth"])
            step.auth = auth
        if "headers" in given:
            headers = self.mapping("headers", given["headers"]) or {}
            for key, value in headers.items():
                if key.lower() == "authorization":
                    self.problem("headers must not set Authorization; name the token in auth instead")
                    continue
                text = self.text(f"headers.{key}", value)
                if text is not None:
                    step.headers[key] = text
        if "json" in given:
            step.json = given["json"]
        if "form" in given:
            form = self.mapping("form", given["form"])
            if form is not None:
                for key, value in form.items():
                    self.text(f"form.{key}", value)
                step.form = form
        self._parse_file(given)
        self._parse_expectations(given)
        self._parse_until(given)
        bodies = [key for key in ("json", "form", "file") if key in given]
        if "json" in given and len(bodies) > 1:
            self.problem(f"json cannot be combined with {' and '.join(bodies[1:])}; choose one body")
        if bodies and step.method in NO_BODY_METHODS:
            self.problem(f"a {step.method} request carries no body ({', '.join(bodies)}); set method: POST (or PUT)")
        return step

    def _parse_file(self, given: dict[str, t.Any]) -> None:
        step = self.step
        if "file" in given:
            path = self.text("file", given["file"])
            step.file = os.path.expanduser(path) if path else None
        for key in ("file_field", "file_mime_type"):
            if key not in given:
                continue
            if "file" not in given:
                self.problem(f"{key} is only used with file; add file (a path on the managed host) or drop {key}")
            value = self.text(key, given[key])
            if value is not None:
                setattr(step, key, value)

    def _parse_expectations(self, given: dict[str, t.Any]) -> None:
        step = self.step
        if "status_code" in given:
            codes = given["status_code"] if isinstance(given["status_code"], list) else [given["status_code"]]
            try:
                step.status_code = [int(check_type_int(code)) for code in codes if not isinstance(code, bool)]
            except TypeError:
                step.status_code = []
            if not step.status_code or len(step.status_code) != len(codes):
                self.problem(f"status_code must be a list of HTTP status codes such as [200, 201], got {codes!r}")
        if "capture" in given:
            for var, path in (self.mapping("capture", given["capture"]) or {}).items():
                if not NAME.match(var):
                    self.problem(f"capture name {var!r} is not a valid name (letters, digits, _; not first a digit)")
                if self.text(f"capture.{var}", path) is not None:
                    step.capture[var] = str(path)
        if "capture_secret" in given:
            try:
                step.capture_secret = bool(check_type_bool(given["capture_secret"]))
            except TypeError:
                self.problem(f"capture_secret must be true or false, got {given['capture_secret']!r}")
            if not step.capture:
                self.problem("capture_secret is set but the step captures nothing; add capture or drop capture_secret")
        if "expect_json" in given:
            step.expect_json = self.mapping("expect_json", given["expect_json"]) or {}
        if "expect_json_regex" in given:
            for path, regex in (self.mapping("expect_json_regex", given["expect_json_regex"]) or {}).items():
                text = self.text(f"expect_json_regex.{path}", regex)
                if text is not None:
                    self.regex(f"expect_json_regex.{path}", text)
                    step.expect_json_regex[path] = text
        if "expect_content" in given:
            text = self.text("expect_content", given["expect_content"])
            if text is not None:
                self.regex("expect_content", text)
                step.expect_content = text

    def _parse_until(self, given: dict[str, t.Any]) -> None:
        step = self.step
        if "until" in given:
            for path, accepted in (self.mapping("until", given["until"]) or {}).items():
                step.until[path] = accepted if isinstance(accepted, list) else [accepted]
                if not step.until[path]:
                    self.problem(f"until.{path} lists no accepted value; give at least one, e.g. [completed, failed]")
            if not step.until:
                self.problem("until is empty; give JSON path -> accepted values, e.g. {status: [completed, failed]}")
        for key, low, low_open in (("timeout", 0.0, True), ("delay", 0.0, False)):
            if key not in given:
                continue
            if "until" not in given:
                self.problem(f"{key} is only used with until (how long and how often to repeat); drop it or add until")
                continue
            number = self.number(key, given[key], low, MAX_UNTIL_TIMEOUT, low_open)
            if number is not None:
                setattr(step, key, number)


class _AnyValue(dict):  # type: ignore[type-arg]
    """Stands in for run-time values when checking a regex template: every name maps to a plain word."""

    def __missing__(self, key: str) -> str:
        return "x"


def _step_placeholders(step: Step) -> list[tuple[str, str]]:
    """(where, name) of every placeholder a step's request and checks use."""
    where: list[tuple[str, t.Any]] = [("path", step.path), ("headers", step.headers)]
    if step.has_json:
        where.append(("json", step.json))
    where += [
        ("form", step.form),
        ("expect_json", step.expect_json),
        ("expect_json_regex", step.expect_json_regex),
        ("expect_content", step.expect_content),
        ("until", step.until),
    ]
    return [(key, name) for key, value in where for name in placeholders(value)]


def parse_steps(raw_steps: t.Any, given: t.Mapping[str, bool]) -> list[Step]:
    """Validate the whole step list before anything is sent.

    ``given`` maps the names known up front (tokens and variables) to whether they are secret. Raises
    :class:`FlowError` listing every problem, each naming its step and the fix.
    """
    problems: list[str] = []
    if not isinstance(raw_steps, list) or not raw_steps:
        raise FlowError("steps must be a non-empty list of dicts (each with at least name and path)")
    parsed = [_StepParser(index, raw, problems) for index, raw in enumerate(raw_steps)]
    steps = [parser.parse() for parser in parsed]
    known = dict(given)  # name -> secret, growing with the captures of the steps so far
    captured_by: dict[str, Step] = {}
    for step in steps:
        for other in steps:
            if other.index < step.index and other.name == step.name:
                problems.append(f"{step.label()}: the name is used by step {other.index + 1} too; names must be unique")
                break
        for key, var in _step_placeholders(step):
            if var in known:
                continue
            later = next((s for s in steps if s.index >= step.index and var in s.capture), None)
            if later is step:
                fix = "a step's captures are available from the next step on; split the step"
            elif later is not None:
                fix = f"it is captured by the later {later.label()}; reorder the steps"
            else:
                fix = "define it in variables or secret_variables, or capture it in an earlier step"
            problems.append(f"{step.label()}: {key} uses {{{var}}}, which is not defined: {fix}")
        if step.auth is not None:
            if step.auth not in known:
                problems.append(
                    f"{step.label()}: auth {step.auth!r} is not defined: name a key of tokens or secret_variables, "
                    "or the capture of an earlier step with capture_secret: true"
                )
            elif not known[step.auth]:
                problems.append(
                    f"{step.label()}: auth {step.auth!r} is not secret, so the token would be returned in plain "
                    "text: pass it in tokens or secret_variables, or capture it with capture_secret: true"
                )
        for var in step.capture:
            if var in captured_by:
                problems.append(
                    f"{step.label()}: capture {var!r} is captured by {captured_by[var].label()} already; "
                    "use another name"
                )
            elif var in given:
                problems.append(
                    f"{step.label()}: capture {var!r} would replace the given token or variable of that name; "
                    "use another name"
                )
            captured_by.setdefault(var, step)
            known.setdefault(var, step.capture_secret)
    if problems:
        raise FlowError(
            f"the step list cannot run ({len(problems)} problem(s), nothing was sent): " + "; ".join(problems)
        )
    return steps


def check_names(groups: t.Mapping[str, t.Mapping[str, t.Any]]) -> dict[str, bool]:
    """The names given up front by tokens/variables/secret_variables, mapped to whether they are secret."""
    names: dict[str, bool] = {}
    where: dict[str, str] = {}
    problems: list[str] = []
    for option, values in groups.items():
        for name in values:
            if not NAME.match(str(name)):
                problems.append(f"{option}: {name!r} is not a valid name (letters, digits, _; not first a digit)")
            elif name in where:
                problems.append(f"{name!r} is given in both {where[name]} and {option}; use one")
            else:
                where[name] = option
                names[name] = option != "variables"
    if problems:
        raise FlowError("; ".join(problems))
    return names


# --------------------------------------------------------------------------- requests


def multipart_body(
    fields: t.Mapping[str, str], file_field: str, filename: str, mime_type: str, data: bytes
) -> tuple[bytes, str]:
    """A multipart/form-data body carrying ``data`` as raw bytes (no base64): (body, Content-Type)."""
    boundary = f"ablage-{uuid.uuid4().hex}"
    while boundary.encode() in data:  # pragma: no cover - a 128-bit random boundary inside the file
        boundary = f"ablage-{uuid.uuid4().hex}"

    def quoted(text: str) -> str:
        # As browsers do (WHATWG): quote, CR and LF are percent-encoded in names and filenames.
        return text.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")

    parts: list[bytes] = []
    for key, value in fields.items():
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{quoted(key)}"\r\n\r\n'
        parts.append(to_bytes(head) + to_bytes(value) + b"\r\n")
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="{quoted(file_field)}"; '
        f'filename="{quoted(filename)}"\r\nContent-Type: {mime_type}\r\n\r\n'
    )
    parts.append(to_bytes(head) + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def request_body(step: Step, values: t.Mapping[str, t.Any]) -> tuple[bytes | None, dict[str, str]]:
    """The body and its headers of a step's request, placeholders replaced."""
    form = {key: as_text(render_json(value, values)) for key, value in (step.form or {}).items()}
    if step.file is not None:
        with open(step.file, "rb") as handle:
            data = handle.read()
        mime = step.file_mime_type or mimetypes.guess_type(step.file)[0] or "application/octet-stream"
        body, content_type = multipart_body(form, step.file_field, os.path.basename(step.file), mime, data)
        return body, {"Content-Type": content_type}
    if step.form is not None:
        return urllib.parse.urlencode(form).encode(), {"Content-Type": "application/x-www-form-urlencoded"}
    if step.has_json:
        body = json.dumps(render_json(step.json, values)).encode()
        return body, {"Content-Type": "application/json"}
    return None, {}


def send(
    client: HttpClient,
    method: str,
    url: str,
    body: bytes | None = None,
    headers: t.Mapping[str, str] | None = None,
    authorization: str | None = None,
    timeout: float | None = None,
) -> HttpResponse:
    """One step's request through :meth:`HttpClient.request`, which follows GET/HEAD redirects and sends
    ``authorization`` (the whole header value) only to the origin of ``url``."""
    send_headers = {"Accept": ACCEPT, **(headers or {})}
    if authorization:
        send_headers["Authorization"] = authorization
    return client.request(method, url, headers=send_headers, timeout=timeout, data=body)


# --------------------------------------------------------------------------- answers


def excerpt(response: HttpResponse) -> str:
    """The start of the body, at most EXCERPT_CHARS characters."""
    text = response.text.strip()
    return text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 3] + "..."


def _short(value: t.Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def until_problem(step: Step, response: HttpResponse, values: t.Mapping[str, t.Any]) -> str | None:
    """Why the answer does not end the step's ``until`` loop yet; None when it does."""
    is_json, document = response.json_or_none()
    if not is_json:
        return "the answer is not JSON"
    for path, accepted in step.until.items():
        found, actual = json_at(path, document)
        wanted = [render_json(value, values) for value in accepted]
        if not found:
            return f"{_key_path(path)} is missing (waiting for one of {_short(wanted)})"
        if not any(json_subset_mismatch(value, actual) is None for value in wanted):
            return f"{_key_path(path)} is {_short(actual)}, waiting for one of {_short(wanted)}"
    return None


def expectation_problem(step: Step, response: HttpResponse, values: t.Mapping[str, t.Any]) -> str | None:
    """The first of expect_json, expect_json_regex, expect_content that the answer does not meet; None if all."""
    if step.expect_json or step.expect_json_regex:
        is_json, document = response.json_or_none()
        if not is_json:
            return "expect_json: the answer is not JSON"
        for path, expected in step.expect_json.items():
            found, actual = json_at(path, document)
            wanted = render_json(expected, values)
            if not found:
                return f"expect_json: {_key_path(path)} is missing (expected {_short(wanted)})"
            mismatch = json_subset_mismatch(wanted, actual, _key_path(path))
            if mismatch:
                return f"expect_json: {mismatch}"
        for path, template in step.expect_json_regex.items():
            found, actual = json_at(path, document)
            if not found:
                return f"expect_json_regex: {_key_path(path)} is missing (expected to match {template!r})"
            if not re.search(render_regex(template, values), as_text(actual)):
                return f"expect_json_regex: {_key_path(path)} is {_short(actual)}, which does not match {template!r}"
    if step.expect_content is not None and not re.search(render_regex(step.expect_content, values), response.text):
        return f"expect_content: the body does not match {step.expect_content!r}"
    return None


def captures(step: Step, response: HttpResponse) -> tuple[dict[str, t.Any], str | None]:
    """The values a step captures from its answer: (values, problem or None)."""
    if not step.capture:
        return {}, None
    is_json, document = response.json_or_none()
    if not is_json:
        return {}, f"capture: the answer is not JSON, so {', '.join(sorted(step.capture))} cannot be captured"
    found_values: dict[str, t.Any] = {}
    for var, path in step.capture.items():
        found, value = json_at(path, document)
        if not found:
            return found_values, f"capture {var}: nothing at {_key_path(path)}"
        found_values[var] = value
    return found_values, None


def json_shape(response: HttpResponse) -> str:
    """What a hidden body looked like, without its values: its top-level JSON keys or its type."""
    is_json, document = response.json_or_none()
    if not is_json:
        return f"a non-JSON body of {len(response.body)} bytes"
    if isinstance(document, dict):
        return f"a JSON object with the keys {', '.join(sorted(map(str, document))) or '(none)'}"
    return f"a JSON {type(document).__name__}"
