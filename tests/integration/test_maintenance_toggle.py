"""maintenance_toggle through real ansible-playbook / ansible against the reference backend.

Needs the reference stack (``make stack``): the backend on http://127.0.0.1:8000 and
its settings in /srv/ablage/.env.production (ADMIN_* and SMOKE_* users). Override
with ABLAGE_API_URL and ABLAGE_ENV_FILE. Fails, naming `make stack`, when the backend does not answer.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import typing as t
from pathlib import Path

import pytest
from reference_stack import API_URL, Stack, ansible_env, require_stack, run_playbook, stack_lock, tokens_file

from ansible_collections.ablage.ops.plugins.module_utils._http import HttpClient

pytestmark = pytest.mark.stack

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def stack() -> t.Iterator[Stack]:
    with stack_lock():
        require_stack()
        yield Stack()


@pytest.fixture(autouse=True)
def maintenance_off(stack: Stack) -> t.Iterator[None]:
    """Every test starts and ends with maintenance off, whatever happened in between."""
    stack.set_maintenance(False)
    yield
    stack.set_maintenance(False)


TOGGLE = """\
ablage.ops.maintenance_toggle:
  state: {state}
  api_url: "{{{{ api_url }}}}"
  admin_token: "{{{{ admin_token }}}}"
  verify_token: "{{{{ user_token }}}}"
  reason: ablage.ops integration test
"""


def three_way(state: str) -> str:
    body = textwrap.indent(TOGGLE.format(state=state), "  ")
    return f"""\
- name: {state} (check mode)
{body}  check_mode: true
  diff: true
  register: __check
- name: {state}
{body}  diff: true
  register: __real
- name: {state} (repeat)
{body}  register: __repeat
- name: {state} three ways - changed, changed, not changed
  ansible.builtin.assert:
    that:
      - __check is changed
      - __real is changed
      - __repeat is not changed
      - __check.verification.performed is false
      - __real.enabled_after == ({state!r} == 'enabled')
      - __repeat.enabled_before == __real.enabled_after
"""


def test_enable_then_disable_three_ways(tmp_path: Path, stack: Stack) -> None:
    proc, results = run_playbook(tmp_path, stack, three_way("enabled") + three_way("disabled"))
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]

    check, real, repeat = results["enabled (check mode)"], results["enabled"], results["enabled (repeat)"]
    assert check["diff"] == {"before": {"enabled": False}, "after": {"enabled": True}}
    assert real["diff"] == check["diff"]
    # the evidence: a normal user's request is blocked while maintenance is on
    assert real["verification"]["status"] == 503
    assert real["verification"]["url"] == f"{API_URL}/api/v1/documents/"
    assert repeat["verification"]["status"] == 503
    off = results["disabled"]
    assert (off["enabled_before"], off["enabled_after"]) == (True, False)
    assert off["verification"]["status"] != 503
    assert stack.maintenance() is False
    # no_log: the tokens never reach the output
    for token in (stack.admin_token, stack.user_token):
        assert token not in proc.stdout
        assert token not in proc.stderr


def test_state_really_changes_for_users(tmp_path: Path, stack: Stack) -> None:
    proc, dummy = run_playbook(tmp_path, stack, "- name: on\n" + textwrap.indent(TOGGLE.format(state="enabled"), "  "))
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert stack.maintenance() is True
    user = HttpClient(base_url=API_URL, bearer_token=stack.user_token)
    assert user.get("/api/v1/documents/").status == 503
    # health stays reachable for the load balancer during maintenance
    assert stack.client.get("/api/v1/health").status != 503


def test_check_mode_changes_nothing(tmp_path: Path, stack: Stack) -> None:
    tasks = "- name: on (check)\n" + textwrap.indent(TOGGLE.format(state="enabled"), "  ") + "  check_mode: true\n"
    proc, results = run_playbook(tmp_path, stack, tasks)
    assert proc.returncode == 0
    assert results["on (check)"]["changed"] is True
    assert stack.maintenance() is False


def test_wrong_admin_token_fails_with_the_fix(tmp_path: Path, stack: Stack) -> None:
    tasks = """\
- name: user token is no admin token
  ablage.ops.maintenance_toggle:
    state: enabled
    api_url: "{{ api_url }}"
    admin_token: "{{ user_token }}"
"""
    proc, results = run_playbook(tmp_path, stack, tasks)
    assert proc.returncode != 0
    result = results["user token is no admin token"]
    assert result["failed"] is True
    assert "admin_token was rejected" in result["msg"]
    assert stack.maintenance() is False


def test_adhoc_check_mode_and_diff(tmp_path: Path, stack: Stack) -> None:
    """`ansible localhost -m ablage.ops.maintenance_toggle --check --diff`, the quick command of the runbook."""
    args = '{"state": "enabled", "api_url": "{{ api_url }}", "admin_token": "{{ admin_token }}"}'
    proc = subprocess.run(
        [
            str(VENV_BIN / "ansible"),
            "localhost",
            "-m",
            "ablage.ops.maintenance_toggle",
            "-a",
            args,
            "-e",
            f"@{tokens_file(tmp_path, stack)}",
            "--check",
            "--diff",
        ],
        capture_output=True,
        text=True,
        env=ansible_env(),
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    result = json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]
    assert result["changed"] is True
    assert result["enabled_before"] is False
    assert result["diff"] == {"before": {"enabled": False}, "after": {"enabled": True}}
    assert stack.admin_token not in proc.stdout
    assert stack.maintenance() is False
