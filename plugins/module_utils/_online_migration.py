# Copyright (c) ablage.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Whether pending Alembic migrations can run while the old release keeps serving (zero-downtime deploy).

PRIVATE: this file is an implementation detail of the ablage.ops collection.
It is not a public API and may change or disappear in any release.

A release may skip the maintenance window only when every pending statement is an *expand* step: additive,
holding no lock that stalls the old release's queries for longer than a moment, and leaving every table, column
and object the old release uses as it was. Anything else (a rename, a drop, a table rewrite, a long lock, data
changes to every row, code that cannot be analysed) keeps the maintenance window, and the verdict says which
statement, in which revision, and what to write instead.

The offline SQL that ``alembic upgrade --sql`` renders is parsed with PostgreSQL's own parser (pglast), statement by
statement, through ``_sql_safety``: everything it finds (data loss, ``DO`` blocks, SQL the parser rejects) also
blocks. Statement types this file does not know block too (``unreviewed_statement``): a new kind of statement must be
reviewed before it may run online, never pass by default.

Blockers (``kind``), in addition to those of ``_sql_safety``:

``rename_table``, ``rename_column``, ``rename_object``
    The old release still uses the old name (``ALTER ... SET SCHEMA`` moves a table: ``rename_table`` too).
``drop_object``, ``drop_index_not_concurrently``
    Other ``DROP`` statements: the old release may use the view, function, type ...; ``DROP INDEX`` without
    ``CONCURRENTLY`` locks its table.
``set_not_null``, ``add_column_not_null_without_default``
    The old release's writes that leave the column empty fail (and the table is scanned under lock).
``add_column_volatile_default``
    A volatile default (``random()``, ``clock_timestamp()``, ``nextval()``, ``gen_random_uuid()``, serial types,
    identity and stored generated columns) rewrites the whole table. A constant or stable default (``0``,
    ``now()``, ``CURRENT_TIMESTAMP``) is stored once in the catalog since PostgreSQL 11: no rewrite. A function this
    file does not know is taken as volatile.
``create_index_not_concurrently``
    On a table that existed before this SQL; tables created by the same SQL are new to the old release and empty.
``add_foreign_key_without_not_valid``, ``add_check_constraint_without_not_valid``,
``add_unique_or_primary_key_constraint``, ``add_exclusion_constraint``
    Validation scans or index builds while writes wait (``UNIQUE ... USING INDEX`` and ``NOT VALID`` do not).
``validate_constraint_in_same_transaction``
    ``VALIDATE CONSTRAINT`` of a constraint added ``NOT VALID`` since the same ``BEGIN``: ADD's lock is still held.
``lock_table``, ``vacuum_full``, ``cluster``, ``reindex``, ``refresh_materialized_view``, ``table_rewrite``
    Explicit locks and rewrites (``REINDEX`` / ``REFRESH`` without ``CONCURRENTLY``; ``ALTER TABLE ... SET
    TABLESPACE``, ``SET LOGGED``, ``ATTACH PARTITION`` ...).
``unreviewed_statement``
    A statement (or ``ALTER TABLE`` action) not known to be safe online.
``offline_sql_unavailable``
    A revision the caller could not render as offline SQL: it cannot be checked.
``squawk:<rule>``
    A violation of the squawk linter, when its binary is given (see SQUAWK_IGNORED_RULES for the rules left out).

Alembic's own bookkeeping (``CREATE TABLE``, ``INSERT``, ``UPDATE``, ``DELETE`` on its version table) never blocks.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess  # nosec B404 - runs only the squawk binary the caller names, without a shell
import typing as t

from ansible_collections.ablage.ops.plugins.module_utils._sql_safety import (
    HAS_PGLAST,
    PGLAST_IMPORT_ERROR,
    Statement,
    _Analyzer,
    _qualified,
    _range_var_name,
    _walk,
    parse_statements,
)

if HAS_PGLAST:
    from pglast import ast as pg_ast
    from pglast.enums import AlterTableType, ConstrType, ObjectType

__all__ = [
    "HAS_PGLAST",
    "PGLAST_IMPORT_ERROR",
    "SQUAWK_IGNORED_RULES",
    "Blocker",
    "OnlineVerdict",
    "classify_online",
    "squawk_blockers",
]

MODES = ("online", "maintenance")

# squawk rules that say nothing about whether the old release keeps working while the SQL runs, so they never block.
SQUAWK_IGNORED_RULES = frozenset(
    {
        # Style and type choices for new columns: no lock, no rewrite, nothing the old release notices.
        "prefer-text-field",
        "prefer-bigint-over-int",
        "prefer-bigint-over-smallint",
        "prefer-identity",
        "prefer-timestamp-tz",
        "ban-char-field",
        "require-enum-value-ordering",
        # Re-runnability (IF [NOT] EXISTS): Alembic's version table already makes a migration run once.
        "prefer-robust-stmts",
        # How the SQL is run, not what it changes: session timeouts belong to the deploy, and Alembic wraps
        # the offline SQL in BEGIN/COMMIT by design (CONCURRENTLY in a transaction is the runner's concern).
        "require-lock-timeout",
        "require-statement-timeout",
        "require-timeout-settings",
        "ban-concurrent-index-creation-in-transaction",
        "transaction-nesting",
        "ban-uncommitted-transaction",
        # squawk's own parser, not PostgreSQL's: pglast decides what is unparseable; and its ignore comments.
        "syntax-error",
        "unused-ignore",
    }
)

# Called with (argv, stdin text); returns (rc, stdout, stderr). AnsibleModule.run_command fits with a small wrapper.
Runner = t.Callable[[t.List[str], str], t.Tuple[int, str, str]]

_STATEMENT_MAX = 200

# Functions whose result does not change per row (immutable or stable in pg_catalog): as an ADD COLUMN default they
# are evaluated once and stored in the catalog (PostgreSQL >= 11), so no rewrite. Any other function counts as volatile.
_NON_VOLATILE_FUNCTIONS = frozenset(
    {
        "now",
        "transaction_timestamp",
        "statement_timestamp",
        "timezone",
        "date_trunc",
        "make_date",
        "make_interval",
        "make_timestamp",
        "make_timestamptz",
        "to_timestamp",
        "to_date",
        "lower",
        "upper",
        "btrim",
        "concat",
        "json_build_object",
        "jsonb_build_object",
        "json_build_array",
        "jsonb_build_array",
        "to_json",
        "to_jsonb",
    }
)

# Column types that are integers with a nextval() default.
_SERIAL_TYPES = frozenset({"smallserial", "serial", "bigserial", "serial2", "serial4", "serial8"})

# Top-level statements that only add, or change nothing the old release relies on, and take no long lock.
_SAFE_STATEMENTS = frozenset(
    {
        "TransactionStmt",
        "VariableSetStmt",
        "VariableShowStmt",
        "CreateStmt",
        "CreateTableAsStmt",
        "ViewStmt",
        "CreateSeqStmt",
        "AlterSeqStmt",
        "CreateEnumStmt",
        "CompositeTypeStmt",
        "CreateRangeStmt",
        "CreateDomainStmt",
        "DefineStmt",
        "CreateFunctionStmt",
        "AlterFunctionStmt",
        "CreateTrigStmt",
        "CreateExtensionStmt",
        "CreateSchemaStmt",
        "CreateStatsStmt",
        "CreatePolicyStmt",
        "AlterPolicyStmt",
        "CreateCastStmt",
        "CommentStmt",
        "SecLabelStmt",
        "GrantStmt",
        "GrantRoleStmt",
        "AlterDefaultPrivilegesStmt",
        "CreateRoleStmt",
        "AlterRoleStmt",
        "AlterOwnerStmt",
        "SelectStmt",
        "InsertStmt",
        "UpdateStmt",
        "DeleteStmt",
        "CopyStmt",
        "NotifyStmt",
        # Found by _sql_safety (truncate, do_block) when it matters; nothing to add here.
        "TruncateStmt",
        "DoStmt",
    }
)

# ALTER TABLE actions that change only the catalog (or relax a rule), with at most a short lock.
_SAFE_ALTER_TABLE = frozenset(
    {
        "AT_ColumnDefault",
        "AT_CookedColumnDefault",
        "AT_DropNotNull",
        "AT_DropExpression",
        "AT_SetStatistics",
        "AT_SetOptions",
        "AT_ResetOptions",
        "AT_SetStorage",
        "AT_SetCompression",
        "AT_ValidateConstraint",
        "AT_DropConstraint",
        "AT_AlterConstraint",
        "AT_AlterColumnGenericOptions",
        "AT_ChangeOwner",
        "AT_ClusterOn",
        "AT_DropCluster",
        "AT_SetRelOptions",
        "AT_ResetRelOptions",
        "AT_ReplaceRelOptions",
        "AT_EnableTrig",
        "AT_EnableAlwaysTrig",
        "AT_EnableReplicaTrig",
        "AT_DisableTrig",
        "AT_EnableTrigAll",
        "AT_DisableTrigAll",
        "AT_EnableTrigUser",
        "AT_DisableTrigUser",
        "AT_EnableRule",
        "AT_EnableAlwaysRule",
        "AT_EnableReplicaRule",
        "AT_DisableRule",
        "AT_ReplicaIdentity",
        "AT_EnableRowSecurity",
        "AT_DisableRowSecurity",
        "AT_ForceRowSecurity",
        "AT_NoForceRowSecurity",
        "AT_GenericOptions",
        "AT_AddIdentity",
        "AT_SetIdentity",
        "AT_DropIdentity",
        "AT_DetachPartitionFinalize",
        # Found by _sql_safety (drop_column, alter_column_type).
        "AT_DropColumn",
        "AT_AlterColumnType",
    }
)

# ALTER TABLE actions that rewrite or scan the table under an exclusive lock, with the words of the SQL.
_REWRITING_ALTER_TABLE = {
    "AT_SetLogged": "SET LOGGED",
    "AT_SetUnLogged": "SET UNLOGGED",
    "AT_SetTableSpace": "SET TABLESPACE",
    "AT_SetAccessMethod": "SET ACCESS METHOD",
    "AT_SetExpression": "ALTER COLUMN ... SET EXPRESSION",
    "AT_AttachPartition": "ATTACH PARTITION",
    "AT_DetachPartition": "DETACH PARTITION without CONCURRENTLY",
    "AT_AddInherit": "INHERIT",
    "AT_DropInherit": "NO INHERIT",
    "AT_AddOf": "OF type",
    "AT_DropOf": "NOT OF",
}

# kind -> (what the statement does, for the verdict's sentence; why it blocks and what to do instead).
# Placeholders: {table}, {column}, {detail}.
_TEXTS: dict[str, tuple[str, str]] = {
    "rename_table": (
        "renaming {table}{detail}",
        (
            "breaks the old release, which still uses the old name; create the new table (or a view under the new "
            "name) and move over across two releases"
        ),
    ),
    "rename_column": (
        "renaming column {column} of {table}",
        (
            "breaks the old release, which still reads and writes the old name; add the new column, backfill it, and "
            "drop the old one in a later release"
        ),
    ),
    "rename_object": (
        "renaming {detail}",
        "breaks the old release if it still uses the old name; add the new one and drop the old one in a later release",
    ),
    "drop_table": (
        "DROP TABLE {table}",
        "removes a table the old release still uses; drop it in a later release, once no running release uses it",
    ),
    "drop_column": (
        "DROP COLUMN {column} of {table}",
        (
            "removes a column the old release still reads or writes; drop it in a later release, once no running "
            "release uses it"
        ),
    ),
    "drop_schema": (
        "DROP SCHEMA {table}",
        "removes objects the old release still uses; drop it in a later release, once no running release uses it",
    ),
    "drop_object": (
        "DROP {detail}",
        "removes something the old release may still use; drop it in a later release, once no running release uses it",
    ),
    "drop_index_not_concurrently": (
        "DROP INDEX {detail} without CONCURRENTLY",
        "locks its table against reads and writes; drop it CONCURRENTLY in its own migration",
    ),
    "alter_column_type": (
        "changing the type of {table}.{column}",
        (
            "rewrites the table under an exclusive lock, and the old release may not handle the new type; add a column "
            "of the new type, backfill it, and switch over across releases"
        ),
    ),
    "set_not_null": (
        "SET NOT NULL on {table}.{column}",
        (
            "scans the table under an exclusive lock and fails the old release's writes that leave it empty; add "
            "CHECK ({column} IS NOT NULL) NOT VALID, VALIDATE it in a later migration, and set NOT NULL once the old "
            "release is gone"
        ),
    ),
    "add_column_not_null_without_default": (
        "adding NOT NULL column {column} to {table} without a default",
        "fails on existing rows and fails the old release's inserts; add it nullable or with a constant default",
    ),
    "add_column_volatile_default": (
        "adding column {column} to {table} with {detail}",
        (
            "rewrites the whole table under an exclusive lock; add it without a default (or with a constant one) and "
            "backfill it in batches"
        ),
    ),
    "create_index_not_concurrently": (
        "CREATE INDEX without CONCURRENTLY on {table}",
        "locks writes while the index is built; build it CONCURRENTLY in its own migration",
    ),
    "add_foreign_key_without_not_valid": (
        "adding a FOREIGN KEY on {table} without NOT VALID",
        (
            "scans the table while writes to it and to the referenced table wait; add it NOT VALID and VALIDATE "
            "CONSTRAINT in a later migration"
        ),
    ),
    "add_check_constraint_without_not_valid": (
        "adding a CHECK constraint on {table} without NOT VALID",
        "scans the table under an exclusive lock; add it NOT VALID and VALIDATE CONSTRAINT in a later migration",
    ),
    "add_unique_or_primary_key_constraint": (
        "adding a {detail} constraint on {table}",
        (
            "builds its index while writes wait; CREATE UNIQUE INDEX CONCURRENTLY first, then ADD CONSTRAINT ... "
            "USING INDEX"
        ),
    ),
    "add_exclusion_constraint": (
        "adding an EXCLUDE constraint on {table}",
        "builds its index while writes wait and cannot be added NOT VALID; keep it for a maintenance window",
    ),
    "validate_constraint_in_same_transaction": (
        "VALIDATE CONSTRAINT {detail} on {table} in the transaction that added it NOT VALID",
        (
            "scans the table while the lock taken by ADD CONSTRAINT is still held; validate it in a later release's "
            "migration (or with transaction_per_migration, in a later revision)"
        ),
    ),
    "lock_table": (
        "LOCK TABLE {table}",
        "blocks the old release's queries until the migration commits; remove the explicit lock",
    ),
    "vacuum_full": (
        "VACUUM FULL {table}",
        "rewrites the table under an exclusive lock; run it outside the deploy (or use pg_repack)",
    ),
    "cluster": (
        "CLUSTER {table}",
        "rewrites the table under an exclusive lock; run it outside the deploy (or use pg_repack)",
    ),
    "reindex": (
        "REINDEX {detail} without CONCURRENTLY",
        "blocks writes, and reads that use the index, while it runs; use REINDEX CONCURRENTLY outside the migration",
    ),
    "refresh_materialized_view": (
        "REFRESH MATERIALIZED VIEW {table} without CONCURRENTLY",
        "blocks reads of the view while it refreshes; refresh it CONCURRENTLY (needs a unique index)",
    ),
    "table_rewrite": (
        "ALTER TABLE {table} {detail}",
        "rewrites or scans the table under an exclusive lock; keep it for a maintenance window",
    ),
    "truncate": (
        "TRUNCATE {table}",
        "removes every row the old release still serves; keep it for a maintenance window",
    ),
    "delete_without_where": (
        "DELETE of every row of {table}",
        (
            "removes data the old release still serves and locks every row until the migration commits; delete in "
            "batches with a WHERE clause"
        ),
    ),
    "update_without_where": (
        "UPDATE of every row of {table}",
        (
            "locks every row until the migration commits, so the old release's writes wait; backfill in batches "
            "outside the schema migration"
        ),
    ),
    "do_block": (
        "a DO block",
        "is procedural code that cannot be proven safe; write its statements as plain SQL",
    ),
    "unparseable": (
        "SQL that PostgreSQL's parser rejects",
        "cannot be proven safe; fix the migration",
    ),
    "unreviewed_statement": (
        "{detail}",
        "is not known to be safe while the old release serves; review it, or keep the maintenance window",
    ),
    "offline_sql_unavailable": (
        "a migration that cannot be rendered as offline SQL ({detail})",
        "cannot be checked; keep the maintenance window, or make it render with --sql",
    ),
}

KINDS = (*_TEXTS, "squawk:<rule>")


@dataclasses.dataclass
class Blocker:
    """One statement that keeps the maintenance window. ``label`` is for the verdict's sentence only."""

    kind: str
    statement: str
    table: str | None = None
    column: str | None = None
    revision: str | None = None
    reason: str = ""
    label: str = dataclasses.field(default="", repr=False)

    def as_dict(self) -> dict[str, t.Any]:
        return {
            "kind": self.kind,
            "statement": self.statement,
            "table": self.table,
            "column": self.column,
            "revision": self.revision,
            "reason": self.reason,
        }


@dataclasses.dataclass
class OnlineVerdict:
    """``mode`` online or maintenance, ``reason`` one sentence for the pre-flight report, ``blockers`` in SQL order."""

    mode: str
    reason: str
    blockers: list[Blocker] = dataclasses.field(default_factory=list)

    def as_dict(self) -> dict[str, t.Any]:
        return {"mode": self.mode, "reason": self.reason, "blockers": [b.as_dict() for b in self.blockers]}


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _STATEMENT_MAX else text[: _STATEMENT_MAX - 3] + "..."


def _blocker(
    kind: str,
    statement: str,
    revision: str | None,
    table: str | None = None,
    column: str | None = None,
    detail: str = "",
) -> Blocker:
    label, reason = _TEXTS[kind]
    values = {"table": table or "?", "column": column or "?", "detail": detail}
    return Blocker(
        kind=kind,
        statement=_short(statement),
        table=table,
        column=column,
        revision=revision,
        reason=reason.format(**values),
        label=label.format(**values),
    )


def _names(obj: t.Any) -> str:
    """Dotted name of a DROP / RENAME object: a list of String, a TypeName, or an ObjectWithArgs."""
    if isinstance(obj, pg_ast.TypeName):
        obj = obj.names
    elif isinstance(obj, pg_ast.ObjectWithArgs):
        obj = obj.objname
    parts = obj if isinstance(obj, (list, tuple)) else (obj,)
    return ".".join(str(getattr(p, "sval", p)) for p in parts)


def _object_word(objtype: t.Any) -> str:
    """OBJECT_MATVIEW -> MATVIEW: the kind of object, in the words of the DROP statement."""
    name = getattr(objtype, "name", str(objtype))
    return name.replace("OBJECT_", "").replace("_", " ")


def _volatile(expr: t.Any) -> str | None:
    """What makes a default expression volatile (one value per row, so a rewrite), or None for constant / stable."""
    for node in _walk(expr):
        if isinstance(node, pg_ast.FuncCall):
            names = node.funcname or ()
            name = str(getattr(names[-1], "sval", "")).lower() if names else ""
            if name not in _NON_VOLATILE_FUNCTIONS:
                return f"{name}()"
        elif isinstance(node, pg_ast.SubLink):
            return "a subquery"
    return None


def _relation(node: t.Any) -> str | None:
    """The table a statement works on, when it names one (for squawk's findings)."""
    rv = getattr(node, "relation", None)
    if isinstance(rv, pg_ast.RangeVar):
        return _qualified(*_range_var_name(rv))
    return None


def _is_bookkeeping(node: t.Any, version_table: str, version_table_schema: str | None) -> bool:
    """Alembic's own CREATE TABLE / INSERT / UPDATE / DELETE of its version table."""
    if not isinstance(node, (pg_ast.CreateStmt, pg_ast.InsertStmt, pg_ast.UpdateStmt, pg_ast.DeleteStmt)):
        return False
    rv = node.relation
    if not isinstance(rv, pg_ast.RangeVar):
        return False
    schema, name = _range_var_name(rv)
    return name == version_table and (schema is None or version_table_schema is None or schema == version_table_schema)


class _Classifier:
    """Walks the statements in order, remembering the relations this SQL creates (new to the old release)."""

    def __init__(self, version_table: str, version_table_schema: str | None) -> None:
        self.version_table = version_table
        self.version_table_schema = version_table_schema
        self.safety = _Analyzer(None)
        self.created: set[tuple[str | None, str]] = set()
        self.checked = 0
        # Between BEGIN and COMMIT: constraints added NOT VALID, as (table, name). Their lock is held until COMMIT,
        # so a VALIDATE in the same transaction scans the table under it - the wait NOT VALID was meant to avoid.
        self.in_transaction = False
        self.not_valid: set[tuple[str, str]] = set()
        # Statements with rules of their own, by node type; the rest is either in _SAFE_STATEMENTS or unreviewed.
        self.handlers: dict[str, t.Callable[[t.Any, t.Callable[..., None]], None]] = {
            "IndexStmt": self._index,
            "RenameStmt": self._rename,
            "AlterObjectSchemaStmt": self._set_schema,
            "AlterEnumStmt": self._alter_enum,
            "DropStmt": self._drop,
            "LockStmt": self._lock,
            "VacuumStmt": self._vacuum,
            "ClusterStmt": self._cluster,
            "ReindexStmt": self._reindex,
            "RefreshMatViewStmt": self._refresh,
            "AlterTableStmt": self._alter_table,
            "TransactionStmt": self._transaction,
        }

    def is_new(self, schema: str | None, name: str) -> bool:
        if (schema, name) in self.created or (None, name) in self.created:
            return True
        return schema is None and any(key[1] == name for key in self.created)

    def _rv_is_new(self, rv: t.Any) -> bool:
        return isinstance(rv, pg_ast.RangeVar) and self.is_new(*_range_var_name(rv))

    def classify(self, stmt: Statement) -> list[Blocker]:
        if stmt.node is None:
            return [_blocker("unparseable", stmt.text, stmt.revision)]
        node = stmt.node
        destructive = self.safety.analyze_statement(node, stmt.text, stmt.revision)
        if _is_bookkeeping(node, self.version_table, self.version_table_schema):
            return []
        if not isinstance(node, pg_ast.TransactionStmt):
            self.checked += 1
        found = [_blocker(f.kind, stmt.text, stmt.revision, f.table, f.column) for f in destructive]

        def add(kind: str, table: str | None = None, column: str | None = None, detail: str = "") -> None:
            found.append(_blocker(kind, stmt.text, stmt.revision, table, column, detail))

        name = type(node).__name__
        handler = self.handlers.get(name)
        if handler is not None:
            handler(node, add)
        elif name not in _SAFE_STATEMENTS:
            add("unreviewed_statement", detail=name.replace("Stmt", " statement"))
        self._track(node)
        unique: dict[tuple[t.Any, ...], Blocker] = {}
        for b in found:
            unique.setdefault((b.kind, b.table, b.column, b.label), b)
        return list(unique.values())

    def _track(self, node: t.Any) -> None:
        """Record relations this statement creates, after its own checks."""
        if isinstance(node, pg_ast.CreateStmt):
            self.created.add(_range_var_name(node.relation))
        elif isinstance(node, pg_ast.CreateTableAsStmt) and node.into is not None:
            self.created.add(_range_var_name(node.into.rel))
        elif isinstance(node, pg_ast.ViewStmt):
            self.created.add(_range_var_name(node.view))
        elif isinstance(node, pg_ast.CreateSeqStmt):
            self.created.add(_range_var_name(node.sequence))
        elif (
            isinstance(node, pg_ast.RenameStmt)
            and self._rv_is_new(node.relation)
            and node.newname
            and node.renameType in (ObjectType.OBJECT_TABLE, ObjectType.OBJECT_VIEW, ObjectType.OBJECT_MATVIEW)
        ):
            self.created.add((_range_var_name(node.relation)[0], str(node.newname)))

    # ------------------------------------------------------------- statements with their own rules

    def _transaction(self, node: t.Any, add: t.Callable[..., None]) -> None:
        self.not_valid.clear()
        self.in_transaction = node.kind.name in ("TRANS_STMT_BEGIN", "TRANS_STMT_START")

    def _index(self, node: t.Any, add: t.Callable[..., None]) -> None:
        if not node.concurrent and not self._rv_is_new(node.relation):
            add("create_index_not_concurrently", table=_qualified(*_range_var_name(node.relation)))

    def _rename(self, node: t.Any, add: t.Callable[..., None]) -> None:
        kind = node.renameType
        if kind in (
            ObjectType.OBJECT_INDEX,
            ObjectType.OBJECT_TABCONSTRAINT,
            ObjectType.OBJECT_TRIGGER,
            ObjectType.OBJECT_POLICY,
            ObjectType.OBJECT_RULE,
        ):
            return  # the old release does not name these in its queries
        if node.relation is not None:
            if self._rv_is_new(node.relation):
                return
            table = _qualified(*_range_var_name(node.relation))
            if kind in (ObjectType.OBJECT_COLUMN, ObjectType.OBJECT_ATTRIBUTE):
                add("rename_column", table=table, column=node.subname)
            else:
                add("rename_table", table=table)
            return
        add("rename_object", detail=f"{_object_word(kind).lower()} {_names(node.object)}")

    def _set_schema(self, node: t.Any, add: t.Callable[..., None]) -> None:
        if node.relation is not None:
            if not self._rv_is_new(node.relation):
                add("rename_table", table=_qualified(*_range_var_name(node.relation)), detail=" (SET SCHEMA)")
            return
        add("rename_object", detail=f"{_object_word(node.objectType).lower()} {_names(node.object)} (SET SCHEMA)")

    def _alter_enum(self, node: t.Any, add: t.Callable[..., None]) -> None:
        if node.oldVal:  # RENAME VALUE: the old release still writes the old label; ADD VALUE is additive
            add("rename_object", detail=f"value {node.oldVal!r} of type {_names(node.typeName)}")

    def _drop(self, node: t.Any, add: t.Callable[..., None]) -> None:
        remove = node.removeType
        if remove in (ObjectType.OBJECT_TABLE, ObjectType.OBJECT_SCHEMA):
            return  # drop_table / drop_schema come from _sql_safety
        for obj in node.objects or ():
            name = _names(obj)
            if remove == ObjectType.OBJECT_INDEX:
                if not node.concurrent:
                    add("drop_index_not_concurrently", detail=name)
            elif not (
                remove in (ObjectType.OBJECT_VIEW, ObjectType.OBJECT_MATVIEW, ObjectType.OBJECT_SEQUENCE)
                and self._created_name(name)
            ):
                add("drop_object", detail=f"{_object_word(remove)} {name}")

    def _created_name(self, dotted: str) -> bool:
        schema, dummy, name = dotted.rpartition(".")
        return self.is_new(schema or None, name)

    def _lock(self, node: t.Any, add: t.Callable[..., None]) -> None:
        for rv in node.relations or ():
            if not self._rv_is_new(rv):
                add("lock_table", table=_qualified(*_range_var_name(rv)))

    def _vacuum(self, node: t.Any, add: t.Callable[..., None]) -> None:
        full = any(
            getattr(opt, "defname", "") == "full" and getattr(getattr(opt, "arg", None), "boolval", True) is not False
            for opt in node.options or ()
        )
        if not full:
            return  # plain VACUUM / ANALYZE take no lock that stops reads or writes
        rels = [r.relation for r in node.rels or () if getattr(r, "relation", None) is not None]
        if not rels:
            add("vacuum_full", table="(every table)")
        for rv in rels:
            if not self._rv_is_new(rv):
                add("vacuum_full", table=_qualified(*_range_var_name(rv)))

    def _cluster(self, node: t.Any, add: t.Callable[..., None]) -> None:
        if node.relation is None:
            add("cluster", table="(every clustered table)")
        elif not self._rv_is_new(node.relation):
            add("cluster", table=_qualified(*_range_var_name(node.relation)))

    def _reindex(self, node: t.Any, add: t.Callable[..., None]) -> None:
        if any(getattr(opt, "defname", "") == "concurrently" for opt in node.params or ()):
            return
        if node.relation is not None:
            if not self._rv_is_new(node.relation):
                table = _qualified(*_range_var_name(node.relation))
                add("reindex", table=table, detail=table)
        else:
            add("reindex", detail=str(node.name or ""))

    def _refresh(self, node: t.Any, add: t.Callable[..., None]) -> None:
        if not node.concurrent:
            add("refresh_materialized_view", table=_qualified(*_range_var_name(node.relation)))

    def _alter_table(self, node: t.Any, add: t.Callable[..., None]) -> None:
        if self._rv_is_new(node.relation):
            return  # the old release does not know the table, and it holds only what this SQL put there
        table = _qualified(*_range_var_name(node.relation))
        for cmd in node.cmds or ():
            subtype = cmd.subtype.name if hasattr(cmd.subtype, "name") else str(cmd.subtype)
            if cmd.subtype == AlterTableType.AT_AddColumn:
                self._add_column(table, cmd.def_, add)
            elif cmd.subtype == AlterTableType.AT_AddConstraint:
                self._add_constraint(table, cmd.def_, add)
                if self.in_transaction and cmd.def_.skip_validation and cmd.def_.conname:
                    self.not_valid.add((table, str(cmd.def_.conname)))
            elif cmd.subtype == AlterTableType.AT_ValidateConstraint and (table, str(cmd.name)) in self.not_valid:
                add("validate_constraint_in_same_transaction", table=table, detail=str(cmd.name))
            elif cmd.subtype == AlterTableType.AT_SetNotNull:
                add("set_not_null", table=table, column=cmd.name)
            elif subtype == "AT_DetachPartition" and getattr(cmd.def_, "concurrent", False):
                continue
            elif subtype in _REWRITING_ALTER_TABLE:
                add("table_rewrite", table=table, detail=_REWRITING_ALTER_TABLE[subtype])
            elif subtype not in _SAFE_ALTER_TABLE:
                add("unreviewed_statement", table=table, detail=f"ALTER TABLE {table} ({subtype})")

    @staticmethod
    def _add_column(table: str, coldef: t.Any, add: t.Callable[..., None]) -> None:
        column = coldef.colname
        constraints = list(coldef.constraints or ())
        types = {c.contype for c in constraints}
        type_name = str(getattr(coldef.typeName.names[-1], "sval", "")).lower() if coldef.typeName else ""
        default = next((c.raw_expr for c in constraints if c.contype == ConstrType.CONSTR_DEFAULT), None)
        if isinstance(default, pg_ast.A_Const) and default.isnull:
            default = None  # DEFAULT NULL is no default
        not_null = bool(coldef.is_not_null) or bool(types & {ConstrType.CONSTR_NOTNULL, ConstrType.CONSTR_PRIMARY})
        volatile = None
        if type_name in _SERIAL_TYPES:
            volatile = f"the {type_name} type (a nextval() default)"
        elif coldef.identity not in (None, "", "\x00") or ConstrType.CONSTR_IDENTITY in types:
            volatile = "an identity (a value per row)"
        elif ConstrType.CONSTR_GENERATED in types:
            volatile = "a stored generated expression"
        elif default is not None:
            what = _volatile(default)
            volatile = f"the volatile default {what}" if what else None
        if volatile:
            add("add_column_volatile_default", table=table, column=column, detail=volatile)
        elif not_null and default is None:
            add("add_column_not_null_without_default", table=table, column=column)
        for constraint in constraints:
            _Classifier._add_constraint(table, constraint, add)

    @staticmethod
    def _add_constraint(table: str, constraint: t.Any, add: t.Callable[..., None]) -> None:
        contype = constraint.contype
        if contype == ConstrType.CONSTR_FOREIGN and not constraint.skip_validation:
            add("add_foreign_key_without_not_valid", table=table)
        elif contype == ConstrType.CONSTR_CHECK and not constraint.skip_validation:
            add("add_check_constraint_without_not_valid", table=table)
        elif contype in (ConstrType.CONSTR_PRIMARY, ConstrType.CONSTR_UNIQUE) and not constraint.indexname:
            word = "PRIMARY KEY" if contype == ConstrType.CONSTR_PRIMARY else "UNIQUE"
            add("add_unique_or_primary_key_constraint", table=table, detail=word)
        elif contype == ConstrType.CONSTR_EXCLUSION:
            add("add_exclusion_constraint", table=table)


# ----------------------------------------------------------------------------- squawk


def squawk_command(binary: str) -> list[str]:
    """squawk reading the SQL from stdin and answering in JSON (a list of violations; [] when there are none)."""
    return [binary, "--reporter", "json", "--stdin-filepath", "migration.sql"]


def _run_subprocess(argv: list[str], data: str) -> tuple[int, str, str]:
    proc = subprocess.run(  # noqa: S603  # nosec B603 - argv is the squawk binary and fixed flags, no shell
        argv, input=data, capture_output=True, text=True, timeout=120, check=False
    )
    return proc.returncode, proc.stdout, proc.stderr


def _offset(sql: str, line_starts: list[int], line: int, column: int) -> int:
    """squawk's 0-based line and UTF-8 byte column -> character offset into ``sql``."""
    if line >= len(line_starts):
        return len(sql)
    start = line_starts[line]
    end = sql.find("\n", start)
    text = sql[start : end if end >= 0 else len(sql)]
    return start + len(text.encode("utf-8")[:column].decode("utf-8", "ignore"))


def squawk_blockers(
    output: str,
    sql: str,
    version_table: str = "alembic_version",
    version_table_schema: str | None = None,
) -> list[Blocker]:
    """Blockers from squawk's JSON report of ``sql`` (``--reporter json``), without the SQUAWK_IGNORED_RULES.

    Each violation is mapped back, by its line and column, to the statement and revision it is in; violations on
    Alembic's version-table bookkeeping are left out like every other finding on it.
    Raises ValueError when ``output`` is not squawk's JSON report.
    """
    try:
        report = json.loads(output or "null")
    except ValueError as exc:
        raise ValueError(f"squawk did not answer in JSON ({exc})") from exc
    if not isinstance(report, list) or not all(
        isinstance(v, dict) and isinstance(v.get("rule_name"), str) and isinstance(v.get("line"), int) for v in report
    ):
        raise ValueError("squawk's JSON is not a list of violations with rule_name and line")
    statements = parse_statements(sql)
    line_starts = [0]
    for index, char in enumerate(sql):
        if char == "\n":
            line_starts.append(index + 1)
    blockers: dict[tuple[str, int], Blocker] = {}
    for violation in report:
        rule = violation["rule_name"]
        if rule in SQUAWK_IGNORED_RULES:
            continue
        offset = _offset(sql, line_starts, violation["line"], int(violation.get("column") or 0))
        index = next((i for i, s in enumerate(statements) if s.start <= offset < s.end), -1)
        if index < 0:
            index = max((i for i, s in enumerate(statements) if s.start <= offset), default=-1)
        stmt = statements[index] if index >= 0 else None
        if stmt is not None and _is_bookkeeping(stmt.node, version_table, version_table_schema):
            continue
        text = stmt.text if stmt is not None else sql.split("\n")[min(violation["line"], sql.count("\n"))]
        message = " ".join(str(violation.get(key) or "") for key in ("message", "help")).strip()
        blockers.setdefault(
            (rule, index),
            Blocker(
                kind=f"squawk:{rule}",
                statement=_short(text),
                table=_relation(stmt.node) if stmt is not None else None,
                revision=stmt.revision if stmt is not None else None,
                reason=f"squawk: {message}" if message else "squawk reports it",
                label=f"squawk rule {rule} (line {violation['line'] + 1})",
            ),
        )
    return list(blockers.values())


# ----------------------------------------------------------------------------- verdict


def _describe(blocker: Blocker) -> str:
    return f"{blocker.label} (revision {blocker.revision})" if blocker.revision else blocker.label


def classify_online(
    sql: str,
    squawk: str | None = None,
    runner: Runner | None = None,
    version_table: str = "alembic_version",
    version_table_schema: str | None = None,
    unrendered: t.Sequence[t.Mapping[str, str]] = (),
) -> OnlineVerdict:
    """Decide whether ``sql`` (Alembic offline SQL, any number of revisions) may run while the old release serves.

    ``squawk``: path of a squawk binary, whose violations are added (see SQUAWK_IGNORED_RULES); None uses the pglast
    rules alone. ``runner`` runs it (default: subprocess). ``unrendered``: revisions the caller could not render as
    offline SQL (``{"revision", "reason"}`` each); they block first, since they cannot be checked.
    Raises RuntimeError when pglast is missing (callers check HAS_PGLAST first).
    """
    blockers = [
        _blocker("offline_sql_unavailable", "", f.get("revision"), detail=str(f.get("reason", ""))) for f in unrendered
    ]
    classifier = _Classifier(version_table, version_table_schema)
    statements = parse_statements(sql)
    for stmt in statements:
        blockers.extend(classifier.classify(stmt))
    if squawk and statements:
        blockers.extend(_squawk(squawk, sql, runner or _run_subprocess, version_table, version_table_schema))
    if blockers:
        first, rest = blockers[0], blockers[1:]
        reason = f"{_describe(first)} {first.reason}"
        if rest:
            named = ", ".join(_describe(b) for b in rest[:3])
            more = f" and {len(rest) - 3} more" if len(rest) > 3 else ""
            reason += f" (also {named}{more})"
        return OnlineVerdict("maintenance", reason + ".", blockers)
    revisions = sorted({s.revision for s in statements if s.revision})
    linted = " and squawk" if squawk else ""
    if not statements:
        reason = "Nothing is pending: no SQL runs, so the old release keeps serving."
    elif not classifier.checked:
        reason = (
            "The pending SQL only records the revision in Alembic's version table: safe while the old release serves."
        )
    else:
        where = f" of revision(s) {', '.join(revisions)}" if revisions else ""
        reason = (
            f"All {classifier.checked} pending statement(s){where} only add to the schema and take no long lock "
            f"(checked with PostgreSQL's parser{linted}): safe while the old release keeps serving."
        )
    return OnlineVerdict("online", reason, [])


def _squawk(
    binary: str, sql: str, runner: Runner, version_table: str, version_table_schema: str | None
) -> list[Blocker]:
    """squawk's blockers; a squawk that fails or does not answer in JSON blocks too (asked for, it said nothing)."""
    try:
        rc, out, err = runner(squawk_command(binary), sql)
        if rc not in (0, 1):  # 1: violations found
            raise ValueError(f"exit code {rc}: {' '.join(err.split())[:300]}")
        return squawk_blockers(out, sql, version_table, version_table_schema)
    except (OSError, ValueError, subprocess.SubprocessError) as exc:
        return [
            Blocker(
                kind="squawk:error",
                statement="",
                reason=f"squawk ({binary}) could not check the SQL: {exc}; fix or remove it, or keep the maintenance "
                "window",
                label=f"squawk ({binary}) failing",
            )
        ]
