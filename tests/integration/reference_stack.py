"""The running reference stack as the integration suites reach it: its lock, its secrets, its tokens.

One place for what test_health_probe, test_maintenance_toggle and test_ansible_runner share,
including running a module through a real ansible-playbook against the stack.
The suites run inside `make test` after `make stack`, so a stack that does not answer is a
failure with the fix in its message, never a skip.
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

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
API_URL = os.environ.get("ABLAGE_API_URL", "http://127.0.0.1:8000")
PROJECT_DIR = Path(os.environ.get("ABLAGE_PROJECT_DIR", "/srv/ablage"))
ENV_FILE = Path(os.environ.get("ABLAGE_ENV_FILE", str(PROJECT_DIR / ".env.production")))
LOCK_FILE = os.environ.get("ABLAGE_STACK_LOCK", "/run/lock/ablage-stack.lock")
LOCK_WAIT = float(os.environ.get("ABLAGE_STACK_LOCK_WAIT", "900"))


@contextlib.contextmanager
def stack_lock() -> t.Iterator[None]:
    """Hold the lock that scripts/stack.sh and the other stack suites take, so no deploy
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


def require_stack() -> None:
    """Fail with the fix when the reference stack is not there."""
    try:
        HttpClient(base_url=API_URL, timeout=3).get("/api/v1/health")
    except HttpConnectionError as exc:
        pytest.fail(f"reference backend not reachable at {API_URL} ({exc.reason}); start it with `make stack`")
    if not ENV_FILE.exists():
        pytest.fail(f"{ENV_FILE} is missing; it is written by scripts/stack.sh (`make stack`)")


def read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _sep, value = line.partition("=")
            values[key.strip()] = value.strip().strip("'\"")
    return values


def login(client: HttpClient, username: str, password: str) -> str:
    response = client.post("/api/v1/auth/login", json_body={"username": username, "password": password})
    assert response.status == 200, f"login of {username} failed: {response.status} {response.text[:200]}"
    return str(response.json()["access_token"])


class Stack:
    """Admin and smoke-user tokens of the running stack, and its maintenance switch."""

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

    def version(self) -> str:
        """The release the backend reports (/api/v1/health)."""
        response = self.client.get("/api/v1/health")
        assert response.status == 200, response.text
        return str(response.json()["version"])

    def set_maintenance(self, enabled: bool) -> None:
        path = "/api/v1/admin/maintenance/" + ("enable" if enabled else "disable")
        assert self.admin.post(path).status == 200


def ansible_env(**extra: str) -> dict[str, str]:
    """The environment of an `ansible` or `ansible-playbook` run of this checkout as ablage.ops, JSON output."""
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
    env.update(extra)
    return env


def tokens_file(tmp_path: Path, stack: Stack) -> Path:
    """Tokens go to a 0600 vars file, not onto the command line (where ps would show them)."""
    path = tmp_path / "tokens.json"
    data = {"api_url": API_URL, "admin_token": stack.admin_token, "user_token": stack.user_token}
    path.write_text(json.dumps(data), encoding="utf-8")
    path.chmod(0o600)
    return path


def run_playbook(tmp_path: Path, stack: Stack, tasks: str) -> tuple[subprocess.CompletedProcess[str], dict[str, t.Any]]:
    """Run ``tasks`` on localhost; returns the process and each task's result by task name."""
    playbook = tmp_path / "play.yml"
    playbook.write_text(
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n" + textwrap.indent(textwrap.dedent(tasks), "    "),
        encoding="utf-8",
    )
    command = [str(VENV_BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local"]
    command += ["-e", f"@{tokens_file(tmp_path, stack)}", str(playbook)]
    proc = subprocess.run(command, capture_output=True, text=True, env=ansible_env(), timeout=300, check=False)
    results: dict[str, t.Any] = {}
    try:
        for task in json.loads(proc.stdout)["plays"][0]["tasks"]:
            results[task["task"]["name"]] = task["hosts"]["localhost"]
    except (ValueError, KeyError, IndexError):
        pass
    return proc, results


def playbook_cli(
    playbook: str, *extra: str, inventory: Path | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """One of playbooks/ as an operator runs it (default callback, no colour), against the local inventory."""
    return subprocess.run(
        [
            str(VENV_BIN / "ansible-playbook"),
            "-i",
            str(inventory or REPO / "inventories" / "local"),
            str(REPO / "playbooks" / playbook),
            *extra,
        ],
        capture_output=True,
        text=True,
        env=ansible_env(ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default", ANSIBLE_NOCOLOR="1"),
        timeout=timeout,
        check=False,
    )


def containers() -> dict[str, tuple[str, str, str]]:
    """service -> (container id, started at, status) of the compose project (one-off containers left out)."""
    ids = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project.working_dir={PROJECT_DIR}"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.split()
    inspected = json.loads(
        subprocess.run(["docker", "inspect", *ids], capture_output=True, text=True, check=True, timeout=60).stdout
    )
    return {
        c["Config"]["Labels"]["com.docker.compose.service"]: (c["Id"], c["State"]["StartedAt"], c["State"]["Status"])
        for c in inspected
        if c["Config"]["Labels"].get("com.docker.compose.oneoff") != "True"
    }


def prepared_stack(timeout: float = 900) -> t.Iterator[Stack]:
    """The body of a module-scoped fixture: the stack lock held, the stack wiped and at 1.0.0 with known
    documents and no deploy state (molecule/shared/prepare_stack.yml), then its tokens."""
    with stack_lock():
        env = ansible_env(ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default", MOLECULE_PROJECT_DIRECTORY=str(REPO))
        prepare = subprocess.run(
            [
                str(VENV_BIN / "ansible-playbook"),
                "-i",
                str(REPO / "inventories" / "local"),
                str(REPO / "molecule" / "shared" / "prepare_stack.yml"),
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
            check=False,
        )
        assert prepare.returncode == 0, f"stack preparation failed:\n{prepare.stdout[-4000:]}\n{prepare.stderr[-2000:]}"
        require_stack()
        yield Stack()
