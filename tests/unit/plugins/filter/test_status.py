"""The status summary's filters (plugins/filter/status.py), and proof that they say what the Jinja they replace said.

Every branch of each filter is tested on its own. Then the former Jinja of roles/operate (copied verbatim below,
as it stood in tasks/status.yml and vars/main.yml) is rendered with ansible-core's Templar next to the role's
current task files, on the registered results of several runs (all up, degraded, everything down), and the
report, the summary lines and the contact lines must be equal.
"""

from __future__ import annotations

import base64
import copy
import json
import sys
import typing as t
from pathlib import Path

import pytest

from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import init_plugin_loader
from ansible.template import Templar, trust_as_template
from ansible.utils.collection_loader import AnsibleCollectionConfig
from ansible.utils.collection_loader._collection_finder import _AnsibleCollectionFinder

from ansible_collections.ablage.ops.plugins.filter.status import (
    FilterModule,
    status_contacts,
    status_health_components,
    status_services,
    status_summary,
)

Dict = dict[str, t.Any]
REPO = Path(__file__).resolve().parents[4]
ROLE = REPO / "roles" / "operate"
STATE_DIR = "/var/lib/ablage"
BACKUP_DIR = "/var/lib/ablage/backups"
SERVICES = ["postgres", "redis", "minio", "backend", "worker", "prometheus"]
CONTACTS = [
    {
        "role": "DevOps Lead",
        "name": "Anna",
        "phone": "+49 30 1234",
        "email": "anna@example.org",
        "availability": "24/7",
    },
    {"role": "", "name": None, "phone": "", "email": "db@example.org"},
    {"name": "Bert"},
    {},
]

# The former Jinja, verbatim: the last two tasks of roles/operate/tasks/status.yml ...
OLD_STATUS_TASKS = r"""
- name: Status | Put the parts together
  ansible.builtin.set_fact:
    operate_status_report: "{{ _operate_report }}"
  vars:
    _operate_rows: >-
      {%- set rows = [] -%}
      {%- for svc in operate_services -%}
      {%- set found = [] -%}
      {%- for c in __operate_docker.containers | default([]) -%}
      {%- if c.Labels.get('com.docker.compose.service') == svc and c.Labels.get('com.docker.compose.oneoff') != 'True' -%}
      {%- set _ = found.append(c) -%}
      {%- endif -%}
      {%- endfor -%}
      {%- if found | length == 0 -%}
      {%- set _ = rows.append({'service': svc, 'state': 'missing', 'health': 'none', 'up': false, 'image': '', 'version': '', 'status': 'no container'}) -%}
      {%- else -%}
      {%- set c = found | first -%}
      {%- set health = (c.Status | regex_search('\((healthy|unhealthy|health: starting)\)', '\\1') or ['none']) | first -%}
      {%- set up = c.State == 'running' and health in ['healthy', 'none'] -%}
      {%- set _ = rows.append({'service': svc, 'state': c.State, 'health': health, 'up': up, 'image': c.Image,
                               'version': c.Labels.get('org.opencontainers.image.version', ''), 'status': c.Status,
                               'container': c.Names | first | default('') | regex_replace('^/', '')}) -%}
      {%- endif -%}
      {%- endfor -%}
      {{ rows }}
    _operate_health_json: "{{ (__operate_health.results | default([{}]) | first).json | default({}, true) }}"
    _operate_manifest: "{{ (__operate_last_manifest.content | b64decode | from_json) if __operate_last_manifest.content is defined else {} }}"
    _operate_deploys: "{{ __operate_state.history | default([]) | selectattr('action', 'defined') | list }}"
    _operate_report:
      host: "{{ inventory_hostname }}"
      docker_error: "{{ _operate_docker_error | default(none) }}"
      services: "{{ _operate_rows if _operate_docker_error is not defined else [] }}"
      down: "{{ (_operate_rows | rejectattr('up') | map(attribute='service') | list) if _operate_docker_error is not defined else operate_services }}"
      health:
        status: "{{ _operate_health_json.status | default('unreachable') }}"
        version: "{{ _operate_health_json.version | default(none) }}"
        components: >-
          {%- set comps = {} -%}
          {%- for name, comp in (_operate_health_json.components | default({})).items() -%}
          {%- set _ = comps.update({name: comp.status | default('?') if comp is mapping else comp}) -%}
          {%- endfor -%}
          {{ comps }}
        error: "{{ _operate_health_error | default(none) }}"
      maintenance:
        enabled: "{{ __operate_maintenance.enabled_before | default(none) }}"
        error: "{{ _operate_maintenance_error | default(_operate_api_error) | default(none) }}"
      alembic_revision: "{{ (__operate_revision.query_result | default([{}]) | first | default({})).version_num | default(none) }}"
      alembic_error: "{{ _operate_db_error | default(none) }}"
      running_version: "{{ __operate_state.state.current_version | default(none) }}"
      deploy:
        phase: "{{ __operate_state.state.phase | default(none) }}"
        last: "{{ (_operate_deploys | last) if _operate_deploys | length > 0 else none }}"
        lock: "{{ (__operate_lock.content | b64decode | trim) if __operate_lock.content is defined else none }}"
        error: "{{ _operate_state_error | default(none) }}"
      last_backup: >-
        {{ {'path': (__operate_manifests.files | sort(attribute='mtime') | last).path
                    | regex_replace('\.json$', '.' ~ ('dir' if _operate_manifest.format | default('') == 'directory' else 'dump')),
            'created_at': _operate_manifest.created_at | default(none), 'label': _operate_manifest.label | default(none),
            'alembic_revision': _operate_manifest.alembic_revision | default(none), 'size': _operate_manifest.size | default(none)}
           if _operate_manifest | length > 0 else none }}
      contacts: "{{ ablage_escalation_contacts }}"

- name: Status | Summary
  ansible.builtin.debug:
    msg: "{{ _operate_lines }}"
  vars:
    _r: "{{ operate_status_report }}"
    _operate_lines: >-
      {%- set headline = ('DOWN: ' ~ _r.down | join(', ')) if _r.down | length > 0
                         else ('ALL SERVICES UP' if _r.health.status == 'healthy' else 'all containers up, but health is ' ~ _r.health.status) -%}
      {%- set l = ['Ablage-System on ' ~ _r.host ~ ': ' ~ headline] -%}
      {%- if _r.docker_error -%}{%- set _ = l.append('containers: Docker did not answer: ' ~ _r.docker_error) -%}{%- endif -%}
      {%- for s in _r.services -%}
      {%- set _ = l.append('  ' ~ ('%-10s' | format(s.service)) ~ ' ' ~ ('%-8s' | format(s.state)) ~ ' ' ~ ('%-16s' | format(s.health))
                           ~ ' ' ~ (s.image or '-') ~ (' (version ' ~ s.version ~ ')' if s.version else '') ~ ('' if s.up else '   <-- DOWN')) -%}
      {%- endfor -%}
      {%- set _ = l.append('health /api/v1/health/complete: ' ~ _r.health.status ~ (' (version ' ~ _r.health.version ~ ')' if _r.health.version else '')
                           ~ (': ' ~ (_r.health.components | dict2items | map(attribute='key') | zip(_r.health.components.values())
                                      | map('join', '=') | join(', ')) if _r.health.components else '')
                           ~ (' -- ' ~ _r.health.error if _r.health.error else '')) -%}
      {%- set _ = l.append('maintenance: ' ~ ({True: 'ON (users get 503)', False: 'off'}[_r.maintenance.enabled] if _r.maintenance.enabled is not none
                           else 'unknown -- ' ~ (_r.maintenance.error or 'no admin token'))) -%}
      {%- set _ = l.append('alembic revision: ' ~ (_r.alembic_revision or 'unknown -- ' ~ (_r.alembic_error or 'no version table'))) -%}
      {%- set _ = l.append('deploy state: ' ~ ('phase ' ~ _r.deploy.phase ~ ', version ' ~ (_r.running_version or '?')
                                              if _r.deploy.phase else 'none recorded in ' ~ ablage_state_dir)
                           ~ (' -- ' ~ _r.deploy.error if _r.deploy.error else '')) -%}
      {%- set d = _r.deploy.last -%}
      {%- set _ = l.append('last deploy/rollback: ' ~ ((d.action | default('?')) ~ ' ' ~ (d.version | default('?')) ~ ' ' ~ (d.result | default('?'))
                           ~ ' at ' ~ (d.recorded_at | default('?')) ~ ' by ' ~ (d.deployer | default('?')) if d else 'none recorded')) -%}
      {%- set _ = l.append('deploy lock: ' ~ (_r.deploy.lock | replace('\n', ' ') if _r.deploy.lock else 'free')) -%}
      {%- set b = _r.last_backup -%}
      {%- set _ = l.append('last backup: ' ~ (b.path ~ ' (' ~ b.created_at ~ ', label ' ~ b.label ~ ', revision ' ~ b.alembic_revision ~ ')'
                                             if b else 'none in ' ~ operate_backup_dir)) -%}
      {%- set _ = l.append('escalation (Notfall-Kontakte):') -%}
      {%- for c in _operate_contacts_lines -%}{%- set _ = l.append('  ' ~ c) -%}{%- endfor -%}
      {{ l }}
"""  # noqa: E501
# ... and the contact lines of roles/operate/vars/main.yml.
OLD_ROLE_VARS = r"""
_operate_contacts_lines: >-
  {%- set lines = [] -%}
  {%- for c in ablage_escalation_contacts -%}
  {%- set reach = [c.get('name'), c.get('phone'), c.get('email')] | select | join(', ') -%}
  {%- set _ = lines.append(c.get('role') | default('?', true) ~ ': ' ~ (reach or '?') ~ ' (' ~ (c.get('availability') or '?') ~ ')') -%}
  {%- endfor -%}
  {{ lines if lines | length > 0 else ['none set: add ablage_escalation_contacts to the inventory (docs/runbook.md)'] }}
_operate_contacts_text: "{{ _operate_contacts_lines | join('; ') }}"
_operate_compose_label: com.docker.compose.project.working_dir={{ ablage_project_dir }}
"""  # noqa: E501


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def container(service: str, status: str = "Up 2 minutes (healthy)", **over: t.Any) -> Dict:
    """A container as community.docker.docker_host_info (verbose_output) lists it."""
    labels = {
        "com.docker.compose.project": "ablage",
        "com.docker.compose.service": service,
        "com.docker.compose.oneoff": "False",
        "org.opencontainers.image.version": "1.2.0",
    }
    labels.update(over.pop("labels", {}))
    found = {
        "Id": f"{service}0123456789",
        "Names": [f"/ablage-{service}-1"],
        "Image": f"registry.example.org/ablage/{service}:1.2.0",
        "State": "running",
        "Status": status,
        "Labels": {key: value for key, value in labels.items() if value is not None},
    }
    found.update(over)
    return found


def manifest(name: str, mtime: int) -> Dict:
    return {"path": f"{BACKUP_DIR}/ablage_{name}.json", "mtime": mtime, "size": 512}


def base_run() -> Dict:
    """What a run with everything up registers (and the role's settings it reads)."""
    return {
        "inventory_hostname": "app1.example.org",
        "operate_services": SERVICES,
        "ablage_state_dir": STATE_DIR,
        "operate_backup_dir": BACKUP_DIR,
        "ablage_project_dir": "/srv/ablage",
        "ablage_escalation_contacts": CONTACTS,
        "__operate_docker": {
            "changed": False,
            "can_talk_to_docker": True,
            # A one-off (docker compose run) of the backend comes first and is not the service.
            "containers": [container("backend", labels={"com.docker.compose.oneoff": "True"}, State="exited")]
            + [container(service) for service in SERVICES],
        },
        "__operate_health": {
            "changed": False,
            "results": [
                {
                    "status": 200,
                    "json": {
                        "status": "healthy",
                        "version": "1.2.0",
                        "components": {"database": {"status": "healthy", "latency_ms": 3}, "redis": {"status": "ok"}},
                    },
                }
            ],
        },
        "__operate_maintenance": {"changed": False, "enabled_before": False, "enabled": False},
        "__operate_revision": {"changed": False, "query_result": [{"version_num": "0042_add_tags"}]},
        "__operate_state": {
            "changed": False,
            "state": {"phase": "done", "current_version": "1.2.0", "run_id": "4711"},
            "history": [
                {
                    "action": "deploy",
                    "version": "1.1.0",
                    "result": "done",
                    "recorded_at": "2026-12-01T10:00:00Z",
                    "deployer": "anna",
                },
                {
                    "action": "deploy",
                    "version": "1.2.0",
                    "result": "done",
                    "recorded_at": "2026-12-04T10:00:00Z",
                    "deployer": "awx:bert",
                },
                {"event": "lock_broken", "recorded_at": "2026-12-04T11:00:00Z"},
            ],
        },
        "__operate_lock_file": {"changed": False, "stat": {"exists": False}},
        "__operate_lock": {"changed": False, "skipped": True, "skip_reason": "Conditional result was False"},
        "__operate_manifests": {"changed": False, "files": [manifest("20261204", 20), manifest("20261201", 10)]},
        "__operate_last_manifest": {
            "changed": False,
            "content": b64(
                json.dumps(
                    {
                        "format": "directory",
                        "created_at": "2026-12-04T09:58:00Z",
                        "label": "pre-1.2.0",
                        "alembic_revision": "0042_add_tags",
                        "size": 123456,
                    }
                )
            ),
        },
    }


def degraded_run() -> Dict:
    """Services down in every way, a degraded health, maintenance on, a deploy under way and a held lock."""
    run = base_run()
    run["__operate_docker"]["containers"] = [
        container("postgres", labels={"org.opencontainers.image.version": None}),
        container("redis", "Up 3 hours", Names=[], Image=""),
        container("minio", "Up 5 seconds (health: starting)"),
        container("backend", "Up 10 minutes (unhealthy)"),
        container(
            "worker", "Exited (1) 2 minutes ago", State="exited", labels={"org.opencontainers.image.version": ""}
        ),
        container("grafana"),
        # prometheus has no container.
    ]
    run["__operate_health"]["results"] = [
        {
            "status": 503,
            "json": {
                "status": "degraded",
                "components": {
                    "database": {"status": "healthy"},
                    "pipeline": {"status": "unhealthy", "detail": "worker gone"},
                    "gpu": {"detail": "no status key"},
                    "cache": "ok",
                    "queue_depth": 3,
                    "enabled": True,
                },
            },
        }
    ]
    run["__operate_maintenance"] = {"changed": False, "enabled_before": True}
    run["__operate_revision"] = {"changed": False, "query_result": []}
    run["__operate_state"]["state"] = {"phase": "migrating", "target_version": "1.3.0", "run_id": "4712"}
    run["__operate_state"]["history"].append({"action": "rollback", "version": "1.1.0", "result": None})
    run["__operate_lock_file"] = {"changed": False, "stat": {"exists": True}}
    run["__operate_lock"] = {"changed": False, "content": b64("run_id: 4712\nholder: awx:bert\nversion: 1.3.0\n\n")}
    run["__operate_manifests"]["files"] = [manifest("20261101", 5)]
    run["__operate_last_manifest"]["content"] = b64(json.dumps({"format": "custom", "label": "manual"}))
    run["ablage_escalation_contacts"] = CONTACTS[1:]
    return run


def down_run() -> Dict:
    """Docker, the backend, the database and the state directory all fail; no admin token, no contacts."""
    run = base_run()
    for name in ("__operate_lock_file", "__operate_lock", "__operate_manifests", "__operate_last_manifest"):
        del run[name]  # the block stopped at its first task
    run.update(
        {
            "__operate_docker": {"failed": True, "msg": "Error connecting: Error while fetching server API version"},
            "_operate_docker_error": "Error connecting: Error while fetching server API version",
            "__operate_health": {"failed": True, "msg": "no answer", "failed_urls": ["http://127.0.0.1:8000"]},
            "_operate_health_error": "http://127.0.0.1:8000/api/v1/health/complete: Connection refused",
            "__operate_maintenance": {
                "changed": False,
                "skipped": True,
                "false_condition": "_operate_admin_token is defined",
            },
            "_operate_api_error": "login at http://127.0.0.1:8000 failed: Connection refused",
            "__operate_revision": {"failed": True, "msg": "connection to server failed"},
            "_operate_db_error": "connection to server at 127.0.0.1, port 5432 failed: Connection refused",
            "__operate_state": {"failed": True, "msg": "Permission denied: /var/lib/ablage/state.json"},
            "_operate_state_error": "Permission denied: /var/lib/ablage/state.json",
            "ablage_escalation_contacts": [],
        }
    )
    return run


def sick_run() -> Dict:
    """Every container up, the health endpoint unhealthy; nothing recorded on the host; login without token."""
    run = base_run()
    run["__operate_health"]["results"] = [{"status": 503, "json": {"status": "unhealthy", "version": "1.2.0"}}]
    run["__operate_maintenance"] = {"changed": False, "skipped": True}
    run["__operate_revision"] = {"changed": False, "query_result": [{"version_num": None}]}
    run["__operate_state"] = {"changed": False, "state": {}, "history": []}
    run["__operate_manifests"] = {"changed": False, "files": []}
    run["__operate_last_manifest"] = {"changed": False, "skipped": True}
    return run


def empty_health_run() -> Dict:
    """The backend answers without JSON; a failed login noted; the state has a phase but no version."""
    run = base_run()
    run["__operate_health"]["results"] = [{"status": 503, "json": None}]
    run["__operate_maintenance"] = {"changed": False, "skipped": True}
    run["_operate_api_error"] = "login at http://127.0.0.1:8000 failed: HTTP 500"
    run["__operate_state"]["state"] = {"phase": "failed"}
    run["__operate_state"]["history"] = [{"action": "deploy"}]
    return run


RUNS = {
    "all_up": base_run,
    "degraded": degraded_run,
    "down": down_run,
    "sick": sick_run,
    "empty_health": empty_health_run,
}


# --------------------------------------------------------------------------- the former Jinja against the role


@pytest.fixture(scope="module")
def loader() -> t.Iterator[DataLoader]:
    """A DataLoader, with ansible's collection loader installed so that Templar finds the ablage.ops.* filters.

    The unit tests import the checkout as a plain package (tests/conftest.py); ansible's loader needs its own
    import of ansible_collections, so those modules are set aside meanwhile and put back afterwards.
    """
    if AnsibleCollectionConfig.collection_finder is not None:
        yield DataLoader()
        return
    plain = {name: sys.modules.pop(name) for name in list(sys.modules) if name.split(".")[0] == "ansible_collections"}
    init_plugin_loader([str(REPO / ".collections")])
    try:
        yield DataLoader()
    finally:
        _AnsibleCollectionFinder._remove()
        for name in [name for name in sys.modules if name.split(".")[0] == "ansible_collections"]:
            del sys.modules[name]
        sys.modules.update(plain)


def task(tasks: list[Dict], name: str) -> Dict:
    return next(found for found in tasks if found["name"] == name)


def render(template: t.Any, variables: Dict) -> t.Any:
    return Templar(loader=DataLoader(), variables=variables).template(template)


def status_of(tasks: list[Dict], role_vars: Dict, run: Dict) -> tuple[Dict, list[str], str]:
    """The fact the role sets, the summary it shows and the contacts text, as the two tasks render them."""
    report_task = task(tasks, "Status | Put the parts together")
    variables = {**role_vars, **copy.deepcopy(run), **report_task["vars"]}
    report = render(report_task["ansible.builtin.set_fact"], variables)["operate_status_report"]
    summary_task = task(tasks, "Status | Summary")
    variables = {**role_vars, **copy.deepcopy(run), "operate_status_report": report, **summary_task.get("vars", {})}
    lines = render(summary_task["ansible.builtin.debug"]["msg"], variables)
    contacts = render(trust_as_template("{{ _operate_contacts_text }}"), {**role_vars, **copy.deepcopy(run)})
    return report, lines, contacts


# The former Jinja's regex literal '\(' makes Jinja's lexer warn; that is the old text, kept as it was.
@pytest.mark.filterwarnings("ignore:invalid escape sequence:DeprecationWarning")
@pytest.mark.parametrize("name", sorted(RUNS))
def test_the_role_says_what_the_former_jinja_said(loader: DataLoader, name: str) -> None:
    run = RUNS[name]()
    old = status_of(
        loader.load(trust_as_template(OLD_STATUS_TASKS)), loader.load(trust_as_template(OLD_ROLE_VARS)), run
    )
    tasks = loader.load_from_file(str(ROLE / "tasks" / "status.yml"), trusted_as_template=True)
    role_vars = loader.load_from_file(str(ROLE / "vars" / "main.yml"), trusted_as_template=True)
    new = status_of(tasks, role_vars, run)
    # Added after the Jinja was replaced (the restore point of a pitr deploy, docs/backup.md): not in the old text.
    assert new[0].pop("restore_point") == {}
    assert new[0] == old[0]
    assert new[1] == old[1]
    assert new[2] == old[2]
    # The filters alone give the same as the Jinja they replace.
    report = old[0]
    assert status_summary(report, STATE_DIR, BACKUP_DIR) == old[1]
    assert "; ".join(status_contacts(run["ablage_escalation_contacts"])) == old[2]
    if "_operate_docker_error" not in run:
        assert status_services(run["__operate_docker"]["containers"], SERVICES) == report["services"]
    health = run["__operate_health"].get("results", [{}])[0].get("json") or {}
    assert status_health_components(health) == report["health"]["components"]


# --------------------------------------------------------------------------- each filter on its own


def test_the_filters_are_registered() -> None:
    assert set(FilterModule().filters()) == {
        "status_services",
        "status_health_components",
        "status_contacts",
        "status_summary",
    }


def test_services_follow_the_service_list_and_skip_one_offs() -> None:
    containers = [
        container("worker"),
        container("backend", "Up 1 second", labels={"com.docker.compose.oneoff": "True"}),
        container("backend", Names=["/ablage-backend-2", "/alias"]),
    ]
    rows = status_services(containers, ["backend", "worker", "redis"])
    assert [row["service"] for row in rows] == ["backend", "worker", "redis"]
    assert rows[0] == {
        "service": "backend",
        "state": "running",
        "health": "healthy",
        "up": True,
        "image": "registry.example.org/ablage/backend:1.2.0",
        "version": "1.2.0",
        "status": "Up 2 minutes (healthy)",
        "container": "ablage-backend-2",
    }
    assert rows[2] == {
        "service": "redis",
        "state": "missing",
        "health": "none",
        "up": False,
        "image": "",
        "version": "",
        "status": "no container",
    }


@pytest.mark.parametrize(
    ("state", "status", "health", "up"),
    [
        ("running", "Up 2 minutes (healthy)", "healthy", True),
        ("running", "Up 3 hours", "none", True),
        ("running", "Up 5 seconds (health: starting)", "health: starting", False),
        ("running", "Up 10 minutes (unhealthy)", "unhealthy", False),
        ("exited", "Exited (0) 1 minute ago", "none", False),
        ("restarting", "Restarting (1) 2 seconds ago (healthy)", "healthy", False),
    ],
)
def test_a_service_is_up_when_running_and_healthy_or_without_healthcheck(
    state: str, status: str, health: str, up: bool
) -> None:
    (row,) = status_services([container("worker", status, State=state)], ["worker"])
    assert (row["state"], row["health"], row["up"]) == (state, health, up)


def test_services_without_version_label_name_or_containers() -> None:
    plain = container("redis", labels={"org.opencontainers.image.version": None}, Names=[])
    (row,) = status_services([plain], ["redis"])
    assert row["version"] == "" and row["container"] == ""
    (row,) = status_services([container("redis", Names=["ablage-redis-1"])], ["redis"])
    assert row["container"] == "ablage-redis-1"
    assert [row["state"] for row in status_services(None, ["postgres", "redis"])] == ["missing", "missing"]
    assert status_services([], []) == []


def test_health_components_map_each_to_its_status() -> None:
    health = {"status": "degraded", "components": {"db": {"status": "healthy"}, "gpu": {"detail": "x"}, "q": 3}}
    assert status_health_components(health) == {"db": "healthy", "gpu": "?", "q": 3}
    assert status_health_components({"status": "healthy"}) == {}
    assert status_health_components({}) == {}
    assert status_health_components(None) == {}


def test_contacts_name_the_reachable_ways_and_say_when_none_are_set() -> None:
    assert status_contacts(CONTACTS) == [
        "DevOps Lead: Anna, +49 30 1234, anna@example.org (24/7)",
        "?: db@example.org (?)",
        "?: Bert (?)",
        "?: ? (?)",
    ]
    none_set = ["none set: add ablage_escalation_contacts to the inventory (docs/runbook.md)"]
    assert status_contacts([]) == none_set
    assert status_contacts(None) == none_set


def report(**over: t.Any) -> Dict:
    """operate_status_report of a run with everything up."""
    found: Dict = {
        "host": "app1",
        "docker_error": None,
        "services": status_services(
            [container(service) for service in ("postgres", "backend")], ["postgres", "backend"]
        ),
        "down": [],
        "health": {"status": "healthy", "version": "1.2.0", "components": {"db": "healthy"}, "error": None},
        "maintenance": {"enabled": False, "error": None},
        "alembic_revision": "0042",
        "alembic_error": None,
        "running_version": "1.2.0",
        "deploy": {
            "phase": "done",
            "last": {"action": "deploy", "version": "1.2.0", "result": "done", "recorded_at": "T1", "deployer": "anna"},
            "lock": None,
            "error": None,
        },
        "last_backup": {
            "path": "/b/ablage_1.dump",
            "created_at": "T0",
            "label": "pre-1.2.0",
            "alembic_revision": "0042",
        },
        "contacts": CONTACTS[:1],
    }
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(found.get(key), dict):
            found[key] = {**found[key], **value}
        else:
            found[key] = value
    return found


def summary(**over: t.Any) -> list[str]:
    return status_summary(report(**over), STATE_DIR, BACKUP_DIR)


def test_summary_of_a_run_with_everything_up() -> None:
    assert summary() == [
        "Ablage-System on app1: ALL SERVICES UP",
        "  postgres   running  healthy          registry.example.org/ablage/postgres:1.2.0 (version 1.2.0)",
        "  backend    running  healthy          registry.example.org/ablage/backend:1.2.0 (version 1.2.0)",
        "health /api/v1/health/complete: healthy (version 1.2.0): db=healthy",
        "maintenance: off",
        "alembic revision: 0042",
        "deploy state: phase done, version 1.2.0",
        "last deploy/rollback: deploy 1.2.0 done at T1 by anna",
        "deploy lock: free",
        "last backup: /b/ablage_1.dump (T0, label pre-1.2.0, revision 0042)",
        "escalation (Notfall-Kontakte):",
        "  DevOps Lead: Anna, +49 30 1234, anna@example.org (24/7)",
    ]


def test_summary_headline() -> None:
    assert summary(down=["worker", "redis"])[0] == "Ablage-System on app1: DOWN: worker, redis"
    assert (
        summary(health={"status": "degraded"})[0] == "Ablage-System on app1: all containers up, but health is degraded"
    )
    assert summary(health={"status": "unreachable"})[0].endswith("but health is unreachable")


def test_summary_marks_services_down_and_names_docker_errors() -> None:
    row = {"service": "prometheus", "state": "missing", "health": "none", "up": False, "image": "", "version": ""}
    assert summary(services=[row])[1] == "  prometheus missing  none             -   <-- DOWN"
    lines = summary(docker_error="Error connecting", services=[], down=["postgres"])
    assert lines[:3] == [
        "Ablage-System on app1: DOWN: postgres",
        "containers: Docker did not answer: Error connecting",
        "health /api/v1/health/complete: healthy (version 1.2.0): db=healthy",
    ]


def line(lines: list[str], prefix: str) -> str:
    return next(found for found in lines if found.startswith(prefix))


def test_summary_health_line() -> None:
    health = {"status": "unreachable", "version": None, "components": {}, "error": "Connection refused"}
    assert (
        line(summary(health=health), "health ") == "health /api/v1/health/complete: unreachable -- Connection refused"
    )
    health = {"status": "degraded", "version": "", "components": {"db": "healthy", "q": 3, "gpu": True}}
    assert (
        line(summary(health=health), "health ") == "health /api/v1/health/complete: degraded: db=healthy, q=3, gpu=True"
    )


def test_summary_maintenance_line() -> None:
    assert line(summary(maintenance={"enabled": True}), "maintenance") == "maintenance: ON (users get 503)"
    assert line(summary(maintenance={"enabled": None, "error": "login failed"}), "maint") == (
        "maintenance: unknown -- login failed"
    )
    assert (
        line(summary(maintenance={"enabled": None, "error": None}), "maint") == "maintenance: unknown -- no admin token"
    )


def test_summary_alembic_line() -> None:
    assert line(summary(alembic_revision=None, alembic_error="connection refused"), "alembic") == (
        "alembic revision: unknown -- connection refused"
    )
    assert line(summary(alembic_revision=None), "alembic") == "alembic revision: unknown -- no version table"


def test_summary_deploy_lines() -> None:
    lines = summary(running_version=None, deploy={"phase": "migrating", "lock": "run 4711\nholder anna"})
    assert line(lines, "deploy state") == "deploy state: phase migrating, version ?"
    assert line(lines, "deploy lock") == "deploy lock: run 4711 holder anna"
    lines = summary(deploy={"phase": None, "last": None, "error": "Permission denied"})
    assert line(lines, "deploy state") == "deploy state: none recorded in /var/lib/ablage -- Permission denied"
    assert line(lines, "last deploy") == "last deploy/rollback: none recorded"
    # A key the history entry lacks is "?", one it holds as null is "None" (as the Jinja said).
    lines = summary(deploy={"last": {"action": "rollback", "result": None}})
    assert line(lines, "last deploy") == "last deploy/rollback: rollback ? None at ? by ?"


def test_summary_backup_and_contacts() -> None:
    lines = summary(last_backup=None, contacts=[])
    assert line(lines, "last backup") == "last backup: none in /var/lib/ablage/backups"
    assert lines[-2:] == [
        "escalation (Notfall-Kontakte):",
        "  none set: add ablage_escalation_contacts to the inventory (docs/runbook.md)",
    ]
    backup = {"path": "/b/ablage_2.dir", "created_at": None, "label": None, "alembic_revision": None}
    assert (
        line(summary(last_backup=backup), "last backup")
        == "last backup: /b/ablage_2.dir (None, label None, revision None)"
    )


def test_summary_names_the_restore_point_of_a_pitr_deploy() -> None:
    point = {"name": "ablage-deploy-r1", "created_at": "T2", "revision": ["0042"], "base_backup": "20261205-132107F"}
    lines = summary(restore_point=point)
    assert line(lines, "last restore point: ") == (
        "last restore point: ablage-deploy-r1 (T2, revision 0042, base backup 20261205-132107F; pgBackRest)"
    )
    assert lines.index(line(lines, "last restore point: ")) == lines.index(line(lines, "last backup: ")) + 1
    assert not [found for found in summary(restore_point={}) if found.startswith("last restore point")]
