# Copyright (c) ablage.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The whole report around the checklist items: result, versions, revisions, backup, downtime (PRIVATE).

The items alone (_checklist_items) do not say how the run ended; this module adds what a reader
looks for first, moves the failed task's item to not_checked with the failure in front of its
evidence, and replaces every ``redact`` value last, so no secret reaches the report by any path.
"""

from __future__ import annotations

import re
import typing as t

from ansible_collections.ablage.ops.plugins.module_utils._checklist_common import (
    FAILED_RESULTS,
    NOT_CHECKED,
    NOT_RUN,
    SECTIONS,
    STATUSES,
    Dict,
    failed,
    get,
    known,
    ran,
)
from ansible_collections.ablage.ops.plugins.module_utils._checklist_items import ChecklistBuilder
from ansible_collections.ablage.ops.plugins.module_utils._timeline import timeline_events

TITLE = "Production Deployment Checklist — Ablage-System"

# Failed task name (roles' task names) -> the item it belongs to; first match wins.
FAILED_TASK_ITEMS = (
    (r"(?i)^Rollback \| .*(restore|downgrade)", "rollback_database"),
    (r"(?i)^Rollback \| .*(post-rollback|health)", "post_rollback"),
    (r"(?i)^Rollback \| ", "rollback_images"),
    (r"(?i)maintenance mode on", "maintenance_on"),
    (r"(?i)maintenance mode off", "maintenance_off"),
    (r"(?i)^Deploy \| .*backup", "backup"),
    (r"(?i)^Deploy \| .*(queue|stop the)", "stop"),
    (r"(?i)^Proxy \| ", "deploy"),
    (r"(?i)^Deploy \| .*(pull|compose project|point of no return|alembic|migrat|start|deployed version)", "deploy"),
    (r"(?i)^Verify \| .*latency", "response_times"),
    (r"(?i)^Verify \| .*health", "health"),
    (r"(?i)^Verify \| Smoke \| Login", "login"),
    (r"(?i)^Verify \| Smoke \| Upload", "upload"),
    (r"(?i)^Verify \| Smoke \| .*OCR", "ocr"),
    (r"(?i)^Verify \| Smoke \| Export", "export"),
    (r"(?i)^Verify \| Smoke \| Admin", "admin_panel"),
    (r"(?i)^Verify \| Grafana", "grafana"),
    (r"(?i)^Verify \| Prometheus", "prometheus"),
    (r"(?i)^Verify \| Logs", "logs"),
    (r"(?i)^Verify \| GPU", "gpu_memory"),
)
SMOKE_STEPS = ("login", "upload", "ocr", "export", "admin_panel")


def build_report(evidence: Dict, redact: list[t.Any] | None = None) -> Dict:
    """The filled-in checklist of one run (see plugins/filter/checklist_report.yml)."""
    ev = dict(evidence or {})
    builder = ChecklistBuilder(ev)
    sections = [s for s in (ev.get("sections") or [s[0] for s in SECTIONS]) if s in dict(SECTIONS)]
    for section in sections:
        getattr(builder, section)()
    for extra in ev.get("extra_items") or []:
        _add_extra_item(builder, extra)
    failure = str(ev.get("failure") or "")
    mark_failed_items(builder.items, failure)
    result = str(ev.get("result") or "") or _run_result(failure, builder.check_mode)
    state = builder.state
    counts = {s: sum(1 for i in builder.items if i["status"] == s) for s in STATUSES}
    report: Dict = {
        "report_version": 1,
        "title": TITLE,
        "playbook": builder.playbook,
        "host": ev.get("host"),
        "run_id": ev.get("run_id"),
        "check_mode": builder.check_mode,
        "result": result,
        "failure": failure or None,
        "who": ev.get("who"),
        "started_at": ev.get("started_at") or state.get("started_at"),
        "finished_at": ev.get("finished_at"),
        "versions": {
            "from": ev.get("version_from") or state.get("previous_version"),
            "to": ev.get("version_to") or state.get("target_version"),
            "running": state.get("current_version"),
        },
        "alembic": _alembic_summary(builder),
        "backup": _backup_summary(builder.r("deploy", "pg_backup"), builder.check_mode),
        "downtime": _downtime_summary(
            ev.get("downtime") or {},
            ev.get("maintenance_on_at") or state.get("maintenance_on_at"),
            ev.get("maintenance_off_at"),
        ),
        "counts": counts,
        # The moments of this run's deploy (state.json is this run's only when its run id is the report's).
        "timeline": timeline_events(state) if state.get("run_id") and state.get("run_id") == ev.get("run_id") else [],
        "items": builder.items,
    }
    if result in FAILED_RESULTS or counts[NOT_CHECKED]:
        report["escalation_contacts"] = ev.get("contacts") or []
    secrets = [str(s) for s in (redact or []) if s is not None and len(str(s)) >= 4]
    return t.cast(Dict, _redact(report, secrets))


def _run_result(failure: str, check_mode: bool) -> str:
    """The result when the evidence names none: failed, else the plan (check mode) or success."""
    if failure:
        return "failed"
    return "planned" if check_mode else "success"


def _add_extra_item(builder: ChecklistBuilder, extra: Dict) -> None:
    """An item a day-2 playbook adds itself (restore, restart, ...); unknown statuses count as not run."""
    status = str(extra.get("status", NOT_RUN))
    builder.add(
        str(extra.get("section", "extra")),
        str(extra.get("group", "")),
        str(extra.get("id", "extra")),
        str(known(extra.get("item")) or known(extra.get("id")) or "unnamed item"),
        status if status in STATUSES else NOT_RUN,
        str(known(extra.get("evidence")) or "no evidence recorded"),
    )


def mark_failed_items(items: list[Dict], failure: str) -> None:
    """The item whose task failed is not_checked, with the failure in front of its evidence."""
    for chunk in failure.split("; ROLLBACK FAILED: "):
        found = re.match(r'\s*"([^"]+)"', chunk)
        if not found:
            continue
        task = found.group(1)
        item_id = next((item for pattern, item in FAILED_TASK_ITEMS if re.search(pattern, task)), None)
        ids = {item_id} if item_id else set()
        if item_id in SMOKE_STEPS:
            ids.add("smoke")  # a failed smoke step fails the deployment's smoke item too
        for entry in items:
            if entry["id"] in ids and entry["section"] in ("deployment", "post_deployment", "rollback"):
                entry["status"] = NOT_CHECKED
                if not entry["evidence"].startswith("FAILED"):
                    entry["evidence"] = f"FAILED here: {chunk.strip()[:300]}; " + entry["evidence"]


def _alembic_summary(builder: ChecklistBuilder) -> Dict:
    state = builder.state
    migration = builder.r("deploy", "migration")
    # Without a migration in this run (pre-flight only), the preview's "<current> -> <head>" is the plan.
    preview = re.match(r"\s*(\S+) -> (\S+),", str((builder.gates("database") or [{}])[-1].get("evidence", "")))
    preview_from, preview_head = (preview.group(1), preview.group(2)) if preview else (None, None)
    preview_sql = next(
        (i["details"].get("sql_preview") for i in builder.items if i["id"] == "migrations" and i.get("details")), ""
    )
    return {
        "from": get(migration, "current_before", default=state.get("alembic_revision_before") or preview_from),
        "to": None
        if builder.check_mode
        else get(migration, "current_after", default=state.get("alembic_revision_after")),
        "after_rollback": get(builder.r("rollback", "restore"), "comparison", "actual_revision")
        or get(builder.r("rollback", "downgrade"), "current_after"),
        "head": get(migration, "head", default=preview_head),
        "pending": get(migration, "pending", default=[]),
        "preview_verdict": builder.migration_verdict(builder.gates("database"), migration),
        "sql_preview": preview_sql or None,
    }


def _backup_summary(backup: t.Any, check_mode: bool) -> Dict | None:
    if not ran(backup) or check_mode:
        return None
    restore = get(backup, "verification", "restore", default={})
    return {
        "path": get(backup, "backup_path"),
        "size_bytes": get(backup, "size"),
        "sha256": get(backup, "checksum"),
        "verification": get(backup, "verification", "level"),
        "test_restore": None if not restore else ("equal" if restore.get("equal") else "differs"),
        "failed": failed(backup),
    }


def _downtime_summary(probe: Dict, on: t.Any, off: t.Any) -> Dict:
    summary: Dict = probe["summary"] if isinstance(probe.get("summary"), dict) else probe
    window: Dict = {"on": on, "off": off}
    if summary.get("maintenance_window"):
        window = dict(summary["maintenance_window"])
    return {
        "measured": bool(summary.get("samples")),
        "users_saw_s": summary.get("downtime_s"),
        "outages": [
            {k: o.get(k) for k in ("start", "end", "duration_s", "failed_samples", "reasons", "open")}
            for o in summary.get("outages") or []
        ],
        "samples": summary.get("samples"),
        "availability_percent": summary.get("availability_percent"),
        "observed_from": summary.get("observed_from"),
        "observed_to": summary.get("observed_to"),
        "maintenance_window": window,
    }


def _redact(value: t.Any, secrets: list[str]) -> t.Any:
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, "********")
        return value
    if isinstance(value, list):
        return [_redact(v, secrets) for v in value]
    if isinstance(value, dict):
        return {k: _redact(v, secrets) for k, v in value.items()}
    return value
