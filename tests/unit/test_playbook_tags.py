"""Tag-scoped runs (``--tags preflight``, ``--tags grafana``) must still end with the filled-in checklist.

Tags on an ``include_role`` tag only the include itself; the included role's tasks keep their own tags and
are skipped by ``--tags`` unless the include applies ``always`` to them. A playbook whose report include
lacks that writes no report in exactly the runs an operator scopes down on a Friday evening.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

PLAYBOOKS = Path(__file__).resolve().parents[2] / "playbooks"


def _tasks(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, list):
        for item in node:
            yield from _tasks(item)
    elif isinstance(node, dict):
        yield node
        for key in ("tasks", "pre_tasks", "post_tasks", "block", "rescue", "always"):
            yield from _tasks(node.get(key))


def _report_includes(path: Path) -> list[dict[str, Any]]:
    plays = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    return [
        task["ansible.builtin.include_role"]
        for task in _tasks(plays)
        if (task.get("ansible.builtin.include_role") or {}).get("name") == "ablage.ops.report"
    ]


REPORTING = sorted(p for p in PLAYBOOKS.glob("*.yml") if _report_includes(p))


def test_the_reporting_playbooks_are_found() -> None:
    assert {p.stem for p in REPORTING} >= {"deploy", "preflight", "verify", "rollback", "backup", "restore"}


@pytest.mark.parametrize("playbook", REPORTING, ids=lambda p: p.name)
def test_report_include_applies_always(playbook: Path) -> None:
    for include in _report_includes(playbook):
        assert "always" in (include.get("apply") or {}).get("tags", []), (
            f"{playbook.name}: include_role ablage.ops.report needs `apply: {{tags: [always]}}`, "
            "or a tag-scoped run writes no report"
        )
