# Copyright (c) ablage.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The seed's production checklist, filled in from what the roles recorded (filters of ablage.ops.report).

``checklist_report`` takes one dict of evidence (built by roles/report, see its tasks) and returns the report:
every item of the seed checklist under its German name, with a status (``checked``, ``not_checked``,
``not_run``, ``waived``, ``planned``) and the evidence behind it. ``checklist_markdown`` renders it.
Only named fields of the roles' published step results are read; whole results (with their invocation
arguments) never reach the report, and ``redact`` values are replaced wherever they would appear.

The work lives in module_utils, because Ansible loads every .py file in this directory as a filter
plugin: _checklist_items (one method per checklist item), _checklist_report (the report around the
items), _checklist_markdown and _timeline (the renderings); this file only names the filters.
"""

from __future__ import annotations

import typing as t

from ansible_collections.ablage.ops.plugins.module_utils._checklist_common import STATUSES, Dict
from ansible_collections.ablage.ops.plugins.module_utils._checklist_markdown import render_markdown
from ansible_collections.ablage.ops.plugins.module_utils._checklist_report import build_report
from ansible_collections.ablage.ops.plugins.module_utils._timeline import history_svg, timeline_svg

__all__ = [
    "STATUSES",
    "FilterModule",
    "checklist_history_svg",
    "checklist_markdown",
    "checklist_report",
    "checklist_timeline_svg",
]


def checklist_report(evidence: Dict, redact: list[t.Any] | None = None) -> Dict:
    """The filled-in checklist (see the module docstring); ``redact``: values that must never appear."""
    return build_report(evidence, redact)


def checklist_markdown(report: Dict) -> str:
    """The report as Markdown, in the seed checklist's order and words."""
    return render_markdown(report)


def checklist_timeline_svg(report: Dict) -> str:
    """The run as a picture (phases, maintenance window, what users saw); "" when there is nothing to draw."""
    return timeline_svg(report)


def checklist_history_svg(history: list[Dict]) -> str:
    """The downtime of the last deploys (history.jsonl records) as bars; "" when there is none."""
    return history_svg(history)


class FilterModule:
    def filters(self) -> dict[str, t.Callable[..., t.Any]]:
        return {
            "checklist_report": checklist_report,
            "checklist_markdown": checklist_markdown,
            "checklist_timeline_svg": checklist_timeline_svg,
            "checklist_history_svg": checklist_history_svg,
        }
