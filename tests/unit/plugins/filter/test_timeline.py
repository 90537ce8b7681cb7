"""checklist_timeline_svg: a deploy's phases, its maintenance window and what users saw, as one picture."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from ansible_collections.ablage.ops.plugins.filter.checklist import (
    checklist_history_svg,
    checklist_report,
    checklist_timeline_svg,
)
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


def test_the_history_picture_has_a_row_per_deploy_newest_on_top() -> None:
    history = [
        {
            "action": "deploy",
            "version": "1.1.0",
            "started_at": "2026-01-27T10:00:00Z",
            "result": "success",
            "downtime_s": 12.5,
            "maintenance_window": {"on": "2026-01-27T10:00:04Z", "off": "2026-01-27T10:00:24Z"},
        },
        {"action": "rollback", "version": "1.1.0", "result": "success"},
        {"action": "deploy", "version": "1.2.0", "started_at": "2026-01-28T09:30:00Z", "result": "rolled_back"},
    ]
    svg = checklist_history_svg(history)
    texts = [e.text or "" for e in _parse(svg).iter(f"{SVG}text")]
    rows = [t for t in texts if t.startswith("1.")]
    assert rows == ["1.2.0 2026-01-28 09:30 rolled_back", "1.1.0 2026-01-27 10:00 success"]
    assert "window not recorded; downtime not measured" in texts
    assert "window 20.0 s; users saw 12.5 s" in texts
    (window,) = _rects(svg, "window")
    (downtime,) = _rects(svg, "downtime")
    assert float(window.get("width") or 0) > float(downtime.get("width") or 0)


def test_no_history_picture_without_deploys() -> None:
    assert checklist_history_svg([]) == ""
    assert checklist_history_svg([{"action": "rollback", "version": "1.0.0"}]) == ""
