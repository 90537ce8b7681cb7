# Copyright (c) ablage.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""One registered result in words: the evidence sentences of the checklist items (PRIVATE to this collection).

_checklist_items decides which result proves which item and with what status; how a module's
result reads is decided here, once per module, so that the rule for missing fields holds in one
place: a field the module did not record is left out of the sentence or named as missing
("checksum not recorded"), never printed as "?" or "None". Only named fields are read.
"""

from __future__ import annotations

import json
import re
import typing as t
from urllib.parse import unquote

from ansible_collections.ablage.ops.plugins.module_utils._alerts import alert_name
from ansible_collections.ablage.ops.plugins.module_utils._checklist_common import (
    Dict,
    failed,
    get,
    human_bytes,
    join_known,
    known,
    msg,
    with_note,
)


# -------------------------------------------------------------- pre-flight gates and backups
def coverage_percent(gates: list[Dict]) -> float | None:
    """The last ``coverage N %`` the matched quality gates reported."""
    coverage = None
    for gate in gates:
        found = re.search(r"coverage ([0-9.]+) %", str(gate.get("evidence", "")))
        if found:
            coverage = float(found.group(1))
    return coverage


def pg_backup_text(backup: t.Any) -> str:
    """The pg_backup file: where, how big, its checksum and how it was verified."""
    size = get(backup, "size")
    checksum = known(get(backup, "checksum"))
    return join_known(
        (
            known(get(backup, "backup_path")) or "backup path not recorded",
            f"{human_bytes(size)} ({size} bytes)" if human_bytes(size) else None,
            f"sha256 {checksum}" if checksum else "checksum not recorded",
            verification_text(backup),
        )
    )


def api_backup_text(api: t.Any) -> str:
    """The API's full backup (api_backup): its state, file, size and checksum, or why it failed."""
    state = known(get(api, "backup", "status")) or ("failed" if failed(api) else None)
    head = join_known(("API full backup", state), " ")
    if get(api, "attached", default=False):
        head += " (attached to the one already running)"
    file, size, sha = (known(get(api, "backup", key)) for key in ("file", "size_bytes", "sha256"))
    if file is None and size is None and sha is None:
        return join_known((head, msg(api) if failed(api) else "no backup file recorded"), ": ")
    return f"{head}: " + join_known(
        (file, f"{size} bytes" if size is not None else None, f"sha256 {sha}" if sha else "checksum not recorded")
    )


def verification_text(backup: t.Any) -> str:
    """How pg_backup verified its file: the test restore's outcome, else the verification level."""
    restore = get(backup, "verification", "restore", default={})
    if restore:
        if restore.get("equal"):
            return "test restore equal (tables and revision match)"
        mismatches = known(restore.get("mismatches"))
        return "test restore " + join_known(("DIFFERS", None if mismatches is None else json.dumps(mismatches)), ": ")
    level = known(get(backup, "verification", "level"))
    return "verification not recorded" if level is None else f"verification {level}"


# -------------------------------------------------------------- deployment steps
def user_request(result: t.Any, label: str) -> str:
    """What a user request answered after a maintenance switch (maintenance_toggle's ``verification``)."""
    status = known(get(result, "verification", "status"))
    ok = get(result, "verification", "ok")
    if status is None and ok is None:
        if failed(result):
            return "not verified: the switch failed before a user request was tried"
        return "not verified: no user request was recorded"
    answered = "a user request's answer was not recorded" if status is None else f"a user request answered {status}"
    return with_note(answered, None if ok is None else f"{label}: {ok}")


def health_text(health: t.Any) -> str:
    """Each URL health_probe asked, with its status, verdict and latency as far as recorded."""
    parts = []
    for probe in get(health, "results", default=[]):
        latency = known(probe.get("latency_ms"))
        parts.append(
            join_known(
                (
                    probe.get("name") or probe.get("url") or "a probe without URL",
                    probe.get("status"),
                    "ok" if probe.get("ok") else "FAILED",
                    f"{latency} ms" if latency is not None else None,
                ),
                " ",
            )
        )
    return join_known(parts, "; ") or msg(health) or "the health probe recorded no results"


def ready_after(ready: t.Any) -> str:
    """How long after the start the slowest health endpoint answered, as a clause; blank when not recorded."""
    waits = [known(probe.get("elapsed_s")) for probe in get(ready, "results", default=[])]
    waits = [w for w in waits if w is not None]
    if not waits or failed(ready):
        return ""
    return f", every health endpoint answered {max(waits)} s later (polled, no fixed wait)"


def smoke_evidence(step: Dict) -> str:
    """What a smoke step that ran recorded; without a record, whether it passed is still known."""
    recorded = known(step.get("evidence"))
    if recorded is not None:
        return str(recorded)
    return f"{'passed' if step.get('ok') else 'FAILED'}, its evidence was not recorded"


def image_digests(pull: t.Any) -> list[str]:
    """``service@sha256:<12 hex>`` for every pulled image, as far as the pull recorded it."""
    digests = []
    for result in get(pull, "results", default=[]):
        service = known(get(result, "item"))
        digest = known(get(result, "image", "RepoDigests", 0))
        digest = None if digest is None else str(digest).rsplit("@", maxsplit=1)[-1][:19]
        if service is not None and digest is not None:
            digests.append(f"{service}@{digest}")
        elif service is not None:
            digests.append(f"{service} (digest not recorded)")
        elif digest is not None:
            digests.append(digest)
    return digests


def alembic_step(rev_from: t.Any, rev_to: t.Any, note: str, missing: str) -> str:
    start = rev_from or "base"
    if known(rev_to) is None:
        return f"Alembic from {start}, {missing} not recorded ({note})"
    return f"Alembic {start} -> {rev_to} ({note})"


def restore_text(restore: t.Any) -> str:
    """pg_backup state=restored: which file came back and how the database compared to its manifest."""
    path = known(get(restore, "backup_path"))
    comparison = known(get(restore, "comparison"))
    return join_known(
        (
            f"restored {path}" if path else "restored the backup (its path is not recorded)",
            "comparison not recorded"
            if comparison is None
            else f"comparison {json.dumps(comparison, sort_keys=True)[:200]}",
        ),
        "; ",
    )


def revisions(before: t.Any, after: t.Any) -> str:
    before, after = known(before), known(after)
    if before is not None and after is not None:
        return f"{before} -> {after}"
    if after is not None:
        return f"to {after} (revision before not recorded)"
    if before is not None:
        return f"from {before} (revision after not recorded)"
    return "(revisions not recorded)"


# -------------------------------------------------------------- monitoring
def target_name(target: t.Any) -> str:
    return str(known(get(target, "labels", "job")) or known(get(target, "scrapeUrl")) or "a target without job label")


def gpu_evidence(gpu: Dict) -> str:
    """Each GPU's memory, then why the check failed (gpu_check's ``failed_checks``)."""
    devices = get(gpu, "devices", default=[])
    memory = join_known((_gpu_memory(index, d) for index, d in enumerate(devices)), "; ")
    if not memory:
        memory = f"{get(gpu, 'device_count', default=0)} GPU(s), no memory figures recorded"
    if not failed(gpu):
        return memory
    reasons = get(gpu, "failed_checks") or get(gpu, "failures") or [msg(gpu)]
    return join_known((memory, join_known(reasons, "; ")), "; ")


def _gpu_memory(index: int, device: Dict) -> str:
    """``<model>: <used> of <total> GB (<percent> %)``, each figure only where gpu_check could read it."""
    name = known(device.get("name")) or f"GPU {index if device.get('index') is None else device['index']}"
    used, total = known(device.get("memory_used_gb")), known(device.get("memory_total_gb"))
    if used is not None and total is not None:
        memory = f"{used} of {total} GB"
    elif used is not None:
        memory = f"{used} GB in use (total not recorded)"
    elif total is not None:
        memory = f"{total} GB in total (use not recorded)"
    else:
        memory = "memory not recorded"
    percent = known(device.get("memory_used_percent"))
    memory = memory if percent is None else f"{memory} ({percent} %)"
    return join_known((f"{name}: {memory}", device.get("error")), ", ")


# -------------------------------------------------------------- Grafana
def grafana_evidence(probe: Dict) -> tuple[str, Dict]:
    """What the verify role's one health_probe of Grafana saw: health, each dashboard, the firing alerts.

    The targets are told apart by URL (roles/verify/vars/main.yml builds them): ``/api/health``,
    ``/api/dashboards/uid/<uid>``, and the alerts endpoint (Alertmanager v2: a list of firing alerts).
    """
    parts: list[str] = []
    details: Dict = {"dashboards": {}, "firing_alerts": []}
    alert_results: list[Dict] = []
    for result in get(probe, "results", default=[]):
        if not isinstance(result, dict):
            continue
        url = str(result.get("url") or "")
        if re.search(r"/api/health/?$", url):
            parts.append(_grafana_health(result, details))
        elif "/api/dashboards/uid/" in url:
            parts.append(_grafana_dashboard(result, url, details))
        else:
            alert_results.append(result)
    titles = {uid: board["title"] or uid for uid, board in details["dashboards"].items()}
    parts.extend(_grafana_alerts(result, titles, details) for result in alert_results)
    if any(get(r, "status") in (401, 403) for r in get(probe, "results", default=[])):
        parts.append("Grafana refused the token: check verify_grafana_token")
    return "; ".join(parts) or msg(probe) or "Grafana probed", details


def _grafana_health(result: Dict, details: Dict) -> str:
    body = result.get("json")
    details["version"] = get(body, "version")
    details["database"] = get(body, "database")
    database = known(details["database"])
    text = join_known(
        (join_known(("Grafana", details["version"]), " "), None if database is None else f"database {database}")
    )
    return text if result.get("ok") else f"{text} ({join_known(('FAILED', result.get('reason')), ': ')})"


def _grafana_dashboard(result: Dict, url: str, details: Dict) -> str:
    uid = unquote(url.rsplit("/api/dashboards/uid/", 1)[1].split("?", maxsplit=1)[0])
    title = get(result.get("json"), "dashboard", "title")
    found = bool(result.get("ok"))
    details["dashboards"][uid] = {"found": found, "title": title}
    name = title or re.sub(r"^dashboard (.*) \(uid .*\)$", r"\1", str(result.get("name") or uid))
    if found:
        state = "found"
    elif result.get("status") == 404:
        state = "NOT FOUND (404)"
    else:
        state = with_note("not confirmed", result.get("reason"))
    return f"dashboard {name} ({uid}) {state}"


def _grafana_alerts(result: Dict, titles: Dict, details: Dict) -> str:
    body = result.get("json")
    alerts = [a for a in body if isinstance(a, dict)] if isinstance(body, list) else []
    names = []
    for alert in alerts:
        uid = get(alert, "annotations", "__dashboardUid__")
        names.append(alert_name(alert) + (f" (dashboard {titles.get(uid, uid)})" if uid else ""))
    details["firing_alerts"] = names
    if result.get("status") == 200 and isinstance(body, list):
        return f"{len(names)} firing alert(s)" + (f": {', '.join(names[:10])}" if names else "")
    return with_note("firing alerts not read", result.get("reason"))
