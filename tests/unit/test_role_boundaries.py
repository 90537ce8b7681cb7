"""No role reads or sets another role's private variables (issue 15; docs/STYLE: roles talk through
published results and entry points).

A role's private names start with ``_<role>_`` or ``__<role>_`` (its internal facts and registers).
Any of them in another role's files, or in playbooks/, is a hidden interface: renaming it in its
own role would break the other side silently. What crosses a role boundary is a published fact
(``deploy_run``, ``deploy_result``, ``verify_result``, ``rollback_result``, ...) or an entry point's
option (tests/unit/test_entry_points.py).
"""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ROLES = sorted(p.name for p in (REPO / "roles").iterdir() if p.is_dir())
PRIVATE = re.compile(r"(?<![A-Za-z0-9_])_{1,2}(" + "|".join(ROLES) + r")_[a-z0-9_]+")


def _files() -> list[tuple[str, Path]]:
    """(owner, file): each role's YAML and templates, and the playbooks (owned by no role)."""
    found = [
        (role, path)
        for role in ROLES
        for path in sorted((REPO / "roles" / role).rglob("*"))
        if path.suffix in (".yml", ".j2")
    ]
    found += [("playbooks", path) for path in sorted((REPO / "playbooks").rglob("*.yml"))]
    return found


def test_the_scan_sees_private_names() -> None:
    paths = [path for owner, path in _files() if owner == "deploy" and path.name == "lock_and_record.yml"]
    own = [m.group(0) for path in paths for m in PRIVATE.finditer(path.read_text(encoding="utf-8"))]
    assert "_deploy_run_id" in own, "the pattern no longer matches the roles' private names"


def test_no_private_variable_crosses_a_role_boundary() -> None:
    crossings = sorted(
        f"{path.relative_to(REPO)}: {match.group(0)} (private to role {match.group(1)})"
        for owner, path in _files()
        for match in PRIVATE.finditer(path.read_text(encoding="utf-8"))
        if match.group(1) != owner
    )
    assert crossings == []
