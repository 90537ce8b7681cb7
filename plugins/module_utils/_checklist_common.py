# Copyright (c) ablage.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What the checklist's mapping and its rendering share (PRIVATE to this collection).

Both halves of the checklist filters (plugins/filter/checklist.py) must agree on the statuses, the
sections and how a registered result is read. They must also agree on one rule: a value nobody
recorded never reaches a sentence as "?" or "None"; ``known`` and ``join_known`` leave it out, so
the sentence either goes without it or says plainly what is missing.
"""

from __future__ import annotations

import typing as t

CHECKED = "checked"
NOT_CHECKED = "not_checked"
NOT_RUN = "not_run"
WAIVED = "waived"
PLANNED = "planned"
STATUSES = (CHECKED, NOT_CHECKED, NOT_RUN, WAIVED, PLANNED)
FAILED_RESULTS = ("failed", "rolled_back", "rollback_failed")

Dict = t.Dict[str, t.Any]

SECTIONS = (
    ("pre_deployment", "Pre-Deployment Checkliste"),
    ("deployment", "Deployment-Prozess"),
    ("post_deployment", "Post-Deployment Checkliste"),
    ("rollback", "Rollback-Prozedur"),
)


def get(data: t.Any, *path: t.Any, default: t.Any = None) -> t.Any:
    """``data[path[0]][path[1]]...`` through dicts and lists; ``default`` where a step or the value is missing."""
    for key in path:
        if (isinstance(data, dict) and key in data) or (
            isinstance(data, list) and isinstance(key, int) and -len(data) <= key < len(data)
        ):
            data = data[key]
        else:
            return default
    return default if data is None else data


def ran(result: t.Any) -> bool:
    return isinstance(result, dict) and bool(result) and not result.get("skipped")


def failed(result: t.Any) -> bool:
    return isinstance(result, dict) and bool(result.get("failed"))


def msg(result: t.Any) -> str:
    return str(get(result, "msg", default="") or "").strip()[:300]


def truthy(value: t.Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "yes", "1", "on")
    return bool(value)


def known(value: t.Any) -> t.Any:
    """The value, or None when nothing was recorded (None, blank text, an empty list or dict).

    ``0`` and ``False`` are recorded values: a queue drained in 0 s and a check that said no are evidence.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, (list, dict, tuple, set)) and not value:
        return None
    return value


def join_known(parts: t.Iterable[t.Any], sep: str = ", ") -> str:
    """The known parts as text, joined; the unknown ones are left out rather than shown as a placeholder."""
    return sep.join(
        str(part).strip() if isinstance(part, str) else str(part) for part in parts if known(part) is not None
    )


def with_note(text: str, note: t.Any) -> str:
    """``text (note)``, or just ``text`` when there is no note."""
    return text if known(note) is None else f"{text} ({note})"


def failed_with(what: str, result: t.Any) -> str:
    """``<what>: <the module's msg>``, or just ``<what>`` when the module said nothing."""
    return join_known((what, msg(result)), ": ")


def human_bytes(size: t.Any) -> str | None:
    """``5.4 KiB`` for 5515; None when the size is not a number (so it is left out, not shown as "?")."""
    try:
        value = float(size)
    except (TypeError, ValueError):
        return None
    for unit in ("B", "KiB", "MiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"
