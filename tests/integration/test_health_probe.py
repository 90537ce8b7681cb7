"""health_probe through real ansible-playbook / ansible against the reference backend.

Needs the reference stack (``make stack``): the backend on http://127.0.0.1:8000 and
its settings in /srv/ablage/.env.production (ADMIN_* and SMOKE_* users). Override
with ABLAGE_API_URL and ABLAGE_ENV_FILE. Fails, naming `make stack`, when the backend does not answer.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
import threading
import time
import typing as t
from pathlib import Path

import pytest
from reference_stack import API_URL, Stack, ansible_env, require_stack, run_playbook, stack_lock

pytestmark = pytest.mark.stack

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
HEALTH_PATHS = [
    "/api/v1/health",
    "/api/v1/health/detailed",
    "/api/v1/health/pipeline",
    "/api/v1/health/gpu-memory",
    "/api/v1/health/complete",
]


@pytest.fixture(scope="module")
def stack() -> t.Iterator[Stack]:
    with stack_lock():
        require_stack()
        stack = Stack()
        stack.set_maintenance(False)
        try:
            yield stack
        finally:
            stack.set_maintenance(False)


PROBE_ALL = """\
ablage.ops.health_probe:
  base_url: "{{ api_url }}"
  url:
    - /api/v1/health/detailed
    - /api/v1/health/pipeline
    - /api/v1/health/gpu-memory
    - /api/v1/health/complete
  targets:
    - url: /api/v1/health
      expected_json: {status: healthy}
      max_latency_ms: 1000
  attempts: 10
  delay: 1
  total_timeout: 30
"""


def test_checklist_health_checks_three_ways(tmp_path: Path, stack: Stack) -> None:
    """Checklist "5. Health Checks": every endpoint at once; check mode, real, repeat: never changed."""
    body = textwrap.indent(PROBE_ALL, "  ")
    tasks = f"""\
- name: probe (check mode)
{body}  check_mode: true
  register: __check
- name: probe
{body}  register: __real
- name: probe (repeat)
{body}  register: __repeat
- name: a probe never changes anything
  ansible.builtin.assert:
    that:
      - __check is not changed
      - __real is not changed
      - __repeat is not changed
      - __real.summary.total == 5
      - __real.summary.failed == 0
"""
    proc, results = run_playbook(tmp_path, stack, tasks)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    real = results["probe"]
    by_name = {r["name"]: r for r in real["results"]}
    assert sorted(by_name) == sorted(HEALTH_PATHS)
    health = by_name["/api/v1/health"]
    assert health["status"] == 200
    assert health["json"]["status"] == "healthy"
    assert health["url"] == f"{API_URL}/api/v1/health"
    assert 0 < health["latency_ms"] < 1000
    assert all(r["ok"] for r in real["results"])
    assert real["summary"]["max_latency_ms"] >= real["summary"]["avg_latency_ms"] > 0
    # check mode probes for real too (read-only)
    assert results["probe (check mode)"]["summary"]["ok"] == 5


def test_authenticated_probe_hides_the_token(tmp_path: Path, stack: Stack) -> None:
    tasks = """\
- name: maintenance flag through the admin API
  ablage.ops.health_probe:
    url: "{{ api_url }}/api/v1/admin/maintenance"
    bearer_token: "{{ admin_token }}"
    expected_json: {enabled: false}
"""
    proc, results = run_playbook(tmp_path, stack, tasks)
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert results["maintenance flag through the admin API"]["results"][0]["json"]["enabled"] is False
    assert stack.admin_token not in proc.stdout
    assert stack.admin_token not in proc.stderr


def test_failures_are_listed_with_reasons(tmp_path: Path, stack: Stack) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        free_port = sock.getsockname()[1]
    tasks = f"""\
- name: one good, two bad
  ablage.ops.health_probe:
    url:
      - "{{{{ api_url }}}}/api/v1/health"
      - "{{{{ api_url }}}}/api/v1/health/does-not-exist"
      - http://127.0.0.1:{free_port}/api/v1/health
"""
    proc, results = run_playbook(tmp_path, stack, tasks)
    assert proc.returncode != 0
    result = results["one good, two bad"]
    assert result["failed"] is True
    assert result["summary"]["ok"] == 1
    assert result["summary"]["failed"] == 2
    assert result["failed_urls"][0] == f"{API_URL}/api/v1/health/does-not-exist: status 404 not in [200]"
    assert result["failed_urls"][1].startswith(f"http://127.0.0.1:{free_port}/api/v1/health: ")
    assert "refused" in result["failed_urls"][1].lower()
    assert result["msg"].startswith("2 of 3 URLs failed: ")
    assert result["results"][0]["json"]["status"] == "healthy"


def test_maintenance_answer_is_checked(tmp_path: Path, stack: Stack) -> None:
    """While maintenance is on, a user's request answers 503 with the maintenance body."""
    stack.set_maintenance(True)
    try:
        tasks = """\
- name: users see maintenance
  ablage.ops.health_probe:
    url: "{{ api_url }}/api/v1/documents/"
    bearer_token: "{{ user_token }}"
    status_code: [503]
    expected_json: {maintenance: true}
"""
        proc, results = run_playbook(tmp_path, stack, tasks)
    finally:
        stack.set_maintenance(False)
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert results["users see maintenance"]["results"][0]["status"] == 503


def test_retries_until_the_backend_answers_as_expected(stack: Stack) -> None:
    """No fixed sleep in the playbook: the probe retries while maintenance is on and passes once it is off.

    Maintenance goes off 8 s after the command starts, well after ansible has started the module.
    """
    stack.set_maintenance(True)
    args = {
        "url": [f"{API_URL}/api/v1/documents/"],
        # anonymous: 503 while maintenance is on, 401/405 once it is off
        "status_code": [401, 405],
        "attempts": 200,
        "delay": 0.25,
        "total_timeout": 60,
    }
    command = [str(VENV_BIN / "ansible"), "localhost", "-m", "ablage.ops.health_probe", "-a", json.dumps(args)]
    started = time.monotonic()
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ansible_env()
    ) as proc:
        timer = threading.Timer(8.0, stack.set_maintenance, args=(False,))
        timer.start()
        try:
            stdout, stderr = proc.communicate(timeout=120)
        finally:
            timer.cancel()
            stack.set_maintenance(False)
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, stdout[-3000:] + stderr[-2000:]
    entry = json.loads(stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]["results"][0]
    assert entry["ok"] is True
    assert entry["attempts"] > 1
    assert entry["status"] in (401, 405)
    assert elapsed < 60
