# Copyright (c) ablage.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The filled-in checklist as Markdown, in the seed checklist's order and words (PRIVATE to this collection).

The report (_checklist_report) is data for machines; this is the page people sign off. It reads
only the report, so what the Markdown shows and what the JSON holds can never disagree. An empty
table cell shows ``-``; inside a sentence, a value the report does not hold is left out or named
as missing, never shown as "None".
"""

from __future__ import annotations

import typing as t

from ansible_collections.ablage.ops.plugins.module_utils._checklist_common import (
    CHECKED,
    NOT_CHECKED,
    NOT_RUN,
    PLANNED,
    SECTIONS,
    WAIVED,
    Dict,
    join_known,
    known,
)

MARK = {
    CHECKED: "[x]",
    NOT_CHECKED: "[ ] **FAILED**",
    NOT_RUN: "[ ] *not run*",
    WAIVED: "[x] *waived*",
    PLANNED: "[ ] *planned*",
}
DEFAULT_TITLE = "Production Deployment Checklist"


def render_markdown(report: Dict) -> str:
    """The report as Markdown: summary table, what failed, outages, contacts, then every item."""
    result = str(known(report.get("result")) or "not recorded")
    lines = [
        f"# {known(report.get('title')) or DEFAULT_TITLE}",
        "",
        f"**Result: {result.upper().replace('_', ' ')}**"
        + (" (check mode: this is the plan, nothing was changed)" if report.get("check_mode") else ""),
        "",
        "| | |",
        "|---|---|",
    ]
    lines.extend(f"| {label} | {_md_cell(value)} |" for label, value in _summary_rows(report))
    if report.get("timeline_svg"):
        lines.extend(
            ("", f"![Timeline: the phases, the maintenance window and what users saw]({report['timeline_svg']})")
        )
    if report.get("failure"):
        lines.extend(("", f"**What failed:** {report['failure']}"))
    lines.extend(_outage_lines((report.get("downtime") or {}).get("outages") or []))
    if report.get("escalation_contacts") is not None:
        lines.extend(_contact_lines(report.get("escalation_contacts") or []))
    lines.extend(_item_lines(report.get("items") or []))
    lines.append("")
    return "\n".join(lines)


def _md_cell(value: t.Any) -> str:
    return str("-" if value in (None, "") else value).replace("|", "\\|").replace("\n", " ")


def _summary_rows(report: Dict) -> list[tuple[str, t.Any]]:
    playbook = known(report.get("playbook"))
    return [
        ("Playbook", None if playbook is None else f"playbooks/{playbook}.yml"),
        ("Host", report.get("host")),
        ("Run id", report.get("run_id")),
        ("Who ran it", report.get("who")),
        ("Started / finished (UTC)", f"{report.get('started_at') or '-'} / {report.get('finished_at') or '-'}"),
        ("Version", _version_cell(report.get("versions") or {})),
        ("Alembic revision", _alembic_cell(report.get("alembic") or {}, bool(report.get("check_mode")))),
        ("Migration SQL preview", (report.get("alembic") or {}).get("preview_verdict")),
        ("Backup", _backup_cell(report.get("backup") or {})),
        ("Maintenance window", _window_cell((report.get("downtime") or {}).get("maintenance_window") or {})),
        ("Downtime users saw", _downtime_cell(report.get("downtime") or {})),
        ("Items", ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in (report.get("counts") or {}).items())),
    ]


def _version_cell(versions: Dict) -> str:
    running = versions.get("running")
    return f"{versions.get('from') or '-'} → {versions.get('to') or '-'}" + (
        f" (running now: {running})" if running not in (None, versions.get("to")) else ""
    )


def _alembic_cell(alembic: Dict, check_mode: bool) -> str:
    start, end, head = alembic.get("from"), alembic.get("to"), alembic.get("head")
    text = f"{start or 'base'} → {end or head or '-'}" if start or end or head else "-"
    if check_mode or (not end and head):
        text += " (planned)"
    if alembic.get("after_rollback"):
        text += f", rolled back to {alembic['after_rollback']}"
    return text


def _backup_cell(backup: Dict) -> str | None:
    """Path, size, checksum and how the backup was verified; a missing checksum is said, not shown as None."""
    if not backup:
        return None
    size = known(backup.get("size_bytes"))
    path = known(backup.get("path")) or "backup path not recorded"
    file = join_known((path, None if size is None else f"({size} bytes)"), " ")
    sha256 = known(backup.get("sha256"))
    if backup.get("failed"):
        return join_known(("FAILED", file, None if sha256 is None else f"sha256 {sha256}"))
    test_restore, level = known(backup.get("test_restore")), known(backup.get("verification"))
    if test_restore is not None:
        verified = f"test restore {test_restore}"
    else:
        verified = "verification not recorded" if level is None else f"verification {level}"
    return join_known((file, "checksum not recorded" if sha256 is None else f"sha256 {sha256}", verified))


def _window_cell(window: Dict) -> str:
    duration = window.get("duration_s")
    return f"{window.get('on') or '-'} → {window.get('off') or '-'}" + (
        f" ({duration} s)" if duration is not None else ""
    )


def _downtime_cell(down: Dict) -> str:
    """What the downtime probe measured; figures it did not record (availability, ...) are left out."""
    if not down.get("measured"):
        return "not measured (no downtime probe in this run)"
    outages = f"{len(down.get('outages') or [])} outage(s)"
    users_saw, samples = known(down.get("users_saw_s")), known(down.get("samples"))
    availability = known(down.get("availability_percent"))
    return join_known(
        (
            outages if users_saw is None else f"{users_saw} s in {outages}",
            None if samples is None else f"{samples} requests",
            None if availability is None else f"availability {availability} %",
        )
    )


def _outage_lines(outages: list[Dict]) -> list[str]:
    if not outages:
        return []
    lines = ["", "Outages as users saw them:", ""]
    for outage in outages:
        start, end = known(outage.get("start")), known(outage.get("end"))
        if start is not None and end is not None:
            text = f"{start} → {end}"
        elif start is not None:
            text = f"from {start}"
        else:
            text = "start and end not recorded" if end is None else f"until {end}"
        duration = known(outage.get("duration_s"))
        reasons = ", ".join(f"{k} x{v}" for k, v in (outage.get("reasons") or {}).items())
        lines.append(
            f"- {text}"
            + ("" if duration is None else f": {duration} s")
            + (f" ({reasons})" if reasons else "")
            + (" — still down at the last request" if outage.get("open") else "")
        )
    return lines


def _contact_lines(contacts: list[Dict]) -> list[str]:
    lines = [
        "",
        "## Notfall-Kontakte",
        "",
        "| Rolle | Kontakt | Verfügbarkeit |",
        "|-------|---------|---------------|",
    ]
    for contact in contacts:
        who = " ".join(str(contact.get(k)) for k in ("name", "email", "phone") if contact.get(k))
        lines.append(f"| {_md_cell(contact.get('role'))} | {_md_cell(who)} | {_md_cell(contact.get('availability'))} |")
    return lines


def _item_lines(items: list[Dict]) -> list[str]:
    """Every item under its section and group heading; a group named like its section gets no heading."""
    lines: list[str] = []
    titles = dict(SECTIONS)
    current_section = current_group = None
    for item in items:
        if item["section"] != current_section:
            current_section, current_group = item["section"], None
            lines.extend(("", f"## {titles.get(item['section'], item['section'])}"))
        if item.get("group") and item["group"] != current_group and item["group"] != titles.get(item["section"]):
            current_group = item["group"]
            lines.extend(("", f"### {current_group}"))
        if item["group"] == titles.get(item["section"]) and current_group is None:
            current_group = item["group"]
            lines.append("")
        lines.append(f"- {MARK.get(item['status'], '[ ]')} **{item['item']}** — {item['evidence']}")
        sql = (item.get("details") or {}).get("sql_preview")
        if sql:
            lines.extend(("", "  ```sql"))
            lines.extend("  " + line for line in str(sql).rstrip().splitlines())
            lines.append("  ```")
    return lines
