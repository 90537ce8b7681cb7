#!/usr/bin/python
# Copyright (c) ablage.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: health_probe
short_description: Probe many HTTP health endpoints at once, with status, JSON and latency expectations
version_added: 0.1.0
description:
  - Sends one request to each URL, all URLs concurrently (one thread per URL, up to O(concurrency)), and checks
    the answer against an expected status, an expected JSON subset, items that must not be in a JSON list (such as
    firing alerts) and a maximum latency.
  - Retries a URL on connection errors, unexpected status, JSON mismatch or a forbidden item, with O(delay) seconds
    between tries,
    until it passes, O(attempts) tries are used, or O(total_timeout) seconds have passed. This replaces fixed
    C(sleep)s before health checks.
  - To wait for a deadline alone, set O(total_timeout) and leave O(attempts) unset; the URL is then tried every
    O(delay) seconds until it passes or O(total_timeout) seconds have passed.
  - Returns what every URL answered, also when the module fails, and fails naming every URL that did not pass and why.
  - Replaces the C(curl .../api/v1/health | jq) steps of the Ablage-System deployment checklist; works with any
    HTTP JSON endpoint (Prometheus, Grafana, ...).
author:
  - ablage.ops maintainers (@ablage-system)
extends_documentation_fragment:
  - ablage.ops._attributes
  - ablage.ops._attributes.read_only
  - ablage.ops._http
options:
  url:
    description:
      - URLs to probe with the module-level expectations.
      - A URL without a scheme is a path relative to O(base_url).
      - At least one of O(url) and O(targets) is required; both may be given.
    type: list
    elements: str
    aliases:
      - urls
  targets:
    description:
      - URLs with their own expectations. A suboption that is not set falls back to the module-level option of the
        same name.
    type: list
    elements: dict
    suboptions:
      url:
        description: URL, or path relative to O(base_url).
        type: str
        required: true
      name:
        description: Label for this target in the results; defaults to the URL.
        type: str
      method:
        description: HTTP method; defaults to O(method).
        type: str
        choices: [GET, POST, HEAD]
      body:
        description: JSON body for V(POST); defaults to O(body).
        type: raw
      status_code:
        description: Accepted status codes; defaults to O(status_code).
        type: list
        elements: int
      expected_json:
        description: Expected JSON subset; defaults to O(expected_json).
        type: raw
      forbidden_items:
        description: Items that must not be in lists of the answer; defaults to O(forbidden_items).
        type: list
        elements: dict
        suboptions:
          path:
            description: Where the list is, as in O(forbidden_items[].path).
            type: str
            default: $
          match:
            description: JSON subset that selects a forbidden item, as in O(forbidden_items[].match).
            type: raw
            default: {}
      max_latency_ms:
        description: Latency limit in milliseconds; defaults to O(max_latency_ms).
        type: float
      headers:
        description: Extra headers, merged over O(headers). Values are treated as secrets.
        type: dict
  base_url:
    description:
      - Base URL that relative URLs in O(url) and O(targets) are appended to, for example V(http://127.0.0.1:8000).
      - The base URL's own path is kept (V(http://h/app) + V(/api/v1/health) is V(http://h/app/api/v1/health)).
    type: str
  method:
    description:
      - HTTP method. V(POST) sends O(body) as JSON.
    type: str
    choices: [GET, POST, HEAD]
    default: GET
  body:
    description:
      - Data sent as the JSON body of a V(POST). A string is parsed as JSON first.
      - Only allowed with O(method=POST) (or a target's O(targets[].method=POST)).
    type: raw
  status_code:
    description:
      - Status codes that count as healthy.
    type: list
    elements: int
    default: [200]
  expected_json:
    description:
      - JSON the response must contain. Objects match when every expected key is present with a matching value
        (extra keys are fine, recursively); lists match when every expected item matches some item of the answer;
        other values must be equal. A string is parsed as JSON first.
      - When set, a response that is not JSON fails.
    type: raw
  forbidden_items:
    description:
      - Lists in the JSON answer that must not hold certain items, for example no firing alert. Each entry names a
        list by its O(forbidden_items[].path) and the items it must not hold by O(forbidden_items[].match).
      - The URL fails (and is retried like a JSON mismatch) while any entry finds an item; the reason names where.
      - When set, a response that is not JSON fails, and so does a path that does not lead to a list.
    type: list
    elements: dict
    suboptions:
      path:
        description:
          - Where the list is in the answer, dotted; object keys, and list indexes as integers (V(data.alerts)).
          - V($) (or an empty string) is the answer itself, and a leading V($.) is allowed.
        type: str
        default: $
      match:
        description:
          - JSON subset that selects a forbidden item, matched like O(expected_json) (extra keys are fine).
          - V({}) selects every item, so the list must be empty. A string is parsed as JSON first.
        type: raw
        default: {}
  max_latency_ms:
    description:
      - Highest acceptable latency (request sent to body read) of the last try, in milliseconds.
      - A slow answer is not retried; it fails the URL.
    type: float
  headers:
    description:
      - Extra request headers. Values are treated as secrets (not logged), since they often carry tokens;
        the consequence is that a header value that also appears in the output is masked there.
    type: dict
    default: {}
  bearer_token:
    description:
      - 'Token sent as C(Authorization: Bearer <token>). Not logged.'
    type: str
  attempts:
    description:
      - Most tries per URL (1 = no retry).
      - When not set, the default depends on O(total_timeout). With O(total_timeout) set, the tries are not
        counted, and the URL is tried every O(delay) seconds until O(total_timeout) seconds have passed. With
        neither set, one try (V(1), no retry).
      - When both are set, whichever is reached first ends the tries.
    type: int
  delay:
    description:
      - Seconds between two tries of the same URL.
    type: float
    default: 1.0
  total_timeout:
    description:
      - Seconds after which no new try of a URL starts; the request timeout of a try is capped to what is left.
      - Bounds the module's run time together with O(attempts). Set alone (without O(attempts)), it is the only
        bound, and the URL is retried every O(delay) seconds until this deadline.
      - When not set, V(60) seconds, and O(attempts) defaults to one try.
    type: float
  concurrency:
    description:
      - Most URLs probed at the same time.
    type: int
    default: 16
notes:
  - The module never changes anything; RV(ignore:changed) is always V(false) and it runs the same in check mode.
seealso:
  - module: ansible.builtin.uri
  - module: ablage.ops.maintenance_toggle
"""

EXAMPLES = r"""
- name: "Checklist 5. Health Checks: all health endpoints at once, retried until the backend is up"
  ablage.ops.health_probe:
    base_url: http://127.0.0.1:8000
    url:
      - /api/v1/health/detailed
      - /api/v1/health/pipeline
      - /api/v1/health/gpu-memory
      - /api/v1/health/complete
    targets:
      - url: /api/v1/health
        expected_json: {status: healthy}
        max_latency_ms: 50
    attempts: 30
    delay: 2
    total_timeout: 90
  register: __verify_health

- name: An authenticated endpoint over TLS with a private CA
  ablage.ops.health_probe:
    url: https://ablage.example.com/api/v1/admin/maintenance
    bearer_token: "{{ admin_token }}"
    ca_path: /etc/ssl/certs/ablage-ca.pem
    expected_json:
      enabled: false

- name: Prometheus has every target up
  ablage.ops.health_probe:
    url: http://127.0.0.1:9090/api/v1/targets?state=active
    expected_json:
      status: success

- name: "Grafana: the dashboard exists, and no unsilenced alert fires on it (Alertmanager v2 API)"
  ablage.ops.health_probe:
    base_url: http://127.0.0.1:3000
    bearer_token: "{{ grafana_token }}"
    targets:
      - url: /api/dashboards/uid/system-overview
        expected_json: {dashboard: {uid: system-overview}}
      - url: /api/alertmanager/grafana/api/v2/alerts?active=true&silenced=false&inhibited=false
        forbidden_items:
          - path: $
            match: {annotations: {__dashboardUid__: system-overview}}

- name: A POST endpoint with a JSON body
  ablage.ops.health_probe:
    url: http://127.0.0.1:8000/api/v1/ocr/health-check
    method: POST
    body: {dry_run: true}
    status_code: [200, 202]
"""

RETURN = r"""
results:
  description: One entry per probed URL, in the order given (O(url) first, then O(targets)).
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The target's name (the URL unless O(targets[].name) was set).
      type: str
      sample: /api/v1/health
    url:
      description: The absolute URL probed.
      type: str
      sample: http://127.0.0.1:8000/api/v1/health
    method:
      description: HTTP method used.
      type: str
      sample: GET
    status:
      description: HTTP status of the last try; V(null) when no response came.
      type: int
      sample: 200
    json:
      description: Decoded JSON body of the last try; V(null) when the body was not JSON.
      type: raw
      sample: {status: healthy}
    content:
      description: The body as text (first 1024 characters).
      returned: when the URL failed and the body was not JSON
      type: str
      sample: <html>Bad Gateway</html>
    latency_ms:
      description: Milliseconds from sending the last try to reading its body; V(null) when no response came.
      type: float
      sample: 4.2
    attempts:
      description: Tries used.
      type: int
      sample: 1
    elapsed_s:
      description: Seconds spent on this URL, all tries and delays included.
      type: float
      sample: 0.004
    ok:
      description: Whether the URL met every expectation.
      type: bool
      sample: true
    reason:
      description: Why the URL failed, or V(ok).
      type: str
      sample: "JSON mismatch: $.status: expected \"healthy\", got \"degraded\""
summary:
  description: Counts and latency over all URLs.
  returned: always
  type: dict
  contains:
    total:
      description: URLs probed.
      type: int
      sample: 5
    ok:
      description: URLs that passed.
      type: int
      sample: 5
    failed:
      description: URLs that failed.
      type: int
      sample: 0
    max_latency_ms:
      description: Highest latency of a response; V(null) when nothing answered.
      type: float
      sample: 12.5
    avg_latency_ms:
      description: Mean latency of the responses; V(null) when nothing answered.
      type: float
      sample: 6.1
failed_urls:
  description: 'The URLs that failed, each with its reason, as C(url: reason) strings.'
  returned: always
  type: list
  elements: str
  sample: ["http://127.0.0.1:8000/api/v1/health/pipeline: status 503 not in [200]"]
"""

import concurrent.futures
import json
import time
import typing as t

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ablage.ops.plugins.module_utils._http import (
    HttpClient,
    HttpConnectionError,
    HttpResponse,
    json_forbidden_items,
    json_subset_mismatch,
    retry_until,
    tls_argument_spec,
)

_CONTENT_PREVIEW = 1024
# What attempts and total_timeout mean when neither is set (see retry_bounds); documented in their descriptions.
_DEFAULT_ATTEMPTS = 1
_DEFAULT_TOTAL_TIMEOUT = 60.0


def _forbidden_items_spec() -> dict[str, t.Any]:
    return {
        "type": "list",
        "elements": "dict",
        "options": {"path": {"type": "str", "default": "$"}, "match": {"type": "raw", "default": {}}},
    }


def _maybe_json(value: t.Any) -> t.Any:
    """Options of type raw: a string holding JSON is decoded, anything else is used as is."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


class Target:
    """One URL with its effective expectations."""

    def __init__(self, spec: dict[str, t.Any], defaults: dict[str, t.Any], base_url: str | None) -> None:
        def pick(key: str) -> t.Any:
            value = spec.get(key)
            return defaults[key] if value is None else value

        self.name: str = spec.get("name") or spec["url"]
        self.method: str = pick("method")
        self.body: t.Any = _maybe_json(pick("body"))
        self.status_code: list[int] = list(pick("status_code"))
        self.expected_json: t.Any = _maybe_json(pick("expected_json"))
        self.forbidden_items: list[dict[str, t.Any]] = [
            {
                "path": entry.get("path") or "$",
                "match": {} if entry.get("match") is None else _maybe_json(entry["match"]),
            }
            for entry in pick("forbidden_items") or []
        ]
        self.max_latency_ms: float | None = pick("max_latency_ms")
        self.headers: dict[str, str] = {str(k): str(v) for k, v in (defaults["headers"] or {}).items()}
        self.headers.update({str(k): str(v) for k, v in (spec.get("headers") or {}).items()})
        self.path = spec["url"]
        self.base_url = base_url


class HealthProber:
    """Probes every target concurrently and judges the answers."""

    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        params = module.params
        self.params = params
        defaults = {
            "method": params["method"],
            "body": params["body"],
            "status_code": params["status_code"],
            "expected_json": params["expected_json"],
            "forbidden_items": params["forbidden_items"],
            "max_latency_ms": params["max_latency_ms"],
            "headers": params["headers"],
        }
        specs = [{"url": url} for url in params["url"] or []] + list(params["targets"] or [])
        self.targets = [Target(spec, defaults, params["base_url"]) for spec in specs]
        self.result: dict[str, t.Any] = {"changed": False}

    def validate(self) -> None:
        for target in self.targets:
            if target.body is not None and target.method != "POST":
                self.module.fail_json(
                    msg=f"{target.name}: a body is only sent with method POST, not {target.method}; "
                    "set method: POST or remove body",
                )
            if "://" not in target.path and not target.base_url:
                self.module.fail_json(
                    msg=f"{target.path!r} has no scheme: give a full URL (http://host:port/path) or set base_url",
                )
        if self.params["attempts"] is not None and self.params["attempts"] < 1:
            self.module.fail_json(msg=f"attempts must be at least 1, got {self.params['attempts']}")
        if self.params["concurrency"] < 1:
            self.module.fail_json(msg=f"concurrency must be at least 1, got {self.params['concurrency']}")
        total_timeout = self.params["total_timeout"]
        if (
            self.params["delay"] < 0
            or (total_timeout is not None and total_timeout <= 0)
            or self.params["timeout"] <= 0
        ):
            self.module.fail_json(msg="delay must be >= 0, total_timeout and timeout must be > 0")

    def retry_bounds(self) -> tuple[int | None, float]:
        """Most tries (None: no count, the deadline alone) and the deadline in seconds, for retry_until.

        attempts and total_timeout have no argument_spec default, so that "not set" can be told apart:
        total_timeout alone means retry until the deadline; neither means one try within 60 s.
        """
        attempts: int | None = self.params["attempts"]
        total_timeout: float | None = self.params["total_timeout"]
        if attempts is None and total_timeout is None:
            attempts = _DEFAULT_ATTEMPTS
        return attempts, _DEFAULT_TOTAL_TIMEOUT if total_timeout is None else total_timeout

    def _judge(self, target: Target, response: HttpResponse) -> tuple[dict[str, t.Any], bool]:
        is_json, body = response.json_or_none()
        record: dict[str, t.Any] = {
            "status": response.status,
            "json": body,
            "latency_ms": response.latency_ms,
        }
        if not is_json and response.body:
            record["content"] = response.text[:_CONTENT_PREVIEW]
        if response.status not in target.status_code:
            record["reason"] = f"status {response.status} not in {target.status_code}"
            return record, False
        if target.expected_json is not None:
            if not is_json:
                record["reason"] = "response is not JSON, but expected_json is set"
                return record, False
            problem = json_subset_mismatch(target.expected_json, body)
            if problem:
                record["reason"] = f"JSON mismatch: {problem}"
                return record, False
        if target.forbidden_items:
            if not is_json:
                record["reason"] = "response is not JSON, but forbidden_items is set"
                return record, False
            problems = [json_forbidden_items(entry["path"], entry["match"], body) for entry in target.forbidden_items]
            found = [problem for problem in problems if problem]
            if found:
                record["reason"] = "forbidden: " + "; ".join(found)
                return record, False
        record["reason"] = "ok"
        return record, True

    def probe(self, target: Target) -> dict[str, t.Any]:
        client = HttpClient.from_params(
            self.params, base_url=target.base_url, bearer_token=self.params["bearer_token"], headers=target.headers
        )
        request_timeout = self.params["timeout"]

        def attempt(number: int, seconds_left: float) -> tuple[dict[str, t.Any], bool]:
            kwargs: dict[str, t.Any] = {"timeout": min(request_timeout, seconds_left)}
            if target.body is not None:
                kwargs["json_body"] = target.body
            try:
                response = client.request(target.method, target.path, **kwargs)
            except HttpConnectionError as exc:
                return {"status": None, "json": None, "latency_ms": None, "reason": f"{exc.reason} ({exc.hint})"}, False
            return self._judge(target, response)

        attempts, total_timeout = self.retry_bounds()
        outcome = retry_until(attempt, attempts, self.params["delay"], total_timeout)
        record: dict[str, t.Any] = {"name": target.name, "url": client.url_for(target.path), "method": target.method}
        record.update(outcome.value)
        record["attempts"] = outcome.attempts
        record["elapsed_s"] = outcome.elapsed_s
        ok = outcome.ok
        if ok and target.max_latency_ms is not None and record["latency_ms"] > target.max_latency_ms:
            ok = False
            record["reason"] = f"latency {record['latency_ms']:g} ms exceeds max_latency_ms {target.max_latency_ms:g}"
        if not ok and outcome.attempts > 1:
            record["reason"] += f" (after {outcome.attempts} attempts in {outcome.elapsed_s:g} s)"
        record["ok"] = ok
        if ok:
            record.pop("content", None)
        return record

    def run(self) -> None:
        self.validate()
        started = time.monotonic()
        workers = min(self.params["concurrency"], len(self.targets))
        with concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="health_probe") as pool:
            results = list(pool.map(self.probe, self.targets))
        latencies = [r["latency_ms"] for r in results if r["latency_ms"] is not None]
        failed = [r for r in results if not r["ok"]]
        self.result["results"] = results
        self.result["summary"] = {
            "total": len(results),
            "ok": len(results) - len(failed),
            "failed": len(failed),
            "max_latency_ms": max(latencies) if latencies else None,
            "avg_latency_ms": round(sum(latencies) / len(latencies), 1) if latencies else None,
            "elapsed_s": round(time.monotonic() - started, 3),
        }
        self.result["failed_urls"] = [f"{r['url']}: {r['reason']}" for r in failed]
        if failed:
            self.module.fail_json(
                msg=f"{len(failed)} of {len(results)} URLs failed: " + "; ".join(self.result["failed_urls"]),
                **self.result,
            )
        summary = self.result["summary"]
        self.result["msg"] = f"all {len(results)} URLs healthy (max latency {summary['max_latency_ms']} ms)"
        self.module.exit_json(**self.result)


def main() -> None:
    argument_spec: dict[str, t.Any] = {
        "url": {"type": "list", "elements": "str", "aliases": ["urls"]},
        "targets": {
            "type": "list",
            "elements": "dict",
            "options": {
                "url": {"type": "str", "required": True},
                "name": {"type": "str"},
                "method": {"type": "str", "choices": ["GET", "POST", "HEAD"]},
                "body": {"type": "raw"},
                "status_code": {"type": "list", "elements": "int"},
                "expected_json": {"type": "raw"},
                "forbidden_items": _forbidden_items_spec(),
                "max_latency_ms": {"type": "float"},
                "headers": {"type": "dict", "no_log": True},
            },
        },
        "base_url": {"type": "str"},
        "method": {"type": "str", "default": "GET", "choices": ["GET", "POST", "HEAD"]},
        "body": {"type": "raw"},
        "status_code": {"type": "list", "elements": "int", "default": [200]},
        "expected_json": {"type": "raw"},
        "forbidden_items": _forbidden_items_spec(),
        "max_latency_ms": {"type": "float"},
        "headers": {"type": "dict", "default": {}, "no_log": True},
        "bearer_token": {"type": "str", "no_log": True},
        "attempts": {"type": "int"},
        "delay": {"type": "float", "default": 1.0},
        "total_timeout": {"type": "float"},
        "concurrency": {"type": "int", "default": 16},
    }
    argument_spec.update(tls_argument_spec())
    module = AnsibleModule(
        argument_spec=argument_spec,
        required_one_of=[("url", "targets")],
        required_by={"client_key": "client_cert"},
        supports_check_mode=True,
    )
    HealthProber(module).run()


if __name__ == "__main__":
    main()
