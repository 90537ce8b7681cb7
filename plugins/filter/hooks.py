# Copyright (c) ablage.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The operator's own task files at fixed points of a deploy (docs/hooks.md).

Kamal and Ansistrano users run their steps (a CDN purge, a ticket update, a cache warm-up) at
named points; without hooks they would edit the roles. The points are a fixed list so that a
typo in the inventory is an error before the lock, not a hook that silently never runs, and a
missing file is named before anything changes rather than when the deploy reaches it.
"""

from __future__ import annotations

import os
import typing as t

from ansible.errors import AnsibleFilterError

# In the order a deploy reaches them; on_rollback and on_failure run in the rescue.
POINTS = (
    "before_maintenance",
    "after_backup",
    "after_migrate",
    "after_start",
    "after_verify",
    "on_rollback",
    "on_failure",
)


def _files(value: t.Any, point: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    raise AnsibleFilterError(f"ablage_hooks.{point} must be a task file or a list of task files, got {value!r}")


def hook_files(hooks: t.Any, point: str | None = None, base_dir: str = "") -> list[str]:
    """The task files of ``point`` as absolute paths (relative ones are relative to ``base_dir``).

    Every call checks the whole of ``hooks``: unknown points and missing files fail with the list of
    points, so deploy.yml's plan (``point`` None: every file) refuses before the lock.
    """
    if hooks in (None, ""):
        hooks = {}
    if not isinstance(hooks, dict):
        raise AnsibleFilterError(f"ablage_hooks must be a dict of point: task files, got {type(hooks).__name__}")
    if point is not None and point not in POINTS:
        raise AnsibleFilterError(f"hook_files: unknown point {point!r} (the points: {', '.join(POINTS)})")
    problems, found = [], {}
    for name, value in hooks.items():
        if name not in POINTS:
            problems.append(f"ablage_hooks.{name} is not a hook point (the points: {', '.join(POINTS)})")
            continue
        paths = [f if os.path.isabs(f) else os.path.normpath(os.path.join(base_dir, f)) for f in _files(value, name)]
        missing = [p for p in paths if not os.path.isfile(p)]
        if missing:
            problems.append(f"ablage_hooks.{name}: no such task file {', '.join(missing)}")
        found[name] = paths
    if problems:
        raise AnsibleFilterError(
            "; ".join(problems) + f". Relative paths are relative to the inventory directory ({base_dir or '?'})."
        )
    if point is None:
        return [p for name in POINTS for p in found.get(name, [])]
    return found.get(point, [])


class FilterModule:
    def filters(self) -> dict[str, t.Callable[..., t.Any]]:
        return {"hook_files": hook_files}
