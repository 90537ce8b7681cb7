"""playbooks/preflight.yml run the way AWX runs a job: ansible-runner with a private data dir.

AWX checks the project out into ``<private_data_dir>/project``, writes the job's extra vars
(the survey answers) and environment, and calls ``ansible_runner.run`` with the template's
playbook, inventory and job tags; the job's result is the runner's status, rc and events.
This test does the same with the committed project files (what a git checkout holds), the
local inventory and the survey answer ``ablage_version``, against the live reference stack.

The pre-flight is read-only (it renders the migration SQL in a throw-away container and
reads files, the registry and the API); the stack lock is held anyway, as by the other stack
suites, so that no deploy changes the stack half-way. Needs the reference stack (``make stack``):
failing with the fix when the backend does not answer or /srv/ablage/.env.production is missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import typing as t
from pathlib import Path

import ansible_runner
import pytest
from reference_stack import require_stack, stack_lock

pytestmark = pytest.mark.stack

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
SITE_PACKAGES = Path(pytest.__file__).resolve().parents[1]
VERSION = os.environ.get("ABLAGE_RUNNER_TEST_VERSION", "1.1.0")
GATES_TASK = "Preflight | All gates passed"
JOB_TIMEOUT = 600
RESULT_EVENTS = ("runner_on_ok", "runner_on_failed", "runner_on_skipped", "runner_on_unreachable")


@pytest.fixture(scope="module")
def stack() -> t.Iterator[None]:
    with stack_lock():
        require_stack()
        yield


@pytest.fixture(scope="module")
def project_checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project as AWX's project update leaves it: the files git knows, nothing ignored (.venv, builds)."""
    listed = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout.decode()
    project = tmp_path_factory.mktemp("awx-project") / "project"
    for relative in filter(None, listed.split("\0")):
        source = REPO / relative
        if source.is_file() and not source.is_symlink():
            target = project / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return project


def awx_job(
    private_data_dir: Path, project: Path, playbook: str, extravars: dict[str, t.Any], tags: str
) -> ansible_runner.Runner:
    """One job as AWX launches it: extra vars (survey answers and awx_* job metadata), tags, environment."""
    private_data_dir.mkdir(parents=True, exist_ok=True)
    (private_data_dir / "project").symlink_to(project, target_is_directory=True)
    job_vars = {
        "awx_job_id": 4711,
        "awx_job_template_name": "Ablage preflight",
        "awx_user_name": "pytest",
        **extravars,
    }
    return ansible_runner.run(
        private_data_dir=str(private_data_dir),
        playbook=playbook,
        inventory=str(project / "inventories" / "local"),
        extravars=job_vars,
        tags=tags,
        envvars={
            # In AWX the EE provides ablage.ops and its collections; here the checkout and the venv's bundle.
            "ANSIBLE_COLLECTIONS_PATH": f"{REPO / '.collections'}{os.pathsep}{SITE_PACKAGES}",
            "ANSIBLE_CONFIG": str(project / "ansible.cfg"),
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "ANSIBLE_FORCE_COLOR": "0",
        },
        timeout=JOB_TIMEOUT,
        quiet=True,
    )


def task_events(runner: ansible_runner.Runner, task: str) -> list[dict[str, t.Any]]:
    return [
        event
        for event in runner.events
        if event.get("event") in RESULT_EVENTS and event.get("event_data", {}).get("task") == task
    ]


def failure_summary(runner: ansible_runner.Runner) -> str:
    lines = []
    for event in runner.events:
        if event.get("event") in ("runner_on_failed", "runner_on_unreachable"):
            data = event["event_data"]
            lines.append(f"{data.get('task')}: {data.get('res', {}).get('msg', '')}")
    return "\n".join(lines) or runner.stdout.read()[-3000:]


def test_preflight_job_passes_as_in_awx(stack: None, project_checkout: Path, tmp_path: Path) -> None:
    started = time.monotonic()
    runner = awx_job(
        tmp_path / "job", project_checkout, "playbooks/preflight.yml", {"ablage_version": VERSION}, "preflight"
    )
    duration = time.monotonic() - started
    assert runner.status == "successful", failure_summary(runner)
    assert runner.rc == 0
    (gate,) = task_events(runner, GATES_TASK)
    assert gate["event"] == "runner_on_ok"
    assert gate["event_data"]["host"] == "ablage-local"
    assert (
        gate["event_data"]["res"]["msg"].startswith("All ")
        and "pre-flight gates passed" in gate["event_data"]["res"]["msg"]
    )
    # The job log carries the whole checklist report, every section of it.
    (report,) = task_events(runner, "Preflight | Report")
    lines = report["event_data"]["res"]["msg"]
    for section_gate in (
        "quality / ruff check",
        "database / migration preview",
        "config / environment variables",
        "config / no secrets in code",
        f"infra / image 127.0.0.1:5000/ablage/backend:{VERSION}",
        "infra / disk space",
    ):
        assert any(line.startswith(f"[x] {section_gate}") for line in lines), (section_gate, lines)
    # Read-only: nothing changed, nothing failed, on the one host of the local inventory.
    assert runner.stats["ok"] == {"ablage-local": runner.stats["ok"]["ablage-local"]}
    assert not runner.stats.get("changed"), runner.stats
    assert not runner.stats.get("failures"), runner.stats
    # What AWX keeps of a job: artifacts with the status, rc and the event stream.
    artifacts = Path(runner.config.artifact_dir)
    assert (artifacts / "status").read_text() == "successful"
    assert (artifacts / "rc").read_text() == "0"
    assert any((artifacts / "job_events").iterdir())
    print(f"preflight job ({VERSION}) took {duration:.1f} s")


def test_preflight_job_fails_for_a_release_without_images(stack: None, project_checkout: Path, tmp_path: Path) -> None:
    """The same job, for a version that was never built: the job fails at the gate, with the reason."""
    runner = awx_job(
        tmp_path / "job",
        project_checkout,
        "playbooks/preflight.yml",
        {"ablage_version": "0.0.0-missing"},
        "preflight_infra",
    )
    assert runner.status == "failed"
    assert runner.rc != 0
    (gate,) = task_events(runner, GATES_TASK)
    assert gate["event"] == "runner_on_failed"
    message = gate["event_data"]["res"]["msg"]
    assert "image 127.0.0.1:5000/ablage/backend:0.0.0-missing" in message
    assert "nothing was changed" in message
    assert not runner.stats.get("changed"), runner.stats
