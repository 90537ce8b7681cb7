# Copyright (c) ablage.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The seed's production checklist, filled in from what the roles recorded (filters of ablage.ops.report).

``checklist_report`` takes one dict of evidence (built by roles/report, see its tasks) and returns the report:
every item of the seed checklist under its German name, with a status (``checked``, ``not_checked``,
``not_run``, ``waived``, ``planned``) and the evidence behind it. ``checklist_markdown`` renders it.
Only named fields of the registered results are read; whole results (with their invocation
arguments) never reach the report, and ``redact`` values are replaced wherever they would appear.
"""

from __future__ import annotations

import json
import re
import typing as t
from urllib.parse import unquote

CHECKED = "checked"
NOT_CHECKED = "not_checked"
NOT_RUN = "not_run"
WAIVED = "waived"
PLANNED = "planned"
STATUSES = (CHECKED, NOT_CHECKED, NOT_RUN, WAIVED, PLANNED)
FAILED_RESULTS = ("failed", "rolled_back", "rollback_failed")

Dict = t.Dict[str, t.Any]

SECTIONS = (
    ("pre_deployment", "Pre-Deployment Checkliste"),
    ("deployment", "Deployment-Prozess"),
    ("post_deployment", "Post-Deployment Checkliste"),
    ("rollback", "Rollback-Prozedur"),
)

# Seed item -> the quality gates (preflight_quality_commands names) that prove it.
QUALITY_ITEMS = (
    ("tests", "Tests bestanden", r"(?i)pytest|\btests?\b|coverage"),
    ("type_checking", "Type Checking clean", r"(?i)mypy|pyright|type"),
    ("linting", "Linting clean", r"(?i)ruff|flake8|pylint|lint|black|format"),
    ("security_scan", "Security Scan", r"(?i)bandit|safety|audit|security|semgrep"),
)


def _get(data: t.Any, *path: t.Any, default: t.Any = None) -> t.Any:
    for key in path:
        if (isinstance(data, dict) and key in data) or (
            isinstance(data, list) and isinstance(key, int) and -len(data) <= key < len(data)
        ):
            data = data[key]
        else:
            return default
    return default if data is None else data


def _ran(result: t.Any) -> bool:
    return isinstance(result, dict) and bool(result) and not result.get("skipped")


def _failed(result: t.Any) -> bool:
    return isinstance(result, dict) and bool(result.get("failed"))


def _msg(result: t.Any) -> str:
    return str(_get(result, "msg", default="") or "").strip()[:300]


def _human_bytes(size: t.Any) -> str:
    try:
        value = float(size)
    except (TypeError, ValueError):
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return "?"  # pragma: no cover


class _Builder:
    def __init__(self, ev: Dict) -> None:
        self.ev = ev
        self.reg: Dict = ev.get("registered") or {}
        self.state: Dict = ev.get("state") or {}
        self.check_mode = bool(ev.get("check_mode"))
        self.playbook = str(ev.get("playbook") or "deploy")
        self.items: list[Dict] = []
        self.preflight: list[Dict] = [g for g in ev.get("preflight") or [] if isinstance(g, dict)]

    # -------------------------------------------------------------- helpers
    def r(self, name: str) -> t.Any:
        return self.reg.get(name)

    def add(
        self, section: str, group: str, item_id: str, item: str, status: str, evidence: str, **details: t.Any
    ) -> None:
        entry: Dict = {
            "section": section,
            "group": group,
            "id": item_id,
            "item": item,
            "status": status,
            "evidence": re.sub(r"\s+", " ", evidence).strip(),
        }
        if details:
            entry["details"] = details
        self.items.append(entry)

    def status_of(self, *results: t.Any, planned: bool = True) -> str:
        """Status from registered results: failed beats planned beats checked; none ran = not run."""
        ran = [r for r in results if _ran(r)]
        if any(_failed(r) for r in ran):
            return NOT_CHECKED
        if self.check_mode and planned:
            return PLANNED if ran or self.playbook in ("deploy", "verify", "rollback") else NOT_RUN
        return CHECKED if ran else NOT_RUN

    def gates(self, section: str) -> list[Dict]:
        return [g for g in self.preflight if g.get("section") == section]

    def gate_status(self, gates: list[Dict]) -> str:
        if not gates:
            return NOT_RUN
        if any(not _truthy(g.get("ok")) for g in gates):
            return NOT_CHECKED
        if any(_truthy(g.get("waived")) for g in gates):
            return WAIVED
        return CHECKED

    def gate_evidence(self, gates: list[Dict], empty: str) -> str:
        if not gates:
            return empty
        return "; ".join(f"{g.get('gate')}: {str(g.get('evidence', '')).strip()}" for g in gates)

    def not_run_reason(self, what: str) -> str:
        failure = self.ev.get("failure") or ""
        if failure:
            return f"not reached: the run failed before {what} (see what failed)"
        if self.playbook not in ("deploy",):
            return f"not part of playbooks/{self.playbook}.yml"
        if self.ev.get("result") == "unchanged":
            return "not needed: the target version already runs, nothing to deploy"
        return f"not run ({what} skipped by tags or settings)"

    # -------------------------------------------------------------- pre-deployment
    def pre_deployment(self) -> None:
        sec = "pre_deployment"
        quality = self.gates("quality")
        used: set[int] = set()
        for item_id, name, pattern in QUALITY_ITEMS:
            matched = []
            for index, gate in enumerate(quality):
                if index not in used and re.search(pattern, str(gate.get("gate", ""))):
                    matched.append(gate)
                    used.add(index)
            evidence = self.gate_evidence(
                matched,
                "no gate for this item in preflight_quality_commands"
                if quality
                else "code-quality gates not run (preflight_quality_enabled, tags, or no preflight in this run)",
            )
            coverage = None
            for gate in matched:
                found = re.search(r"coverage ([0-9.]+) %", str(gate.get("evidence", "")))
                if found:
                    coverage = float(found.group(1))
            self.add(
                sec,
                "1. Code-Qualität",
                item_id,
                name,
                self.gate_status(matched),
                evidence,
                gates=[g.get("gate") for g in matched],
                coverage_percent=coverage,
            )
        for index, gate in enumerate(quality):
            if index not in used:
                self.add(
                    sec,
                    "1. Code-Qualität",
                    "quality_extra",
                    str(gate.get("gate")),
                    self.gate_status([gate]),
                    self.gate_evidence([gate], ""),
                )

        group = "2. Datenbank"
        preview = self.gates("database")
        migration = self.r("__deploy_migration")
        sql = ""
        for gate in preview:
            sql = str(gate.get("sql") or "") or sql
        if not sql:
            sql = str(_get(migration, "sql", default="") or "")
        verdict = self.migration_verdict(preview, migration)
        self.add(
            sec,
            group,
            "migrations",
            "Migrations aktuell",
            self.gate_status(preview),
            self.gate_evidence(preview, "migration SQL preview not run (preflight_db)") + f"; verdict: {verdict}",
            verdict=verdict,
            sql_preview=sql,
        )
        self.add(sec, group, "backup", "Backup erstellt", *self.backup_item())
        before = self.r("__deploy_alembic_before")
        rev_before = _get(before, "current_before", default=self.state.get("alembic_revision_before"))
        if _ran(before) or (self.playbook == "deploy" and self.state.get("previous_version")):
            status = self.status_of(before, planned=False) if _ran(before) else CHECKED
            evidence = (
                f"rollback point recorded in state.json: version {self.state.get('previous_version', '?')}, "
                f"Alembic revision {rev_before or 'base'}, images {json.dumps(self.state.get('target_images') or {})}; "
                "rollback: playbooks/rollback.yml (automatic on failure)"
            )
        else:
            status, evidence = NOT_RUN, self.not_run_reason("recording the rollback point")
        self.add(
            sec, group, "rollback_plan", "Rollback-Plan vorbereitet", status, evidence, alembic_revision=rev_before
        )

        group = "3. Konfiguration"
        self.add_gate_items(
            sec,
            group,
            self.gates("config"),
            (
                ("environment", "Environment Variables gesetzt", "environment variables"),
                ("no_secrets", "Keine Secrets im Code", "no secrets in code"),
                ("tls", "SSL Zertifikate gültig", "TLS certificate"),
            ),
            "not run (preflight_config)",
        )

        group = "4. Infrastructure"
        infra = self.gates("infra")
        images = [g for g in infra if str(g.get("gate", "")).startswith("image ")]
        self.add(
            sec,
            group,
            "images",
            "Docker Images gebaut",
            self.gate_status(images),
            self.gate_evidence(images, "not run (preflight_infra)"),
        )
        self.add_gate_items(
            sec,
            group,
            infra,
            (
                ("gpu", "GPU Verfügbarkeit", "GPU"),
                ("disk", "Disk Space", "disk space"),
                ("memory", "Memory", "memory"),
            ),
            "not run (preflight_infra)",
        )

    def add_gate_items(
        self, sec: str, group: str, gates: list[Dict], items: t.Iterable[tuple[str, str, str]], not_run: str
    ) -> None:
        """One checklist item per pre-flight gate name: (item id, seed name, gate name)."""
        for item_id, name, gate_name in items:
            matched = [g for g in gates if g.get("gate") == gate_name]
            self.add(sec, group, item_id, name, self.gate_status(matched), self.gate_evidence(matched, not_run))

    def migration_verdict(self, preview: list[Dict], migration: t.Any) -> str:
        if preview:
            gate = preview[-1]
            evidence = str(gate.get("evidence", ""))
            if not _truthy(gate.get("ok")):
                return "REFUSED: " + evidence.strip()[:200]
            if re.search(r"destructive \[\]", evidence):
                return "safe (no destructive statements)"
            return "destructive statements approved (preflight_allow_destructive_migration)"
        if _ran(migration):
            destructive = _get(migration, "destructive", default=[])
            return "destructive: " + ", ".join(str(d.get("kind")) for d in destructive) if destructive else "safe"
        return "not previewed"

    def backup_item(self) -> tuple[str, str]:
        backup = self.r("__deploy_pg_backup")
        if not _ran(backup):
            return NOT_RUN, self.not_run_reason("the backup")
        if _failed(backup):
            return NOT_CHECKED, f"pg_backup failed: {_msg(backup)}"
        restore = _get(backup, "verification", "restore", default={})
        restore_text = (
            "test restore "
            + (
                "equal (tables and revision match)"
                if restore.get("equal")
                else "DIFFERS: " + json.dumps(restore.get("mismatches"))
            )
            if restore
            else f"verification {_get(backup, 'verification', 'level', default='none')}"
        )
        if self.check_mode:
            return PLANNED, f"would write {_get(backup, 'backup_path', default='?')} and verify it"
        size = _get(backup, "size", default="?")
        return CHECKED, (
            f"{_get(backup, 'backup_path', default='?')}, {_human_bytes(size)} "
            f"({size} bytes), sha256 {_get(backup, 'checksum', default='?')}, {restore_text}"
        )

    # -------------------------------------------------------------- deployment
    def deployment(self) -> None:
        sec = "deployment"
        maint_on = self.r("__deploy_maintenance")
        self.add(
            sec,
            "Deployment-Prozess",
            "maintenance_on",
            "1. Maintenance Mode aktivieren",
            self.status_of(maint_on) if _ran(maint_on) or (self.check_mode and self.playbook == "deploy") else NOT_RUN,
            (
                f"on at {self.state.get('maintenance_on_at', '?')}; a user request answered "
                f"{_get(maint_on, 'verification', 'status', default='?')} "
                f"(verified: {_get(maint_on, 'verification', 'ok', default='?')})"
            )
            if _ran(maint_on) and not self.check_mode
            else self.plan_or_not_run("switching maintenance on and checking that users get 503"),
        )

        api = self.r("__deploy_api_backup_status")
        pg_status, pg_evidence = self.backup_item()
        if _ran(api) and self.check_mode:
            api_text = "API full backup would be started (check mode: nothing sent)"
        elif _ran(api):
            api_text = (
                f"API full backup {_get(api, 'backup', 'status', default='?')}"
                f"{' (attached to the one already running)' if _get(api, 'attached', default=False) else ''}: "
                f"{_get(api, 'backup', 'file', default='?')}, {_get(api, 'backup', 'size_bytes', default='?')} bytes, "
                f"sha256 {_get(api, 'backup', 'sha256', default='?')}"
            )
        else:
            api_text = "API full backup not run"
        status = pg_status if pg_status != NOT_RUN else self.status_of(api)
        if _failed(api):
            status = NOT_CHECKED
        self.add(
            sec,
            "Deployment-Prozess",
            "backup",
            "2. Backup erstellen",
            status,
            f"{api_text}; pg_backup: {pg_evidence}" if status != NOT_RUN else self.plan_or_not_run("the backup"),
        )

        # The primary drains the shared queue (before the backups), every app host stops its own containers.
        queue, stop = self.r("__deploy_queue"), self.r("__deploy_stop")
        stopped = (_ran(stop) and not _failed(stop)) or self.state.get("phase") in ("stopped", "migrating", "started")
        stop_evidence: list[str] = []
        if _ran(queue):
            stop_evidence.append(
                "OCR queue drained (pending 0, processing 0) after "
                f"{_get(queue, 'results', 0, 'elapsed_s', default='?')} s instead of a fixed sleep 30"
            )
        if _ran(queue) or _ran(stop):
            stop_evidence.append("worker stopped, then backend" if stopped else "stop not reached")
        self.add(
            sec,
            "Deployment-Prozess",
            "stop",
            "3. Services stoppen",
            self.status_of(queue, stop)
            if _ran(queue) or _ran(stop)
            else (PLANNED if self.check_mode and self.playbook == "deploy" else NOT_RUN),
            "; ".join(stop_evidence) if stop_evidence else self.plan_or_not_run("stopping the services"),
        )

        pull = self.r("__deploy_pull")
        migration = self.r("__deploy_migration")
        digests = [
            f"{_get(r, 'item')}@{_get(r, 'image', 'RepoDigests', 0, default='?').split('@')[-1][:19]}"
            for r in _get(pull, "results", default=[])
        ]
        rev_from = _get(migration, "current_before", default=self.state.get("alembic_revision_before"))
        rev_to = _get(migration, "current_after", default=self.state.get("alembic_revision_after"))
        if _ran(migration):
            evidence = (
                f"pulled {', '.join(digests) or '?'}; Alembic {rev_from or 'base'} -> "
                + (
                    f"{_get(migration, 'head', default='?')} "
                    f"(planned, pending {_get(migration, 'pending', default=[])})"
                    if self.check_mode
                    else f"{rev_to} (applied {_get(migration, 'pending', default=[])})"
                )
                + ("" if not _failed(migration) else f"; migration FAILED: {_msg(migration)}")
                + (
                    f"; services started at {self.state.get('started_services_at')}"
                    if self.state.get("started_services_at")
                    and not self.check_mode
                    and self.state.get("current_version") == self.ev.get("version_to")
                    else ""
                )
            )
            status = self.status_of(pull, migration)
            if status == CHECKED and self.state.get("phase") == "migrating":
                status = NOT_CHECKED  # migrated, but the start never completed
        else:
            status = (
                self.status_of(pull)
                if _failed(pull)
                else (PLANNED if self.check_mode and self.playbook == "deploy" else NOT_RUN)
            )
            evidence = (
                f"pull failed: {_msg(pull)}" if _failed(pull) else self.plan_or_not_run("pull, migrate and start")
            )
        self.add(
            sec,
            "Deployment-Prozess",
            "deploy",
            "4. Deployment durchführen",
            status,
            evidence,
            alembic_from=rev_from,
            alembic_to=None if self.check_mode else rev_to,
            images=digests,
        )

        health = self.r("__verify_health")
        self.add(
            sec,
            "Deployment-Prozess",
            "health",
            "5. Health Checks",
            self.status_of(health),
            self.health_evidence(health),
        )

        maint_off = self.r("__verify_maintenance")
        self.add(
            sec,
            "Deployment-Prozess",
            "maintenance_off",
            "6. Maintenance Mode deaktivieren",
            self.status_of(maint_off),
            (
                f"off at {self.ev.get('maintenance_off_at') or '?'}; a user request answered "
                f"{_get(maint_off, 'verification', 'status', default='?')} (served: "
                f"{_get(maint_off, 'verification', 'ok', default='?')})"
            )
            if _ran(maint_off) and not self.check_mode
            else self.plan_or_not_run("switching maintenance off and checking that users are served"),
        )

        smoke = self.r("__verify_smoke_items") or {}
        ran = [item for item in smoke.values() if item.get("ran")]
        self.add(
            sec,
            "Deployment-Prozess",
            "smoke",
            "7. Smoke Tests",
            (NOT_CHECKED if any(not i.get("ok") for i in ran) else CHECKED) if ran else self.status_of(None),
            "; ".join(f"{i['step']}: {i.get('evidence')}" for i in ran)
            if ran
            else self.plan_or_not_run("the smoke tests"),
        )

    def plan_or_not_run(self, what: str) -> str:
        if self.check_mode and self.playbook in ("deploy", "verify", "rollback"):
            return f"planned: {what} (check mode changes nothing)"
        return self.not_run_reason(what)

    def health_evidence(self, health: t.Any) -> str:
        if not _ran(health):
            return self.plan_or_not_run("the health checks")
        parts = []
        for probe in _get(health, "results", default=[]):
            parts.append(
                f"{probe.get('name') or probe.get('url')} {probe.get('status')} "
                f"{'ok' if probe.get('ok') else 'FAILED'} "
                f"{probe.get('latency_ms')} ms"
            )
        return "; ".join(parts) or _msg(health)

    # -------------------------------------------------------------- post-deployment
    def post_deployment(self) -> None:
        sec = "post_deployment"
        group = "1. Monitoring"
        grafana = self.r("__verify_grafana")
        if _ran(grafana):
            evidence, details = _grafana_evidence(grafana)
            self.add(
                sec,
                group,
                "grafana",
                GRAFANA_ITEM,
                self.status_of(grafana),
                evidence,
                **details,
            )
        else:
            self.add(
                sec,
                group,
                "grafana",
                GRAFANA_ITEM,
                NOT_RUN,
                "not run: no Grafana is configured for this host (verify_grafana_url is empty)"
                if isinstance(grafana, dict) and grafana.get("skipped")
                else self.plan_or_not_run("the Grafana check"),
            )
        targets = self.r("__verify_prom_targets")
        alerts = self.r("__verify_prom_alerts")
        active = _get(targets, "json", "data", "activeTargets", default=[])
        firing = [a for a in _get(alerts, "json", "data", "alerts", default=[]) if a.get("state") == "firing"]
        self.add(
            sec,
            group,
            "prometheus",
            "Prometheus Targets",
            self.status_of(targets, alerts),
            (
                ", ".join(f"{_get(x, 'labels', 'job', default='?')} {x.get('health')}" for x in active)
                + f"; firing alerts: {', '.join(_get(a, 'labels', 'alertname', default='?') for a in firing) or 'none'}"
            )
            if _ran(targets)
            else self.plan_or_not_run("the Prometheus check"),
            targets={_get(x, "labels", "job", default="?"): x.get("health") for x in active},
            firing_alerts=[_get(a, "labels", "alertname") for a in firing],
        )
        logs = self.r("__verify_logs")
        pattern = self.ev.get("log_error_pattern") or r"(?i)\b(error|critical|traceback)\b"
        errors = [line for line in _get(logs, "stdout_lines", default=[]) if re.search(pattern, line)]
        log_status = self.status_of(logs)
        if log_status == CHECKED and errors:
            log_status = NOT_CHECKED
        self.add(
            sec,
            group,
            "logs",
            "Logs prüfen",
            log_status,
            f"{len(_get(logs, 'stdout_lines', default=[]))} recent log lines read, {len(errors)} error line(s)"
            + (f": {errors[0][:120]}" if errors else "")
            if _ran(logs)
            else self.plan_or_not_run("the log check"),
        )

        group = "2. Performance"
        latency = self.r("__verify_latency")
        samples = sorted(float(x.get("latency_ms") or 0) for x in _get(latency, "results", default=[]))
        median = samples[len(samples) // 2] if samples else None
        limit = self.ev.get("latency_max_ms")
        lat_status = self.status_of(latency)
        if lat_status == CHECKED and median is not None and limit is not None and median >= float(limit):
            lat_status = NOT_CHECKED
        self.add(
            sec,
            group,
            "response_times",
            "Response Times",
            lat_status,
            f"GET /api/v1/health median {median} ms of {samples} (limit {limit} ms)"
            if samples
            else self.plan_or_not_run("the latency check"),
            median_ms=median,
            samples_ms=samples,
            limit_ms=limit,
        )
        gpu = self.r("__verify_gpu")
        if _ran(gpu) and not _failed(gpu) and not _get(gpu, "device_count", default=0):
            gpu_status, gpu_evidence = (
                WAIVED,
                "no GPU required on this host (verify_gpu_required=false) and none present",
            )
        elif _ran(gpu):
            gpu_status = self.status_of(gpu)
            gpu_evidence = "; ".join(
                f"{d.get('name')}: {d.get('memory_used_gb')} of {d.get('memory_total_gb')} GB "
                f"({d.get('memory_used_percent')} %)"
                for d in _get(gpu, "devices", default=[])
            ) + (f"; {'; '.join(_get(gpu, 'failures', default=[]))}" if _failed(gpu) else "")
        else:
            gpu_status, gpu_evidence = self.status_of(gpu), self.plan_or_not_run("the GPU memory check")
        self.add(sec, group, "gpu_memory", "GPU Memory", gpu_status, gpu_evidence)

        group = "3. Funktionalität"
        smoke = self.r("__verify_smoke_items") or {}
        for item_id, name in (
            ("login", "Login funktioniert"),
            ("upload", "Dokument-Upload funktioniert"),
            ("ocr", "OCR-Verarbeitung funktioniert"),
            ("export", "Export funktioniert"),
            ("admin_panel", "Admin-Panel erreichbar"),
        ):
            item = smoke.get(item_id) or {}
            if item.get("ran"):
                status, evidence = (CHECKED if item.get("ok") else NOT_CHECKED), str(item.get("evidence"))
            elif smoke and item_id not in smoke:
                status, evidence = NOT_RUN, "no smoke step proves it (verify_smoke_checklist)"
            else:
                status, evidence = self.status_of(None), self.plan_or_not_run("the smoke tests")
            self.add(sec, group, item_id, name, status, evidence)

        group = "4. Kommunikation"
        notify = self.ev.get("notify") or {}
        if notify.get("configured"):
            status = PLANNED if self.check_mode else (CHECKED if notify.get("ok") else NOT_CHECKED)
            evidence = (
                "would POST the summary to the notification webhook"
                if self.check_mode
                else f"summary POSTed to the notification webhook: status {notify.get('status')}"
            )
        else:
            status, evidence = NOT_RUN, "no notification webhook configured (ablage_notify_webhook_url)"
        self.add(sec, group, "team_informed", "Team informiert", status, evidence)
        for item_id, name, key in (
            ("release_notes", "Release Notes erstellt", "release_notes"),
            ("changelog", "Changelog aktualisiert", "changelog"),
        ):
            record = self.ev.get(key) or {}
            if record.get("path") and not self.check_mode:
                status, evidence = (CHECKED if record.get("ok", True) else NOT_CHECKED), f"written: {record['path']}"
            elif self.check_mode and self.playbook == "deploy":
                status, evidence = PLANNED, f"planned: {name} after the deploy"
            else:
                status, evidence = (
                    NOT_RUN,
                    "only after a deploy that ran"
                    + ("" if self.playbook == "deploy" else f" (not part of playbooks/{self.playbook}.yml)"),
                )
            self.add(sec, group, item_id, name, status, evidence)

    # -------------------------------------------------------------- rollback
    def rollback(self) -> None:
        sec = "rollback"
        group = "Rollback-Prozedur"
        restore = self.r("__rollback_restore")
        downgrade = self.r("__rollback_downgrade")
        health = self.r("__rollback_health")
        rolled = _ran(health) or _ran(restore) or _ran(downgrade)
        nothing = (
            "not needed: nothing failed"
            if not self.ev.get("failure")
            else "not run: "
            + (
                "the failure came before maintenance mode, nothing had changed"
                if self.playbook == "deploy"
                else "no rollback in this run"
            )
        )
        versions = f"{self.state.get('target_version', '?')} -> {self.state.get('previous_version', '?')}"
        self.add(
            sec,
            group,
            "rollback_images",
            "1. Sofortiger Rollback",
            self.status_of(health) if rolled else NOT_RUN,
            f"images back to {self.state.get('previous_version', '?')} ({versions})" if rolled else nothing,
        )
        if _ran(restore):
            db_status = self.status_of(restore)
            db_evidence = (
                f"restored {_get(restore, 'backup_path', default='?')}; comparison "
                f"{json.dumps(_get(restore, 'comparison', default={}), sort_keys=True)[:200]}"
            )
        elif _ran(downgrade):
            db_status = self.status_of(downgrade)
            db_evidence = (
                f"alembic downgrade {_get(downgrade, 'current_before', default='?')} "
                f"-> {_get(downgrade, 'current_after', default='?')}"
            )
        elif rolled:
            db_status, db_evidence = NOT_RUN, "database untouched (the deploy had not migrated)"
        else:
            db_status, db_evidence = NOT_RUN, nothing
        self.add(sec, group, "rollback_database", "2. Datenbank Rollback", db_status, db_evidence)
        self.add(
            sec,
            group,
            "post_rollback",
            "3. Post-Rollback (Health Checks, Logs)",
            self.status_of(health) if rolled else NOT_RUN,
            self.health_evidence(health) if rolled else nothing,
        )


GRAFANA_ITEM = "Grafana Dashboards (System Overview grün, OCR Pipeline aktiv, keine Alerts)"


def _grafana_evidence(probe: Dict) -> tuple[str, Dict]:
    """What the verify role's one health_probe of Grafana saw: health, each dashboard, the firing alerts.

    The targets are told apart by URL (roles/verify/vars/main.yml builds them): ``/api/health``,
    ``/api/dashboards/uid/<uid>``, and the alerts endpoint (Alertmanager v2: a list of firing alerts).
    """
    parts: list[str] = []
    details: Dict = {"dashboards": {}, "firing_alerts": []}
    alert_results: list[Dict] = []
    for result in _get(probe, "results", default=[]):
        if not isinstance(result, dict):
            continue
        url = str(result.get("url") or "")
        body = result.get("json")
        if re.search(r"/api/health/?$", url):
            details["version"] = _get(body, "version")
            details["database"] = _get(body, "database")
            parts.append(
                f"Grafana {details['version'] or '?'}, database {details['database'] or '?'}"
                + ("" if result.get("ok") else f" (FAILED: {result.get('reason')})")
            )
        elif "/api/dashboards/uid/" in url:
            uid = unquote(url.rsplit("/api/dashboards/uid/", 1)[1].split("?", maxsplit=1)[0])
            title = _get(body, "dashboard", "title")
            found = bool(result.get("ok"))
            details["dashboards"][uid] = {"found": found, "title": title}
            name = title or re.sub(r"^dashboard (.*) \(uid .*\)$", r"\1", str(result.get("name") or uid))
            if found:
                state = "found"
            elif result.get("status") == 404:
                state = "NOT FOUND (404)"
            else:
                state = f"not confirmed ({result.get('reason')})"
            parts.append(f"dashboard {name} ({uid}) {state}")
        else:
            alert_results.append(result)
    titles = {uid: board["title"] or uid for uid, board in details["dashboards"].items()}
    for result in alert_results:
        body = result.get("json")
        alerts = [a for a in body if isinstance(a, dict)] if isinstance(body, list) else []
        names = []
        for alert in alerts:
            uid = _get(alert, "annotations", "__dashboardUid__")
            names.append(
                str(_get(alert, "labels", "alertname", default="?"))
                + (f" (dashboard {titles.get(uid, uid)})" if uid else "")
            )
        details["firing_alerts"] = names
        if result.get("status") == 200 and isinstance(body, list):
            parts.append(f"{len(names)} firing alert(s)" + (f": {', '.join(names[:10])}" if names else ""))
        else:
            parts.append(f"firing alerts not read ({result.get('reason')})")
    if any(_get(r, "status") in (401, 403) for r in _get(probe, "results", default=[])):
        parts.append("Grafana refused the token: check verify_grafana_token")
    return "; ".join(parts) or _msg(probe) or "Grafana probed", details


def _truthy(value: t.Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "yes", "1", "on")
    return bool(value)


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


# Failed task name (roles' task names) -> the item it belongs to; first match wins.
FAILED_TASK_ITEMS = (
    (r"(?i)^Rollback \| .*(restore|downgrade)", "rollback_database"),
    (r"(?i)^Rollback \| .*(post-rollback|health)", "post_rollback"),
    (r"(?i)^Rollback \| ", "rollback_images"),
    (r"(?i)maintenance mode on", "maintenance_on"),
    (r"(?i)maintenance mode off", "maintenance_off"),
    (r"(?i)^Deploy \| .*backup", "backup"),
    (r"(?i)^Deploy \| .*(queue|stop the)", "stop"),
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


def _mark_failed_items(items: list[Dict], failure: str) -> None:
    """The item whose task failed is not_checked, with the failure in front of its evidence."""
    for chunk in failure.split("; ROLLBACK FAILED: "):
        found = re.match(r'\s*"([^"]+)"', chunk)
        if not found:
            continue
        task = found.group(1)
        item_id = next((item for pattern, item in FAILED_TASK_ITEMS if re.search(pattern, task)), None)
        if item_id in ("login", "upload", "ocr", "export", "admin_panel"):
            ids = {item_id, "smoke"}
        else:
            ids = {item_id} if item_id else set()
        for entry in items:
            if entry["id"] in ids and entry["section"] in ("deployment", "post_deployment", "rollback"):
                entry["status"] = NOT_CHECKED
                if not entry["evidence"].startswith("FAILED"):
                    entry["evidence"] = f"FAILED here: {chunk.strip()[:300]}; " + entry["evidence"]


def checklist_report(evidence: Dict, redact: list[t.Any] | None = None) -> Dict:
    """The filled-in checklist (see the module docstring); ``redact``: values that must never appear."""
    ev = dict(evidence or {})
    builder = _Builder(ev)
    sections = [s for s in (ev.get("sections") or [s[0] for s in SECTIONS]) if s in dict(SECTIONS)]
    for section in sections:
        getattr(builder, section)()
    for extra in ev.get("extra_items") or []:
        status = str(extra.get("status", NOT_RUN))
        builder.add(
            str(extra.get("section", "extra")),
            str(extra.get("group", "")),
            str(extra.get("id", "extra")),
            str(extra.get("item", "?")),
            status if status in STATUSES else NOT_RUN,
            str(extra.get("evidence", "")),
        )

    failure = str(ev.get("failure") or "")
    _mark_failed_items(builder.items, failure)
    result = str(ev.get("result") or "")
    if not result:
        result = ("failed" if failure else "planned") if builder.check_mode else ("failed" if failure else "success")
    state = builder.state
    migration = builder.r("__deploy_migration")
    # Without a migration in this run (pre-flight only), the preview's "<current> -> <head>" is the plan.
    preview = re.match(r"\s*(\S+) -> (\S+),", str((builder.gates("database") or [{}])[-1].get("evidence", "")))
    preview_from, preview_head = (preview.group(1), preview.group(2)) if preview else (None, None)
    preview_sql = next(
        (i["details"].get("sql_preview") for i in builder.items if i["id"] == "migrations" and i.get("details")), ""
    )
    counts = {s: sum(1 for i in builder.items if i["status"] == s) for s in STATUSES}
    report: Dict = {
        "report_version": 1,
        "title": "Production Deployment Checklist — Ablage-System",
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
        "alembic": {
            "from": _get(migration, "current_before", default=state.get("alembic_revision_before") or preview_from),
            "to": None
            if builder.check_mode
            else _get(migration, "current_after", default=state.get("alembic_revision_after")),
            "after_rollback": _get(builder.r("__rollback_restore"), "comparison", "actual_revision")
            or _get(builder.r("__rollback_downgrade"), "current_after"),
            "head": _get(migration, "head", default=preview_head),
            "pending": _get(migration, "pending", default=[]),
            "preview_verdict": builder.migration_verdict(builder.gates("database"), migration),
            "sql_preview": preview_sql or None,
        },
        "backup": _backup_summary(builder.r("__deploy_pg_backup"), builder.check_mode),
        "downtime": _downtime_summary(
            ev.get("downtime") or {},
            ev.get("maintenance_on_at") or state.get("maintenance_on_at"),
            ev.get("maintenance_off_at"),
        ),
        "counts": counts,
        "items": builder.items,
    }
    if result in FAILED_RESULTS or counts[NOT_CHECKED]:
        report["escalation_contacts"] = ev.get("contacts") or []
    secrets = [str(s) for s in (redact or []) if s is not None and len(str(s)) >= 4]
    return t.cast(Dict, _redact(report, secrets))


def _backup_summary(backup: t.Any, check_mode: bool) -> Dict | None:
    if not _ran(backup) or check_mode:
        return None
    restore = _get(backup, "verification", "restore", default={})
    return {
        "path": _get(backup, "backup_path"),
        "size_bytes": _get(backup, "size"),
        "sha256": _get(backup, "checksum"),
        "verification": _get(backup, "verification", "level"),
        "test_restore": None if not restore else ("equal" if restore.get("equal") else "differs"),
        "failed": _failed(backup),
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


MARK = {
    CHECKED: "[x]",
    NOT_CHECKED: "[ ] **FAILED**",
    NOT_RUN: "[ ] *not run*",
    WAIVED: "[x] *waived*",
    PLANNED: "[ ] *planned*",
}


def _md_cell(value: t.Any) -> str:
    return str("-" if value in (None, "") else value).replace("|", "\\|").replace("\n", " ")


def checklist_markdown(report: Dict) -> str:
    """The report as Markdown, in the seed checklist's order and words."""
    lines: list[str] = []
    add = lines.append
    add(f"# {report.get('title')}")
    add("")
    result = str(report.get("result"))
    add(
        f"**Result: {result.upper().replace('_', ' ')}**"
        + (" (check mode: this is the plan, nothing was changed)" if report.get("check_mode") else "")
    )
    add("")
    versions = report.get("versions") or {}
    alembic = report.get("alembic") or {}
    backup = report.get("backup") or {}
    down = report.get("downtime") or {}
    window = down.get("maintenance_window") or {}
    add("| | |")
    add("|---|---|")
    for label, value in (
        ("Playbook", f"playbooks/{report.get('playbook')}.yml"),
        ("Host", report.get("host")),
        ("Run id", report.get("run_id")),
        ("Who ran it", report.get("who")),
        ("Started / finished (UTC)", f"{report.get('started_at') or '-'} / {report.get('finished_at') or '-'}"),
        (
            "Version",
            f"{versions.get('from') or '-'} → {versions.get('to') or '-'}"
            + (
                f" (running now: {versions['running']})"
                if versions.get("running") not in (None, versions.get("to"))
                else ""
            ),
        ),
        (
            "Alembic revision",
            (
                f"{alembic.get('from') or 'base'} → {alembic.get('to') or alembic.get('head') or '-'}"
                if alembic.get("from") or alembic.get("to") or alembic.get("head")
                else "-"
            )
            + (" (planned)" if report.get("check_mode") or (not alembic.get("to") and alembic.get("head")) else "")
            + (f", rolled back to {alembic['after_rollback']}" if alembic.get("after_rollback") else ""),
        ),
        ("Migration SQL preview", alembic.get("preview_verdict")),
        (
            "Backup",
            f"{backup.get('path')} ({backup.get('size_bytes')} bytes), sha256 {backup.get('sha256')}, "
            f"test restore {backup.get('test_restore') or backup.get('verification')}"
            if backup
            else None,
        ),
        (
            "Maintenance window",
            f"{window.get('on') or '-'} → {window.get('off') or '-'}"
            + (f" ({window.get('duration_s')} s)" if window.get("duration_s") is not None else ""),
        ),
        (
            "Downtime users saw",
            (
                f"{down.get('users_saw_s')} s in {len(down.get('outages') or [])} outage(s), "
                f"{down.get('samples')} requests, availability {down.get('availability_percent')} %"
            )
            if down.get("measured")
            else "not measured (no downtime probe in this run)",
        ),
        ("Items", ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in (report.get("counts") or {}).items())),
    ):
        add(f"| {label} | {_md_cell(value)} |")
    if report.get("failure"):
        add("")
        add(f"**What failed:** {report['failure']}")
    for outage in down.get("outages") or []:
        if outage is (down.get("outages") or [None])[0]:
            add("")
            add("Outages as users saw them:")
            add("")
        reasons = ", ".join(f"{k} x{v}" for k, v in (outage.get("reasons") or {}).items())
        add(
            f"- {outage.get('start')} → {outage.get('end')}: {outage.get('duration_s')} s ({reasons})"
            + (" — still down at the last request" if outage.get("open") else "")
        )
    if report.get("escalation_contacts") is not None:
        add("")
        add("## Notfall-Kontakte")
        add("")
        add("| Rolle | Kontakt | Verfügbarkeit |")
        add("|-------|---------|---------------|")
        for contact in report.get("escalation_contacts") or []:
            who = " ".join(str(contact.get(k)) for k in ("name", "email", "phone") if contact.get(k))
            add(f"| {_md_cell(contact.get('role'))} | {_md_cell(who)} | {_md_cell(contact.get('availability'))} |")
    titles = dict(SECTIONS)
    current_section = current_group = None
    for item in report.get("items") or []:
        if item["section"] != current_section:
            current_section, current_group = item["section"], None
            add("")
            add(f"## {titles.get(item['section'], item['section'])}")
        if item.get("group") and item["group"] != current_group and item["group"] != titles.get(item["section"]):
            current_group = item["group"]
            add("")
            add(f"### {current_group}")
        if item["group"] == titles.get(item["section"]) and current_group is None:
            current_group = item["group"]
            add("")
        add(f"- {MARK.get(item['status'], '[ ]')} **{item['item']}** — {item['evidence']}")
        sql = (item.get("details") or {}).get("sql_preview")
        if sql:
            add("")
            add("  ```sql")
            lines.extend("  " + line for line in str(sql).rstrip().splitlines())
            add("  ```")
    add("")
    return "\n".join(lines)


class FilterModule:
    def filters(self) -> dict[str, t.Callable[..., t.Any]]:
        return {"checklist_report": checklist_report, "checklist_markdown": checklist_markdown}
