# Copyright (c) ablage.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Which firing Prometheus alerts a deploy caused by its own downtime, and which it found.

A window deploy stops the backend for as long as the window lasts; an alert such as
``up == 0 for: 30s`` begins during that window and is still firing when verify reads the alerts
right after maintenance off, although the release is healthy (measured at 10 GB: a 225 s window).
Such an alert only needs time to resolve, and verify waits for it with a bound. An alert that was
already pending or firing before the deploy began is not the deploy's doing: it fails at once.
Prometheus' ``activeAt`` is when the alert became pending, so it says which of the two it is.
"""

from __future__ import annotations

import datetime as dt
import re
import typing as t

Dict = t.Dict[str, t.Any]

# RFC 3339 as Prometheus writes it: nanoseconds and "Z", or an offset; the fraction is cut to microseconds.
_RFC3339 = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)?$")


def parse_time(value: t.Any) -> dt.datetime | None:
    """An aware datetime from RFC 3339 text (UTC when no zone is given), None when it is not one."""
    match = _RFC3339.match(str(value or "").strip())
    if not match:
        return None
    base, fraction, zone = match.groups()
    text = base + (fraction[:7] if fraction else "") + ("+00:00" if zone in (None, "Z") else zone)
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        return None


def _firing(answer: t.Any) -> list[Dict]:
    data = answer.get("data") if isinstance(answer, dict) else None
    alerts = data.get("alerts") if isinstance(data, dict) else None
    return [a for a in alerts or [] if isinstance(a, dict) and a.get("state") == "firing"]


def _name(alert: Dict) -> str:
    labels = alert.get("labels") or {}
    return str(labels.get("alertname") or "?")


def alerts_by_start(answer: t.Any, since: str = "") -> Dict:
    """The firing alerts of Prometheus' ``/api/v1/alerts`` answer, split at ``since`` (the deploy's start).

    ``before``: firing and active since before ``since``, or with no readable ``activeAt``, or every firing
    alert when ``since`` is empty (a verify run outside a deploy has no window of its own).
    ``during``: firing and active since ``since`` or later. Each a list of ``"name (active since T)"``.
    """
    start = parse_time(since)
    out: Dict = {"before": [], "during": []}
    for alert in _firing(answer):
        active = parse_time(alert.get("activeAt"))
        key = "during" if start is not None and active is not None and active >= start else "before"
        out[key].append(f"{_name(alert)} (active since {alert.get('activeAt') or 'an unknown time'})")
    return out


class FilterModule:
    def filters(self) -> dict[str, t.Callable[..., t.Any]]:
        return {"alerts_by_start": alerts_by_start}
