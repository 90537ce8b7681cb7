# Copyright (c) ablage.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Destructive-statement analysis of PostgreSQL SQL, with PostgreSQL's own parser.

PRIVATE: this file is an implementation detail of the ablage.ops collection.
It is not a public API and may change or disappear in any release.

The SQL is parsed with pglast (libpg_query, the parser of the PostgreSQL server
itself), never matched with regular expressions: a ``DELETE`` inside a CTE, a
quoted identifier that contains ``DROP``, or a comment are all seen for what
they are. Every node of every statement is visited, so nested statements
(``WITH d AS (DELETE ...)``) are found too.

Findings (``kind``):

``drop_table``, ``drop_schema``
    ``DROP TABLE`` / ``DROP SCHEMA`` (one finding per object).
``drop_column``
    ``ALTER TABLE ... DROP COLUMN``.
``alter_column_type``
    ``ALTER TABLE ... ALTER COLUMN ... TYPE`` (rewrite, possible truncation).
``set_not_null``
    ``ALTER TABLE ... ALTER COLUMN ... SET NOT NULL`` on a table that has rows,
    or whose row count cannot be known (conservative). A table created earlier
    in the same SQL and not inserted into since is known to be empty; a table
    the SQL inserts into (INSERT, COPY FROM) before is no longer known to be empty.
``truncate``
    ``TRUNCATE`` (one finding per table).
``delete_without_where``, ``update_without_where``
    ``DELETE`` / ``UPDATE`` with no ``WHERE`` or with ``WHERE TRUE``.
``do_block``
    ``DO`` blocks: procedural code that cannot be analysed statically.
``unparseable``
    SQL the parser rejects: it cannot be proven safe.
"""

from __future__ import annotations

import collections
import dataclasses
import re
import traceback
import typing as t

PGLAST_IMPORT_ERROR: str | None
try:
    import pglast
    from pglast import ast as pg_ast
    from pglast.enums import AlterTableType, ObjectType
except ImportError:  # pragma: no cover - exercised only without pglast installed
    HAS_PGLAST = False
    PGLAST_IMPORT_ERROR = traceback.format_exc()
else:
    HAS_PGLAST = True
    PGLAST_IMPORT_ERROR = None

KINDS = (
    "drop_table",
    "drop_schema",
    "drop_column",
    "alter_column_type",
    "set_not_null",
    "truncate",
    "delete_without_where",
    "update_without_where",
    "do_block",
    "unparseable",
)

# Alembic writes one "-- Running upgrade a -> b" comment before the statements of
# each revision in offline (--sql) mode. This only splits the text into per-revision
# chunks (comments are invisible to the SQL parser); the SQL itself is never matched.
_REVISION_MARKER = re.compile(r"^-- Running (?P<verb>upgrade|downgrade) (?P<src>.*?) -> (?P<dst>\S+)\s*$")

# Called with (schema, table); returns True (has rows), False (empty) or None (unknown).
RowProbe = t.Callable[[t.Optional[str], str], t.Optional[bool]]


@dataclasses.dataclass
class Finding:
    """One destructive (or unanalysable) statement."""

    kind: str
    statement: str
    table: str | None = None
    column: str | None = None
    revision: str | None = None
    reason: str = ""
    table_has_rows: bool | None = None

    def as_dict(self) -> dict[str, t.Any]:
        return dataclasses.asdict(self)


def _walk(root: t.Any) -> t.Iterator[t.Any]:
    """Every AST node below (and including) ``root``, breadth first, in source order."""
    todo: collections.deque[t.Any] = collections.deque([root])
    while todo:
        item = todo.popleft()
        if isinstance(item, tuple):
            todo.extend(item)
        elif isinstance(item, pg_ast.Node):
            yield item
            todo.extend(getattr(item, member) for member in item)


def _qualified(schema: str | None, name: str) -> str:
    return f"{schema}.{name}" if schema else name


def _range_var_name(rv: t.Any) -> tuple[str | None, str]:
    return (getattr(rv, "schemaname", None) or None, str(rv.relname))


def _is_literal_true(node: t.Any) -> bool:
    """WHERE TRUE / WHERE 't'::bool: a WHERE clause that filters nothing."""
    if isinstance(node, pg_ast.A_Const):
        val = getattr(node, "val", None)
        return isinstance(val, pg_ast.Boolean) and bool(val.boolval)
    if isinstance(node, pg_ast.TypeCast):
        names = [getattr(n, "sval", "") for n in ((node.typeName.names if node.typeName else None) or ())]
        arg = node.arg
        if names and names[-1] in ("bool", "boolean") and isinstance(arg, pg_ast.A_Const):
            val = getattr(arg, "val", None)
            if isinstance(val, pg_ast.String):
                return str(val.sval).strip().lower() in ("t", "true", "y", "yes", "on", "1")
    return False


def split_by_revision(sql: str) -> list[tuple[str | None, str]]:
    """Split Alembic offline SQL into (revision, sql) chunks using its ``-- Running`` comments.

    The revision is the one the step applies or reverts: the destination of an
    upgrade (``0003`` for ``0002 -> 0003``), the source of a downgrade (``0003``
    for ``0003 -> 0002``); text before the first marker belongs to revision ``None``.
    """
    chunks: list[tuple[str | None, list[str]]] = [(None, [])]
    for line in sql.splitlines(keepends=True):
        match = _REVISION_MARKER.match(line.rstrip("\n"))
        if match:
            rev = match.group("dst") if match.group("verb") == "upgrade" else match.group("src").strip()
            chunks.append((rev or None, [line]))
        else:
            chunks[-1][1].append(line)
    return [(rev, "".join(lines)) for rev, lines in chunks if "".join(lines).strip()]


@dataclasses.dataclass
class Statement:
    """One top-level statement of the SQL, or one revision's chunk that PostgreSQL's parser rejects (``node`` None).

    ``start`` and ``end`` are offsets into the whole SQL, so findings of other tools that report a position
    (squawk: line and column) can be mapped back to the statement and its revision.
    """

    revision: str | None
    text: str
    node: t.Any
    start: int
    end: int
    error: str = ""


def parse_statements(sql: str, revision: str | None = None) -> list[Statement]:
    """Parse ``sql`` revision by revision (see split_by_revision); a chunk the parser rejects is one Statement.

    One parser error loses only its own revision's statements: the other revisions are still parsed.
    ``revision`` names the statements before the first ``-- Running`` marker.
    Raises RuntimeError when pglast is missing (callers check HAS_PGLAST first).
    """
    if not HAS_PGLAST:
        raise RuntimeError("pglast is required to analyse SQL")
    statements: list[Statement] = []
    pos = 0
    for chunk_revision, chunk in split_by_revision(sql):
        base = sql.find(chunk, pos)  # chunks are consecutive slices of sql, so this finds the one just split off
        pos = base + len(chunk)
        rev = chunk_revision if chunk_revision is not None else revision
        try:
            parsed = pglast.parse_sql(chunk)
        except pglast.parser.ParseError as exc:
            statements.append(Statement(rev, chunk.strip(), None, base, base + len(chunk), str(exc)))
            continue
        for raw in parsed:
            location = raw.stmt_location or 0
            length = raw.stmt_len or (len(chunk) - location)
            text = chunk[location : location + length].strip()
            statements.append(Statement(rev, text, raw.stmt, base + location, base + location + length))
    return statements


class _Analyzer:
    def __init__(self, row_probe: RowProbe | None) -> None:
        self.row_probe = row_probe
        # Tables created by the analysed SQL itself and not inserted into since: known empty.
        self.created_empty: set[tuple[str | None, str]] = set()
        # Tables the analysed SQL inserts rows into (INSERT, COPY FROM) before a later statement: the database's
        # current emptiness says nothing about them any more.
        self.written: set[str] = set()

    def _has_rows(self, schema: str | None, table: str) -> bool | None:
        if (schema, table) in self.created_empty or (None, table) in self.created_empty:
            return False
        has_rows = self.row_probe(schema, table) if self.row_probe is not None else None
        if has_rows is False and table in self.written:
            return None
        return has_rows

    def analyze_statement(self, stmt: t.Any, text: str, revision: str | None) -> list[Finding]:
        findings: list[Finding] = []

        def add(kind: str, reason: str, table: str | None = None, column: str | None = None, **kw: t.Any) -> None:
            findings.append(
                Finding(kind=kind, statement=text, table=table, column=column, revision=revision, reason=reason, **kw)
            )

        for node in _walk(stmt):
            if isinstance(node, pg_ast.DropStmt):
                self._drop(node, add)
            elif isinstance(node, pg_ast.TruncateStmt):
                for rv in node.relations or ():
                    schema, name = _range_var_name(rv)
                    add("truncate", "TRUNCATE removes every row", table=_qualified(schema, name))
            elif isinstance(node, pg_ast.AlterTableStmt):
                self._alter_table(node, add)
            elif isinstance(node, (pg_ast.DeleteStmt, pg_ast.UpdateStmt)):
                schema, name = _range_var_name(node.relation)
                where = node.whereClause
                verb = "delete" if isinstance(node, pg_ast.DeleteStmt) else "update"
                if where is None or _is_literal_true(where):
                    add(
                        f"{verb}_without_where",
                        f"{verb.upper()} without a WHERE clause affects every row",
                        table=_qualified(schema, name),
                    )
            elif isinstance(node, pg_ast.InsertStmt) or (
                isinstance(node, pg_ast.CopyStmt) and node.relation is not None and node.is_from
            ):
                schema, name = _range_var_name(node.relation)
                self._written(schema, name)
            elif isinstance(node, pg_ast.DoStmt):
                add("do_block", "DO block: procedural code cannot be analysed statically")

        # Record CREATE TABLE after the checks, so "CREATE TABLE ... ; SET NOT NULL" sees it empty.
        if isinstance(stmt, pg_ast.CreateStmt):
            schema, name = _range_var_name(stmt.relation)
            self.created_empty.add((schema, name))
        elif isinstance(stmt, pg_ast.CreateTableAsStmt) and stmt.into is not None:
            self._written(*_range_var_name(stmt.into.rel))
        return findings

    def _written(self, schema: str | None, name: str) -> None:
        self.written.add(name)
        self.created_empty.discard((schema, name))
        if schema is None:
            for key in [k for k in self.created_empty if k[1] == name]:
                self.created_empty.discard(key)

    def _drop(self, node: t.Any, add: t.Callable[..., None]) -> None:
        remove_type = node.removeType
        if remove_type == ObjectType.OBJECT_TABLE:
            kind, what = "drop_table", "DROP TABLE removes the table and its data"
        elif remove_type == ObjectType.OBJECT_SCHEMA:
            kind, what = "drop_schema", "DROP SCHEMA removes the schema (and with CASCADE everything in it)"
        else:
            return
        for obj in node.objects or ():
            parts = [str(getattr(p, "sval", p)) for p in (obj if isinstance(obj, (list, tuple)) else (obj,))]
            name = ".".join(parts)
            add(kind, what, table=name)
            if kind == "drop_table":
                schema = parts[-2] if len(parts) > 1 else None
                self.created_empty.discard((schema, parts[-1]))

    def _alter_table(self, node: t.Any, add: t.Callable[..., None]) -> None:
        if node.objtype not in (ObjectType.OBJECT_TABLE, None):
            return
        schema, name = _range_var_name(node.relation)
        table = _qualified(schema, name)
        for cmd in node.cmds or ():
            subtype = cmd.subtype
            if subtype == AlterTableType.AT_DropColumn:
                add("drop_column", "DROP COLUMN removes the column and its data", table=table, column=cmd.name)
            elif subtype == AlterTableType.AT_AlterColumnType:
                add(
                    "alter_column_type",
                    "ALTER COLUMN ... TYPE rewrites the table and can truncate or reject data",
                    table=table,
                    column=cmd.name,
                )
            elif subtype == AlterTableType.AT_SetNotNull:
                has_rows = self._has_rows(schema, name)
                if has_rows is False:
                    continue
                reason = (
                    "SET NOT NULL on a table that has rows (fails or locks while it scans them)"
                    if has_rows
                    else "SET NOT NULL on a table whose row count is unknown (no database connection to check it)"
                )
                add("set_not_null", reason, table=table, column=cmd.name, table_has_rows=has_rows)


def analyze_sql(sql: str, row_probe: RowProbe | None = None, revision: str | None = None) -> list[Finding]:
    """Return the destructive findings of ``sql``.

    ``sql`` may hold Alembic offline output of several revisions; each finding
    names the revision from Alembic's ``-- Running ... -> rev`` comments (or
    ``revision`` when given). ``row_probe`` answers whether a table has rows,
    for ``SET NOT NULL``; without it such statements are reported.
    Raises RuntimeError when pglast is missing (callers check HAS_PGLAST first).
    """
    if not HAS_PGLAST:
        raise RuntimeError("pglast is required to analyse SQL")
    analyzer = _Analyzer(row_probe)
    findings: list[Finding] = []
    for stmt in parse_statements(sql, revision):
        if stmt.node is None:
            findings.append(
                Finding(
                    kind="unparseable",
                    statement=stmt.text,
                    revision=stmt.revision,
                    reason=f"PostgreSQL's parser rejects this SQL ({stmt.error}); it cannot be checked",
                )
            )
            continue
        findings.extend(analyzer.analyze_statement(stmt.node, stmt.text, stmt.revision))
    return findings


def summarize(findings: t.Sequence[Finding]) -> str:
    """One line per finding, for failure messages."""
    parts = []
    for f in findings:
        where = f.table or ""
        if f.column:
            where = f"{where}.{f.column}"
        rev = f" in revision {f.revision}" if f.revision else ""
        parts.append(f"{f.kind}{' ' + where if where else ''}{rev}")
    return "; ".join(parts)
