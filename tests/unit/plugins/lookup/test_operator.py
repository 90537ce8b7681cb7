"""lookup('ablage.ops.operator'): who the lock, the history and the report name."""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import sys
from pathlib import Path

import pytest

from ansible_collections.ablage.ops.plugins.lookup.operator import operator_name

ROOT_UID = 0


def test_awx_user_wins_over_the_environment() -> None:
    assert operator_name({"awx_user_name": "alice"}, {"USER": "runner"}, ROOT_UID) == "alice"
    assert operator_name({"tower_user_name": "bob"}, {"USER": "runner"}, ROOT_UID) == "bob"
    assert operator_name({"awx_user_name": " ", "tower_user_name": "bob"}, {}, ROOT_UID) == "bob"


def test_sudo_caller_is_named_not_root() -> None:
    assert operator_name({}, {"SUDO_USER": "carol", "USER": "root"}, ROOT_UID) == "carol (sudo)"
    assert operator_name({}, {"SUDO_USER": "root", "USER": "root"}, ROOT_UID) == "root"


def test_login_name_then_the_uids_account() -> None:
    assert operator_name({}, {"LOGNAME": "dave", "USER": "other"}, ROOT_UID) == "dave"
    assert operator_name({}, {"USER": "erin"}, ROOT_UID) == "erin"
    # cron, systemd, execution environments: no USER, the uid's account still has a name
    assert operator_name({}, {}, ROOT_UID) == pwd.getpwuid(ROOT_UID).pw_name


def test_a_uid_without_account_is_named_by_number() -> None:
    unused = next(uid for uid in range(54321, 65000) if not _has_account(uid))
    assert operator_name({}, {}, unused) == f"uid {unused}"


def _has_account(uid: int) -> bool:
    try:
        pwd.getpwuid(uid)
    except KeyError:
        return False
    return True


@pytest.mark.parametrize(
    ("extra", "env", "expected"),
    [
        (["-e", "awx_user_name=alice"], {"USER": "runner"}, "alice"),
        ([], {"USER": "frank"}, "frank"),
        ([], {}, pwd.getpwuid(os.getuid()).pw_name),
    ],
)
def test_through_ansible(extra: list[str], env: dict[str, str], expected: str, tmp_path: Path) -> None:
    """The lookup as a playbook calls it, with the collection on the collections path."""
    base = {k: v for k, v in os.environ.items() if k not in ("USER", "LOGNAME", "SUDO_USER")}
    ansible = Path(sys.executable).with_name("ansible")
    proc = subprocess.run(
        [
            str(ansible),
            "localhost",
            "-c",
            "local",
            "-m",
            "ansible.builtin.debug",
            "-a",
            "msg={{ lookup('ablage.ops.operator') }}",
            *extra,
        ],
        env={**base, **env, "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1", "ANSIBLE_STDOUT_CALLBACK": "json"},
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    result = json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]
    assert result["msg"] == expected
