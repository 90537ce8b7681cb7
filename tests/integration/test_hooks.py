"""Hooks (docs/hooks.md): the operator's task files run at their points of a real deploy, with the run's facts.

A hook that fails before the point of no return ends the deploy with nothing changed on the running
system; one that fails after the migration makes the deploy roll back by itself. on_rollback and
on_failure run on those paths; a typo in a point name is refused before the lock.
"""

from __future__ import annotations

import json
import typing as t
from pathlib import Path

import pytest
from reference_stack import REPO, Stack, containers, playbook_cli, prepared_stack

pytestmark = pytest.mark.stack

STATE_DIR = Path("/var/lib/ablage-deploy")
FROM, TO = "1.0.0", "1.1.0"
RECORD = """---
- name: Hook | Record the point and the run's facts
  ansible.builtin.lineinfile:
    path: {log}
    line: "{{{{ ablage_hook | to_json }}}}"
    create: true
    mode: "0600"
"""
FAIL = """---
- name: Hook | Say no
  ansible.builtin.fail:
    msg: the hook says no
"""
POINTS = ["before_maintenance", "after_backup", "after_migrate", "after_start", "after_verify"]


@pytest.fixture(scope="module")
def stack() -> t.Iterator[Stack]:
    yield from prepared_stack()


@pytest.fixture
def inventory(tmp_path: Path) -> Path:
    """An inventory directory of its own (relative hook paths start there), with the local group_vars."""
    inv = tmp_path / "inventory"
    (inv / "hooks").mkdir(parents=True)
    (inv / "hosts.yml").write_text(
        "ablage_app:\n  hosts:\n"
        "    ablage-local: {ansible_connection: local, ansible_python_interpreter: '{{ ansible_playbook_python }}'}\n",
        encoding="utf-8",
    )
    (inv / "group_vars").symlink_to(REPO / "inventories" / "local" / "group_vars")
    (inv / "hooks" / "record.yml").write_text(RECORD.format(log=tmp_path / "hooks.log"), encoding="utf-8")
    (inv / "hooks" / "fail.yml").write_text(FAIL, encoding="utf-8")
    return inv


def _deploy(inventory: Path, hooks: dict[str, t.Any], *extra: str) -> tuple[int, str]:
    run = playbook_cli(
        "deploy.yml",
        "-e",
        f"ablage_version={TO}",
        "-e",
        "preflight_quality_enabled=false",
        "-e",
        json.dumps({"ablage_hooks": hooks}),
        *extra,
        inventory=inventory,
    )
    return run.returncode, " ".join((run.stdout + run.stderr).split())


def _log(inventory: Path) -> list[dict[str, t.Any]]:
    path = inventory.parent / "hooks.log"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []


def _back_to_from(stack: Stack) -> None:
    run = playbook_cli("rollback.yml", "-e", "rollback_note=test_hooks")
    assert run.returncode == 0 and stack.version() == FROM, run.stdout[-3000:]


def test_each_point_runs_in_order_with_the_runs_facts(stack: Stack, inventory: Path) -> None:
    reports = inventory.parent / "reports"
    hooks = dict.fromkeys(POINTS, "hooks/record.yml") | {"on_failure": "hooks/record.yml"}
    rc, out = _deploy(inventory, hooks, "-e", f"ablage_report_dir={reports}")
    assert rc == 0, out[-3000:]
    # The report's picture of the run (issue 16): every phase, the maintenance window, what users saw.
    (svg,) = reports.glob("*.svg")
    picture = svg.read_text(encoding="utf-8")
    for phase in ("lock taken", "maintenance on", "release started", "users served", "done"):
        assert f">{phase}<" in picture, phase
    assert 'class="maintenance"' in picture and 'class="served"' in picture
    assert f"]({svg.name})" in svg.with_suffix(".md").read_text(encoding="utf-8")
    seen = _log(inventory)
    assert [h["point"] for h in seen] == POINTS, seen
    assert {(h["version"], h["from_version"]) for h in seen} == {(TO, FROM)}
    assert len({h["run_id"] for h in seen}) == 1 and seen[0]["run_id"]
    assert seen[0]["file"] == str(inventory / "hooks" / "record.yml") and seen[0]["primary"] is True
    _back_to_from(stack)


def test_a_hook_failing_before_maintenance_changes_nothing(stack: Stack, inventory: Path) -> None:
    before = {s: c[1] for s, c in containers().items()}
    hooks = {
        "before_maintenance": "hooks/fail.yml",
        "on_rollback": "hooks/record.yml",
        "on_failure": "hooks/record.yml",
    }
    rc, out = _deploy(inventory, hooks, "--skip-tags", "preflight")
    assert rc != 0
    assert "the hook says no" in out and "Nothing was changed on the running system" in out, out[-3000:]
    assert {s: c[1] for s, c in containers().items()} == before, "the application was restarted"
    assert stack.version() == FROM and not stack.maintenance()
    seen = _log(inventory)
    assert [h["point"] for h in seen] == ["on_failure"], seen
    assert "the hook says no" in seen[0]["failure"] and seen[0]["rolled_back"] is False
    assert not (STATE_DIR / "deploy.lock").exists()


def test_a_hook_failing_after_the_migration_rolls_back(stack: Stack, inventory: Path) -> None:
    hooks = {"after_migrate": ["hooks/record.yml", "hooks/fail.yml"], "on_rollback": "hooks/record.yml"}
    hooks["on_failure"] = "hooks/record.yml"
    rc, out = _deploy(inventory, hooks, "--skip-tags", "preflight")
    assert rc != 0
    assert f"Rolled back to {FROM}" in out, out[-3000:]
    assert stack.version() == FROM and not stack.maintenance()
    seen = _log(inventory)
    assert [h["point"] for h in seen] == ["after_migrate", "on_rollback", "on_failure"], seen
    assert seen[1]["rollback"]["version"] == FROM and seen[2]["rolled_back"] is True
    assert not (STATE_DIR / "deploy.lock").exists()


def test_a_typo_in_a_point_is_refused_before_the_lock(stack: Stack, inventory: Path) -> None:
    before = {s: c[1] for s, c in containers().items()}
    rc, out = _deploy(inventory, {"after_migration": "hooks/record.yml"}, "--skip-tags", "preflight")
    assert rc != 0
    assert "ablage_hooks.after_migration is not a hook point" in out and "after_migrate" in out, out[-3000:]
    assert "Nothing was changed on the running system" in out
    assert {s: c[1] for s, c in containers().items()} == before
    assert _log(inventory) == [] and not (STATE_DIR / "deploy.lock").exists()
