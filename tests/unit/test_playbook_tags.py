"""Tag-scoped runs (``--tags preflight``, ``--tags grafana``) must still end with the filled-in checklist.

Tags on an ``include_role`` tag only the include itself; the included role's tasks keep their own tags and
are skipped by ``--tags`` unless the include applies ``always`` to them. A playbook whose report include
lacks that writes no report in exactly the runs an operator scopes down on a Friday evening. Every
reporting playbook goes through the one shared frame, ``playbooks/tasks/report.yml``, imported in its
``always:`` and tagged ``always``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

PLAYBOOKS = Path(__file__).resolve().parents[2] / "playbooks"
FRAME = PLAYBOOKS / "tasks" / "report.yml"


def _tasks(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, list):
        for item in node:
            yield from _tasks(item)
    elif isinstance(node, dict):
        yield node
        for key in ("tasks", "pre_tasks", "post_tasks", "block", "rescue", "always"):
            yield from _tasks(node.get(key))


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8")) or []


def _frame_imports(path: Path) -> list[dict[str, Any]]:
    return [task for task in _tasks(_load(path)) if task.get("ansible.builtin.import_tasks") == "tasks/report.yml"]


def _report_includes(path: Path) -> list[dict[str, Any]]:
    return [
        task["ansible.builtin.include_role"]
        for task in _tasks(_load(path))
        if (task.get("ansible.builtin.include_role") or {}).get("name") == "ablage.ops.report"
    ]


REPORTING = sorted(p for p in PLAYBOOKS.glob("*.yml") if _frame_imports(p))


def test_the_reporting_playbooks_are_found() -> None:
    assert {p.stem for p in REPORTING} >= {"deploy", "preflight", "verify", "rollback", "backup", "restore"}


@pytest.mark.parametrize("playbook", REPORTING, ids=lambda p: p.name)
def test_the_report_is_imported_in_always_and_tagged_always(playbook: Path) -> None:
    always = [t for task in _tasks(_load(playbook)) for t in _tasks(task.get("always"))]
    for imported in _frame_imports(playbook):
        assert "always" in imported.get("tags", []), f"{playbook.name}: import tasks/report.yml with tags: [always]"
        assert imported in always, f"{playbook.name}: the report belongs in always:, so a failed run reports too"


def test_the_frame_applies_always_to_the_role() -> None:
    includes = _report_includes(FRAME)
    assert includes and all("always" in (i.get("apply") or {}).get("tags", []) for i in includes), (
        "tasks/report.yml: include_role ablage.ops.report needs `apply: {tags: [always]}`, "
        "or a tag-scoped run writes no report"
    )


@pytest.mark.parametrize("playbook", sorted(PLAYBOOKS.glob("*.yml")), ids=lambda p: p.name)
def test_no_playbook_includes_the_report_role_beside_the_frame(playbook: Path) -> None:
    assert _report_includes(playbook) == [], f"{playbook.name}: report through tasks/report.yml, the shared frame"
