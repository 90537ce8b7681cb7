# Copyright (c) ablage.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Dotenv files as docker compose v2 reads them, edited line by line (PRIVATE to this collection).

PRIVATE: this file is an implementation detail of the ablage.ops collection.
It is not a public API and may change or disappear in any release.

The reading rules follow compose-go's ``dotenv/parser.go`` (the parser of ``docker compose`` v2,
``env_file:`` and ``--env-file``), so a value counts as unchanged only when compose would read
exactly that value. An existing file is kept as text: only the lines of the keys that change are
rewritten, so an operator's comments, order and layout survive.

Values are secrets: no message raised here contains one, only key names and line numbers.
"""

from __future__ import annotations

import re
import typing as t
from dataclasses import dataclass, field

KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# What compose accepts as a key when it reads a file (wider than KEY, which is what we write).
_ASSIGNMENT = re.compile(r"^(?P<lead>[ \t]*(?:export[ \t]+)?)(?P<key>[\w.\[\]-]+)[ \t]*[=:]")
_INHERITED = re.compile(r"^[ \t]*(?:export[ \t]+)?(?P<key>[\w.\[\]-]+)[ \t\r]*$")

# compose's isSpace: the blanks it skips between '=' and the value (never a newline).
_BLANKS = " \t\v\f\r\x85\xa0"

# Written without quotes: nothing in here means anything to compose (no '$', '#', quote, blank, '\').
_BARE = re.compile(r"^[A-Za-z0-9_./:@,+=%-]+$")

# One line per key: anything Python or compose would take as a line end is refused.
_LINE_BREAK = re.compile("[\n\r\v\f\x00\x1c\x1d\x1e\x85\u2028\u2029]")

_ESCAPE = re.compile(r'\\(?:[abcfnrtv$"\\]|0[0-7]{0,3})')
_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", '"': '"', "\\": "\\"}

_COMMENT = re.compile(r"[ \t]*#")

# compose's interpolation: "$$" is a literal '$', "$NAME" / "${...}" are looked up in the environment.
_DOLLAR = re.compile(r"\$(\$|[_A-Za-z{])")


class DotenvError(Exception):
    """The file or a value cannot be handled; the message names the key or line, never a value."""


@dataclass
class Entry:
    """One statement of the file (an assignment, possibly over several lines) or an untouched line.

    ``value`` is None when compose would take it from the environment (``KEY`` alone, ``$VAR``):
    such a value never equals a wanted one, so it is rewritten as a literal. ``written`` is the
    value of an assignment before compose fills in ``$VAR`` (quotes and escapes already read);
    None for ``KEY`` alone.
    """

    text: str
    key: str | None = None
    value: str | None = None
    written: str | None = None
    lead: str = ""
    tail: str = ""


@dataclass
class Plan:
    """The new text and which keys it adds, changes, removes or keeps, in the file's order."""

    text: str
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    before_keys: list[str] = field(default_factory=list)


def key_problem(key: str) -> str | None:
    if KEY.match(key):
        return None
    return f"values has a key {key!r} that is not a variable name (it must match {KEY.pattern})"


def as_text(key: str, value: t.Any) -> str:
    """The value as the file will hold it; numbers are taken as written, anything else must be a string."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise DotenvError(
            f"values.{key} is a {type(value).__name__}, not a string; quote it in YAML so the file holds "
            "exactly the text you mean"
        )
    text = str(value)
    if _LINE_BREAK.search(text):
        raise DotenvError(
            f"values.{key} contains a line break or NUL character; the env file holds one line per key, "
            "so store such a value in a file of its own and put its path here"
        )
    return text


def quote(value: str) -> str:
    """``value`` written so that compose reads it back exactly, with no interpolation.

    Single quotes are literal in compose v2 except for ``\\'``, so they carry everything but a
    ``'`` or a trailing ``\\``; those few values go into double quotes, where ``\\``, ``"`` and
    ``$`` are escaped (compose-go v1.16 and later read them alike).
    """
    if _BARE.match(value):
        return value
    if "'" not in value and not value.endswith("\\"):
        return f"'{value}'"
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
    return f'"{escaped}"'


def _interpolated(value: str) -> str | None:
    if any(match.group(1) != "$" for match in _DOLLAR.finditer(value)):
        return None
    return _DOLLAR.sub("$", value)


def _unescape(match: re.Match[str]) -> str:
    sequence = match.group(0)[1:]
    if sequence == "$":
        return "$$"
    if sequence.startswith("0"):
        digits = sequence[1:]
        return chr(int(digits, 8)) if len(digits) == 3 and int(digits, 8) < 256 else "\\" + digits
    return _ESCAPES.get(sequence, match.group(0))


def _scan_quoted(src: str) -> tuple[str, int] | None:
    """The characters between the quotes at ``src[0]`` and the index after the closing one, as compose scans."""
    quote_char, escaped = src[0], False
    chars: list[str] = []
    for index in range(1, len(src)):
        char = src[index]
        if char == quote_char and not escaped:
            return "".join(chars), index + 1
        if char == "\\" and not escaped:
            escaped = True
            continue
        if escaped and char != quote_char:
            chars.append("\\")
        escaped = False
        chars.append(char)
    return None


def _line_end(text: str, start: int) -> int:
    end = text.find("\n", start)
    return len(text) if end < 0 else end


def _tail_of(rest: str, key: str, line: int) -> str:
    """What may follow a closing quote: blanks and a comment (compose would read anything else as a key)."""
    if rest.strip(_BLANKS) and not rest.lstrip(_BLANKS).startswith("#"):
        raise DotenvError(f"line {line}: text follows the closing quote of {key}; put it on a line of its own")
    return rest.rstrip("\r")


def _parse_quoted(text: str, start: int, entry: Entry, line: int) -> int:
    scanned = _scan_quoted(text[start:])
    if scanned is None:
        raise DotenvError(f"line {line}: the quoted value of {entry.key} has no closing quote; compose cannot read it")
    chars, length = scanned
    if text[start] == '"':
        entry.written = _ESCAPE.sub(_unescape, chars)
        entry.value = _interpolated(entry.written)
    else:
        entry.written = entry.value = chars
    end = _line_end(text, start + length)
    entry.tail = _tail_of(text[start + length : end], entry.key or "", line)
    return end


def _parse_bare(text: str, start: int, entry: Entry) -> int:
    end = _line_end(text, start)
    raw = text[start:end]
    value = raw.split(" #", 1)[0].rstrip()
    entry.written = value
    entry.value = _interpolated(value)
    entry.tail = raw[len(value) :].rstrip("\r") if " #" in raw else ""
    return end


def _parse_statement(text: str, start: int, line: int) -> tuple[Entry, int]:
    """The entry that starts at ``start`` and the index just past it (and its newline)."""
    end = _line_end(text, start)
    first = text[start:end]
    entry = Entry(text="")
    assignment = _ASSIGNMENT.match(first)
    inherited = _INHERITED.match(first)
    if assignment:
        entry.key, entry.lead = assignment.group("key"), assignment.group("lead")
        value_start = start + assignment.end()
        while value_start < end and text[value_start] in _BLANKS:
            value_start += 1
        if value_start < end and text[value_start] in "'\"":
            end = _parse_quoted(text, value_start, entry, line)
        else:
            end = _parse_bare(text, value_start, entry)
    elif inherited and inherited.group("key") != "export":
        entry.key = inherited.group("key")
    stop = min(end + 1, len(text))
    entry.text = text[start:stop]
    return entry, stop


def parse(text: str) -> list[Entry]:
    """The file as entries; comments, blank lines and lines compose would not read as a key stay as text."""
    entries: list[Entry] = []
    start, line = 0, 1
    if text.startswith("\ufeff"):
        entries.append(Entry(text="\ufeff"))
        start = 1
    while start < len(text):
        if _COMMENT.match(text, start):
            stop = min(_line_end(text, start) + 1, len(text))
            entry = Entry(text=text[start:stop])
        else:
            entry, stop = _parse_statement(text, start, line)
        entries.append(entry)
        line += entry.text.count("\n")
        start = stop
    return entries


def read(text: str) -> dict[str, str | None]:
    """Each key's value as compose reads it (the last assignment wins)."""
    return {entry.key: entry.value for entry in parse(text) if entry.key is not None}


def read_assigned(text: str) -> dict[str, str]:
    """Each key the file gives a value, as compose reads it (the last assignment wins).

    A key alone (``KEY``) assigns nothing: compose takes it from the environment, and only if it is
    set there. A value compose fills in from the environment (``$VAR``, ``${VAR}``) is given as
    written, since only the environment compose runs in knows the rest.
    """
    values: dict[str, str] = {}
    for entry in parse(text):
        if entry.key is not None and entry.written is not None:
            values[entry.key] = entry.written if entry.value is None else entry.value
    return values


def _render(entry: Entry | None, key: str, value: str) -> str:
    if entry is None:
        return f"{key}={quote(value)}\n"
    tail = entry.tail
    if tail and tail[0] not in _BLANKS:
        tail = " " + tail
    newline = "\r\n" if entry.text.endswith("\r\n") else "\n" if entry.text.endswith("\n") else ""
    return f"{entry.lead}{key}={quote(value)}{tail}{newline}"


def _keep(plan: Plan, entry: Entry, index: int, last: dict[str, int], wanted: dict[str, str], exact: bool) -> str:
    """The text that stands for ``entry`` in the new file ("" drops it)."""
    key = entry.key
    if key is None:
        return entry.text
    if key not in wanted:
        if exact and key not in plan.removed:
            plan.removed.append(key)
        return "" if exact else entry.text
    if last[key] != index:
        # An earlier assignment compose overrides anyway; exact leaves only the one that counts.
        if exact and key not in plan.changed:
            plan.changed.append(key)
        return "" if exact else entry.text
    if entry.value == wanted[key]:
        if key not in plan.changed:
            plan.unchanged.append(key)
        return entry.text
    if key not in plan.changed:
        plan.changed.append(key)
    return _render(entry, key, wanted[key])


def plan(text: str, wanted: dict[str, str], exact: bool = False) -> Plan:
    """The file with the ``wanted`` keys set; with ``exact`` every other key is removed.

    Only the last assignment of a key is rewritten (that is the one compose reads), new keys are
    appended in the order given.
    """
    entries = parse(text)
    last = {entry.key: index for index, entry in enumerate(entries) if entry.key is not None}
    result = Plan(text="", before_keys=list(dict.fromkeys(e.key for e in entries if e.key is not None)))
    parts = [_keep(result, entry, index, last, wanted, exact) for index, entry in enumerate(entries)]
    result.unchanged = [key for key in result.unchanged if key not in result.changed]
    result.added = [key for key in wanted if key not in last]
    new_text = "".join(parts)
    if result.added and new_text and not new_text.endswith("\n"):
        new_text += "\n"
    result.text = new_text + "".join(_render(None, key, wanted[key]) for key in result.added)
    return result


def key_diff(result: Plan) -> tuple[str, str]:
    """Before and after texts that name each key and what happens to it, never a value.

    A changed key reads ``<old value>`` before and ``<changed>`` after, so a unified diff shows it
    as a changed line; keys the task does not manage stay ``<unchanged>``.
    """
    status = dict.fromkeys(result.before_keys, "unchanged")
    status.update(dict.fromkeys(result.removed, "removed"))
    status.update(dict.fromkeys(result.changed, "changed"))
    before = [f"{key}=<{'old value' if status[key] == 'changed' else status[key]}>" for key in result.before_keys]
    after = [f"{key}=<{status[key]}>" for key in result.before_keys if status[key] != "removed"]
    after += [f"{key}=<added>" for key in result.added]
    return "".join(line + "\n" for line in before), "".join(line + "\n" for line in after)
