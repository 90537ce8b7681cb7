# Copyright (c) ablage.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A picture of a deploy: its phases, the maintenance window and what users saw, on one time axis.

PRIVATE: an implementation detail of the checklist report (plugins/filter/checklist.py).

An on-call person reading a report wants to see at a glance where the time and the outage went;
a table of timestamps does not show that. The SVG is plain text with no dependency, so the
report role writes it next to the Markdown on any controller.
"""

from __future__ import annotations

import datetime as dt
import typing as t
from html import escape

Dict = t.Dict[str, t.Any]

# state.json's timestamps of a deploy, in the order they happen, and how the picture names them.
EVENTS = (
    ("started_at", "lock taken"),
    ("maintenance_on_at", "maintenance on"),
    ("started_services_at", "release started"),
    ("serving_at", "users served"),
    ("finished_at", "done"),
    ("rolled_back_at", "rolled back"),
)

WIDTH, LEFT, RIGHT = 960, 150, 30
ROWS = {"phases": 60, "window": 110, "users": 150}


def _time(value: t.Any) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


def timeline_events(state: Dict) -> list[Dict]:
    """The recorded moments of the deploy in ``state`` (state.json), oldest first."""
    events = [{"at": state.get(key), "event": name} for key, name in EVENTS if _time(state.get(key))]
    return sorted(events, key=lambda e: t.cast(dt.datetime, _time(e["at"])))


def timeline_svg(report: Dict) -> str:
    """The report's timeline as SVG; an empty string when the run recorded no moments to draw."""
    events = [(t.cast(dt.datetime, _time(e.get("at"))), str(e.get("event"))) for e in report.get("timeline") or []]
    events = [(at, name) for at, name in events if at is not None]
    downtime = report.get("downtime") or {}
    window = downtime.get("maintenance_window") or {}
    outages = [(_time(o.get("start")), _time(o.get("end"))) for o in downtime.get("outages") or []]
    moments = [at for at, _name in events] + [m for m in (_time(window.get("on")), _time(window.get("off"))) if m]
    moments += [m for m in (_time(downtime.get("observed_from")), _time(downtime.get("observed_to"))) if m]
    if len(events) < 2 or not moments:
        return ""
    start, end = min(moments), max(moments)
    span = max((end - start).total_seconds(), 1.0)

    def x(at: dt.datetime) -> float:
        return round(LEFT + (at - start).total_seconds() / span * (WIDTH - LEFT - RIGHT), 1)

    parts = [_header(report, span)]
    parts += _phases(events, x, end)
    parts += _window(window, x, end)
    parts += _users(downtime, outages, x, start, end)
    parts += _axis(start, span, x)
    parts.append("</svg>\n")
    return "\n".join(parts)


def _header(report: Dict, span: float) -> str:
    versions = report.get("versions") or {}
    title = f"{report.get('playbook') or 'run'} {versions.get('from') or ''} -> {versions.get('to') or ''}"
    title += f" ({report.get('result') or 'result not recorded'}, {span:.0f} s)"
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="230" font-family="sans-serif" '
        f'font-size="12">\n<title>{escape(title)}</title>\n'
        f'<text x="10" y="20" font-size="14" font-weight="bold">{escape(title)}</text>\n'
        + "".join(
            f'<text x="10" y="{y + 14}">{label}</text>\n'
            for label, y in (("Phases", ROWS["phases"]), ("Maintenance", ROWS["window"]), ("Users", ROWS["users"]))
        )
    )


def _phases(events: list[tuple[dt.datetime, str]], x: t.Callable[[dt.datetime], float], end: dt.datetime) -> list[str]:
    out, colours = [], ("#cfe2f3", "#d9ead3")
    for n, (at, name) in enumerate(events):
        until = events[n + 1][0] if n + 1 < len(events) else end
        width = max(x(until) - x(at), 1.0)
        out.append(
            f'<rect class="phase" x="{x(at)}" y="{ROWS["phases"]}" width="{width}" height="20" '
            f'fill="{colours[n % 2]}" stroke="#666"><title>{escape(name)} at {at:%H:%M:%S}</title></rect>'
        )
        out.append(
            f'<text x="{x(at) + 2}" y="{ROWS["phases"] - 4 - (n % 2) * 12}" font-size="10">{escape(name)}</text>'
        )
    return out


def _window(window: Dict, x: t.Callable[[dt.datetime], float], end: dt.datetime) -> list[str]:
    on, off = _time(window.get("on")), _time(window.get("off"))
    if on is None:
        return [f'<text x="{LEFT}" y="{ROWS["window"] + 14}" fill="#666">maintenance not switched on</text>']
    until = off or end
    label = f"maintenance {on:%H:%M:%S} - " + (f"{off:%H:%M:%S}" if off else "still on at the end")
    return [
        (
            f'<rect class="maintenance" x="{x(on)}" y="{ROWS["window"]}" width="{max(x(until) - x(on), 1.0)}" '
            f'height="20" fill="#fce5cd" stroke="#e69138"><title>{escape(label)}</title></rect>'
        ),
        f'<text x="{x(on) + 2}" y="{ROWS["window"] + 14}" font-size="10">{escape(label)}</text>',
    ]


def _users(
    downtime: Dict,
    outages: list[tuple[dt.datetime | None, dt.datetime | None]],
    x: t.Callable[[dt.datetime], float],
    start: dt.datetime,
    end: dt.datetime,
) -> list[str]:
    if not downtime.get("measured"):
        return [f'<text x="{LEFT}" y="{ROWS["users"] + 14}" fill="#666">not measured (no downtime probe)</text>']
    seen_from = _time(downtime.get("observed_from")) or start
    seen_to = _time(downtime.get("observed_to")) or end
    served = max(x(seen_to) - x(seen_from), 1.0)
    out = [
        (
            f'<rect class="served" x="{x(seen_from)}" y="{ROWS["users"]}" width="{served}" '
            f'height="20" fill="#b6d7a8"><title>users served</title></rect>'
        )
    ]
    for begin, until in outages:
        if begin is None:
            continue
        stop = until or seen_to
        out.append(
            f'<rect class="outage" x="{x(begin)}" y="{ROWS["users"]}" width="{max(x(stop) - x(begin), 1.0)}" '
            f'height="20" fill="#e06666"><title>requests failed {begin:%H:%M:%S} - {stop:%H:%M:%S}</title></rect>'
        )
    saw = downtime.get("users_saw_s")
    if saw is not None:
        out.append(
            f'<text x="{LEFT}" y="{ROWS["users"] + 36}" font-size="10">users saw {saw} s of failed requests</text>'
        )
    return out


def _axis(start: dt.datetime, span: float, x: t.Callable[[dt.datetime], float]) -> list[str]:
    out = [f'<line x1="{LEFT}" y1="200" x2="{WIDTH - RIGHT}" y2="200" stroke="#333"/>']
    step = next(s for s in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600) if span / s <= 12)
    for n in range(int(span // step) + 1):
        at = start + dt.timedelta(seconds=n * step)
        out.append(f'<line x1="{x(at)}" y1="196" x2="{x(at)}" y2="204" stroke="#333"/>')
        out.append(f'<text x="{x(at) - 12}" y="218" font-size="10">+{n * step}s</text>')
    out.append(f'<text x="10" y="218" font-size="10">{start:%Y-%m-%d %H:%M:%S} UTC</text>')
    return out


def history_svg(history: t.Sequence[Dict]) -> str:
    """The downtime of the last deploys as bars: the maintenance window and what users saw, one row each.

    Rows are the deploy records of ``history`` (history.jsonl, oldest first), newest on top; "" when
    there is none. A deploy whose window or downtime was not recorded shows that in words, not as 0.
    """
    deploys = [h for h in history or [] if h.get("action") == "deploy"][::-1]
    if not deploys:
        return ""
    spans = [_window_s(h) for h in deploys] + [h.get("downtime_s") for h in deploys]
    longest = max([float(s) for s in spans if isinstance(s, (int, float))] + [1.0])
    scale = (WIDTH - 320 - RIGHT) / longest
    height = 50 + 34 * len(deploys)
    parts = [
        (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" font-family="sans-serif" '
            'font-size="12">'
        ),
        "<title>Downtime of the last deploys</title>",
        (
            '<text x="10" y="20" font-size="14" font-weight="bold">Downtime of the last deploys '
            "(orange: maintenance window, red: failed user requests)</text>"
        ),
    ]
    for n, record in enumerate(deploys):
        parts += _history_row(record, 40 + 34 * n, scale)
    parts.append("</svg>\n")
    return "\n".join(parts)


def _window_s(record: Dict) -> float | None:
    window = record.get("maintenance_window") or {}
    on, off = _time(window.get("on")), _time(window.get("off"))
    return (off - on).total_seconds() if on and off else None


def _history_row(record: Dict, y: int, scale: float) -> list[str]:
    when = str(record.get("started_at") or record.get("recorded_at") or "")[:16].replace("T", " ")
    label = f"{record.get('version') or 'version not recorded'} {when} {record.get('result') or ''}".strip()
    out = [f'<text x="10" y="{y + 11}">{escape(label)}</text>']
    window, downtime = _window_s(record), record.get("downtime_s")
    if window is not None:
        out.append(
            f'<rect class="window" x="300" y="{y}" width="{max(window * scale, 1.0):.1f}" height="12" '
            f'fill="#f6b26b"><title>maintenance window {window:.1f} s</title></rect>'
        )
    if isinstance(downtime, (int, float)):
        out.append(
            f'<rect class="downtime" x="300" y="{y + 14}" width="{max(float(downtime) * scale, 1.0):.1f}" '
            f'height="12" fill="#e06666"><title>users saw {downtime} s</title></rect>'
        )
    text = "; ".join(
        part
        for part in (
            f"window {window:.1f} s" if window is not None else "window not recorded",
            f"users saw {downtime} s" if isinstance(downtime, (int, float)) else "downtime not measured",
        )
    )
    out.append(f'<text x="10" y="{y + 26}" font-size="10" fill="#444">{escape(text)}</text>')
    return out
