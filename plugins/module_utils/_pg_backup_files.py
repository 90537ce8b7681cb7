# Copyright (c) ablage.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The backup files of pg_backup (PRIVATE to this collection): names, checksums, manifests, retention.

Split out of plugins/modules/pg_backup.py so the file side of a backup (what a payload and its
manifest are called, how they are checksummed, found, and pruned) reads on its own, apart from the
code that runs pg_dump / pg_restore. The module imports (and re-exports) these names; standard library
only, as module_utils run on the managed host.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
import secrets
import shutil
import typing as t

TOOL = "ablage.ops.pg_backup"
MANIFEST_VERSION = 1
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
_CHUNK = 1024 * 1024


def sanitize(text: str) -> str:
    """A file-name-safe form of a database name or label."""
    return _SAFE.sub("-", text).strip("-") or "x"


def backup_basename(database: str, label: str, when: datetime.datetime) -> str:
    return f"{sanitize(database)}_{when.strftime('%Y%m%dT%H%M%SZ')}_{sanitize(label)}"


def payload_name(basename: str, fmt: str) -> str:
    return basename + (".dir" if fmt == "directory" else ".dump")


def manifest_path_for(payload: str) -> str:
    root, ext = os.path.splitext(payload.rstrip("/"))
    return (root if ext in (".dump", ".dir") else payload.rstrip("/")) + ".json"


def sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def directory_checksums(path: str) -> dict[str, str]:
    """SHA-256 of every file below ``path``, keyed by relative path (``/`` separated)."""
    files: dict[str, str] = {}
    for root, dirs, names in os.walk(path):
        dirs.sort()
        for name in sorted(names):
            full = os.path.join(root, name)
            files[os.path.relpath(full, path).replace(os.sep, "/")] = sha256_file(full)
    return files


def combined_checksum(files: t.Mapping[str, str]) -> str:
    """One digest over a directory: SHA-256 of its ``sha256sum``-style listing sorted by path."""
    listing = "".join(f"{digest}  {name}\n" for name, digest in sorted(files.items()))
    return hashlib.sha256(listing.encode("utf-8")).hexdigest()


def payload_size(path: str) -> int:
    if os.path.isdir(path):
        return sum(os.path.getsize(os.path.join(root, n)) for root, _d, names in os.walk(path) for n in names)
    return os.path.getsize(path)


def compute_checksum(path: str, fmt: str) -> dict[str, t.Any]:
    if fmt == "directory":
        files = directory_checksums(path)
        return {"algorithm": "sha256", "value": combined_checksum(files), "files": files}
    return {"algorithm": "sha256", "value": sha256_file(path)}


def load_manifests(backup_dir: str, database: str | None = None) -> list[dict[str, t.Any]]:
    """Manifests of this module in ``backup_dir`` (optionally of one database), newest first.

    Each gets ``_manifest_path`` and ``_payload_path``. Unreadable or foreign JSON files are skipped.
    """
    found: list[dict[str, t.Any]] = []
    if not os.path.isdir(backup_dir):
        return found
    for name in os.listdir(backup_dir):
        if not name.endswith(".json") or name.startswith("."):
            continue
        path = os.path.join(backup_dir, name)
        try:
            with open(path, encoding="utf-8") as handle:
                data = json.load(handle)
        except (OSError, ValueError):
            continue
        if not isinstance(data, dict) or data.get("tool") != TOOL:
            continue
        if database is not None and data.get("database") != database:
            continue
        file_name = str(data.get("file") or "")
        if not file_name or "/" in file_name or file_name in (".", ".."):
            continue
        data["_manifest_path"] = path
        data["_payload_path"] = os.path.join(backup_dir, file_name)
        found.append(data)
    found.sort(key=lambda m: (str(m.get("created_at") or ""), str(m.get("file"))), reverse=True)
    return found


def select_for_removal(manifests: t.Sequence[dict[str, t.Any]], keep: int | None) -> list[dict[str, t.Any]]:
    """Retention: everything after the ``keep`` newest (``manifests`` newest first)."""
    if keep is None:
        return []
    return list(manifests[keep:])


def public_manifest(manifest: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    return {k: v for k, v in manifest.items() if not k.startswith("_")}


def remove_path(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)


def fsync_path(path: str) -> None:
    """Flush a file or a directory (its entries) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def scratch_name(database: str, purpose: str) -> str:
    """A database name of at most 63 bytes: <database>_<purpose>_<random>."""
    suffix = f"_{purpose}_{secrets.token_hex(4)}"
    return database.encode("utf-8")[: 63 - len(suffix)].decode("utf-8", "ignore") + suffix
