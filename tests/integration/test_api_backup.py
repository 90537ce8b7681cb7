"""api_backup through real ansible-playbook against the reference backend's backup API.

Needs the reference stack (``make stack``); the fixture takes the stack lock (tests/integration/reference_stack.py).
"""

from __future__ import annotations

import re
import typing as t
from pathlib import Path

import pytest
from reference_stack import API_URL, Stack, require_stack, run_playbook, stack_lock

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def stack() -> t.Iterator[Stack]:
    with stack_lock():
        require_stack()
        yield Stack()


BACKUP = """\
- name: backup (check mode)
  ablage.ops.api_backup:
    api_url: "{{ api_url }}"
    admin_token: "{{ admin_token }}"
  check_mode: true
  register: __check
- name: backup
  ablage.ops.api_backup:
    api_url: "{{ api_url }}"
    admin_token: "{{ admin_token }}"
    wait_timeout: 300
  register: __real
"""


def test_full_backup_completes_with_file_and_checksum(tmp_path: Path, stack: Stack) -> None:
    before = stack.admin.get("/api/v1/backup/status")
    before_id = before.json().get("backup_id") if before.status == 200 else None

    proc, results = run_playbook(tmp_path, stack, BACKUP)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]

    check = results["backup (check mode)"]
    assert check["changed"] is True
    assert check["plan"]["start"] == f"{API_URL}/api/v1/backup/full"
    assert check["backup_id"] is None

    real = results["backup"]
    assert real["changed"] is True
    backup = real["backup"]
    assert backup["status"] == "completed", backup
    assert backup["backup_id"] == real["backup_id"]
    assert backup["backup_id"] != before_id  # a backup was taken, not an old one reported
    assert re.fullmatch(r"/backups/ablage_full-.*\.dump", backup["file"]), backup
    assert re.fullmatch(r"[0-9a-f]{64}", backup["sha256"]), backup
    assert backup["size_bytes"] > 0
    assert backup["error"] is None
    assert real["elapsed_s"] > 0 and real["polls"] >= 1

    # the API agrees on that backup, looked up by its ID
    status = stack.admin.get(f"/api/v1/backup/status?backup_id={real['backup_id']}")
    assert status.status == 200
    assert status.json() == backup
    # no_log: the token never reaches the output
    assert stack.admin_token not in proc.stdout
    assert stack.admin_token not in proc.stderr


def test_user_token_is_rejected_with_the_fix(tmp_path: Path, stack: Stack) -> None:
    tasks = """\
- name: user token is no admin token
  ablage.ops.api_backup:
    api_url: "{{ api_url }}"
    admin_token: "{{ user_token }}"
"""
    proc, results = run_playbook(tmp_path, stack, tasks)
    assert proc.returncode != 0
    result = results["user token is no admin token"]
    assert result["failed"] is True
    assert result["status"] == 403
    assert "admin_token was rejected" in result["msg"]
    assert stack.user_token not in proc.stdout
