"""Fixtures for the reference stack tests: they run against the stack that
`scripts/stack.sh up` started (project dir $ABLAGE_PROJECT_DIR, default /srv/ablage).
Run them with `scripts/stack.sh test`, which holds the stack lock."""

from __future__ import annotations

import fcntl
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

from refstack import API, BASE_URL, PROJECT_DIR, bearer, login, read_env_file

LOCK_FILE = os.environ.get("ABLAGE_STACK_LOCK", "/run/lock/ablage-stack.lock")
LOCK_WAIT = float(os.environ.get("ABLAGE_STACK_LOCK_WAIT", "900"))


@pytest.fixture(scope="session")
def stack_lock() -> Iterator[None]:
    """Hold the stack lock (the one scripts/stack.sh takes) for the whole session, so no
    deploy or other suite changes the shared stack under these tests."""
    if os.environ.get("ABLAGE_STACK_LOCK_HELD") == "1":
        yield
        return
    os.makedirs(os.path.dirname(LOCK_FILE), exist_ok=True)
    fd = os.open(LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + LOCK_WAIT
    waited = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if not waited:
                with open(LOCK_FILE) as fh:
                    print(f"waiting for the stack lock {LOCK_FILE}, held by: {fh.read().strip()}")
                waited = True
            if time.monotonic() > deadline:
                pytest.fail(f"the stack lock {LOCK_FILE} is still held after {LOCK_WAIT}s")
            time.sleep(0.5)
    os.ftruncate(fd, 0)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    os.write(fd, f"{stamp} pid {os.getpid()}: pytest tests/reference-app\n".encode())
    os.environ["ABLAGE_STACK_LOCK_HELD"] = "1"  # scripts/stack.sh run by the tests must not wait for us
    try:
        yield
    finally:
        os.environ.pop("ABLAGE_STACK_LOCK_HELD", None)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


@pytest.fixture(scope="session")
def env(stack_lock: None) -> dict[str, str]:
    path = PROJECT_DIR / ".env.production"
    if not path.exists():
        pytest.fail(f"{path} missing: run scripts/stack.sh images && scripts/stack.sh up")
    return read_env_file(path)


@pytest.fixture(scope="session")
def stack(env: dict[str, str]) -> dict[str, Any]:
    """The running stack: fails (never skips) when it is not up."""
    try:
        response = requests.get(f"{API}/health", timeout=5)
    except requests.RequestException as exc:
        pytest.fail(f"backend not reachable on {BASE_URL} ({exc}): run scripts/stack.sh up")
    assert response.status_code == 200, f"stack unhealthy: {response.status_code} {response.text}"
    version = response.json()["version"]
    # known start state: a crashed run (or another suite) may have left maintenance on
    token = login(env["ADMIN_USERNAME"], env["ADMIN_PASSWORD"])
    off = requests.post(f"{API}/admin/maintenance/disable", headers=bearer(token), timeout=10)
    assert off.status_code == 200, off.text
    if off.json()["changed"]:
        print("maintenance mode was on at the start of the session: switched off")
    return {"version": version, "env": env}


@pytest.fixture(scope="session")
def version(stack: dict[str, Any]) -> str:
    return str(stack["version"])


@pytest.fixture(scope="session")
def has_page_count(version: str) -> bool:
    return version != "1.0.0"


@pytest.fixture(scope="session")
def admin_token(env: dict[str, str], stack: dict[str, Any]) -> str:
    return login(env["ADMIN_USERNAME"], env["ADMIN_PASSWORD"])


@pytest.fixture(scope="session")
def user_token(env: dict[str, str], stack: dict[str, Any]) -> str:
    return login(env["SMOKE_USERNAME"], env["SMOKE_PASSWORD"])


@pytest.fixture
def admin(admin_token: str) -> dict[str, str]:
    return bearer(admin_token)


@pytest.fixture
def user(user_token: str) -> dict[str, str]:
    return bearer(user_token)


@pytest.fixture(autouse=True)
def maintenance_off_after(request: pytest.FixtureRequest) -> Iterator[None]:
    """No test leaves maintenance mode on for the next one."""
    yield
    if "admin_token" in request.fixturenames:
        token = request.getfixturevalue("admin_token")
        requests.post(f"{API}/admin/maintenance/disable", headers=bearer(token), timeout=10)
