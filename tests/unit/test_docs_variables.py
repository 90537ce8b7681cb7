"""docs/variables.md documents every shared ablage_* variable the roles accept, and nothing else."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def role_shared_variables() -> set[str]:
    names: set[str] = set()
    for spec_file in (REPO / "roles").glob("*/meta/argument_specs.yml"):
        options = yaml.safe_load(spec_file.read_text())["argument_specs"]["main"]["options"]
        names |= {name for name in options if name.startswith("ablage_")}
    return names


def documented_variables(text: str) -> set[str]:
    return set(re.findall(r"`(ablage_[a-z_]+)`", text))


def test_every_shared_variable_is_documented() -> None:
    documented = documented_variables((REPO / "docs" / "variables.md").read_text())
    missing = sorted(role_shared_variables() - documented)
    assert not missing, f"docs/variables.md lacks {missing}"


def playbook_variables() -> set[str]:
    """Extra variables the playbooks themselves read (e.g. ``serial``, templated before any host's vars)."""
    text = "\n".join(p.read_text() for p in (REPO / "playbooks").rglob("*.yml"))
    return set(re.findall(r"\b(ablage_[a-z_]+) \| default\(", text)) - role_shared_variables()


def test_docs_name_no_variable_the_roles_do_not_know() -> None:
    login_only = {"ablage_admin_username", "ablage_admin_password", "ablage_smoke_username", "ablage_smoke_password"}
    documented = documented_variables((REPO / "docs" / "variables.md").read_text())
    unknown = sorted(documented - role_shared_variables() - login_only - playbook_variables())
    assert not unknown, f"docs/variables.md documents {unknown}, which no role or playbook accepts"


def test_every_playbook_variable_is_documented() -> None:
    documented = documented_variables((REPO / "docs" / "variables.md").read_text())
    assert "ablage_serial" in playbook_variables()
    missing = sorted(playbook_variables() - documented)
    assert not missing, f"docs/variables.md lacks the playbook variables {missing}"


def test_the_check_can_fail() -> None:
    assert documented_variables("| `ablage_version` | x |") == {"ablage_version"}
    assert "ablage_state_dir" in role_shared_variables() - documented_variables("| `ablage_version` | x |")
