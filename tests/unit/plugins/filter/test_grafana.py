"""The verify role's Grafana probe: its targets and the sentences of its rescue (plugins/filter/grafana.py).

The filters replaced Jinja in roles/verify/vars/main.yml; OLD_VARS below is that Jinja, verbatim, and the
tests at the end render it with ansible-core's Templar to check that the filters give the same, byte for byte.
"""

from __future__ import annotations

import typing as t

import pytest
import yaml

from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

from ansible_collections.ablage.ops.plugins.filter.grafana import FilterModule, grafana_problems, grafana_targets

BOARDS = [{"uid": "system-overview", "name": "System Overview"}, {"uid": "ocr-pipeline", "name": "OCR Pipeline"}]
ALERTS_PATH = "/api/alertmanager/grafana/api/v2/alerts?active=true&silenced=false&inhibited=false"
BASE = "http://127.0.0.1:3000"

# roles/verify/vars/main.yml before the filters, copied verbatim.
OLD_VARS = r"""
_verify_grafana_base: "{{ verify_grafana_url | regex_replace('/+$', '') }}"
# uid -> display name
_verify_grafana_names: >-
  {%- set out = {} -%}
  {%- for board in verify_grafana_dashboards -%}
  {%-   set _ = out.update({board.uid: board.name | default(board.uid, true)}) -%}
  {%- endfor -%}
  {{ out }}
_verify_grafana_targets: >-
  {%- set out = [{'name': 'Grafana health', 'url': _verify_grafana_base ~ '/api/health',
                  'expected_json': {'database': 'ok'}}] -%}
  {%- for uid, name in _verify_grafana_names.items() -%}
  {%-   set _ = out.append({'name': 'dashboard ' ~ name ~ ' (uid ' ~ uid ~ ')',
                            'url': _verify_grafana_base ~ '/api/dashboards/uid/' ~ (uid | urlencode),
                            'expected_json': {'dashboard': {'uid': uid}}}) -%}
  {%- endfor -%}
  {%- if verify_grafana_alerts_scope != 'none' -%}
  {%-   set forbidden = [] -%}
  {%-   for uid in (_verify_grafana_names.keys() if verify_grafana_alerts_scope == 'dashboards' else ['']) -%}
  {%-     set _ = forbidden.append({'path': '$', 'match': ({'annotations': {'__dashboardUid__': uid}} if uid else {})}) -%}
  {%-   endfor -%}
  {%-   set _ = out.append({'name': 'firing alerts', 'url': _verify_grafana_base ~ verify_grafana_alerts_path,
                            'forbidden_items': forbidden}) -%}
  {%- endif -%}
  {{ out }}
# What is not green, one sentence each, naming what to fix (the rescue of the Grafana probe).
_verify_grafana_problems: >-
  {%- set out = [] -%}
  {%- set results = __verify_grafana.results | default([]) -%}
  {%- set refused = results | selectattr('status', 'in', [401, 403]) | list -%}
  {%- if refused -%}
  {%-   set _ = out.append('Grafana refused the token (HTTP ' ~ (refused | map(attribute='status') | unique | join('/'))
                           ~ ' for ' ~ (refused | map(attribute='name') | join(', '))
                           ~ '): set verify_grafana_token to a valid service account token with the Viewer role') -%}
  {%- endif -%}
  {%- for probe in results if not probe.ok and probe.status not in [401, 403] -%}
  {%-   if probe.name == 'firing alerts' and probe.status == 200 and probe.json is sequence
           and probe.json is not string and probe.json is not mapping -%}
  {%-     set firing = [] -%}
  {%-     for alert in probe.json -%}
  {%-       set uid = (alert.annotations | default({})).get('__dashboardUid__', '') -%}
  {%-       if verify_grafana_alerts_scope == 'all' or uid in _verify_grafana_names -%}
  {%-         set _ = firing.append((alert.labels | default({})).get('alertname', '?')
                                    ~ (' on dashboard ' ~ _verify_grafana_names.get(uid, uid) if uid else '')) -%}
  {%-       endif -%}
  {%-     endfor -%}
  {%-     set _ = out.append(firing | length ~ ' firing alert(s): ' ~ firing | join(', ')
                             ~ ' (resolve or silence them in Grafana; verify_grafana_alerts_scope says which count)') -%}
  {%-   elif probe.url is search('/api/dashboards/uid/') and probe.status == 404 -%}
  {%-     set _ = out.append(probe.name ~ ' not found (404): provision it or correct verify_grafana_dashboards') -%}
  {%-   else -%}
  {%-     set _ = out.append(probe.name ~ ': ' ~ probe.reason) -%}
  {%-   endif -%}
  {%- endfor -%}
  {%- if out | length == 0 -%}
  {%-   set _ = out.append(__verify_grafana.msg | default('the Grafana probe failed')) -%}
  {%- endif -%}
  {{ out }}
"""  # noqa: E501 (verbatim)


def probe(
    name: str, url: str | None, status: float | None, reason: str | None = "", ok: bool = False, json: t.Any = None
) -> dict:
    """One entry of health_probe's ``results``."""
    return {"name": name, "url": url, "ok": ok, "status": status, "reason": reason, "json": json, "latency_ms": 3.0}


def alert(name: str | None, uid: str | None = None) -> dict:
    out: dict[str, t.Any] = {"labels": {"alertname": name} if name else {}, "status": {"state": "active"}}
    if uid is not None:
        out["annotations"] = {"__dashboardUid__": uid, "summary": "..."}
    return out


def alerts_probe(alerts: t.Any, status: int = 200) -> dict:
    return probe("firing alerts", BASE + ALERTS_PATH, status, "forbidden: ...", json=alerts)


HEALTH_OK = probe("Grafana health", BASE + "/api/health", 200, "ok", ok=True, json={"database": "ok"})
FIRING = [alert("HighLatency", "system-overview"), alert("DiskFull"), alert("Stray", "unknown-board"), alert(None, "")]


def test_targets_default_dashboards_and_all_alerts() -> None:
    targets = grafana_targets(BASE, BOARDS, "all", ALERTS_PATH)
    assert targets == [
        {"name": "Grafana health", "url": BASE + "/api/health", "expected_json": {"database": "ok"}},
        {
            "name": "dashboard System Overview (uid system-overview)",
            "url": BASE + "/api/dashboards/uid/system-overview",
            "expected_json": {"dashboard": {"uid": "system-overview"}},
        },
        {
            "name": "dashboard OCR Pipeline (uid ocr-pipeline)",
            "url": BASE + "/api/dashboards/uid/ocr-pipeline",
            "expected_json": {"dashboard": {"uid": "ocr-pipeline"}},
        },
        {"name": "firing alerts", "url": BASE + ALERTS_PATH, "forbidden_items": [{"path": "$", "match": {}}]},
    ]


def test_targets_without_dashboards_and_per_scope() -> None:
    assert [x["name"] for x in grafana_targets(BASE, [], "all", ALERTS_PATH)] == ["Grafana health", "firing alerts"]
    assert grafana_targets(BASE, [], "dashboards", ALERTS_PATH)[-1]["forbidden_items"] == []
    assert grafana_targets(BASE, [], "none", ALERTS_PATH) == [grafana_targets(BASE, [], "all", ALERTS_PATH)[0]]
    scoped = grafana_targets(BASE, BOARDS, "dashboards", ALERTS_PATH)[-1]["forbidden_items"]
    assert scoped == [
        {"path": "$", "match": {"annotations": {"__dashboardUid__": "system-overview"}}},
        {"path": "$", "match": {"annotations": {"__dashboardUid__": "ocr-pipeline"}}},
    ]
    assert "firing alerts" not in [x["name"] for x in grafana_targets(BASE, BOARDS, "none", ALERTS_PATH)]


def test_targets_strip_trailing_slashes_and_encode_the_uid() -> None:
    boards = [{"uid": "ocr pipeline/ä?&#%"}, {"uid": "x", "name": ""}, {"uid": "x", "name": "Second"}]
    targets = grafana_targets("https://grafana.example/sub///", boards, "none", ALERTS_PATH)
    assert targets[0]["url"] == "https://grafana.example/sub/api/health"
    assert targets[1] == {
        "name": "dashboard ocr pipeline/ä?&#% (uid ocr pipeline/ä?&#%)",
        "url": "https://grafana.example/sub/api/dashboards/uid/ocr%20pipeline/%C3%A4%3F%26%23%25",
        "expected_json": {"dashboard": {"uid": "ocr pipeline/ä?&#%"}},
    }
    # A repeated uid is probed once, in its first place, under its last name.
    assert [x["name"] for x in targets[2:]] == ["dashboard Second (uid x)"]


def test_a_refused_token_is_one_sentence_for_all_its_urls() -> None:
    result = {
        "results": [
            HEALTH_OK,
            probe("dashboard System Overview (uid system-overview)", BASE + "/api/dashboards/uid/so", 401),
            alerts_probe(None, 403),
            probe("dashboard OCR Pipeline (uid ocr-pipeline)", BASE + "/api/dashboards/uid/op", 401),
        ]
    }
    assert grafana_problems(result, BOARDS, "all") == [
        (
            "Grafana refused the token (HTTP 401/403 for dashboard System Overview (uid system-overview), firing "
            "alerts, dashboard OCR Pipeline (uid ocr-pipeline)): set verify_grafana_token to a valid service account "
            "token with the Viewer role"
        )
    ]


def test_firing_alerts_by_scope() -> None:
    result = {"results": [HEALTH_OK, alerts_probe(FIRING)]}
    tail = " (resolve or silence them in Grafana; verify_grafana_alerts_scope says which count)"
    assert grafana_problems(result, BOARDS, "all") == [
        "4 firing alert(s): HighLatency on dashboard System Overview, DiskFull, Stray on dashboard unknown-board, ?"
        + tail
    ]
    # An alert of a dashboard that is not checked, or of none, does not count.
    assert grafana_problems(result, BOARDS, "dashboards") == [
        "1 firing alert(s): HighLatency on dashboard System Overview" + tail
    ]


def test_missing_dashboard_and_other_failures() -> None:
    result = {
        "results": [
            probe("dashboard OCR Pipeline (uid ocr-pipeline)", BASE + "/api/dashboards/uid/ocr-pipeline", 404),
            probe("Grafana health", BASE + "/api/health", None, "connection refused (is Grafana running?)"),
            probe("dashboard x (uid x)", BASE + "/api/dashboards/uid/x", 500, "status 500 not in [200]"),
            alerts_probe({"error": "not a list"}),
        ]
    }
    assert grafana_problems(result, BOARDS, "all") == [
        "dashboard OCR Pipeline (uid ocr-pipeline) not found (404): provision it or correct verify_grafana_dashboards",
        "Grafana health: connection refused (is Grafana running?)",
        "dashboard x (uid x): status 500 not in [200]",
        "firing alerts: forbidden: ...",
    ]


def test_no_results_fall_back_to_msg_then_a_plain_sentence() -> None:
    assert grafana_problems({"results": [], "msg": "targets: bad value"}, BOARDS, "all") == ["targets: bad value"]
    assert grafana_problems({"msg": "missing required arguments"}, BOARDS, "all") == ["missing required arguments"]
    assert grafana_problems({}, BOARDS, "all") == ["the Grafana probe failed"]
    assert grafana_problems(None, BOARDS, "all") == ["the Grafana probe failed"]
    # All green (the rescue does not run then): still never empty.
    assert grafana_problems({"results": [HEALTH_OK], "msg": "all 1 URLs healthy"}, [], "all") == ["all 1 URLs healthy"]


def test_filter_module_exports_both() -> None:
    assert set(FilterModule().filters()) == {"grafana_targets", "grafana_problems"}


# --------------------------------------------------------------------------- the old Jinja, byte for byte


def render_old(var: str, url: str, boards: list[dict], scope: str, result: dict | None = None) -> t.Any:
    """``var`` of OLD_VARS as ansible-core renders it (result None: __verify_grafana undefined)."""
    variables: dict[str, t.Any] = {name: trust_as_template(expr) for name, expr in yaml.safe_load(OLD_VARS).items()}
    variables.update(
        verify_grafana_url=url,
        verify_grafana_dashboards=boards,
        verify_grafana_alerts_scope=scope,
        verify_grafana_alerts_path=ALERTS_PATH,
    )
    if result is not None:
        variables["__verify_grafana"] = result
    return Templar(loader=DataLoader(), variables=variables).template(trust_as_template("{{ " + var + " }}"))


ODD_BOARDS = [
    {"uid": "ocr pipeline/ä?&#%", "name": None},
    {"uid": "x"},
    {"uid": "x", "name": "Second"},
    {"uid": 17, "name": "Numbered"},
]
URLS = [BASE, BASE + "/", "https://grafana.example/sub///"]
SCOPES = ["all", "dashboards", "none"]


@pytest.mark.parametrize("boards", [BOARDS, [], ODD_BOARDS], ids=["default", "none", "odd"])
@pytest.mark.parametrize("scope", SCOPES)
@pytest.mark.parametrize("url", URLS)
def test_targets_same_as_the_old_jinja(url: str, boards: list[dict], scope: str) -> None:
    assert grafana_targets(url, boards, scope, ALERTS_PATH) == render_old("_verify_grafana_targets", url, boards, scope)


RESULTS = {
    "undefined": None,
    "empty": {},
    "msg only": {"msg": "targets: bad value", "failed": True},
    "no results, msg": {"results": [], "msg": "0 of 0 URLs failed"},
    "msg null": {"results": [], "msg": None},
    "all green": {"results": [HEALTH_OK], "msg": "all 1 URLs healthy"},
    "refused": {
        "results": [
            probe("Grafana health", BASE + "/api/health", 403.0),
            alerts_probe(None, 401),
            probe("dashboard x (uid x)", BASE + "/api/dashboards/uid/x", 403),
        ]
    },
    "mixed": {
        "msg": "3 of 4 URLs failed: ...",
        "results": [
            HEALTH_OK,
            probe("dashboard OCR Pipeline (uid ocr-pipeline)", BASE + "/api/dashboards/uid/ocr-pipeline", 404),
            probe("dashboard x (uid x)", "/other/404", 404, "status 404 not in [200]"),
            probe("Grafana health", BASE + "/api/health", None, "timed out"),
            probe("d", None, 404, None),
            alerts_probe([*FIRING, "not a dict", {"labels": {"alertname": None}, "annotations": {}}]),
            probe("dashboard 17 (uid 17)", BASE + "/api/dashboards/uid/17", 401),
        ],
    },
    "no alert counts": {"results": [alerts_probe([alert("Stray", "unknown-board")])]},
    "alerts not a list": {"results": [alerts_probe("oops"), alerts_probe({"a": 1}), alerts_probe(FIRING, 500)]},
    "numbered board": {
        "results": [alerts_probe([{"annotations": {"__dashboardUid__": 17}, "labels": {"alertname": 5}}])]
    },
}


@pytest.mark.parametrize("boards", [BOARDS, [], ODD_BOARDS], ids=["default", "none", "odd"])
@pytest.mark.parametrize("scope", SCOPES)
@pytest.mark.parametrize("name", list(RESULTS))
def test_problems_same_as_the_old_jinja(name: str, boards: list[dict], scope: str) -> None:
    result = RESULTS[name]
    # roles/verify/vars/main.yml passes `__verify_grafana | default({})`.
    new = grafana_problems({} if result is None else result, boards, scope)
    assert new == render_old("_verify_grafana_problems", BASE, boards, scope, result)
