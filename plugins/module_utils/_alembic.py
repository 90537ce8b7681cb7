# Copyright (c) ablage.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Alembic runner and revision graph for ablage.ops modules.

PRIVATE: this file is an implementation detail of the ablage.ops collection.
It is not a public API and may change or disappear in any release.

Alembic is always driven through its command line (``alembic -c <ini> ...``),
either on the host or behind a command prefix such as
``docker compose run --rm -T backend alembic``, so the migrations run with the
application's own Python, models and dependencies. Nothing here imports alembic.

The revision graph comes from ``alembic history --verbose`` (scripts only, no
database), parsed from its ``Rev:`` / ``Parent:`` / ``Merges:`` lines; pending
revisions, heads and relative targets (``+1``, ``-2``) are computed from it.
"""

from __future__ import annotations

import dataclasses
import re
import typing as t

# (rc, stdout, stderr) = runner(argv)
Runner = t.Callable[[t.List[str]], t.Tuple[int, str, str]]

_REV_LINE = re.compile(r"^Rev: (?P<rev>\S+)(?P<flags>(?: \([^)]*\))*)\s*$")
_PARENT_LINE = re.compile(r"^(?:Parent|Merges): (?P<downs>.*?)\s*$")
_DEPENDS_LINE = re.compile(r"^Also depends on: (?P<deps>.*?)\s*$")
_RELATIVE = re.compile(r"^(?P<sign>[+-])(?P<n>\d+)$")
# The comment Alembic writes into offline SQL before the statements of each step.
_SQL_STEP = re.compile(r"^-- Running (?P<verb>upgrade|downgrade) (?P<src>.*?) -> (?P<dst>\S+)[ \t]*$", re.MULTILINE)


class AlembicError(Exception):
    """An Alembic command failed or its output / revision graph is not usable."""

    def __init__(self, message: str, rc: int | None = None, stdout: str = "", stderr: str = "") -> None:
        super().__init__(message)
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr


@dataclasses.dataclass
class Revision:
    revision: str
    down: tuple[str, ...]
    doc: str = ""
    # depends_on: revisions that must be applied first without being parents.
    depends: tuple[str, ...] = ()

    @property
    def requires(self) -> tuple[str, ...]:
        return self.down + self.depends


def last_error_line(stderr: str) -> str:
    """The line that says why (for a Python traceback, its last line)."""
    lines = [line.strip() for line in stderr.strip().splitlines() if line.strip()]
    for line in reversed(lines):
        if not line.startswith("INFO "):
            return line
    return lines[-1] if lines else ""


class RevisionGraph:
    """The revisions of an Alembic script directory and their parent links."""

    def __init__(self, revisions: t.Iterable[Revision]) -> None:
        self.revisions: dict[str, Revision] = {r.revision: r for r in revisions}
        children: set[str] = set()
        for rev in self.revisions.values():
            children.update(rev.down)
        self.heads: list[str] = sorted(r for r in self.revisions if r not in children)

    @classmethod
    def from_history(cls, output: str) -> RevisionGraph:
        """Parse ``alembic history --verbose``."""
        revisions: list[Revision] = []
        current: Revision | None = None
        doc_next = False
        for raw in output.splitlines():
            line = raw.rstrip()
            match = _REV_LINE.match(line)
            if match:
                current = Revision(match.group("rev"), ())
                revisions.append(current)
                doc_next = False
                continue
            if current is None:
                continue
            match = _PARENT_LINE.match(line)
            if match:
                downs = match.group("downs")
                if downs != "<base>":
                    current.down = tuple(d.strip() for d in downs.split(",") if d.strip())
                continue
            match = _DEPENDS_LINE.match(line)
            if match:
                current.depends = tuple(d.strip() for d in match.group("deps").split(",") if d.strip())
                continue
            if line.startswith("Path: "):
                doc_next = True
                continue
            if doc_next and line.strip() and not current.doc:
                current.doc = line.strip()
        if not revisions:
            raise AlembicError("alembic history listed no revisions", stdout=output)
        known = {r.revision for r in revisions}
        for rev in revisions:
            missing = [d for d in rev.requires if d not in known]
            if missing:
                raise AlembicError(f"revision {rev.revision} names unknown parent(s) {', '.join(missing)}")
        return cls(revisions)

    def parse_current(self, output: str) -> tuple[str, ...]:
        """Parse ``alembic current``: each line that starts with a known revision id."""
        found: list[str] = []
        for line in output.splitlines():
            token = line.strip().split(" ", 1)[0] if line.strip() else ""
            if token in self.revisions and token not in found:
                found.append(token)
        return tuple(found)

    def ancestors(self, revs: t.Iterable[str]) -> set[str]:
        """The given revisions and everything below them (parents and depends_on)."""
        seen: set[str] = set()
        stack = list(revs)
        while stack:
            rev = stack.pop()
            if rev in seen:
                continue
            seen.add(rev)
            stack.extend(self.revisions[rev].requires)
        return seen

    def _topological(self, revs: set[str]) -> list[str]:
        """Order ``revs`` parents first (deterministic)."""
        order: list[str] = []
        done: set[str] = set()

        def visit(rev: str) -> None:
            if rev in done:
                return
            done.add(rev)
            for down in sorted(self.revisions[rev].requires):
                if down in revs:
                    visit(down)
            order.append(rev)

        for rev in sorted(revs):
            visit(rev)
        return order

    def lookup(self, spec: str) -> str:
        """A revision id or a unique prefix of one."""
        if spec in self.revisions:
            return spec
        matches = [r for r in self.revisions if r.startswith(spec)]
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise AlembicError(f"revision '{spec}' is ambiguous: it matches {', '.join(sorted(matches))}")
        raise AlembicError(
            f"revision '{spec}' is not in this Alembic project (known: {', '.join(sorted(self.revisions))})"
        )

    def resolve(self, spec: str, current: tuple[str, ...]) -> tuple[str, ...]:
        """Resolve a target: head, heads, base, an id (or unique prefix), +N or -N from current."""
        if spec == "head":
            if len(self.heads) != 1:
                raise AlembicError(
                    f"the project has {len(self.heads)} heads ({', '.join(self.heads)}); "
                    "merge them (alembic merge) or name a revision"
                )
            return (self.heads[0],)
        if spec == "heads":
            return tuple(self.heads)
        if spec == "base":
            return ()
        match = _RELATIVE.match(spec)
        if match:
            return self._relative(current, int(match.group("n")) * (1 if match.group("sign") == "+" else -1))
        return (self.lookup(spec),)

    def _relative(self, current: tuple[str, ...], steps: int) -> tuple[str, ...]:
        if len(current) > 1:
            raise AlembicError("relative targets need a single current revision, not a branched one")
        rev: str | None = current[0] if current else None
        for dummy in range(abs(steps)):
            if steps < 0:
                if rev is None:
                    raise AlembicError(f"cannot go {steps} revision(s) below base")
                downs = self.revisions[rev].down
                if len(downs) > 1:
                    raise AlembicError(f"revision {rev} is a merge point; name the target revision")
                rev = downs[0] if downs else None
            else:
                children = sorted(
                    r.revision for r in self.revisions.values() if (r.down == (rev,) if rev else not r.down)
                )
                if len(children) != 1:
                    raise AlembicError(
                        f"cannot go {steps} revision(s) up from {rev or 'base'}: "
                        f"{'no' if not children else 'several'} next revision(s)"
                    )
                rev = children[0]
        return (rev,) if rev else ()

    def upgrade_path(self, current: tuple[str, ...], target: tuple[str, ...]) -> list[str]:
        """Revisions an upgrade from ``current`` to ``target`` applies, in order."""
        pending = self.ancestors(target) - self.ancestors(current)
        if not pending and (not set(target) <= set(current) or (current and not target)):
            raise AlembicError(
                f"target {', '.join(target) or 'base'} is below the current revision {', '.join(current)}: "
                "use action=downgrade to go back"
            )
        return self._topological(pending)

    def downgrade_path(self, current: tuple[str, ...], target: tuple[str, ...]) -> list[str]:
        """Revisions a downgrade from ``current`` to ``target`` reverts, in order (newest first)."""
        below_target = self.ancestors(target)
        below_current = self.ancestors(current)
        if not below_target <= below_current:
            raise AlembicError(
                f"target {', '.join(target) or 'base'} is not below the current revision "
                f"{', '.join(current) or 'base'}: use action=upgrade to go forward"
            )
        return list(reversed(self._topological(below_current - below_target)))


class AlembicCli:
    """Builds and runs alembic command lines through an injected runner."""

    def __init__(
        self,
        runner: Runner,
        command: t.Sequence[str],
        config: str | None = None,
        x_arguments: t.Sequence[str] = (),
    ) -> None:
        self.runner = runner
        self.command = list(command)
        self.config = config
        self.x_arguments = list(x_arguments)

    def argv(self, *args: str) -> list[str]:
        argv = list(self.command)
        if self.config:
            argv += ["-c", self.config]
        for x_arg in self.x_arguments:
            argv += ["-x", x_arg]
        return argv + list(args)

    def run(self, *args: str, what: str) -> str:
        argv = self.argv(*args)
        rc, out, err = self.runner(argv)
        if rc != 0:
            raise AlembicError(
                f"'{' '.join(argv)}' failed with exit code {rc} while {what}: "
                f"{last_error_line(err) or last_error_line(out)}",
                rc=rc,
                stdout=out,
                stderr=err,
            )
        return out

    def graph(self) -> RevisionGraph:
        return RevisionGraph.from_history(self.run("history", "--verbose", what="reading the revision history"))

    def current(self, graph: RevisionGraph) -> tuple[str, ...]:
        return graph.parse_current(self.run("current", what="reading the current revision"))

    def render(self, action: str, start: tuple[str, ...], dest: str) -> tuple[bool, str, str]:
        """Offline SQL of ``start -> dest``: (ok, sql, reason)."""
        if len(start) > 1:
            return False, "", "offline SQL needs a single start revision, the database is at several heads"
        rng = f"{start[0]}:{dest}" if start else dest
        argv = self.argv(action, rng, "--sql")
        rc, out, err = self.runner(argv)
        if rc != 0:
            return False, out, last_error_line(err) or last_error_line(out) or f"exit code {rc}"
        return True, out, ""

    def migrate(self, action: str, dest: str) -> str:
        """Run the migration; return Alembic's log (standard error, where it logs, then standard output)."""
        argv = self.argv(action, dest)
        rc, out, err = self.runner(argv)
        if rc != 0:
            raise AlembicError(
                f"'{' '.join(argv)}' failed with exit code {rc}: {last_error_line(err) or last_error_line(out)}. "
                "The database is left at the last revision that completed (each migration runs in its own "
                "transaction, or the whole run in one, as env.py configures it).",
                rc=rc,
                stdout=out,
                stderr=err,
            )
        return "\n".join(part.strip() for part in (err, out) if part.strip())


def interrupted_step(out: str) -> tuple[str | None, int]:
    """For offline SQL that stopped with an error: the revision being rendered, and where its SQL starts.

    The revision is the one applied (upgrade) or reverted (downgrade) by the last
    ``-- Running ...`` step in ``out``; (None, 0) when there is none.
    """
    steps = list(_SQL_STEP.finditer(out))
    if not steps:
        return None, 0
    last = steps[-1]
    rev = last.group("dst") if last.group("verb") == "upgrade" else last.group("src").strip()
    return rev, last.start()


def format_revisions(revs: t.Sequence[str]) -> str | None:
    """The public form of a set of revisions: None for base, ids joined by commas."""
    return ",".join(revs) if revs else None
