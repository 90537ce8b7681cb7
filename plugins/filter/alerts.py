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

import typing as t

from ansible_collections.ablage.ops.plugins.module_utils._alerts import alert_name, firing_alerts, parse_time

Dict = t.Dict[str, t.Any]


def alerts_by_start(answer: t.Any, since: str = "") -> Dict:
    """The firing alerts of Prometheus' ``/api/v1/alerts`` answer, split at ``since`` (the deploy's start).

    ``before``: firing and active since before ``since``, or with no readable ``activeAt``, or every firing
    alert when ``since`` is empty (a verify run outside a deploy has no window of its own).
    ``during``: firing and active since ``since`` or later. Each a list of ``"name (active since T)"``.
    """
    start = parse_time(since)
    out: Dict = {"before": [], "during": []}
    for alert in firing_alerts(answer):
        active = parse_time(alert.get("activeAt"))
        key = "during" if start is not None and active is not None and active >= start else "before"
        out[key].append(f"{alert_name(alert)} (active since {alert.get('activeAt') or 'an unknown time'})")
    return out


class FilterModule:
    def filters(self) -> dict[str, t.Callable[..., t.Any]]:
        return {"alerts_by_start": alerts_by_start}
