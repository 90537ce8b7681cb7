"""checklist_timeline_svg: a deploy's phases, its maintenance window and what users saw, as one picture."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from ansible_collections.ablage.ops.plugins.filter.checklist import checklist_report, checklist_timeline_svg
from ansible_collections.ablage.ops.plugins.module_utils._timeline import timeline_events

STATE = {
    "run_id": "run-7",
    "started_at": "2026-12-04T23:22:50Z",
    "maintenance_on_at": "2026-12-04T23:22:54Z",
    "started_services_at": "2026-12-04T23:23:09Z",
    "serving_at": "2026-12-04T23:23:12Z",
    "finished_at": "2026-12-04T23:23:17Z",
    "previous_version": "1.0.0",
    "target_version": "1.1.0",
}
DOWNTIME = {
    "measured": True,
    "users_saw_s": 16.8,
    "observed_from": "2026-12-04T23:22:50.8Z",
    "observed_to": "2026-12-04T23:23:16.9Z",
    "outages": [{"start": "2026-12-04T23:22:56.1Z", "end": "2026-12-04T23:23:12.9Z", "duration_s": 16.8}],
    "maintenance_window": {"on": "2026-12-04T23:22:54Z", "off": "2026-12-04T23:23:13Z"},
}
SVG = "{http://www.w3.org/2000/svg}"


def _report(**extra: object) -> dict[str, object]:
    report = {
        "playbook": "deploy",
        "result": "success",
        "versions": {"from": "1.0.0", "to": "1.1.0"},
        "timeline": timeline_events(STATE),
        "downtime": DOWNTIME,
    }
    report.update(extra)
    return report


def _parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # noqa: S314 - the collection's own output, not untrusted data


def _rects(svg: str, cls: str) -> list[ET.Element]:
    return [r for r in _parse(svg).iter(f"{SVG}rect") if r.get("class") == cls]


def test_the_phases_in_order_the_window_and_the_outage() -> None:
    svg = checklist_timeline_svg(_report())
    names = [e.text for e in _parse(svg).iter(f"{SVG}text")]
    assert [n for n in names if n in ("lock taken", "maintenance on", "release started", "users served", "done")] == [
        "lock taken",
        "maintenance on",
        "release started",
        "users served",
        "done",
    ]
    phases = _rects(svg, "phase")
    assert len(phases) == 5 and [float(p.get("x") or 0) for p in phases] == sorted(
        float(p.get("x") or 0) for p in phases
    )
    (window,) = _rects(svg, "maintenance")
    (outage,) = _rects(svg, "outage")
    # The outage lies inside what the probe saw, and starts after maintenance went on.
    assert float(outage.get("x") or 0) > float(window.get("x") or 0)
    assert "users saw 16.8 s" in svg


def test_a_window_left_on_and_no_probe_are_said_not_drawn_wrong() -> None:
    svg = checklist_timeline_svg(
        _report(downtime={"measured": False, "maintenance_window": {"on": "2026-12-04T23:22:54Z", "off": None}})
    )
    assert "still on at the end" in svg and "not measured" in svg and not _rects(svg, "outage")


def test_nothing_to_draw_for_a_run_without_moments() -> None:
    assert checklist_timeline_svg(_report(timeline=[{"at": "2026-12-04T23:22:50Z", "event": "lock taken"}])) == ""
    assert checklist_timeline_svg({"playbook": "preflight"}) == ""


def test_the_report_carries_the_timeline_only_of_its_own_run() -> None:
    mine = checklist_report({"playbook": "deploy", "run_id": "run-7", "state": STATE})
    other = checklist_report({"playbook": "rollback", "run_id": "rollback-1", "state": STATE})
    assert [e["event"] for e in mine["timeline"]][:2] == ["lock taken", "maintenance on"]
    assert other["timeline"] == []
