"""What one role or playbook calls in another role is a declared entry point (issue 15).

Every ``tasks_from`` of ``include_role``/``import_role`` in roles/ and playbooks/ names a task file
for which the called role's meta/argument_specs.yml has an entry point of the same name, so the
caller's variables are checked and the interface is documented (as prometheus-community's
``_common`` role does). A new cross-role call without a spec fails here.
"""

from __future__ import annotations

import typing as t
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
PREFIX = "ablage.ops."


def _tasks(node: t.Any) -> t.Iterator[dict[str, t.Any]]:
    if isinstance(node, list):
        for item in node:
            yield from _tasks(item)
    elif isinstance(node, dict):
        yield node
        for key in ("block", "rescue", "always", "tasks", "pre_tasks", "post_tasks", "handlers"):
            yield from _tasks(node.get(key))


def _calls() -> list[tuple[str, str, str]]:
    """(file, role, entry point) for every tasks_from in roles/ and playbooks/."""
    found = []
    for path in sorted([*REPO.glob("roles/*/tasks/*.yml"), *REPO.glob("playbooks/**/*.yml")]):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        for task in _tasks(data):
            for key in ("ansible.builtin.include_role", "ansible.builtin.import_role"):
                call = task.get(key)
                if isinstance(call, dict) and call.get("tasks_from"):
                    role = str(call["name"]).removeprefix(PREFIX)
                    entry = Path(str(call["tasks_from"])).name.removesuffix(".yml")
                    found.append((str(path.relative_to(REPO)), role, entry))
    return found


def _entry_points(role: str) -> dict[str, t.Any]:
    specs = yaml.safe_load((REPO / "roles" / role / "meta" / "argument_specs.yml").read_text(encoding="utf-8"))
    return t.cast(dict[str, t.Any], specs["argument_specs"])


def test_there_are_cross_role_calls_to_check() -> None:
    roles = {call[1] for call in _calls()}
    assert {"deploy", "rollback", "report", "hooks"} <= roles, roles


def test_every_tasks_from_is_a_declared_entry_point() -> None:
    missing = [
        f"{where}: {role} tasks_from {entry}" for where, role, entry in _calls() if entry not in _entry_points(role)
    ]
    assert missing == []


def test_every_entry_point_documents_its_options() -> None:
    for role in sorted(p.name for p in (REPO / "roles").iterdir() if (p / "meta" / "argument_specs.yml").exists()):
        for name, spec in _entry_points(role).items():
            assert spec.get("short_description"), f"{role}:{name} has no short_description"
            for option, doc in (spec.get("options") or {}).items():
                assert doc.get("description") and doc.get("type"), (
                    f"{role}:{name} option {option} lacks description/type"
                )
                assert not (doc.get("required") and "default" in doc), (
                    f"{role}:{name} {option}: required with a default"
                )
