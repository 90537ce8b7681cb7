# Copyright (c) ablage.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The application contract's pre-flight gates, from the answers the live system gave.

Everything the collection assumes about the application (docs/contract.md) is checked before
the deploy lock is taken: a wrong token, a missing JSON field or an image that is not in the
registry fails pre-flight, naming the variable to fix, with nothing changed.
"""

from __future__ import annotations

import typing as t

from ansible_collections.ablage.ops.plugins.module_utils._alerts import alert_name, firing_alerts

Dict = t.Dict[str, t.Any]


def json_leaf_paths(template: t.Any, prefix: str = "") -> list[str]:
    """Dotted paths of the leaves of a nested dict (``{"queue": {"pending": 0}}`` -> ``["queue.pending"]``)."""
    if not isinstance(template, dict) or not template:
        return [prefix] if prefix else []
    out: list[str] = []
    for key, value in template.items():
        out.extend(json_leaf_paths(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def missing_json_paths(document: t.Any, template: t.Any) -> list[str]:
    """Leaf paths of ``template`` that ``document`` does not have (values are not compared)."""
    missing = []
    for path in json_leaf_paths(template):
        node = document
        for part in path.split("."):
            if isinstance(node, dict) and part in node:
                node = node[part]
            else:
                missing.append(path)
                break
    return missing


def _status(result: Dict | None) -> int:
    return int((result or {}).get("status") or -1)


def _answered(result: Dict | None) -> str:
    status = _status(result)
    if status <= 0:
        return f"no answer ({str((result or {}).get('msg') or 'connection failed').strip()[:160]})"
    return f"answered {status}"


def _login_error(login: Dict) -> str:
    """Why ablage.ops.api_login (required=false) got no token."""
    return str(login.get("error") or login.get("msg") or _answered(login))[:240]


def _gate(gate: str, ok: bool, evidence: str) -> Dict:
    return {"section": "contract", "gate": gate, "ok": ok, "evidence": evidence}


def admin_gate(login: Dict | None, status: Dict | None, status_path: str) -> Dict:
    if login is not None and not login.get("token"):
        return _gate(
            "admin API access",
            False,
            f"admin login failed ({_login_error(login)}): ablage_admin_username/ablage_admin_password are not accepted "
            "(or set ablage_admin_token, or ablage_login_path if the login is elsewhere)",
        )
    code = _status(status)
    body = (status or {}).get("json")
    if code == 200 and isinstance(body, dict) and "enabled" in body:
        state = "on" if body["enabled"] else "off"
        evidence = f"GET {status_path} answered 200 with the admin token (maintenance {state})"
        return _gate("admin API access", True, evidence)
    if code in (401, 403):
        return _gate(
            "admin API access",
            False,
            f"GET {status_path} {_answered(status)}: the admin token is not accepted; fix ablage_admin_token "
            "(or ablage_admin_username/ablage_admin_password)",
        )
    return _gate(
        "admin API access",
        False,
        f'GET {status_path} {_answered(status)}, expected 200 with {{"enabled": bool}}: set status_path in '
        "ablage_maintenance_options to the maintenance status endpoint",
    )


def login_gate(login: Dict | None, login_path: str) -> Dict:
    if login is None:
        return _gate("smoke user login", True, "ablage_user_token given (no credentials to log in with)")
    if login.get("token"):
        return _gate("smoke user login", True, f"POST {login_path} as the smoke user answered 200 with a token")
    return _gate(
        "smoke user login",
        False,
        f"the smoke user's login failed ({_login_error(login)}): fix ablage_smoke_username/ablage_smoke_password "
        "(or ablage_login_path if the login is elsewhere)",
    )


def queue_gate(answer: Dict | None, queue_path: str, idle: t.Any) -> Dict:
    body = (answer or {}).get("json")
    if _status(answer) not in (200, 503) or not isinstance(body, dict):
        return _gate(
            "queue drain condition",
            False,
            f"GET {queue_path} {_answered(answer)}, expected JSON: set ablage_queue_path to the endpoint that "
            "reports the OCR queue",
        )
    missing = missing_json_paths(body, idle)
    if missing:
        return _gate(
            "queue drain condition",
            False,
            f"GET {queue_path} has no {', '.join(missing)} (it has {', '.join(sorted(body)) or 'nothing'}): set "
            "ablage_queue_idle to the fields that mean nothing pending and nothing processing",
        )
    return _gate(
        "queue drain condition",
        True,
        f"GET {queue_path} reports {', '.join(json_leaf_paths(idle))} (drained when equal to ablage_queue_idle)",
    )


def health_gate(probe: Dict | None) -> Dict:
    targets = (probe or {}).get("results") or []
    bad = [t_ for t_ in targets if not t_.get("ok")]
    if not targets:
        return _gate("health endpoints", False, f"not probed: {(probe or {}).get('msg', 'no result')}")
    if bad:
        return _gate(
            "health endpoints",
            False,
            "; ".join(f"{t_.get('url')}: {t_.get('reason') or t_.get('status')}" for t_ in bad)
            + ": fix ablage_health_paths (or the application's health)",
        )
    return _gate("health endpoints", True, ", ".join(f"{t_.get('url')} {t_.get('status')}" for t_ in targets))


def monitoring_gate(url: str, answers: t.Sequence[Dict]) -> Dict | None:
    """Prometheus before the window: no target down, no alert firing (None when no Prometheus is configured).

    A target not scraped yet (health ``unknown``, right after Prometheus started) is not a failure here; verify
    waits for it to be up after the deploy.
    """
    if not url:
        return None
    targets_answer, alerts_answer = [*list(answers), {}, {}][:2]
    if _status(targets_answer) != 200 or _status(alerts_answer) != 200:
        bad = targets_answer if _status(targets_answer) != 200 else alerts_answer
        return _gate(
            "monitoring", False, f"Prometheus at {url} {_answered(bad)}: start it or fix ablage_prometheus_url"
        )
    targets = ((targets_answer.get("json") or {}).get("data") or {}).get("activeTargets") or []
    down = [
        f"{(t_.get('labels') or {}).get('job', '?')} {t_.get('scrapeUrl', '')} ({t_.get('health')})"
        for t_ in targets
        if t_.get("health") == "down"
    ]
    firing = [alert_name(a) for a in firing_alerts(alerts_answer.get("json"))]
    if not targets or down or firing:
        problems = (["no active target"] if not targets else []) + [f"down: {d}" for d in down]
        problems += [f"firing: {f}" for f in firing]
        return _gate(
            "monitoring",
            False,
            f"Prometheus is not green before the deploy ({'; '.join(problems)}): fix it first, the deploy would "
            "fail its monitoring check after the maintenance window",
        )
    unknown = sum(1 for t_ in targets if t_.get("health") != "up")
    return _gate(
        "monitoring",
        True,
        f"Prometheus: {len(targets) - unknown} target(s) up"
        + (f", {unknown} not scraped yet" if unknown else "")
        + ", no alert firing",
    )


def release_gates(release: Dict | None, variable: str, version: str) -> list[Dict]:
    """The compose project, the version variable in .env and each app image of the target version."""
    release = release or {}
    if release.get("failed") or "images" not in release:
        return [
            {
                "section": "infra",
                "gate": f"release {version}",
                "ok": False,
                "evidence": str(release.get("msg") or "the compose project could not be read"),
            }
        ]
    gates = [
        {
            "section": "infra",
            "gate": "compose project",
            "ok": True,
            "evidence": f"valid; .env {variable}={release.get('current_version')}; "
            + ", ".join(f"{s} -> {i}" for s, i in sorted(release["images"].items())),
        }
    ]
    static = release.get("static_services") or []
    if static:
        gates.append(
            {
                "section": "infra",
                "gate": "images follow the release",
                "ok": False,
                "evidence": f"the image of {', '.join(static)} does not change with {variable}: the compose file "
                f"does not read {variable} there; fix ablage_version_variable or ablage_app_services",
            }
        )
    for image, found in sorted((release.get("registry") or {}).items()):
        gates.append(
            {
                "section": "infra",
                "gate": f"image {image}",
                "ok": bool(found.get("exists")),
                "evidence": str(found.get("manifest") or "present")
                if found.get("exists")
                else f"not in its registry: {found.get('error', '?')}",
            }
        )
    return gates


def contract_gates(checks: Dict) -> list[Dict]:
    """The API's gates from the answers registered by roles/preflight/tasks/contract.yml."""
    return [
        admin_gate(_ran(checks.get("admin_login")), checks.get("admin_status"), str(checks.get("status_path"))),
        login_gate(_ran(checks.get("smoke_login")), str(checks.get("login_path"))),
        queue_gate(checks.get("queue"), str(checks.get("queue_path")), checks.get("queue_idle") or {}),
        health_gate(checks.get("health")),
    ] + [g for g in [monitoring_gate(str(checks.get("prometheus_url") or ""), checks.get("prometheus") or [])] if g]


def _ran(result: Dict | None) -> Dict | None:
    """A registered result, or None when its task was skipped."""
    return None if result is None or result.get("skipped") else result


def smoke_items(steps: t.Sequence[Dict] | None, checklist: t.Mapping[str, str], failure: str = "") -> dict[str, Dict]:
    """The checklist's smoke items from the steps an ablage.ops.http_flow run returned.

    ``checklist`` maps an item id (login, upload, ocr, export, admin_panel) to the step that proves it, so
    a smoke flow of another shape is reported under the same items. A step that did not run is ``ran: false``.
    """
    by_name = {str(step.get("name")): step for step in steps or []}
    items: dict[str, Dict] = {}
    for item_id, step_name in checklist.items():
        step = by_name.get(step_name)
        if step is None or "status" not in step:
            items[item_id] = {"ran": False, "step": step_name}
            continue
        path = str(step.get("url", "")).split("://", 1)[-1].partition("/")[2]
        evidence = f"{step.get('method')} /{path} answered {step.get('status')}"
        captured = step.get("captured") or {}
        if captured:
            shown = [f"{k}={v}" if v != "********" else f"{k} (secret, not shown)" for k, v in captured.items()]
            evidence += ", captured " + ", ".join(shown)
        ok = bool(step.get("ok"))
        items[item_id] = {
            "ran": True,
            "ok": ok,
            "step": step_name,
            "evidence": evidence if ok else f"step {step_name!r} FAILED: {failure or evidence}",
        }
    return items


class FilterModule:
    def filters(self) -> dict[str, t.Callable[..., t.Any]]:
        return {"contract_gates": contract_gates, "release_gates": release_gates, "smoke_items": smoke_items}
