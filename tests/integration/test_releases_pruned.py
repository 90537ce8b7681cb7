"""After a successful deploy the images of old releases leave the host; what runs, the rollback target and an
image pulled ahead of its window stay.

Before: old images were never removed (issue 16). Here the host's history names two earlier, failed
deploys (1.2.0-broken, 1.3.0-badmigration) whose images are on the host, and an image of a next
release was pulled ahead; a real deploy 1.0.0 -> 1.1.0 with deploy_releases_keep=1 runs on the
reference stack.
"""

from __future__ import annotations

import json
import subprocess
import typing as t
from pathlib import Path

import pytest
from reference_stack import Stack, playbook_cli, prepared_stack

pytestmark = pytest.mark.stack

REG = "127.0.0.1:5000"
STATE_DIR = Path("/var/lib/ablage-deploy")
FROM, TO = "1.0.0", "1.1.0"
OLD = ["1.2.0-broken", "1.3.0-badmigration"]
AHEAD = f"{REG}/ablage/backend:9.9.9-ahead"


def _local_tags() -> set[str]:
    out = subprocess.run(
        ["docker", "images", "--format", "{{.Repository}}:{{.Tag}}"], capture_output=True, text=True, check=True
    ).stdout
    return {line for line in out.split() if not line.endswith(":<none>")}


def _docker(*argv: str) -> None:
    subprocess.run(["docker", *argv], capture_output=True, check=True, timeout=300)


@pytest.fixture(scope="module")
def stack() -> t.Iterator[Stack]:
    yield from prepared_stack()


def test_old_release_images_are_removed_and_the_rest_stays(stack: Stack) -> None:
    old = {f"{REG}/ablage/{service}:{version}" for service in ("backend", "worker") for version in OLD}
    for tag in sorted(old - _local_tags()):
        _docker("pull", "-q", tag)
    _docker("tag", f"{REG}/ablage/backend:{TO}", AHEAD)
    STATE_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
    with open(STATE_DIR / "history.jsonl", "a", encoding="utf-8") as history:
        for version in OLD:
            history.write(json.dumps({"action": "deploy", "version": version, "result": "rolled_back"}) + "\n")
    before = _local_tags()
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
        assert AHEAD in after, "an image no deploy named was removed"
        for version in (FROM, TO):
            assert f"{REG}/ablage/backend:{version}" in after and f"{REG}/ablage/worker:{version}" in after
        back = playbook_cli("rollback.yml", "-e", "rollback_note=test_releases_pruned")
        assert back.returncode == 0, back.stdout[-3000:]
    finally:
        subprocess.run(["docker", "rmi", AHEAD], capture_output=True, check=False)
        for tag in sorted(old - _local_tags()):
            _docker("pull", "-q", tag)
