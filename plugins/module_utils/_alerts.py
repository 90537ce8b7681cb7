# Copyright (c) ablage.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Prometheus' ``/api/v1/alerts`` answer as pre-flight, verify and the report read it.

Three places judge the same answer (the monitoring gate before the lock, verify's wait after the
window, the report's evidence); reading it in one place keeps them agreeing on what "firing" is and
on how an alert is named when it has no ``alertname`` label.
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


def firing_alerts(body: t.Any) -> list[Dict]:
    """The firing alerts of a ``/api/v1/alerts`` JSON body; none when the body is not that answer."""
    data = body.get("data") if isinstance(body, dict) else None
    alerts = data.get("alerts") if isinstance(data, dict) else None
    if not isinstance(alerts, list):
        return []
    return [a for a in alerts if isinstance(a, dict) and a.get("state") == "firing"]


def alert_name(alert: t.Any) -> str:
    """The ``alertname`` label, or words that say it is missing (an empty name would read as no alert)."""
    labels = alert.get("labels") if isinstance(alert, dict) else None
    name = labels.get("alertname") if isinstance(labels, dict) else None
    return "an alert without name" if name is None or not str(name).strip() else str(name)
