"""maintenance_toggle through real ansible-playbook / ansible against the reference backend.

Needs the reference stack (``make stack``): the backend on http://127.0.0.1:8000 and
its settings in /srv/ablage/.env.production (ADMIN_* and SMOKE_* users). Override
with ABLAGE_API_URL and ABLAGE_ENV_FILE. Skipped when the backend does not answer.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import subprocess
import sys
import textwrap
import time
import typing as t
from pathlib import Path

import pytest

from ansible_collections.ablage.ops.plugins.module_utils._http import HttpClient, HttpConnectionError

pytestmark = pytest.mark.stack

REPO = Path(__file__).resolve().parents[2]
API_URL = os.environ.get("ABLAGE_API_URL", "http://127.0.0.1:8000")
ENV_FILE = Path(os.environ.get("ABLAGE_ENV_FILE", "/srv/ablage/.env.production"))
VENV_BIN = Path(sys.executable).parent
LOCK_FILE = os.environ.get("ABLAGE_STACK_LOCK", "/run/lock/ablage-stack.lock")
LOCK_WAIT = float(os.environ.get("ABLAGE_STACK_LOCK_WAIT", "900"))


@contextlib.contextmanager
def stack_lock() -> t.Iterator[None]:
    """Hold the stack lock that scripts/stack.sh and the other stack suites take, so no deploy
    restarts the backend under these tests and no other suite sees maintenance switched on."""
    if os.environ.get("ABLAGE_STACK_LOCK_HELD") == "1":
        yield
        return
    Path(LOCK_FILE).parent.mkdir(parents=True, exist_ok=True)
    with open(LOCK_FILE, "a+", encoding="utf-8") as handle:
        deadline = time.monotonic() + LOCK_WAIT
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    pytest.fail(f"the stack lock {LOCK_FILE} is still held after {LOCK_WAIT:g} s")
                time.sleep(0.5)
        handle.truncate(0)
        handle.write(f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} pid {os.getpid()}: {__name__}\n")
        handle.flush()
        os.environ["ABLAGE_STACK_LOCK_HELD"] = "1"
        try:
            yield
        finally:
            os.environ.pop("ABLAGE_STACK_LOCK_HELD", None)
            fcntl.flock(handle, fcntl.LOCK_UN)


def read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, dummy, value = line.partition("=")
        values[key.strip()] = value.strip().strip("'\"")
    return values


def login(client: HttpClient, username: str, password: str) -> str:
    response = client.post("/api/v1/auth/login", json_body={"username": username, "password": password})
    assert response.status == 200, f"login of {username} failed: {response.status} {response.text[:200]}"
    return str(response.json()["access_token"])


class Stack:
    def __init__(self) -> None:
        self.client = HttpClient(base_url=API_URL, timeout=10)
        env = read_env_file(ENV_FILE)
        self.admin_token = login(self.client, env["ADMIN_USERNAME"], env["ADMIN_PASSWORD"])
        self.user_token = login(self.client, env["SMOKE_USERNAME"], env["SMOKE_PASSWORD"])
        self.admin = HttpClient(base_url=API_URL, bearer_token=self.admin_token, timeout=10)

    def maintenance(self) -> bool:
        response = self.admin.get("/api/v1/admin/maintenance")
        assert response.status == 200, response.text
        return bool(response.json()["enabled"])

    def set_maintenance(self, enabled: bool) -> None:
        path = "/api/v1/admin/maintenance/" + ("enable" if enabled else "disable")
        assert self.admin.post(path).status == 200


@pytest.fixture(scope="module")
def stack() -> t.Iterator[Stack]:
    with stack_lock():
        try:
            response = HttpClient(base_url=API_URL, timeout=3).get("/api/v1/health")
        except HttpConnectionError as exc:
            pytest.skip(f"reference backend not reachable at {API_URL} ({exc.reason}); start it with `make stack`")
        if response.status >= 500 and response.status != 503:
            pytest.skip(f"reference backend at {API_URL} answers {response.status}")
        if not ENV_FILE.exists():
            pytest.skip(f"{ENV_FILE} is missing; it is written by scripts/stack.sh")
        yield Stack()


@pytest.fixture(autouse=True)
def maintenance_off(stack: Stack) -> t.Iterator[None]:
    """Every test starts and ends with maintenance off, whatever happened in between."""
    stack.set_maintenance(False)
    yield
    stack.set_maintenance(False)


def ansible_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        ANSIBLE_COLLECTIONS_PATH=str(REPO / ".collections"),
        ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
        ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json",
        ANSIBLE_LOAD_CALLBACK_PLUGINS="1",  # ad-hoc `ansible` uses the stdout callback only with this
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
        ANSIBLE_LOCALHOST_WARNING="0",
        ANSIBLE_INVENTORY_UNPARSED_WARNING="0",
        PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
    )
    return env


def secrets_file(tmp_path: Path, stack: Stack) -> Path:
    """Tokens go to a 0600 vars file, not onto the command line (where ps would show them)."""
    path = tmp_path / "secrets.json"
    path.write_text(
        json.dumps({"api_url": API_URL, "admin_token": stack.admin_token, "user_token": stack.user_token}),
        encoding="utf-8",
    )
    path.chmod(0o600)
    return path


def run_playbook(tmp_path: Path, stack: Stack, tasks: str) -> tuple[subprocess.CompletedProcess[str], dict[str, t.Any]]:
    playbook = tmp_path / "play.yml"
    playbook.write_text(
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n" + textwrap.indent(textwrap.dedent(tasks), "    "),
        encoding="utf-8",
    )
    proc = subprocess.run(
        [
            str(VENV_BIN / "ansible-playbook"),
            "-i",
            "localhost,",
            "-c",
            "local",
            "-e",
            f"@{secrets_file(tmp_path, stack)}",
            str(playbook),
        ],
        capture_output=True,
        text=True,
        env=ansible_env(),
        timeout=300,
        check=False,
    )
    results: dict[str, t.Any] = {}
    try:
        for task in json.loads(proc.stdout)["plays"][0]["tasks"]:
            results[task["task"]["name"]] = task["hosts"]["localhost"]
    except (ValueError, KeyError, IndexError):
        pass
    return proc, results


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
            f"@{secrets_file(tmp_path, stack)}",
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
