"""Destructive-SQL analysis with PostgreSQL's parser: true findings and false positives."""

from __future__ import annotations

import typing as t

import pytest

from ansible_collections.ablage.ops.plugins.module_utils import _sql_safety
from ansible_collections.ablage.ops.plugins.module_utils._sql_safety import (
    Finding,
    analyze_sql,
    split_by_revision,
    summarize,
)


def kinds(sql: str, probe: t.Any = None) -> list[tuple[str, str | None, str | None]]:
    return [(f.kind, f.table, f.column) for f in analyze_sql(sql, row_probe=probe)]


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("DROP TABLE users;", [("drop_table", "users", None)]),
        ("DROP TABLE IF EXISTS a, archive.b CASCADE;", [("drop_table", "a", None), ("drop_table", "archive.b", None)]),
        ("DROP SCHEMA archive CASCADE;", [("drop_schema", "archive", None)]),
        ("ALTER TABLE users DROP COLUMN legacy_flag;", [("drop_column", "users", "legacy_flag")]),
        ("ALTER TABLE ONLY s.users DROP COLUMN IF EXISTS x;", [("drop_column", "s.users", "x")]),
        ("ALTER TABLE users ALTER COLUMN email TYPE varchar(20);", [("alter_column_type", "users", "email")]),
        (
            "ALTER TABLE t ALTER COLUMN a TYPE bigint USING a::bigint, DROP COLUMN b, ADD COLUMN c int;",
            [("alter_column_type", "t", "a"), ("drop_column", "t", "b")],
        ),
        ("TRUNCATE documents, users;", [("truncate", "documents", None), ("truncate", "users", None)]),
        ("TRUNCATE TABLE ONLY s.t RESTART IDENTITY;", [("truncate", "s.t", None)]),
        ("DELETE FROM documents;", [("delete_without_where", "documents", None)]),
        ("DELETE FROM documents WHERE true;", [("delete_without_where", "documents", None)]),
        ("UPDATE users SET email = lower(email);", [("update_without_where", "users", None)]),
        ("UPDATE users SET email = NULL WHERE 't'::boolean;", [("update_without_where", "users", None)]),
        (
            "WITH gone AS (DELETE FROM documents RETURNING id) SELECT count(*) FROM gone;",
            [("delete_without_where", "documents", None)],
        ),
        ("DO $$ BEGIN EXECUTE 'DROP TABLE x'; END $$;", [("do_block", None, None)]),
    ],
)
def test_destructive_statements_are_found(sql: str, expected: list[tuple[str, str | None, str | None]]) -> None:
    assert kinds(sql) == expected


@pytest.mark.parametrize(
    "sql",
    [
        # A WHERE clause makes DELETE / UPDATE targeted: Alembic's own version bump looks like this.
        "DELETE FROM documents WHERE id = 1;",
        "UPDATE alembic_version SET version_num='0004' WHERE alembic_version.version_num = '0003';",
        "UPDATE users SET email = NULL WHERE false;",
        "DELETE FROM t WHERE 'f'::bool;",
        "DELETE FROM t WHERE 1 = 1 AND id > 3;",
        # Words that only look destructive: in strings, comments, quoted identifiers.
        "INSERT INTO audit (msg) VALUES ('DROP TABLE users; TRUNCATE x');",
        "-- DROP TABLE users;\nSELECT 1;",
        "/* ALTER TABLE users DROP COLUMN email */ CREATE INDEX ix ON users (email);",
        'CREATE TABLE "drop table users" ("truncate" int);',
        "COMMENT ON TABLE users IS 'DELETE FROM users';",
        # Safe DDL.
        "ALTER TABLE users ADD COLUMN nickname text;",
        "ALTER TABLE users ALTER COLUMN email DROP NOT NULL;",
        "ALTER TABLE users ALTER COLUMN email SET DEFAULT 'x';",
        "ALTER TABLE users RENAME COLUMN email TO mail;",
        "DROP INDEX ix_documents_title;",
        "DROP VIEW IF EXISTS v;",
        "DROP SEQUENCE s;",
        "ALTER INDEX ix RENAME TO ix2;",
        "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1';",
        "BEGIN; SELECT 1; COMMIT;",
        "",
    ],
)
def test_false_positives_are_not_reported(sql: str) -> None:
    assert analyze_sql(sql) == []


def test_set_not_null_depends_on_rows() -> None:
    sql = "ALTER TABLE users ALTER COLUMN email SET NOT NULL;"
    calls: list[tuple[str | None, str]] = []

    def probe(schema: str | None, table: str) -> bool | None:
        calls.append((schema, table))
        return {"users": True, "empty": False}.get(table)

    (with_rows,) = analyze_sql(sql, row_probe=probe)
    assert (with_rows.kind, with_rows.table, with_rows.column, with_rows.table_has_rows) == (
        "set_not_null",
        "users",
        "email",
        True,
    )
    assert "has rows" in with_rows.reason
    assert analyze_sql("ALTER TABLE empty ALTER COLUMN a SET NOT NULL;", row_probe=probe) == []
    (unknown,) = analyze_sql("ALTER TABLE s.other ALTER COLUMN a SET NOT NULL;", row_probe=probe)
    assert unknown.table_has_rows is None
    assert "unknown" in unknown.reason
    assert calls == [(None, "users"), (None, "empty"), ("s", "other")]
    # No probe at all (no database connection): conservative.
    (no_probe,) = analyze_sql(sql)
    assert no_probe.table_has_rows is None


def test_set_not_null_after_rows_were_written_by_earlier_statements() -> None:
    # The table is empty now, but the pending SQL fills it before SET NOT NULL runs.
    sql = "INSERT INTO users (email) VALUES ('a');\nALTER TABLE users ALTER COLUMN email SET NOT NULL;"
    (finding,) = analyze_sql(sql, row_probe=lambda s, t: False)
    assert (finding.kind, finding.table_has_rows) == ("set_not_null", None)
    # UPDATE and DELETE never turn an empty table into one with rows.
    backfill = "UPDATE users SET email = 'x' WHERE email IS NULL;\nALTER TABLE users ALTER COLUMN email SET NOT NULL;"
    assert analyze_sql(backfill, row_probe=lambda s, t: False) == []
    assert analyze_sql("ALTER TABLE users ALTER COLUMN email SET NOT NULL;", row_probe=lambda s, t: False) == []


def test_set_not_null_on_a_table_created_in_the_same_sql() -> None:
    created = "CREATE TABLE tags (id int, name text);\nALTER TABLE tags ALTER COLUMN name SET NOT NULL;"
    assert analyze_sql(created, row_probe=lambda s, t: True) == []
    # ... unless rows were written to it in between.
    filled = (
        "CREATE TABLE tags (id int, name text);\nINSERT INTO tags VALUES (1, 'a');\n"
        "ALTER TABLE tags ALTER COLUMN name SET NOT NULL;"
    )
    assert kinds(filled, probe=lambda s, t: None) == [("set_not_null", "tags", "name")]
    recreated = "CREATE TABLE s.tags (id int);\nDROP TABLE s.tags;\nALTER TABLE s.tags ALTER COLUMN id SET NOT NULL;"
    assert [f.kind for f in analyze_sql(recreated, row_probe=lambda s, t: True)] == ["drop_table", "set_not_null"]
    copied = "CREATE TABLE t (a int);\nCOPY t FROM STDIN;\nALTER TABLE t ALTER COLUMN a SET NOT NULL;"
    assert [f.kind for f in analyze_sql(copied)] == ["set_not_null"]
    # Qualified by search path or not: only an unqualified CREATE is matched by a qualified ALTER (conservative).
    assert analyze_sql("CREATE TABLE t (a int);\nALTER TABLE public.t ALTER COLUMN a SET NOT NULL;") == []
    assert len(analyze_sql("CREATE TABLE public.t (a int);\nALTER TABLE t ALTER COLUMN a SET NOT NULL;")) == 1
    ctas = "CREATE TABLE t2 AS SELECT 1 AS a;\nALTER TABLE t2 ALTER COLUMN a SET NOT NULL;"
    assert [f.kind for f in analyze_sql(ctas)] == ["set_not_null"]
    updated = "CREATE TABLE t3 (a int);\nUPDATE t3 SET a = 1 WHERE a IS NULL;\nALTER TABLE t3 ALTER a SET NOT NULL;"
    assert analyze_sql(updated) == []


def test_statement_text_and_revision_from_alembic_markers() -> None:
    sql = (
        "BEGIN;\n\n-- Running upgrade 0002 -> 0003\n\nCREATE TABLE tags (id int);\n\n"
        "UPDATE alembic_version SET version_num='0003' WHERE alembic_version.version_num = '0002';\n\n"
        '-- Running upgrade 0003 -> 0004\n\n-- Größe: ü\nALTER TABLE "Benutzer" DROP COLUMN "Größe";\n\nCOMMIT;\n'
    )
    (finding,) = analyze_sql(sql)
    assert finding.revision == "0004"
    assert finding.statement == 'ALTER TABLE "Benutzer" DROP COLUMN "Größe"'
    assert (finding.table, finding.column) == ("Benutzer", "Größe")
    as_dict = finding.as_dict()
    assert as_dict["kind"] == "drop_column"
    assert set(as_dict) == {"kind", "statement", "table", "column", "revision", "reason", "table_has_rows"}


def test_downgrade_markers_name_the_reverted_revision() -> None:
    sql = (
        "-- Running downgrade 0004 -> 0003\nALTER TABLE u ADD COLUMN x int;\n"
        "-- Running downgrade 0003 -> 0002\nDROP TABLE tags;\n"
    )
    (finding,) = analyze_sql(sql)
    assert (finding.kind, finding.revision) == ("drop_table", "0003")
    assert [rev for rev, dummy in split_by_revision(sql)] == ["0004", "0003"]


def test_split_by_revision_keeps_text_before_the_first_marker() -> None:
    sql = "BEGIN;\nCREATE TABLE alembic_version (v text);\n-- Running upgrade  -> 0001\nCREATE TABLE a (i int);\n"
    chunks = split_by_revision(sql)
    assert [rev for rev, dummy in chunks] == [None, "0001"]
    assert "CREATE TABLE a" in chunks[1][1]
    assert analyze_sql("TRUNCATE x;", revision="0007")[0].revision == "0007"


def test_unparseable_sql_is_a_finding() -> None:
    (finding,) = analyze_sql("-- Running upgrade 1 -> 2\nALTER TABLE users FROBNICATE;\n")
    assert finding.kind == "unparseable"
    assert finding.revision == "2"
    assert "parser rejects" in finding.reason


def test_summarize() -> None:
    findings = [
        Finding(kind="drop_column", statement="...", table="users", column="legacy", revision="0004"),
        Finding(kind="do_block", statement="DO ..."),
    ]
    assert summarize(findings) == "drop_column users.legacy in revision 0004; do_block"


def test_without_pglast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_sql_safety, "HAS_PGLAST", False)
    with pytest.raises(RuntimeError, match="pglast is required"):
        analyze_sql("SELECT 1")
