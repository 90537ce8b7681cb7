"""`deploy.yml -l <second host>` never makes that host migrate the shared database.

Seen before (issue 14): with `-l` the first host of the *limited* play became the primary and ran
maintenance, backup and the migration. The primary is now the first host of the group in the
inventory (ablage_primary_host); a run without it refuses before the lock, with nothing changed.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from reference_stack import REPO, containers, playbook_cli, require_stack, stack_lock

pytestmark = pytest.mark.stack

STATE_DIR = Path("/var/lib/ablage-deploy")


def test_a_run_limited_to_a_second_host_refuses_before_the_lock(tmp_path: Path) -> None:
    inventory = tmp_path / "inventory"
    inventory.mkdir()
    (inventory / "hosts.yml").write_text(
        "ablage_app:\n  hosts:\n"
        "    ablage-gpu-1: {ansible_connection: local, ansible_python_interpreter: '{{ ansible_playbook_python }}'}\n"
        "    ablage-gpu-2: {ansible_connection: local, ansible_python_interpreter: '{{ ansible_playbook_python }}'}\n",
        encoding="utf-8",
    )
    (inventory / "group_vars").symlink_to(REPO / "inventories" / "local" / "group_vars")
    with stack_lock():
        require_stack()
        before = containers()
        run = playbook_cli(
            "deploy.yml",
            "-l",
            "ablage-gpu-2",
            "--skip-tags",
            "preflight",
            "-e",
            "ablage_version=1.1.0",
            inventory=inventory,
        )
        after = containers()
    out = " ".join((run.stdout + run.stderr).split())
    assert run.returncode != 0, out[-3000:]
    assert "The primary app host ablage-gpu-1" in out and "-l ablage-gpu-1,ablage-gpu-2" in out, out[-3000:]
    assert "Nothing was changed" in out, out[-3000:]
    assert not (STATE_DIR / "deploy.lock").exists()
    assert {s: c[1] for s, c in after.items()} == {s: c[1] for s, c in before.items()}, "a container was restarted"
