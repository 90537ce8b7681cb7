#!/usr/bin/python
# Copyright (c) ablage.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: http_flow
short_description: Run an ordered list of HTTP steps where later steps use values captured from earlier answers
version_added: 0.1.0
description:
  - A smoke test as data. Runs O(steps) one after another against O(base_url); each step sends one request (or
    repeats it until an answer says a job is done), checks the answer's status, JSON and body, and captures values
    from its JSON for the steps after it, such as a document ID from an upload or an access token from a login.
  - 'Everything about the answers is data: which status codes count, which JSON fields hold what, what the body
    must match. So another build of the application (HTTP 200 instead of 201 on upload, a JSON instead of a text
    export, other field names) needs another step list, not other code.'
  - 'C({name}) in a step''s O(steps[].path), O(steps[].headers), O(steps[].json), O(steps[].form) and in its
    checks is replaced by the value of that name: a key of O(variables), O(secret_variables) or O(tokens), or a
    value an earlier step captured. Only a letter or V(_) followed by letters, digits and V(_) in braces is a
    placeholder, so regex quantifiers such as C(\d{3}) stay as they are.'
  - The whole step list is checked before the first request is sent. Unknown keys, wrong types, invalid regular
    expressions, a placeholder that no given value or earlier capture defines, and O(steps[].auth) naming a value
    that is not secret all fail the module with every problem listed, each naming its step and the fix.
  - The first step that does not pass fails the module. The message names the step, what was expected (status
    codes, JSON path and value, regular expression) and what came (status and the start of the body); RV(steps)
    still holds the results of the steps that ran.
  - Replaces a chain of M(ansible.builtin.uri) tasks with C(register), C(until) loops and M(ansible.builtin.assert)s
    (the smoke test of the Ablage-System deployment checklist, from login to admin panel) with one task and one
    module start.
author:
  - ablage.ops maintainers (@ablage-system)
extends_documentation_fragment:
  - ablage.ops._attributes
  - ablage.ops._http
attributes:
  check_mode:
    support: full
    details:
      - Validates the step list and sends no request at all; RV(steps) lists the planned steps with the
        placeholders of their URLs unresolved.
  diff_mode:
    support: none
  idempotent:
    support: full
    details:
      - RV(ignore:changed) is always V(false). A flow usually writes test data (a smoke user's document, an OCR
        job), but that is not a change to the system's configuration, and the roles use the module as a check.
        Run it again and it writes the same kind of test data again.
options:
  base_url:
    description:
      - Base URL that relative O(steps[].path) values are appended to, for example V(http://127.0.0.1:8000).
      - The base URL's own path is kept (V(http://h/app) + V(/api/v1/health) is V(http://h/app/api/v1/health)).
    type: str
    required: true
  tokens:
    description:
      - 'Bearer tokens given up front, by name, for O(steps[].auth); for example C({admin: "{{ ablage_admin_token }}"}).'
      - Not logged; every token is masked wherever it would appear in the output.
    type: dict
    default: {}
  variables:
    description:
      - Values by name for C({name}) placeholders, for example a username, an expected text or a document's path.
      - These values are returned in messages and results as they are; pass passwords in O(secret_variables).
    type: dict
    default: {}
  secret_variables:
    description:
      - Like O(variables), for values that must not be shown, such as the smoke user's password.
      - Not logged; every value is masked wherever it would appear in the output.
    type: dict
    default: {}
  steps:
    description:
      - The requests, in order. Each step is a dict with the keys below; any other key fails the module before
        anything is sent.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Name of the step in RV(steps) and in error messages; unique within the flow.
        type: str
        required: true
      method:
        description: HTTP method.
        type: str
        choices: [GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS]
        default: GET
      path:
        description:
          - Path relative to O(base_url), or an absolute URL; may hold C({name}) placeholders.
          - Values put into a path are percent-encoded, so an ID stays one path segment or query value. A path that
            is exactly one placeholder (C({next_url})) takes the value as it is, for URLs from an earlier answer.
        type: str
        required: true
      auth:
        description:
          - 'Name of the bearer token to send as C(Authorization: Bearer ...): a key of O(tokens) or
            O(secret_variables), or a value captured by an earlier step with O(steps[].capture_secret=true).'
          - Omitted, the step sends no C(Authorization) header.
          - The header goes only to the scheme, host and port of the step's own URL. A redirect to another host
            is followed without it.
        type: str
      headers:
        description:
          - Extra request headers; values may hold placeholders. C(Accept) defaults to JSON, then text, then
            anything.
          - C(Authorization) is not allowed here; use O(steps[].auth).
        type: dict
      json:
        description:
          - Body sent as JSON. Placeholders in strings are replaced, recursively; a string that is exactly one
            placeholder (C("{document_id}")) is replaced by the value with its type (number, list, ...).
          - Mutually exclusive with O(steps[].form) and O(steps[].file).
        type: raw
      form:
        description:
          - Fields sent URL-encoded (C(application/x-www-form-urlencoded)); values may hold placeholders.
          - With O(steps[].file), the fields go into the C(multipart/form-data) body next to the file.
        type: dict
      file:
        description:
          - Path of a file on the managed host, uploaded as a C(multipart/form-data) part with its raw bytes (no
            base64). Must exist and be readable before the first step runs.
        type: path
      file_field:
        description: Form field name of the O(steps[].file) part.
        type: str
        default: file
      file_mime_type:
        description: Content type of the O(steps[].file) part; guessed from the file name when omitted.
        type: str
      status_code:
        description: Status codes that count as success.
        type: list
        elements: int
        default: [200]
      capture:
        description:
          - 'Values to take from the JSON answer, as C(name: JSON path); the names are placeholders of the later
            steps.'
          - 'Paths are dotted, with list indexes as integers: V(id), V(data.items.0.id); V($) is the whole answer.'
          - A path with nothing there fails the step.
        type: dict
      capture_secret:
        description:
          - The captured values are secrets (an access token from a login). They are masked wherever they would
            appear in the output, RV(steps[].captured) shows their names only, and the step's body excerpt is not
            returned.
          - O(steps[].auth) may only name secret values, so capture a token with this set.
        type: bool
        default: false
      expect_json:
        description:
          - 'C(JSON path: expected value) pairs the answer must hold. Objects match when every expected key matches
            (extra keys are fine), lists when every expected item matches some item, anything else must be equal.
            Placeholders are replaced as in O(steps[].json).'
        type: dict
      expect_json_regex:
        description:
          - 'C(JSON path: regular expression) pairs; the value at the path (as text, non-strings as JSON) must match
            (Python C(re.search)). A placeholder is replaced by its value escaped, so it matches literally.'
          - 'For example C({text: "^\\s*{expected_text}\\s*$"}) compares a text with surrounding whitespace ignored.'
        type: dict
      expect_content:
        description:
          - Regular expression the body must match (Python C(re.search)); placeholders are replaced by their
            values escaped, as in O(steps[].expect_json_regex).
        type: str
      until:
        description:
          - 'Repeat the step until its answer holds one of the accepted values at each JSON path, as C(JSON path:
            [accepted values]); for example C({status: [completed, failed]}) polls a job until it finished either
            way (check the outcome with O(steps[].expect_json)).'
          - Values match as in O(steps[].expect_json). While waiting, connection errors and status codes 408, 429
            and 5xx are retried too; any other status not in O(steps[].status_code) fails at once.
          - The checks and captures of the step apply to the answer that ended the wait.
        type: dict
      timeout:
        description:
          - With O(steps[].until), seconds after which no new attempt starts (at most 3600); the step then fails
            with the last answer. O(timeout) still bounds each single request.
        type: float
        default: 60.0
      delay:
        description: With O(steps[].until), seconds between two attempts.
        type: float
        default: 1.0
notes:
  - Tokens, secret variables and secret captures are never logged nor returned; URLs in the results have them
    masked when a path holds one.
  - Redirects are followed for C(GET) and C(HEAD) only (at most 5), like C(follow_redirects=safe) of
    M(ansible.builtin.uri); other methods get the 3xx answer, which fails unless O(steps[].status_code) lists it.
seealso:
  - module: ansible.builtin.uri
  - module: ablage.ops.health_probe
"""

EXAMPLES = r"""
- name: "Checklist 6. Smoke test: login, upload, OCR, export, admin panel"
  ablage.ops.http_flow:
    base_url: http://127.0.0.1:8000
    tokens:
      admin: "{{ ablage_admin_token }}"
    variables:
      smoke_username: smoke
      expected_text: Ablage-System smoke test 4711
    secret_variables:
      smoke_password: "{{ ablage_smoke_password }}"
    steps:
      - name: login
        method: POST
        path: /api/v1/auth/login
        json: {username: "{smoke_username}", password: "{smoke_password}"}
        capture: {user_token: access_token}
        capture_secret: true
      - name: upload
        method: POST
        path: /api/v1/documents/
        auth: user_token
        file: /tmp/smoke-document.pdf
        file_mime_type: application/pdf
        status_code: [201]
        capture: {document_id: id}
      - name: ocr
        method: POST
        path: /api/v1/ocr/process
        auth: user_token
        json: {document_id: "{document_id}", backend: auto}
        status_code: [200, 202]
        capture: {job_id: job_id}
      - name: ocr job finished
        path: /api/v1/ocr/jobs/{job_id}
        auth: user_token
        until: {status: [completed, failed]}
        timeout: 120
        expect_json: {status: completed}
        expect_json_regex: {text: '^\s*{expected_text}\s*$'}
      - name: export
        path: /api/v1/documents/{document_id}/export?format=txt
        auth: user_token
        expect_content: '^\s*{expected_text}\s*$'
      - name: admin panel
        path: /admin
        auth: admin
        expect_content: Admin
  register: __verify_smoke

- name: Another build answers 200 on upload and exports JSON
  ablage.ops.http_flow:
    base_url: https://ablage.example.com
    ca_path: /etc/ssl/certs/ablage-ca.pem
    tokens:
      user: "{{ ablage_user_token }}"
    variables:
      expected_text: Ablage-System smoke test 4711
    steps:
      - name: upload
        method: POST
        path: /api/v1/documents
        auth: user
        file: /tmp/smoke-document.pdf
        file_field: upload
        status_code: [200, 201]
        capture: {document_id: data.document.id}
      - name: export as JSON
        path: /api/v1/documents/{document_id}/export?format=json
        auth: user
        expect_json: {document_id: "{document_id}", format: json}
"""

RETURN = r"""
steps:
  description:
    - One entry per step that ran, in order; on failure the failed step is the last one.
    - In check mode, the planned steps (RV(steps[].name), RV(steps[].method), RV(steps[].url)) and nothing else.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The step's name.
      type: str
      sample: upload
    method:
      description: HTTP method.
      type: str
      sample: POST
    url:
      description:
        - The URL requested (before redirects); secret values in it are masked.
        - In check mode with its placeholders unresolved.
      type: str
      sample: http://127.0.0.1:8000/api/v1/documents/
    status:
      description: HTTP status of the last answer (after redirects); V(null) when none came.
      type: int
      returned: when the step ran
      sample: 201
    elapsed_ms:
      description: Milliseconds the step took, every attempt and delay included.
      type: float
      returned: when the step ran
      sample: 12.4
    attempts:
      description: Requests sent (more than one only with O(steps[].until)).
      type: int
      returned: when the step ran
      sample: 1
    captured:
      description:
        - The values the step captured; secret ones (O(steps[].capture_secret=true)) as V(********).
      type: dict
      returned: when the step ran
      sample: {document_id: 3f1c9a52-7d0e-4c55-9a43-5d1f0c2b8e11}
    excerpt:
      description: The start of the last answer's body (at most 200 characters).
      type: str
      returned: when the step ran and does not have O(steps[].capture_secret=true)
      sample: '{"id": "3f1c9a52-7d0e-4c55-9a43-5d1f0c2b8e11", "status": "uploaded"}'
    ok:
      description: Whether the step passed.
      type: bool
      returned: when the step ran
      sample: true
captured:
  description: Every value captured by the steps that ran, by name; secret ones as V(********).
  returned: always
  type: dict
  sample: {user_token: "********", document_id: 3f1c9a52-7d0e-4c55-9a43-5d1f0c2b8e11, job_id: 9b2d...}
elapsed_ms:
  description: Milliseconds for the whole flow.
  returned: always
  type: float
  sample: 2345.6
"""

import os
import time
import typing as t

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ablage.ops.plugins.module_utils._http import (
    HttpClient,
    HttpConnectionError,
    HttpResponse,
    retry_until,
    tls_argument_spec,
)
from ansible_collections.ablage.ops.plugins.module_utils._http_flow import (
    HIDDEN,
    FlowError,
    Step,
    as_text,
    captures,
    check_names,
    excerpt,
    expectation_problem,
    json_shape,
    parse_steps,
    render_path,
    render_text,
    request_body,
    send,
    until_problem,
)

# Statuses a step with until waits through (the service restarting, rate limits), besides connection errors.
RETRYABLE = (408, 429)


class FlowRunner:
    """Validates the step list, then runs the steps in order, judging each answer."""

    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.params = module.params
        self.client = HttpClient.from_params(self.params, base_url=self.params["base_url"])
        self.values: dict[str, t.Any] = {}
        self.results: list[dict[str, t.Any]] = []
        self.captured: dict[str, t.Any] = {}
        self.started = time.monotonic()

    def elapsed_ms(self, since: float) -> float:
        return round((time.monotonic() - since) * 1000.0, 1)

    def finish(self, msg: str, failed: bool = False) -> t.NoReturn:
        result: dict[str, t.Any] = {"changed": False, "steps": self.results, "captured": self.captured}
        result["elapsed_ms"] = self.elapsed_ms(self.started)
        if failed:
            self.module.fail_json(msg=msg, **result)
        self.module.exit_json(msg=msg, **result)
        raise AssertionError("unreachable")  # pragma: no cover - exit_json/fail_json exit

    def parse(self) -> list[Step]:
        params = self.params
        groups = {name: params[name] or {} for name in ("tokens", "variables", "secret_variables")}
        try:
            steps = parse_steps(params["steps"], check_names(groups))
        except FlowError as exc:
            self.finish(str(exc), failed=True)
        for group in groups.values():
            self.values.update(group)
        return steps

    def run_step(self, step: Step) -> None:
        url = self.client.url_for(render_path(step.path, self.values))
        entry: dict[str, t.Any] = {"name": step.name, "method": step.method, "url": url, "status": None}
        self.results.append(entry)
        label = f"{step.label()} {step.method} {url}"
        try:
            body, headers = request_body(step, self.values)
        except OSError as exc:
            self.finish(f"{label}: cannot read file {step.file!r} on the managed host: {exc}", failed=True)
        headers.update({key: render_text(value, self.values) for key, value in step.headers.items()})
        authorization = f"Bearer {as_text(self.values[step.auth])}" if step.auth else None
        request_timeout = float(self.params["timeout"])
        state: dict[str, t.Any] = {"response": None, "error": None, "waiting": None}

        def attempt(number: int, seconds_left: float) -> tuple[dict[str, t.Any], bool]:
            # until's timeout bounds when attempts start; a started request gets the whole request timeout,
            # so a last attempt just before the deadline is not cut off into a misleading "no answer".
            try:
                response = send(self.client, step.method, url, body, headers, authorization, request_timeout)
            except HttpConnectionError as exc:
                state.update(response=None, error=exc, waiting=None)
                return state, not step.until
            state.update(response=response, error=None, waiting=None)
            if response.status not in step.status_code:
                retry = bool(step.until) and (response.status >= 500 or response.status in RETRYABLE)
                return state, not retry
            if step.until:
                state["waiting"] = until_problem(step, response, self.values)
                return state, state["waiting"] is None
            return state, True

        started = time.monotonic()
        if step.until:
            outcome = retry_until(attempt, 1_000_000_000, step.delay, step.timeout)
            attempts = outcome.attempts
        else:
            attempt(1, request_timeout)  # one try: retry_until would only add its bookkeeping
            attempts = 1
        entry.update(elapsed_ms=self.elapsed_ms(started), attempts=attempts, captured={}, ok=False)
        waited = f" (after {attempts} attempts within timeout={step.timeout:g} s)" if step.until else ""
        error: HttpConnectionError | None = state["error"]
        if error is not None:
            self.finish(f"{label}: no answer{waited}: {error.reason}; {error.hint}", failed=True)
        response: HttpResponse = state["response"]
        entry["status"] = response.status
        if not step.capture_secret:
            entry["excerpt"] = excerpt(response)
        came = json_shape(response) if step.capture_secret else repr(excerpt(response))
        came = f"the answer was HTTP {response.status} with {came}"
        if response.status not in step.status_code:
            location = response.headers.get("location")
            moved = f" (redirect to {location})" if location else ""
            self.finish(
                f"{label}: expected status {step.status_code}, got {response.status}{moved}{waited}; {came}", True
            )
        if state["waiting"]:
            self.finish(f"{label}: until not met{waited}: {state['waiting']}; {came}", failed=True)
        problem = expectation_problem(step, response, self.values)
        if problem:
            self.finish(f"{label}: {problem}; {came}", failed=True)
        values, problem = captures(step, response)
        if step.capture_secret:
            for value in values.values():
                self.module.no_log_values.add(as_text(value))
        if problem:
            self.finish(f"{label}: {problem}; {came}", failed=True)
        self.values.update(values)
        shown = {var: HIDDEN if step.capture_secret else value for var, value in values.items()}
        entry.update(captured=shown, ok=True)
        self.captured.update(shown)

    def run(self) -> None:
        steps = self.parse()
        if self.module.check_mode:
            self.results = [
                {"name": step.name, "method": step.method, "url": self.client.url_for(step.path)} for step in steps
            ]
            self.finish(f"check mode: {len(steps)} steps planned, nothing sent")
        unreadable = [s for s in steps if s.file and not (os.path.isfile(s.file) and os.access(s.file, os.R_OK))]
        if unreadable:
            self.finish(
                "; ".join(
                    f"{step.label()}: file {step.file!r} does not exist or cannot be read on the managed host"
                    for step in unreadable
                )
                + " (nothing was sent)",
                failed=True,
            )
        for step in steps:
            self.run_step(step)
        self.finish(f"all {len(steps)} steps passed in {self.elapsed_ms(self.started):g} ms")


def main() -> None:
    argument_spec: dict[str, t.Any] = {
        "base_url": {"type": "str", "required": True},
        "tokens": {"type": "dict", "default": {}, "no_log": True},
        "variables": {"type": "dict", "default": {}},
        "secret_variables": {"type": "dict", "default": {}, "no_log": True},
        # Checked by _http_flow.parse_steps instead of suboptions, so that every message names its step.
        "steps": {"type": "list", "elements": "dict", "required": True},
    }
    argument_spec.update(tls_argument_spec())
    module = AnsibleModule(
        argument_spec=argument_spec,
        required_by={"client_key": "client_cert"},
        supports_check_mode=True,
    )
    FlowRunner(module).run()


if __name__ == "__main__":
    main()
