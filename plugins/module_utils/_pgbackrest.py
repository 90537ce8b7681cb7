# Copyright (c) ablage.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""pgBackRest's answers read for ablage.ops (PRIVATE to this collection).

Why pgBackRest and not pg_basebackup plus a hand-written archive_command: it already keeps the
base backups and the WAL archive together, checks that archiving works (``check`` switches the
WAL and waits until the segment is in the repository), expires old backups with their WAL, and
restores to a named restore point. The module only runs it and reads its JSON.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import typing as t

Dict = t.Dict[str, t.Any]

# Restore points are matched by name during recovery (the first one wins): only names this module writes.
RESTORE_POINT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


class InfoError(Exception):
    """pgBackRest's info did not describe a usable stanza."""


def _time(epoch: t.Any) -> str | None:
    try:
        return dt.datetime.fromtimestamp(int(epoch), dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def parse_info(text: str, stanza: str) -> Dict:
    """The one stanza of ``pgbackrest --stanza=S --output=json info``, summarised.

    ``status`` (code and message; code 0 is ok), ``backups`` oldest first (label, type, start, stop,
    size and repository size in bytes, WAL start and stop), ``archive`` (min and max WAL segment).
    """
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise InfoError(f"pgBackRest's info is not JSON ({exc}): {text.strip()[:200]!r}") from exc
    entries = [e for e in data if isinstance(e, dict) and e.get("name") == stanza] if isinstance(data, list) else []
    if not entries:
        raise InfoError(f"pgBackRest's info has no stanza {stanza!r}")
    entry = entries[0]
    status = entry.get("status") or {}
    backups = []
    for backup in entry.get("backup") or []:
        stamps = backup.get("timestamp") or {}
        info = backup.get("info") or {}
        wal = backup.get("archive") or {}
        backups.append(
            {
                "label": backup.get("label"),
                "type": backup.get("type"),
                "start": _time(stamps.get("start")),
                "stop": _time(stamps.get("stop")),
                "stop_epoch": stamps.get("stop"),
                "size": info.get("size"),
                "repo_size": (info.get("repository") or {}).get("delta"),
                "wal_start": wal.get("start"),
                "wal_stop": wal.get("stop"),
                "error": bool(backup.get("error")),
            }
        )
    archives = entry.get("archive") or []
    archive = {"min": archives[-1].get("min"), "max": archives[-1].get("max")} if archives else {}
    return {
        "status": {"code": status.get("code"), "message": status.get("message")},
        "backups": backups,
        "archive": archive,
    }


def newest_backup(info: Dict) -> Dict | None:
    """The newest backup that pgBackRest did not flag with an error."""
    good = [b for b in info.get("backups") or [] if not b.get("error")]
    return good[-1] if good else None


def compare(expected: Dict, actual: Dict) -> Dict:
    """Revision and row counts after a recovery against those read at the restore point.

    ``equal`` only when both were read at the restore point and both match: a recovery that
    stopped elsewhere (a wrong restore point, WAL missing from the archive) shows up here.
    """
    differences = []
    if expected.get("revision") != actual.get("revision"):
        differences.append(f"Alembic revision {actual.get('revision')} instead of {expected.get('revision')}")
    want = expected.get("row_counts") or {}
    have = actual.get("row_counts") or {}
    for table in sorted(set(want) | set(have)):
        if want.get(table) != have.get(table):
            differences.append(f"{table}: {have.get(table, 'missing')} rows instead of {want.get(table, 'none')}")
    return {
        "equal": not differences and "row_counts" in expected,
        "differences": differences,
        "expected_revision": expected.get("revision"),
        "actual_revision": actual.get("revision"),
        "tables": len(have),
        "rows": sum(int(v) for v in have.values()),
    }
