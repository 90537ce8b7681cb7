"""After a successful deploy the images of old releases leave the host; the running one and the rollback target stay.

Before: old images were never removed (issue 16). Here a real deploy 1.0.0 -> 1.1.0 with
deploy_releases_keep=1 runs on the reference stack, whose host also holds the images of
1.2.0-broken and 1.3.0-badmigration (never deployed with success) and of other repositories.
"""

from __future__ import annotations

import subprocess
import typing as t

import pytest
from reference_stack import Stack, playbook_cli, prepared_stack

pytestmark = pytest.mark.stack

REG = "127.0.0.1:5000"
FROM, TO = "1.0.0", "1.1.0"
OLD = ["1.2.0-broken", "1.3.0-badmigration"]


def _local_tags() -> set[str]:
    out = subprocess.run(
        ["docker", "images", "--format", "{{.Repository}}:{{.Tag}}"], capture_output=True, text=True, check=True
    ).stdout
    return {line for line in out.split() if not line.endswith(":<none>")}


@pytest.fixture(scope="module")
def stack() -> t.Iterator[Stack]:
    yield from prepared_stack()


def test_old_release_images_are_removed_and_the_rollback_target_stays(stack: Stack) -> None:
    old = {f"{REG}/ablage/{service}:{version}" for service in ("backend", "worker") for version in OLD}
    before = _local_tags()
    assert old <= before, f"the stack should hold the old images: {sorted(old - before)}"
    try:
        run = playbook_cli(
            "deploy.yml",
            "-e",
            f"ablage_version={TO}",
            "-e",
            "preflight_quality_enabled=false",
            "-e",
            "deploy_releases_keep=1",
        )
        out = run.stdout + run.stderr
        assert run.returncode == 0, out[-3000:]
        after = _local_tags()
        assert before - after == old, f"removed {sorted(before - after)}, expected {sorted(old)}"
        for version in (FROM, TO):
            assert f"{REG}/ablage/backend:{version}" in after and f"{REG}/ablage/worker:{version}" in after
        assert "Remove the images of older releases" in out
        back = playbook_cli("rollback.yml", "-e", "rollback_note=test_releases_pruned")
        assert back.returncode == 0, back.stdout[-3000:]
    finally:
        for tag in sorted(old - _local_tags()):
            subprocess.run(["docker", "pull", "-q", tag], capture_output=True, check=True, timeout=300)
