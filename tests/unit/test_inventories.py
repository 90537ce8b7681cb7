"""Every inventory defines what the roles require, so a deploy never starts half-configured.

The production and staging vaults hold placeholders encrypted with a documented
placeholder password (docs/inventory.md); the test decrypts them the way an operator would.
"""

from __future__ import annotations

import json
import subprocess
import sys
import typing as t
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
ANSIBLE_INVENTORY = str(Path(sys.executable).parent / "ansible-inventory")
# A documented placeholder, see docs/inventory.md.
PLACEHOLDER_VAULT_PASSWORD = "ablage-placeholder-vault"


def required_options() -> dict[str, set[str]]:
    required: dict[str, set[str]] = {}
    for spec_file in sorted((REPO / "roles").glob("*/meta/argument_specs.yml")):
        options = yaml.safe_load(spec_file.read_text())["argument_specs"]["main"]["options"]
        required[spec_file.parts[-3]] = {name for name, spec in options.items() if spec.get("required")}
    return required


def host_vars(inventory: str, tmp_path: Path) -> dict[str, dict[str, t.Any]]:
    password_file = tmp_path / "vault-pass"
    password_file.write_text(PLACEHOLDER_VAULT_PASSWORD + "\n")
    out = subprocess.run(
        [
            ANSIBLE_INVENTORY,
            "-i",
            str(REPO / "inventories" / inventory),
            "--list",
            "--vault-password-file",
            str(password_file),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    data = json.loads(out)
    hosts = data["ablage_app"]["hosts"]
    assert hosts, f"inventories/{inventory} has no host in group ablage_app"
    return {host: data["_meta"]["hostvars"][host] for host in hosts}


@pytest.mark.parametrize("inventory", ["local", "production", "staging"])
def test_inventory_defines_every_required_role_variable(inventory: str, tmp_path: Path) -> None:
    # ablage_version comes from -e at run time; tokens are obtained by playbooks/tasks/api_login.yml;
    # hooks_point is set by each call of the hooks role.
    runtime = {"ablage_version", "ablage_admin_token", "ablage_user_token", "hooks_point"}
    for host, variables in host_vars(inventory, tmp_path).items():
        for role, names in required_options().items():
            missing = sorted(names - runtime - set(variables))
            assert not missing, f"inventories/{inventory}: host {host} lacks {missing} required by role {role}"
        for login in (
            "ablage_admin_username",
            "ablage_admin_password",
            "ablage_smoke_username",
            "ablage_smoke_password",
        ):
            assert login in variables, f"inventories/{inventory}: {login} is needed to obtain API tokens"


@pytest.mark.parametrize("inventory", ["production", "staging"])
def test_secrets_live_in_the_vault(inventory: str, tmp_path: Path) -> None:
    vault = REPO / "inventories" / inventory / "group_vars" / "ablage_app" / "vault.yml"
    text = vault.read_text()
    names = ("ablage_admin_password", "ablage_smoke_password", "ablage_db_password", "verify_grafana_token")
    for name in names:
        # encrypt_string per value: AWX syncs the inventory, its Vault credential decrypts at run time.
        assert f"vault_{name}: !vault |" in text, f"{vault}: vault_{name} must be an inline-encrypted value"
    assert "PLACEHOLDER" not in text, f"{vault} holds a plain-text value"
    variables = next(iter(host_vars(inventory, tmp_path).values()))
    for name in names:
        assert variables[name] == "{{ vault_" + name + " }}"


def test_a_missing_variable_is_caught(tmp_path: Path) -> None:
    broken = tmp_path / "inv"
    broken.mkdir()
    (broken / "hosts.yml").write_text("ablage_app:\n  hosts:\n    h1:\n      ablage_project_dir: /x\n")
    variables = host_vars(str(broken), tmp_path)["h1"]
    missing = required_options()["deploy"] - set(variables)
    assert "ablage_state_dir" in missing
