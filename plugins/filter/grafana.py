# Copyright (c) ablage.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The verify role's Grafana check: what to probe, and what to tell the operator when it is not green.

roles/verify probes Grafana's health, each of verify_grafana_dashboards and the firing alerts with one
ablage.ops.health_probe (tasks/monitoring.yml); its rescue names each finding in one sentence. That was
about forty lines of Jinja in roles/verify/vars/main.yml, untestable short of a Grafana. Here it is plain
Python with unit tests (tests/unit/plugins/filter/test_grafana.py), which also render the old Jinja and
check that the targets and the sentences are the same, byte for byte.

The report tells the probes apart by URL (plugins/filter/checklist.py, _grafana_evidence), so the names and
URLs built here are part of its contract.
"""

from __future__ import annotations

import re
import typing as t
from collections.abc import Mapping
from urllib.parse import quote

Dict = t.Dict[str, t.Any]

ALERTS = "firing alerts"
REFUSED = (401, 403)
DASHBOARD_PATH = "/api/dashboards/uid/"


def _names(dashboards: list[Dict]) -> Dict:
    """uid -> display name (the name, or the uid when it is empty); a repeated uid keeps its place, the last name."""
    out: Dict = {}
    for board in dashboards:
        out[board["uid"]] = board.get("name") or board["uid"]
    return out


def _url_quote(value: t.Any) -> str:
    """Jinja's ``urlencode`` of one value: UTF-8, percent-encoded, ``/`` kept."""
    return quote(str(value), safe="/")


def grafana_targets(base_url: str, dashboards: list[Dict], alerts_scope: str, alerts_path: str) -> list[Dict]:
    """health_probe targets: Grafana's health, each dashboard by uid, and the firing alerts unless the scope is none."""
    base = re.sub("/+$", "", str(base_url))
    names = _names(dashboards)
    out: list[Dict] = [{"name": "Grafana health", "url": base + "/api/health", "expected_json": {"database": "ok"}}]
    for uid, name in names.items():
        out.append(
            {
                "name": f"dashboard {name!s} (uid {uid!s})",
                "url": base + DASHBOARD_PATH + _url_quote(uid),
                "expected_json": {"dashboard": {"uid": uid}},
            }
        )
    if alerts_scope != "none":
        uids = list(names) if alerts_scope == "dashboards" else [""]
        forbidden = [{"path": "$", "match": {"annotations": {"__dashboardUid__": uid}} if uid else {}} for uid in uids]
        out.append({"name": ALERTS, "url": base + str(alerts_path), "forbidden_items": forbidden})
    return out


def _field(obj: t.Any, key: str, default: t.Any) -> t.Any:
    """``obj.key | default(default)`` in Jinja: the item of a mapping, else the default."""
    return obj[key] if isinstance(obj, Mapping) and key in obj else default


def _is_list(value: t.Any) -> bool:
    """Jinja's ``is sequence and is not string and is not mapping``."""
    if isinstance(value, (str, Mapping)):
        return False
    return hasattr(value, "__len__") and hasattr(value, "__getitem__")


def _unique(values: t.Iterable[t.Any]) -> list[t.Any]:
    out: list[t.Any] = []
    for value in values:
        if value not in out:
            out.append(value)
    return out


def _refused(probes: list[Dict]) -> str:
    statuses = "/".join(str(status) for status in _unique(probe["status"] for probe in probes))
    return (
        f"Grafana refused the token (HTTP {statuses} for {', '.join(str(probe['name']) for probe in probes)}): "
        "set verify_grafana_token to a valid service account token with the Viewer role"
    )


def _firing(alerts: t.Iterable[t.Any], names: Dict, alerts_scope: str) -> str:
    firing: list[str] = []
    for alert in alerts:
        uid = _field(alert, "annotations", {}).get("__dashboardUid__", "")
        if alerts_scope == "all" or uid in names:
            where = f" on dashboard {names.get(uid, uid)!s}" if uid else ""
            firing.append(f"{_field(alert, 'labels', {}).get('alertname', '?')!s}{where}")
    return (
        f"{len(firing)} firing alert(s): {', '.join(firing)} "
        "(resolve or silence them in Grafana; verify_grafana_alerts_scope says which count)"
    )


def _problem(probe: Dict, names: Dict, alerts_scope: str) -> str:
    """One failed probe (not refused) in one sentence."""
    if probe["name"] == ALERTS and probe["status"] == 200 and _is_list(probe["json"]):
        return _firing(probe["json"], names, alerts_scope)
    if DASHBOARD_PATH in str(probe["url"]) and probe["status"] == 404:
        return f"{probe['name']!s} not found (404): provision it or correct verify_grafana_dashboards"
    return f"{probe['name']!s}: {probe['reason']!s}"


def grafana_problems(result: Dict | None, dashboards: list[Dict], alerts_scope: str) -> list[t.Any]:
    """What is not green in the registered health_probe result, one sentence each, naming what to fix."""
    results = _field(result, "results", [])
    names = _names(dashboards)
    refused = [probe for probe in results if probe["status"] in REFUSED]
    out: list[t.Any] = [_refused(refused)] if refused else []
    out.extend(
        _problem(probe, names, alerts_scope) for probe in results if not probe["ok"] and probe["status"] not in REFUSED
    )
    # The probe failed before any URL had a result (a bad argument): its own message, or a plain one.
    return out or [_field(result, "msg", "the Grafana probe failed")]


class FilterModule:
    def filters(self) -> dict[str, t.Callable[..., t.Any]]:
        return {"grafana_targets": grafana_targets, "grafana_problems": grafana_problems}
