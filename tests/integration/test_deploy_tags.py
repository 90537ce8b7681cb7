"""deploy.yml with every tag it knows (docs/tags.md): each narrows to a step that is safe alone or stops at once.

Before: the deploy block carried eleven tags, so ``--tags migrate`` (or backup, smoke, health) ran a whole
deploy with maintenance and migration, and ``--tags preflight_config`` from the README failed on an
undefined plan. Each case here runs the real playbook against the reference stack and reads from its
output which tasks ran, then checks that nothing on the host changed (no container restarted, no lock,
state.json and the history as they were).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from reference_stack import containers, playbook_cli, require_stack, stack_lock

from ansible_collections.ablage.ops.plugins.filter.tags import ELSEWHERE, PREFLIGHT

pytestmark = pytest.mark.stack

STATE_DIR = Path("/var/lib/ablage-deploy")
TARGET = "1.1.0"
REFUSAL = "Stop when the tags would cut the deploy"


def _ran(output: str) -> list[str]:
    """The names of the tasks that ran (ok, changed or failed on a host; skipped ones left out)."""
    ran, task = [], None
    for line in output.splitlines():
        header = re.match(r"TASK \[(.*)\] \*+$", line)
        if header:
            task = header.group(1)
        elif task and re.match(r"(ok|changed|fatal|failed): \[", line):
            ran.append(task)
            task = None
    return ran


def _host_state() -> tuple[object, ...]:
    files = [STATE_DIR / "state.json", STATE_DIR / "history.jsonl"]
    return (
        {s: c[1] for s, c in containers().items()},
        (STATE_DIR / "deploy.lock").exists(),
        [(f.read_bytes() if f.exists() else None) for f in files],
    )


def _deploy(*args: str) -> tuple[int, str, list[str], bool]:
    """Run deploy.yml; its rc, its output, the tasks that ran, and whether the host stayed as it was."""
    with stack_lock():
        require_stack()
        before = _host_state()
        run = playbook_cli("deploy.yml", "-e", f"ablage_version={TARGET}", *args)
        after = _host_state()
    out = run.stdout + run.stderr
    return run.returncode, out, _ran(out), before == after


def _outside(ran: list[str], *allowed: str) -> list[str]:
    """The tasks that ran beyond ``allowed``, the logins, the report and the roles' argument checks."""
    common = ("Validating arguments against arg spec", "API | ", "ablage.ops.report : ")
    return [t for t in ran if not any(a in t for a in (*common, *allowed))]


@pytest.mark.parametrize("tag", [*sorted(ELSEWHERE), "migrat"])
def test_a_tag_that_would_cut_the_deploy_stops_before_anything_runs(tag: str) -> None:
    rc, out, ran, unchanged = _deploy("--tags", tag)
    flat = " ".join(out.split())
    assert rc != 0, flat[-2000:]
    assert len(ran) == 1 and REFUSAL in ran[0], f"only the refusal may run, ran: {ran}"
    expected = ELSEWHERE[tag].split(": ", 1)[1] if tag in ELSEWHERE else "docs/tags.md"
    assert expected in flat and "Nothing was changed." in flat, flat[-2000:]
    assert unchanged, "the host changed"


@pytest.mark.parametrize("tag", ["backup", "migrate", "smoke"])
def test_skipping_a_step_of_the_deploy_stops_before_anything_runs(tag: str) -> None:
    rc, out, ran, unchanged = _deploy("--skip-tags", tag)
    assert rc != 0 and len(ran) == 1 and REFUSAL in ran[0], f"rc {rc}, ran: {ran}"
    assert f"--skip-tags {tag} would leave steps out of the deploy" in " ".join(out.split())
    assert unchanged, "the host changed"


@pytest.mark.parametrize("tag", PREFLIGHT)
def test_a_preflight_tag_runs_only_gates(tag: str) -> None:
    rc, out, ran, unchanged = _deploy("--tags", tag)
    assert rc == 0, out[-3000:]
    gates = [t for t in ran if t.startswith("ablage.ops.preflight :") and "Validating" not in t]
    assert gates, f"no gate ran: {ran}"
    assert not _outside(ran, "ablage.ops.preflight"), (
        f"more than the gates ran: {_outside(ran, 'ablage.ops.preflight')}"
    )
    assert unchanged, "the host changed"


def test_pull_fetches_the_images_and_changes_nothing_else() -> None:
    rc, out, ran, unchanged = _deploy("--tags", "pull")
    assert rc == 0, out[-3000:]
    pulled = [t for t in ran if "Deploy | Pull |" in t]
    assert any("Fetch the app images" in t for t in pulled), ran
    assert not _outside(ran, "Deploy | Pull |"), f"more than the pull ran: {_outside(ran, 'Deploy | Pull |')}"
    assert f"The images of {TARGET} are on" in " ".join(out.split())
    assert unchanged, "the host changed"
