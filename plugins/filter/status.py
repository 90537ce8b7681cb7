# Copyright (c) ablage.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The status summary of playbooks/status.yml (roles/operate/tasks/status.yml), built in Python.

The summary used to be put together by Jinja loops in the role (``{%- for ... -%}`` blocks in
tasks/status.yml and vars/main.yml). The same logic lives here, one filter per value the role
builds, so that it can be read as code and is unit-tested line by line; the role only calls the
filters. The output is unchanged: tests/unit/plugins/filter/test_status.py renders the former
Jinja next to these filters and compares.

- ``status_services``: one row per service of ``operate_services`` from the containers
  ``community.docker.docker_host_info`` read (docker compose ps).
- ``status_health_components``: the components of /api/v1/health/complete, each to its status.
- ``status_contacts``: one line per escalation contact (the checklist's Notfall-Kontakte).
- ``status_summary``: the lines the operator reads, from ``operate_status_report``.
"""

from __future__ import annotations

import re
import typing as t
from collections.abc import Mapping

Dict = t.Dict[str, t.Any]

SERVICE_LABEL = "com.docker.compose.service"
ONEOFF_LABEL = "com.docker.compose.oneoff"
VERSION_LABEL = "org.opencontainers.image.version"
# The health docker ps shows in a container's status, e.g. "Up 2 minutes (healthy)".
HEALTH_RE = re.compile(r"\((healthy|unhealthy|health: starting)\)")
UP_HEALTH = ("healthy", "none")
LAST_DEPLOY_KEYS = ("action", "version", "result", "recorded_at", "deployer")
NO_CONTACTS = "none set: add ablage_escalation_contacts to the inventory (docs/runbook.md)"


def _service_container(containers: list[Dict], service: str) -> Dict | None:
    """The first container of the service that is not a one-off (``docker compose run``)."""
    for container in containers:
        labels = container.get("Labels") or {}
        if labels.get(SERVICE_LABEL) == service and labels.get(ONEOFF_LABEL) != "True":
            return container
    return None


def _service_row(service: str, container: Dict) -> Dict:
    """The row of a service that has a container: state, health, image and version."""
    status = container.get("Status")
    match = HEALTH_RE.search(str(status))
    health = match.group(1) if match else "none"
    state = container.get("State")
    names = container.get("Names") or [""]
    return {
        "service": service,
        "state": state,
        "health": health,
        "up": state == "running" and health in UP_HEALTH,
        "image": container.get("Image"),
        "version": (container.get("Labels") or {}).get(VERSION_LABEL, ""),
        "status": status,
        "container": re.sub(r"^/", "", str(names[0])),
    }


def status_services(containers: list[Dict] | None, services: list[str]) -> list[Dict]:
    """One row per service, in the order of ``services``; a service without a container is ``missing``."""
    rows: list[Dict] = []
    for service in services:
        container = _service_container(containers or [], service)
        if container is None:
            rows.append(
                {
                    "service": service,
                    "state": "missing",
                    "health": "none",
                    "up": False,
                    "image": "",
                    "version": "",
                    "status": "no container",
                }
            )
        else:
            rows.append(_service_row(service, container))
    return rows


def status_health_components(health: Dict | None) -> Dict:
    """``components`` of the health JSON, each a component's ``status`` (``?`` when it has none)."""
    components = (health or {}).get("components") or {}
    return {name: comp.get("status", "?") if isinstance(comp, Mapping) else comp for name, comp in components.items()}


def _contact_line(contact: Dict) -> str:
    reach = ", ".join(str(value) for value in (contact.get(key) for key in ("name", "phone", "email")) if value)
    return f"{contact.get('role') or '?'}: {reach or '?'} ({contact.get('availability') or '?'})"


def status_contacts(contacts: list[Dict] | None) -> list[str]:
    """``role: name, phone, email (availability)`` per contact; one line saying none are set when empty."""
    lines = [_contact_line(contact) for contact in contacts or []]
    return lines or [NO_CONTACTS]


def _headline(report: Dict) -> str:
    down = report.get("down") or []
    if down:
        return "DOWN: " + ", ".join(str(service) for service in down)
    status = (report.get("health") or {}).get("status")
    return "ALL SERVICES UP" if status == "healthy" else f"all containers up, but health is {status}"


def _service_line(row: Dict) -> str:
    version = row.get("version")
    return (
        f"  {row.get('service')!s:<10} {row.get('state')!s:<8} {row.get('health')!s:<16} {row.get('image') or '-'}"
        + (f" (version {version})" if version else "")
        + ("" if row.get("up") else "   <-- DOWN")
    )


def _health_line(health: Dict) -> str:
    line = f"health /api/v1/health/complete: {health.get('status')}"
    if health.get("version"):
        line += f" (version {health['version']})"
    components = health.get("components")
    if components:
        line += ": " + ", ".join(f"{name}={status}" for name, status in components.items())
    if health.get("error"):
        line += f" -- {health['error']}"
    return line


def _maintenance_line(maintenance: Dict) -> str:
    enabled = maintenance.get("enabled")
    if enabled is None:
        return f"maintenance: unknown -- {maintenance.get('error') or 'no admin token'}"
    return "maintenance: " + ("ON (users get 503)" if enabled else "off")


def _deploy_lines(report: Dict, state_dir: str) -> list[str]:
    """The deploy state (phase, running version), the last deploy or rollback and the deploy lock."""
    deploy = report.get("deploy") or {}
    phase = deploy.get("phase")
    state = (
        f"phase {phase}, version {report.get('running_version') or '?'}" if phase else f"none recorded in {state_dir}"
    )
    if deploy.get("error"):
        state += f" -- {deploy['error']}"
    last = deploy.get("last")
    last_line = "none recorded"
    if last:
        # A key the history entry lacks is "?"; one it holds as null is "None", as in the former Jinja.
        action, version, result, at, by = (last.get(key, "?") for key in LAST_DEPLOY_KEYS)
        last_line = f"{action} {version} {result} at {at} by {by}"
    lock = deploy.get("lock")
    return [
        f"deploy state: {state}",
        f"last deploy/rollback: {last_line}",
        "deploy lock: " + (str(lock).replace("\n", " ") if lock else "free"),
    ]


def _backup_line(backup: Dict | None, backup_dir: str) -> str:
    if not backup:
        return f"last backup: none in {backup_dir}"
    return (
        f"last backup: {backup.get('path')} ({backup.get('created_at')}, label {backup.get('label')}, "
        f"revision {backup.get('alembic_revision')})"
    )


def _restore_point_line(point: Dict | None) -> list[str]:
    """The last deploy's restore point (ablage_backup_method pitr): no dump of that deploy is in backup_dir."""
    if not point or not point.get("name"):
        return []
    revision = ", ".join(point.get("revision") or []) or "none"
    when, base = point.get("created_at"), point.get("base_backup")
    return [f"last restore point: {point['name']} ({when}, revision {revision}, base backup {base}; pgBackRest)"]


def status_summary(report: Dict, state_dir: str, backup_dir: str) -> list[str]:
    """The summary lines of ``operate_status_report``: headline, one line per part, then the contacts."""
    lines = [f"Ablage-System on {report.get('host')}: {_headline(report)}"]
    if report.get("docker_error"):
        lines.append(f"containers: Docker did not answer: {report['docker_error']}")
    lines.extend(_service_line(row) for row in report.get("services") or [])
    lines.append(_health_line(report.get("health") or {}))
    lines.append(_maintenance_line(report.get("maintenance") or {}))
    revision = report.get("alembic_revision") or f"unknown -- {report.get('alembic_error') or 'no version table'}"
    lines.append(f"alembic revision: {revision}")
    lines.extend(_deploy_lines(report, state_dir))
    lines.append(_backup_line(report.get("last_backup"), backup_dir))
    lines.extend(_restore_point_line(report.get("restore_point")))
    lines.append("escalation (Notfall-Kontakte):")
    lines.extend(f"  {line}" for line in status_contacts(report.get("contacts")))
    return lines


class FilterModule:
    def filters(self) -> dict[str, t.Callable[..., t.Any]]:
        return {
            "status_services": status_services,
            "status_health_components": status_health_components,
            "status_contacts": status_contacts,
            "status_summary": status_summary,
        }
