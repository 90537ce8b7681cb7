# Copyright (c) ablage.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Each item of the seed checklist, decided from the run's registered results (PRIVATE to this collection).

One method per item (or per group of items that read the same result), so that what proves an
item and which status it gets can be read and changed in one place. How a single result reads
as a sentence is _checklist_evidence's job. Only named fields of the results are read: whole
results carry their invocation arguments, passwords included.
"""

from __future__ import annotations

import json
import re
import typing as t

from ansible_collections.ablage.ops.plugins.module_utils._alerts import alert_name, firing_alerts
from ansible_collections.ablage.ops.plugins.module_utils._checklist_common import (
    CHECKED,
    NOT_CHECKED,
    NOT_RUN,
    PLANNED,
    WAIVED,
    Dict,
    failed,
    failed_with,
    get,
    join_known,
    known,
    ran,
    truthy,
    with_note,
)
from ansible_collections.ablage.ops.plugins.module_utils._checklist_evidence import (
    alembic_step,
    api_backup_text,
    coverage_percent,
    gpu_evidence,
    grafana_evidence,
    health_text,
    image_digests,
    pg_backup_text,
    ready_after,
    restore_text,
    revisions,
    smoke_evidence,
    target_name,
    user_request,
)

# Seed item -> the quality gates (preflight_quality_commands names) that prove it.
QUALITY_ITEMS = (
    ("tests", "Tests bestanden", r"(?i)pytest|\btests?\b|coverage"),
    ("type_checking", "Type Checking clean", r"(?i)mypy|pyright|type"),
    ("linting", "Linting clean", r"(?i)ruff|flake8|pylint|lint|black|format"),
    ("security_scan", "Security Scan", r"(?i)bandit|safety|audit|security|semgrep"),
)
QUALITY_GROUP = "1. Code-Qualität"
DATABASE_GROUP = "2. Datenbank"
DEPLOY_GROUP = "Deployment-Prozess"
ROLLBACK_GROUP = "Rollback-Prozedur"
GRAFANA_ITEM = "Grafana Dashboards (System Overview grün, OCR Pipeline aktiv, keine Alerts)"
SMOKE_ITEMS = (
    ("login", "Login funktioniert"),
    ("upload", "Dokument-Upload funktioniert"),
    ("ocr", "OCR-Verarbeitung funktioniert"),
    ("export", "Export funktioniert"),
    ("admin_panel", "Admin-Panel erreichbar"),
)


class ChecklistBuilder:
    """Collects the items of one report; each section method adds its items in the seed's order."""

    def __init__(self, ev: Dict) -> None:
        self.ev = ev
        # The roles' published step results: {"deploy": deploy_result.steps, "verify": ..., "rollback": ...}.
        self.results: Dict = ev.get("results") or {}
        self.state: Dict = ev.get("state") or {}
        self.check_mode = bool(ev.get("check_mode"))
        self.playbook = str(ev.get("playbook") or "deploy")
        self.items: list[Dict] = []
        self.preflight: list[Dict] = [g for g in ev.get("preflight") or [] if isinstance(g, dict)]

    # -------------------------------------------------------------- helpers
    def r(self, role: str, step: str) -> t.Any:
        """One step's result as the role published it; empty when the step did not run."""
        return (self.results.get(role) or {}).get(step)

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
        done = [r for r in results if ran(r)]
        if any(failed(r) for r in done):
            return NOT_CHECKED
        if self.check_mode and planned:
            return PLANNED if done or self.playbook in ("deploy", "verify", "rollback") else NOT_RUN
        return CHECKED if done else NOT_RUN

    def deploy_planned_or_not_run(self) -> str:
        return PLANNED if self.check_mode and self.playbook == "deploy" else NOT_RUN

    def gates(self, section: str) -> list[Dict]:
        return [g for g in self.preflight if g.get("section") == section]

    def gate_status(self, gates: list[Dict]) -> str:
        if not gates:
            return NOT_RUN
        if any(not truthy(g.get("ok")) for g in gates):
            return NOT_CHECKED
        if any(truthy(g.get("waived")) for g in gates):
            return WAIVED
        return CHECKED

    def gate_evidence(self, gates: list[Dict], empty: str) -> str:
        if not gates:
            return empty
        return "; ".join(
            join_known((g.get("gate"), known(g.get("evidence")) or "no evidence recorded"), ": ") for g in gates
        )

    def not_run_reason(self, what: str) -> str:
        failure = self.ev.get("failure") or ""
        if failure:
            return f"not reached: the run failed before {what} (see what failed)"
        if self.playbook not in ("deploy",):
            return f"not part of playbooks/{self.playbook}.yml"
        if self.ev.get("result") == "unchanged":
            return "not needed: the target version already runs, nothing to deploy"
        return f"not run ({what} skipped by tags or settings)"

    def plan_or_not_run(self, what: str) -> str:
        if self.check_mode and self.playbook in ("deploy", "verify", "rollback"):
            return f"planned: {what} (check mode changes nothing)"
        return self.not_run_reason(what)

    # -------------------------------------------------------------- pre-deployment
    def pre_deployment(self) -> None:
        self.quality_items()
        self.migrations_item()
        self.add("pre_deployment", DATABASE_GROUP, "backup", "Backup erstellt", *self.backup_item())
        self.rollback_plan_item()
        self.config_items()
        self.infra_items()

    def quality_items(self) -> None:
        """Each quality gate proves the first seed item its name matches; the rest are listed as they are."""
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
            self.add(
                "pre_deployment",
                QUALITY_GROUP,
                item_id,
                name,
                self.gate_status(matched),
                evidence,
                gates=[g.get("gate") for g in matched],
                coverage_percent=coverage_percent(matched),
            )
        unmatched = [gate for index, gate in enumerate(quality) if index not in used]
        self.add_extra_gates(QUALITY_GROUP, "quality_extra", unmatched, "unnamed quality gate")

    def migrations_item(self) -> None:
        preview = self.gates("database")
        migration = self.r("deploy", "migration")
        sql = next((str(g["sql"]) for g in reversed(preview) if g.get("sql")), "")
        if not sql:
            sql = str(get(migration, "sql", default="") or "")
        verdict = self.migration_verdict(preview, migration)
        self.add(
            "pre_deployment",
            DATABASE_GROUP,
            "migrations",
            "Migrations aktuell",
            self.gate_status(preview),
            f"{self.gate_evidence(preview, 'migration SQL preview not run (preflight_db)')}; verdict: {verdict}",
            verdict=verdict,
            sql_preview=sql,
        )

    def migration_verdict(self, preview: list[Dict], migration: t.Any) -> str:
        if preview:
            gate = preview[-1]
            evidence = str(known(gate.get("evidence")) or "")
            if not truthy(gate.get("ok")):
                return join_known(("REFUSED", evidence.strip()[:200]), ": ")
            if re.search(r"destructive \[\]", evidence):
                return "safe (no destructive statements)"
            return "destructive statements approved (preflight_allow_destructive_migration)"
        if ran(migration):
            destructive = get(migration, "destructive", default=[])
            if not destructive:
                return "safe"
            return "destructive: " + (
                join_known(get(d, "kind") for d in destructive) or f"{len(destructive)} statement(s)"
            )
        return "not previewed"

    def backup_item(self) -> tuple[str, str]:
        """The pg_backup file: where, how big, its checksum and how it was verified; or the restore point."""
        if self.backed_up_by_restore_point():
            return self.restore_point_item(self.r("deploy", "restore_point"))
        backup = self.r("deploy", "pg_backup")
        if not ran(backup):
            return NOT_RUN, self.not_run_reason("the backup")
        if failed(backup):
            return NOT_CHECKED, failed_with("pg_backup failed", backup)
        path = known(get(backup, "backup_path"))
        if self.check_mode:
            return PLANNED, f"would write {path or 'the backup'} and verify it"
        return CHECKED, pg_backup_text(backup)

    def backed_up_by_restore_point(self) -> bool:
        """ablage_backup_method pitr ran: a base backup or a restore point instead of the pg_backup file."""
        return ran(self.r("deploy", "restore_point")) or ran(self.r("deploy", "base_backup"))

    def restore_point_item(self, point: t.Any) -> tuple[str, str]:
        """ablage_backup_method pitr: the base backup before the window and the restore point inside it."""
        base = self.r("deploy", "base_backup")
        newest = get(point, "backup") if ran(point) else get(base, "backup")
        base_text = (
            f"base backup {get(newest, 'label')} ({get(newest, 'type')}, {get(newest, 'stop')})"
            if known(get(newest, "label"))
            else "no base backup recorded"
        )
        if failed(base):
            return NOT_CHECKED, failed_with("the pgBackRest base backup failed", base)
        if not ran(point):
            return NOT_RUN, f"pgBackRest: {base_text}; restore point not written (the window did not get there)"
        if failed(point):
            return NOT_CHECKED, failed_with("the restore point failed", point)
        name = known(get(point, "name"))
        if self.check_mode:
            return PLANNED, f"pgBackRest: would write restore point {name} ({base_text})"
        counts = get(point, "row_counts", default={}) or {}
        return CHECKED, (
            f"pgBackRest: restore point {name} at {get(point, 'lsn')} ({get(point, 'created_at')}), "
            f"{'archived' if get(point, 'archived') else 'NOT archived'}; revision "
            f"{join_known(get(point, 'revision', default=[]) or []) or 'none'}, {len(counts)} tables, "
            f"{sum(int(v) for v in counts.values())} rows; {base_text}"
        )

    def rollback_plan_item(self) -> None:
        before = self.r("deploy", "alembic_before")
        rev_before = get(before, "current_before", default=self.state.get("alembic_revision_before"))
        if ran(before) or (self.playbook == "deploy" and self.state.get("previous_version")):
            status = self.status_of(before, planned=False) if ran(before) else CHECKED
            version = known(self.state.get("previous_version"))
            images = known(self.state.get("target_images"))
            point = join_known(
                (
                    f"version {version}" if version is not None else "previous version not recorded",
                    f"Alembic revision {rev_before or 'base'}",
                    f"images {json.dumps(images)}" if images is not None else None,
                )
            )
            evidence = (
                f"rollback point recorded in state.json: {point}; "
                "rollback: playbooks/rollback.yml (automatic on failure)"
            )
        else:
            status, evidence = NOT_RUN, self.not_run_reason("recording the rollback point")
        self.add(
            "pre_deployment",
            DATABASE_GROUP,
            "rollback_plan",
            "Rollback-Plan vorbereitet",
            status,
            evidence,
            alembic_revision=rev_before,
        )

    def config_items(self) -> None:
        self.add_gate_items(
            "3. Konfiguration",
            self.gates("config"),
            (
                ("environment", "Environment Variables gesetzt", "environment variables"),
                ("no_secrets", "Keine Secrets im Code", "no secrets in code"),
                ("tls", "SSL Zertifikate gültig", "TLS certificate"),
            ),
            "not run (preflight_config)",
        )

    def infra_items(self) -> None:
        group = "4. Infrastructure"
        infra = self.gates("infra")
        images = [g for g in infra if str(g.get("gate", "")).startswith("image ")]
        self.add(
            "pre_deployment",
            group,
            "images",
            "Docker Images gebaut",
            self.gate_status(images),
            self.gate_evidence(images, "not run (preflight_infra)"),
        )
        self.add_gate_items(
            group,
            infra,
            (
                ("gpu", "GPU Verfügbarkeit", "GPU"),
                ("disk", "Disk Space", "disk space"),
                ("memory", "Memory", "memory"),
            ),
            "not run (preflight_infra)",
        )
        # Gates beyond the seed's (the reverse proxy of the zero-downtime mode) are listed as they are.
        seed = ("GPU", "disk space", "memory")
        extra = [g for g in infra if not str(g.get("gate", "")).startswith("image ") and g.get("gate") not in seed]
        self.add_extra_gates(group, "infra_extra", extra, "unnamed infrastructure gate")

    def add_extra_gates(self, group: str, item_id: str, gates: list[Dict], unnamed: str) -> None:
        """One item per gate the seed has no item for, named as the gate."""
        for gate in gates:
            name = str(known(gate.get("gate")) or unnamed)
            self.add("pre_deployment", group, item_id, name, self.gate_status([gate]), self.gate_evidence([gate], ""))

    def add_gate_items(
        self, group: str, gates: list[Dict], items: t.Iterable[tuple[str, str, str]], not_run: str
    ) -> None:
        """One pre-deployment item per pre-flight gate name: (item id, seed name, gate name)."""
        for item_id, name, gate_name in items:
            matched = [g for g in gates if g.get("gate") == gate_name]
            self.add(
                "pre_deployment",
                group,
                item_id,
                name,
                self.gate_status(matched),
                self.gate_evidence(matched, not_run),
            )

    # -------------------------------------------------------------- deployment
    def deployment(self) -> None:
        self.maintenance_on_item()
        self.deployment_backup_item()
        self.stop_item()
        self.deploy_item()
        self.health_item()
        self.maintenance_off_item()
        self.smoke_item()

    def zero_downtime(self) -> Dict:
        """The zero-downtime steps of this deploy; empty for a maintenance window."""
        mode = self.r("deploy", "mode")
        if isinstance(mode, dict) and mode.get("mode") == "zero_downtime":
            return dict(mode, **(self.r("deploy", "zero_downtime") or {}))
        return {}

    def maintenance_on_item(self) -> None:
        maint_on = self.r("deploy", "maintenance_on")
        zero = self.zero_downtime()
        if zero:
            self.add(
                "deployment",
                DEPLOY_GROUP,
                "maintenance_on",
                "1. Maintenance Mode aktivieren",
                WAIVED,
                f"not needed: zero-downtime deploy ({zero.get('reason')}); users were served through the reverse "
                f"proxy{' on ' + str(zero['proxy']) if zero.get('proxy') else ''} throughout",
            )
            return
        if ran(maint_on) and not self.check_mode:
            on_at = known(self.state.get("maintenance_on_at"))
            evidence = join_known((f"on at {on_at}" if on_at else None, user_request(maint_on, "verified")), "; ")
        else:
            evidence = self.plan_or_not_run("switching maintenance on and checking that users get 503")
        self.add(
            "deployment",
            DEPLOY_GROUP,
            "maintenance_on",
            "1. Maintenance Mode aktivieren",
            self.status_of(maint_on) if ran(maint_on) or (self.check_mode and self.playbook == "deploy") else NOT_RUN,
            evidence,
        )

    def deployment_backup_item(self) -> None:
        """Both backups of the deploy: the API's full backup and the pg_backup file (see backup_item)."""
        api = self.r("deploy", "api_backup")
        pg_status, pg_evidence = self.backup_item()
        status = pg_status if pg_status != NOT_RUN else self.status_of(api)
        if failed(api):
            status = NOT_CHECKED
        self.add(
            "deployment",
            DEPLOY_GROUP,
            "backup",
            "2. Backup erstellen",
            status,
            f"{self.api_backup_or_plan(api)}; "
            + (pg_evidence if self.backed_up_by_restore_point() else f"pg_backup: {pg_evidence}")
            if status != NOT_RUN
            else self.plan_or_not_run("the backup"),
        )

    def api_backup_or_plan(self, api: t.Any) -> str:
        if ran(api) and self.check_mode:
            return "API full backup would be started (check mode: nothing sent)"
        return api_backup_text(api) if ran(api) else "API full backup not run"

    def stop_item(self) -> None:
        """The primary drains the shared queue (before the backups), every app host stops its own containers."""
        queue, stop = self.r("deploy", "queue"), self.r("deploy", "stop")
        stopped = (ran(stop) and not failed(stop)) or self.state.get("phase") in ("stopped", "migrating", "started")
        evidence: list[str] = []
        if ran(queue):
            elapsed = known(get(queue, "results", 0, "elapsed_s"))
            drained = "OCR queue drained (pending 0, processing 0)"
            evidence.append(
                (drained if elapsed is None else f"{drained} after {elapsed} s") + " instead of a fixed sleep 30"
            )
        if self.zero_downtime() and ran(stop):
            evidence.append(
                "old worker stopped after its job in progress (the queue held new jobs); old backend drained by the "
                "proxy (no request in flight), then replaced"
            )
        elif ran(queue) or ran(stop):
            evidence.append("worker stopped, then backend" if stopped else "stop not reached")
        self.add(
            "deployment",
            DEPLOY_GROUP,
            "stop",
            "3. Services stoppen",
            self.status_of(queue, stop) if ran(queue) or ran(stop) else self.deploy_planned_or_not_run(),
            "; ".join(evidence) if evidence else self.plan_or_not_run("stopping the services"),
        )

    def deploy_item(self) -> None:
        pull = self.r("deploy", "pull")
        migration = self.r("deploy", "migration")
        digests = image_digests(pull)
        rev_from = get(migration, "current_before", default=self.state.get("alembic_revision_before"))
        rev_to = get(migration, "current_after", default=self.state.get("alembic_revision_after"))
        if ran(migration):
            evidence = self.deploy_evidence(migration, digests, rev_from, rev_to)
            status = self.status_of(pull, migration)
            if status == CHECKED and self.state.get("phase") == "migrating":
                status = NOT_CHECKED  # migrated, but the start never completed
        elif failed(pull):
            status, evidence = self.status_of(pull), failed_with("pull failed", pull)
        else:
            status, evidence = self.deploy_planned_or_not_run(), self.plan_or_not_run("pull, migrate and start")
        self.add(
            "deployment",
            DEPLOY_GROUP,
            "deploy",
            "4. Deployment durchführen",
            status,
            evidence,
            alembic_from=rev_from,
            alembic_to=None if self.check_mode else rev_to,
            images=digests,
        )

    def deploy_evidence(self, migration: Dict, digests: list[str], rev_from: t.Any, rev_to: t.Any) -> str:
        """Pulled images, the Alembic step (planned or applied), and when the services came up."""
        pending = get(migration, "pending", default=[])
        if self.check_mode:
            alembic = alembic_step(rev_from, get(migration, "head"), f"planned, pending {pending}", "head revision")
        else:
            reviewed = (
                " as reviewed before the window" if get(migration, "reviewed_used", "used", default=False) else ""
            )
            alembic = alembic_step(rev_from, rev_to, f"applied {pending}{reviewed}", "revision after the migration")
        parts = [f"pulled {', '.join(digests)}" if digests else None, alembic]
        if failed(migration):
            parts.append(failed_with("migration FAILED", migration))
        started_at = self.state.get("started_services_at")
        if started_at and not self.check_mode and self.state.get("current_version") == self.ev.get("version_to"):
            parts.append(f"services started at {started_at}{ready_after(self.r('deploy', 'ready'))}")
        zero = self.zero_downtime()
        if zero.get("to_surge_at") and not self.check_mode:
            surge_waits = [known(p.get("elapsed_s")) for p in get(zero, "surge_ready", "results", default=[])]
            surge_s = max((w for w in surge_waits if w is not None), default=None)
            parts.append(
                "zero downtime: the new release answered in the surge slot"
                + (f" after {surge_s} s" if surge_s is not None else "")
                + f", took the traffic at {zero['to_surge_at']}, main slot replaced and back at "
                + f"{zero.get('to_main_at') or '?'}, surge slot {'removed' if zero.get('surge_removed') else 'left'}"
            )
        return join_known(parts, "; ")

    def health_item(self) -> None:
        health = self.r("verify", "health")
        self.add(
            "deployment",
            DEPLOY_GROUP,
            "health",
            "5. Health Checks",
            self.status_of(health),
            self.health_evidence(health),
        )

    def health_evidence(self, health: t.Any) -> str:
        return health_text(health) if ran(health) else self.plan_or_not_run("the health checks")

    def maintenance_off_item(self) -> None:
        maint_off = self.r("verify", "maintenance_off")
        if ran(maint_off) and not self.check_mode:
            off_at = known(self.ev.get("maintenance_off_at"))
            evidence = join_known((f"off at {off_at}" if off_at else None, user_request(maint_off, "served")), "; ")
        else:
            evidence = self.plan_or_not_run("switching maintenance off and checking that users are served")
        self.add(
            "deployment",
            DEPLOY_GROUP,
            "maintenance_off",
            "6. Maintenance Mode deaktivieren",
            self.status_of(maint_off),
            evidence,
        )

    def smoke_item(self) -> None:
        smoke = self.r("verify", "smoke") or {}
        done = [item for item in smoke.values() if item.get("ran")]
        self.add(
            "deployment",
            DEPLOY_GROUP,
            "smoke",
            "7. Smoke Tests",
            (NOT_CHECKED if any(not i.get("ok") for i in done) else CHECKED) if done else self.status_of(None),
            join_known((join_known((i.get("step"), smoke_evidence(i)), ": ") for i in done), "; ")
            if done
            else self.plan_or_not_run("the smoke tests"),
        )

    # -------------------------------------------------------------- post-deployment
    def post_deployment(self) -> None:
        self.grafana_item()
        self.prometheus_item()
        self.logs_item()
        self.response_times_item()
        self.gpu_item()
        self.functional_items()
        self.team_informed_item()
        self.release_docs_items()

    def grafana_item(self) -> None:
        grafana = self.r("verify", "grafana")
        if ran(grafana):
            evidence, details = grafana_evidence(grafana)
            self.add(
                "post_deployment",
                "1. Monitoring",
                "grafana",
                GRAFANA_ITEM,
                self.status_of(grafana),
                evidence,
                **details,
            )
            return
        self.add(
            "post_deployment",
            "1. Monitoring",
            "grafana",
            GRAFANA_ITEM,
            NOT_RUN,
            "not run: no Grafana is configured for this host (verify_grafana_url is empty)"
            if isinstance(grafana, dict) and grafana.get("skipped")
            else self.plan_or_not_run("the Grafana check"),
        )

    def prometheus_item(self) -> None:
        targets = self.r("verify", "prom_targets")
        alerts = self.r("verify", "prom_alerts")
        # health_probe results: each one URL's answer under results[0].json.
        active = get(targets, "results", 0, "json", "data", "activeTargets", default=[])
        # The first read, before verify waited for alerts that began during the deploy to resolve; the only
        # read when an alert older than the deploy failed the check at once.
        seen_result = self.r("verify", "prom_alerts_seen")
        seen_firing = [alert_name(a) for a in firing_alerts(get(seen_result, "results", 0, "json"))]
        last = alerts if ran(alerts) else seen_result
        firing = firing_alerts(get(last, "results", 0, "json"))
        waited_s = get(alerts, "results", 0, "elapsed_s")
        parts = []
        if ran(targets):
            health = join_known(join_known((target_name(x), x.get("health")), " ") for x in active)
            parts.append(health or "no active targets")
        if ran(last):
            alerts_text = f"firing alerts: {join_known(map(alert_name, firing)) or 'none'}"
            if seen_firing and ran(alerts):
                alerts_text += (
                    f" (at the first read {join_known(seen_firing)}, begun during this deploy; "
                    f"{'resolved' if not firing else 'still firing'} after {waited_s} s)"
                )
            parts.append(alerts_text)
        evidence = "; ".join(parts) if parts else self.plan_or_not_run("the Prometheus check")
        self.add(
            "post_deployment",
            "1. Monitoring",
            "prometheus",
            "Prometheus Targets",
            self.status_of(targets, seen_result, alerts),
            evidence,
            targets={target_name(x): x.get("health") for x in active},
            firing_alerts=[alert_name(a) for a in firing],
            firing_at_first_read=seen_firing,
        )

    def logs_item(self) -> None:
        logs = self.r("verify", "logs")
        pattern = self.ev.get("log_error_pattern") or r"(?i)\b(error|critical|traceback)\b"
        lines = get(logs, "stdout_lines", default=[])
        errors = [line for line in lines if re.search(pattern, line)]
        status = self.status_of(logs)
        if status == CHECKED and errors:
            status = NOT_CHECKED
        self.add(
            "post_deployment",
            "1. Monitoring",
            "logs",
            "Logs prüfen",
            status,
            f"{len(lines)} recent log lines read, {len(errors)} error line(s)"
            + (f": {errors[0][:120]}" if errors else "")
            if ran(logs)
            else self.plan_or_not_run("the log check"),
        )

    def response_times_item(self) -> None:
        latency = self.r("verify", "latency")
        samples = sorted(float(x.get("latency_ms") or 0) for x in get(latency, "results", default=[]))
        median = samples[len(samples) // 2] if samples else None
        limit = self.ev.get("latency_max_ms")
        status = self.status_of(latency)
        if status == CHECKED and median is not None and limit is not None and median >= float(limit):
            status = NOT_CHECKED
        self.add(
            "post_deployment",
            "2. Performance",
            "response_times",
            "Response Times",
            status,
            f"GET /api/v1/health median {median} ms of {samples} "
            + ("(no limit set)" if known(limit) is None else f"(limit {limit} ms)")
            if samples
            else self.plan_or_not_run("the latency check"),
            median_ms=median,
            samples_ms=samples,
            limit_ms=limit,
        )

    def gpu_item(self) -> None:
        gpu = self.r("verify", "gpu")
        if ran(gpu) and not failed(gpu) and not get(gpu, "device_count", default=0):
            status = WAIVED
            evidence = "no GPU required on this host (verify_gpu_required=false) and none present"
        elif ran(gpu):
            status, evidence = self.status_of(gpu), gpu_evidence(gpu)
        else:
            status, evidence = self.status_of(gpu), self.plan_or_not_run("the GPU memory check")
        self.add("post_deployment", "2. Performance", "gpu_memory", "GPU Memory", status, evidence)

    def functional_items(self) -> None:
        smoke = self.r("verify", "smoke") or {}
        for item_id, name in SMOKE_ITEMS:
            item = smoke.get(item_id) or {}
            if item.get("ran"):
                status = CHECKED if item.get("ok") else NOT_CHECKED
                evidence = smoke_evidence(item)
            elif smoke and item_id not in smoke:
                status, evidence = NOT_RUN, "no smoke step proves it (verify_smoke_checklist)"
            else:
                status, evidence = self.status_of(None), self.plan_or_not_run("the smoke tests")
            self.add("post_deployment", "3. Funktionalität", item_id, name, status, evidence)

    def team_informed_item(self) -> None:
        notify = self.ev.get("notify") or {}
        if not notify.get("configured"):
            status, evidence = NOT_RUN, "no notification webhook configured (ablage_notify_webhook_url)"
        elif self.check_mode:
            status, evidence = PLANNED, "would POST the summary to the notification webhook"
        else:
            status = CHECKED if notify.get("ok") else NOT_CHECKED
            http_status = known(notify.get("status"))
            evidence = (
                "the notification webhook did not answer the summary's POST (no HTTP status recorded)"
                if http_status is None
                else f"summary POSTed to the notification webhook: status {http_status}"
            )
        self.add("post_deployment", "4. Kommunikation", "team_informed", "Team informiert", status, evidence)

    def release_docs_items(self) -> None:
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
            self.add("post_deployment", "4. Kommunikation", item_id, name, status, evidence)

    # -------------------------------------------------------------- rollback
    def rollback(self) -> None:
        health = self.r("rollback", "health")
        rolled = ran(health) or ran(self.r("rollback", "restore")) or ran(self.r("rollback", "downgrade"))
        nothing = self.no_rollback_reason()
        self.add(
            "rollback",
            ROLLBACK_GROUP,
            "rollback_images",
            "1. Sofortiger Rollback",
            self.status_of(health) if rolled else NOT_RUN,
            self.rollback_images_text() if rolled else nothing,
        )
        self.add(
            "rollback", ROLLBACK_GROUP, "rollback_database", "2. Datenbank Rollback", *self.rollback_database(rolled)
        )
        self.add(
            "rollback",
            ROLLBACK_GROUP,
            "post_rollback",
            "3. Post-Rollback (Health Checks, Logs)",
            self.status_of(health) if rolled else NOT_RUN,
            self.health_evidence(health) if rolled else nothing,
        )

    def no_rollback_reason(self) -> str:
        if not self.ev.get("failure"):
            return "not needed: nothing failed"
        if self.playbook == "deploy":
            return "not run: the failure came before maintenance mode, nothing had changed"
        return "not run: no rollback in this run"

    def rollback_images_text(self) -> str:
        previous = known(self.state.get("previous_version"))
        target = known(self.state.get("target_version"))
        if previous is None:
            return with_note(
                "images back to the previous release (its version is not recorded)", target and f"from {target}"
            )
        return with_note(f"images back to {previous}", target and f"{target} -> {previous}")

    def rollback_database(self, rolled: bool) -> tuple[str, str]:
        restore = self.r("rollback", "restore")
        downgrade = self.r("rollback", "downgrade")
        recovery = self.r("rollback", "recovery")
        if ran(recovery):
            if failed(recovery):
                return self.status_of(recovery), failed_with("the recovery failed", recovery)
            comparison = get(recovery, "comparison", default={}) or {}
            revision = join_known(get(comparison, "actual_revision", default=[]) or []) or "none"
            equal = "equal to the restore point" if get(comparison, "equal") else "NOT equal to the restore point"
            return self.status_of(recovery), with_note(
                f"recovered the cluster to restore point {get(recovery, 'name')} with pgBackRest in "
                f"{get(recovery, 'elapsed_s')} s (server up {get(recovery, 'recovered_in_s')} s after its start, "
                f"timeline {get(recovery, 'timeline')})",
                f"revision {revision}, {get(comparison, 'tables')} tables, {get(comparison, 'rows')} rows, {equal}",
            )
        if ran(restore):
            return self.status_of(restore), restore_text(restore)
        if ran(downgrade):
            return self.status_of(downgrade), "alembic downgrade " + revisions(
                get(downgrade, "current_before"), get(downgrade, "current_after")
            )
        if rolled:
            return NOT_RUN, "database untouched (the deploy had not migrated)"
        return NOT_RUN, self.no_rollback_reason()
