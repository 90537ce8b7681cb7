"""Revision graph, output parsing and command lines of the Alembic helper (no Alembic is run)."""

from __future__ import annotations

import typing as t

import pytest

from ansible_collections.ablage.ops.plugins.module_utils._alembic import (
    AlembicCli,
    AlembicError,
    Revision,
    RevisionGraph,
    format_revisions,
    interrupted_step,
    last_error_line,
)

# `alembic history --verbose` of a project with a branch and a merge:
#   <base> - a1 - b2 - c3 (branchpoint) - d4a \
#                                   \ - d4b - e5 (mergepoint) - f6 (head)
HISTORY = """\
Rev: f6 (head)
Parent: e5
Path: /app/migrations/versions/f6_last.py

    drop legacy

    Revision ID: f6
    Revises: e5

Rev: e5 (mergepoint)
Merges: d4a, d4b
Path: /app/migrations/versions/e5_merge.py

    merge heads

Rev: d4b
Parent: c3
Also depends on: a1
Path: /app/migrations/versions/d4b.py

    branch b
    Rev: this line is part of the docstring, indented

Rev: d4a
Parent: c3
Path: /app/migrations/versions/d4a.py

    branch a

Rev: c3 (branchpoint)
Parent: b2
Branches into: d4a, d4b
Branch names: main
Path: /app/migrations/versions/c3.py

    c

Rev: b2
Parent: a1
Path: /app/migrations/versions/b2.py

    b

Rev: a1
Parent: <base>
Path: /app/migrations/versions/a1.py

    create tables
"""


@pytest.fixture
def graph() -> RevisionGraph:
    return RevisionGraph.from_history(HISTORY)


def linear(*revs: str) -> RevisionGraph:
    return RevisionGraph(Revision(rev, (revs[i - 1],) if i else ()) for i, rev in enumerate(revs))


def test_history_is_parsed(graph: RevisionGraph) -> None:
    assert sorted(graph.revisions) == ["a1", "b2", "c3", "d4a", "d4b", "e5", "f6"]
    assert graph.revisions["e5"].down == ("d4a", "d4b")
    assert graph.revisions["a1"].down == ()
    assert graph.revisions["f6"].doc == "drop legacy"
    assert graph.revisions["d4b"].depends == ("a1",)
    assert graph.revisions["d4b"].doc == "branch b"
    assert graph.heads == ["f6"]


def test_history_errors() -> None:
    with pytest.raises(AlembicError, match="listed no revisions"):
        RevisionGraph.from_history("nothing here\n")
    with pytest.raises(AlembicError, match="unknown parent"):
        RevisionGraph.from_history("Rev: b (head)\nParent: a\nPath: x\n")


def test_parse_current(graph: RevisionGraph) -> None:
    assert graph.parse_current("") == ()
    assert graph.parse_current("f6 (head)\n") == ("f6",)
    assert graph.parse_current("some env.py chatter\nd4a\nd4b (effective head)\nd4a\n") == ("d4a", "d4b")


@pytest.mark.parametrize(
    ("spec", "current", "expected"),
    [
        ("head", ("a1",), ("f6",)),
        ("heads", (), ("f6",)),
        ("base", ("f6",), ()),
        ("c3", (), ("c3",)),
        ("b", (), ("b2",)),  # unique prefix
        ("+1", (), ("a1",)),
        ("+2", ("a1",), ("c3",)),
        ("-1", ("b2",), ("a1",)),
        ("-2", ("b2",), ()),
    ],
)
def test_resolve(graph: RevisionGraph, spec: str, current: tuple[str, ...], expected: tuple[str, ...]) -> None:
    assert graph.resolve(spec, current) == expected


@pytest.mark.parametrize(
    ("spec", "current", "message"),
    [
        ("d4", (), "ambiguous: it matches d4a, d4b"),
        ("zz", (), "is not in this Alembic project"),
        ("-1", (), "below base"),
        ("+1", ("c3",), "several next revision"),
        ("+1", ("f6",), "no next revision"),
        ("-1", ("e5",), "merge point"),
        ("+1", ("d4a", "d4b"), "single current revision"),
    ],
)
def test_resolve_errors(graph: RevisionGraph, spec: str, current: tuple[str, ...], message: str) -> None:
    with pytest.raises(AlembicError, match=message):
        graph.resolve(spec, current)


def test_several_heads() -> None:
    forked = RevisionGraph([Revision("a", ()), Revision("b", ("a",)), Revision("c", ("a",))])
    assert forked.heads == ["b", "c"]
    with pytest.raises(AlembicError, match="2 heads"):
        forked.resolve("head", ())
    assert forked.resolve("heads", ()) == ("b", "c")
    assert forked.upgrade_path(("a",), ("b", "c")) == ["b", "c"]


def test_upgrade_and_downgrade_paths(graph: RevisionGraph) -> None:
    assert graph.upgrade_path((), ("b2",)) == ["a1", "b2"]
    assert graph.upgrade_path(("b2",), ("f6",)) == ["c3", "d4a", "d4b", "e5", "f6"]
    assert graph.upgrade_path(("f6",), ("f6",)) == []
    assert graph.upgrade_path((), ()) == []
    assert graph.downgrade_path(("f6",), ("c3",)) == ["f6", "e5", "d4b", "d4a"]
    assert graph.downgrade_path(("b2",), ()) == ["b2", "a1"]
    assert graph.downgrade_path(("b2",), ("b2",)) == []
    with pytest.raises(AlembicError, match="use action=downgrade"):
        graph.upgrade_path(("f6",), ("c3",))
    with pytest.raises(AlembicError, match="use action=downgrade"):
        graph.upgrade_path(("f6",), ())
    with pytest.raises(AlembicError, match="use action=upgrade"):
        graph.downgrade_path(("b2",), ("f6",))
    assert graph.ancestors(["c3"]) == {"a1", "b2", "c3"}


def test_depends_on_counts_as_required() -> None:
    cross = RevisionGraph([Revision("a", ()), Revision("x", ()), Revision("b", ("a",), depends=("x",))])
    assert cross.upgrade_path(("a",), ("b",)) == ["x", "b"]
    with pytest.raises(AlembicError, match="unknown parent"):
        RevisionGraph.from_history("Rev: b\nParent: <base>\nAlso depends on: zz\nPath: p\n")


class FakeRunner:
    def __init__(self, replies: dict[str, tuple[int, str, str]]) -> None:
        self.replies = replies
        self.calls: list[list[str]] = []

    def __call__(self, argv: list[str]) -> tuple[int, str, str]:
        self.calls.append(argv)
        for suffix, reply in self.replies.items():
            if " ".join(argv).endswith(suffix):
                return reply
        raise AssertionError(f"unexpected command {argv}")


def test_cli_command_lines() -> None:
    runner = FakeRunner(
        {
            "history --verbose": (0, HISTORY, ""),
            "current": (0, "c3 (branchpoint)\n", "INFO  [alembic] Context impl PostgresqlImpl.\n"),
            "upgrade c3:f6 --sql": (0, "BEGIN;\nCOMMIT;\n", ""),
            "upgrade f6": (0, "", "INFO  Running upgrade c3 -> d4a\n"),
        }
    )
    cli = AlembicCli(
        runner, ["docker", "compose", "run", "--rm", "-T", "backend", "alembic"], "/app/alembic.ini", ["a=1"]
    )
    graph = cli.graph()
    assert cli.current(graph) == ("c3",)
    assert cli.render("upgrade", ("c3",), "f6") == (True, "BEGIN;\nCOMMIT;\n", "")
    assert cli.migrate("upgrade", "f6") == "INFO  Running upgrade c3 -> d4a"
    assert runner.calls[0] == [
        "docker", "compose", "run", "--rm", "-T", "backend", "alembic",
        "-c", "/app/alembic.ini", "-x", "a=1", "history", "--verbose",
    ]  # fmt: skip
    assert AlembicCli(runner, ["alembic"]).argv("current") == ["alembic", "current"]


def test_cli_failures() -> None:
    traceback = "INFO  [alembic] Running upgrade\nTraceback (most recent call last):\n  ...\nKeyError: 'DATABASE_URL'\n"
    runner = FakeRunner(
        {
            "history --verbose": (2, "", "FAILED: No config file 'alembic.ini' found\n"),
            "upgrade base:x --sql": (1, "", traceback),
            "upgrade x --sql": (1, "", ""),
            "downgrade base": (1, "out only\n", ""),
        }
    )
    cli = AlembicCli(runner, ["alembic"])
    with pytest.raises(AlembicError, match="No config file") as exc:
        cli.graph()
    assert exc.value.rc == 2
    assert cli.render("upgrade", ("base",), "x") == (False, "", "KeyError: 'DATABASE_URL'")
    assert cli.render("upgrade", (), "x") == (False, "", "exit code 1")
    assert cli.render("upgrade", ("a", "b"), "x")[0] is False
    with pytest.raises(AlembicError, match="out only") as exc2:
        cli.migrate("downgrade", "base")
    assert exc2.value.stdout == "out only\n"


def test_interrupted_step() -> None:
    assert interrupted_step("BEGIN;\n") == (None, 0)
    out = (
        "BEGIN;\n-- Running upgrade  -> 01\nCREATE TABLE a (i int);\n"
        "-- Running upgrade 01 -> 02\nALTER TABLE a ADD b int;\n"
    )
    rev, offset = interrupted_step(out)
    assert rev == "02"
    assert out[offset:].startswith("-- Running upgrade 01 -> 02")
    assert interrupted_step("-- Running downgrade 03 -> 02\nDROP TABLE x;\n")[0] == "03"


def test_small_helpers() -> None:
    assert last_error_line("") == ""
    assert last_error_line("INFO  a\nINFO  b\n") == "INFO  b"
    assert last_error_line("Traceback\n  File x\nValueError: boom\n\n") == "ValueError: boom"
    assert format_revisions(()) is None
    assert format_revisions(("a", "b")) == "a,b"


def test_linear_helper() -> None:
    chain = linear("1", "2", "3")
    assert chain.heads == ["3"]
    assert chain.upgrade_path(("1",), ("3",)) == ["2", "3"]
    assert t.cast("str", chain.resolve("+1", ("2",))[0]) == "3"
