# Copyright (c) ablage.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Files of the deploy state directory on the target host (PRIVATE to this collection).

Rollback reads only this directory, so every write is atomic (temporary file,
fsync, rename): a deploy killed halfway leaves the previous content, never half a file.
"""

from __future__ import annotations

import datetime
import json
import os
import tempfile
import typing as t

LOCK_FILE = "deploy.lock"
STATE_FILE = "state.json"
HISTORY_FILE = "history.jsonl"
LOCK_HEAD_BYTES = 64

# Every phase state.json may hold, in the order a deploy moves through them, then the two ends. The
# rollback's rules (plugins/filter/rollback.py) are written against exactly this list.
DEPLOY_PHASES = ("locked", "maintenance", "stopped", "migrating", "started", "serving", "done")
END_PHASES = ("failed", "rolled_back")
PHASES = DEPLOY_PHASES + END_PHASES


def utc_now() -> str:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat()


def ensure_dir(path: str) -> bool:
    """Create the state directory with mode 0700; True when it had to be created or tightened."""
    changed = False
    if not os.path.isdir(path):
        os.makedirs(path, mode=0o700)
        changed = True
    if os.stat(path).st_mode & 0o777 != 0o700:
        os.chmod(path, 0o700)
        changed = True
    return changed


def read_json(path: str) -> dict[str, t.Any] | None:
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    if not isinstance(data, dict):
        raise ValueError(f"{path} does not hold a JSON object")
    return data


def read_lock(path: str) -> dict[str, t.Any] | None:
    """The lock file's content, or what is known of a file that is not a JSON object.

    An empty or torn lock (a run killed between create and write, a full disk) is
    still a lock: the result then has ``unreadable: true``, its size, its first
    bytes and its mtime, so it can be shown, aged and broken, never taken silently.
    """
    try:
        return read_json(path)
    except (ValueError, UnicodeDecodeError):
        pass
    with open(path, "rb") as handle:
        head = handle.read(LOCK_HEAD_BYTES)
    info = os.stat(path)
    return {
        "unreadable": True,
        "size": info.st_size,
        "head": head.decode("utf-8", errors="replace"),
        "modified_at": datetime.datetime.fromtimestamp(info.st_mtime, datetime.timezone.utc)
        .replace(microsecond=0)
        .isoformat(),
    }


def lock_age_seconds(lock: dict[str, t.Any] | None, path: str) -> float:
    """Age from the lock's created_at; from the file's mtime when that is missing or not a timestamp."""
    if not lock:
        return 0.0
    now = datetime.datetime.now(datetime.timezone.utc)
    try:
        created = datetime.datetime.fromisoformat(str(lock["created_at"]))
        if created.tzinfo is None:
            created = created.replace(tzinfo=datetime.timezone.utc)
    except (KeyError, ValueError):
        try:
            created = datetime.datetime.fromtimestamp(os.stat(path).st_mtime, datetime.timezone.utc)
        except OSError:
            return 0.0
    return round((now - created).total_seconds(), 1)


def write_json_atomic(path: str, data: dict[str, t.Any]) -> None:
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def create_exclusive(path: str, data: dict[str, t.Any]) -> bool:
    """Write ``data`` to ``path`` only if it does not exist yet; False when someone else was first."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    return True


def append_jsonl(path: str, record: dict[str, t.Any]) -> None:
    """Append one line; if the last one is torn (no newline: a run killed mid-write), start a new line first."""
    line = (json.dumps(record, sort_keys=True) + "\n").encode("utf-8")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            line = b"\n" + line
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


def read_jsonl_tail(path: str, limit: int, warn: t.Callable[[str], None] | None = None) -> list[dict[str, t.Any]]:
    """The newest ``limit`` records; a line that is not a JSON object is skipped and reported through ``warn``.

    History is informational: a torn last line (a run killed mid-write) or a damaged
    line in the middle must not keep a rollback from reading the state.
    """
    if limit <= 0 or not os.path.exists(path):
        return []
    records: list[dict[str, t.Any]] = []
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw.decode("utf-8"))
            except ValueError:
                record = None
            if isinstance(record, dict):
                records.append(record)
            elif warn is not None:
                what = "is torn (no newline at the end)" if not raw.endswith(b"\n") else "is not a JSON object"
                warn(f"{path} line {number} {what}; skipped it: {raw[:60].decode('utf-8', 'replace')!r}")
    return records[-limit:]


def merge(base: dict[str, t.Any], update: dict[str, t.Any]) -> dict[str, t.Any]:
    """Recursive merge: dicts merge key by key, anything else replaces."""
    result = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merge(result[key], value)
        else:
            result[key] = value
    return result
