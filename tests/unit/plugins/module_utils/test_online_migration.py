"""Online (zero-downtime) classification of Alembic offline SQL: every blocker kind, every safe expand step."""

from __future__ import annotations

import json
import typing as t

import pytest

from ansible_collections.ablage.ops.plugins.module_utils import _online_migration
from ansible_collections.ablage.ops.plugins.module_utils._online_migration import (
    SQUAWK_IGNORED_RULES,
    classify_online,
    squawk_blockers,
)

Row: t.TypeAlias = "tuple[str, str | None, str | None, str | None]"


def one_revision(sql: str) -> str:
    """``sql`` as Alembic renders revision 0007 in offline mode: in a transaction, with its version bump."""
    return (
        "BEGIN;\n\n-- Running upgrade 0006 -> 0007\n\n"
        f"{sql}\n\n"
        "UPDATE alembic_version SET version_num='0007' WHERE alembic_version.version_num = '0006';\n\nCOMMIT;\n"
    )


def rows(sql: str) -> tuple[str, list[Row]]:
    verdict = classify_online(sql)
    return verdict.mode, [(b.kind, b.table, b.column, b.revision) for b in verdict.blockers]


BLOCKING = [
    ("ALTER TABLE users RENAME TO people;", [("rename_table", "users", None)]),
    ("ALTER TABLE users SET SCHEMA archive;", [("rename_table", "users", None)]),
    ("ALTER VIEW active_users RENAME TO current_users;", [("rename_table", "active_users", None)]),
    ("ALTER TABLE users RENAME COLUMN email TO mail;", [("rename_column", "users", "email")]),
    ("ALTER TYPE mood RENAME VALUE 'sad' TO 'blue';", [("rename_object", None, None)]),
    ("ALTER FUNCTION slugify(text) RENAME TO make_slug;", [("rename_object", None, None)]),
    ("DROP TABLE legacy_audit;", [("drop_table", "legacy_audit", None)]),
    ("ALTER TABLE users DROP COLUMN legacy;", [("drop_column", "users", "legacy")]),
    ("DROP SCHEMA archive CASCADE;", [("drop_schema", "archive", None)]),
    ("DROP VIEW active_users;", [("drop_object", None, None)]),
    ("DROP FUNCTION slugify(text);", [("drop_object", None, None)]),
    ("DROP TYPE mood;", [("drop_object", None, None)]),
    ("DROP INDEX ix_users_email;", [("drop_index_not_concurrently", None, None)]),
    ("ALTER TABLE users ALTER COLUMN email TYPE text;", [("alter_column_type", "users", "email")]),
    ("ALTER TABLE users ALTER COLUMN email SET NOT NULL;", [("set_not_null", "users", "email")]),
    (
        "ALTER TABLE users ADD COLUMN tenant_id bigint NOT NULL;",
        [("add_column_not_null_without_default", "users", "tenant_id")],
    ),
    (
        "ALTER TABLE users ADD COLUMN tenant_id bigint NOT NULL DEFAULT NULL;",
        [("add_column_not_null_without_default", "users", "tenant_id")],
    ),
    ("ALTER TABLE users ADD COLUMN r float8 DEFAULT random();", [("add_column_volatile_default", "users", "r")]),
    (
        "ALTER TABLE users ADD COLUMN seen timestamptz DEFAULT clock_timestamp();",
        [("add_column_volatile_default", "users", "seen")],
    ),
    (
        "ALTER TABLE users ADD COLUMN n bigint DEFAULT nextval('users_n_seq');",
        [("add_column_volatile_default", "users", "n")],
    ),
    (
        "ALTER TABLE users ADD COLUMN u uuid NOT NULL DEFAULT gen_random_uuid();",
        [("add_column_volatile_default", "users", "u")],
    ),
    (
        "ALTER TABLE users ADD COLUMN d int DEFAULT (SELECT max(id) FROM orgs);",
        [("add_column_volatile_default", "users", "d")],
    ),
    ("ALTER TABLE users ADD COLUMN n bigserial;", [("add_column_volatile_default", "users", "n")]),
    (
        "ALTER TABLE users ADD COLUMN n bigint GENERATED ALWAYS AS IDENTITY;",
        [("add_column_volatile_default", "users", "n")],
    ),
    (
        "ALTER TABLE users ADD COLUMN g bigint GENERATED ALWAYS AS (id * 2) STORED;",
        [("add_column_volatile_default", "users", "g")],
    ),
    ("CREATE INDEX ix_documents_title ON documents (title);", [("create_index_not_concurrently", "documents", None)]),
    ("CREATE UNIQUE INDEX ux ON s.documents (title);", [("create_index_not_concurrently", "s.documents", None)]),
    (
        "ALTER TABLE documents ADD CONSTRAINT fk_owner FOREIGN KEY (owner_id) REFERENCES users (id);",
        [("add_foreign_key_without_not_valid", "documents", None)],
    ),
    (
        "ALTER TABLE documents ADD COLUMN owner_id bigint REFERENCES users (id);",
        [("add_foreign_key_without_not_valid", "documents", None)],
    ),
    (
        "ALTER TABLE documents ADD CONSTRAINT ck_size CHECK (size >= 0);",
        [("add_check_constraint_without_not_valid", "documents", None)],
    ),
    (
        "ALTER TABLE documents ADD COLUMN size bigint CHECK (size >= 0);",
        [("add_check_constraint_without_not_valid", "documents", None)],
    ),
    (
        "ALTER TABLE users ADD CONSTRAINT uq_email UNIQUE (email);",
        [("add_unique_or_primary_key_constraint", "users", None)],
    ),
    ("ALTER TABLE tags ADD PRIMARY KEY (id);", [("add_unique_or_primary_key_constraint", "tags", None)]),
    (
        "ALTER TABLE bookings ADD CONSTRAINT no_overlap EXCLUDE USING gist (room WITH =, during WITH &&);",
        [("add_exclusion_constraint", "bookings", None)],
    ),
    (
        (
            "ALTER TABLE users ADD CONSTRAINT ck_email CHECK (email <> '') NOT VALID;\n"
            "ALTER TABLE users VALIDATE CONSTRAINT ck_email;"
        ),
        [("validate_constraint_in_same_transaction", "users", None)],
    ),
    ("LOCK TABLE users IN ACCESS EXCLUSIVE MODE;", [("lock_table", "users", None)]),
    ("VACUUM FULL documents;", [("vacuum_full", "documents", None)]),
    ("CLUSTER documents USING ix_documents_title;", [("cluster", "documents", None)]),
    ("REINDEX TABLE documents;", [("reindex", "documents", None)]),
    ("REFRESH MATERIALIZED VIEW stats;", [("refresh_materialized_view", "stats", None)]),
    ("ALTER TABLE documents SET TABLESPACE fast;", [("table_rewrite", "documents", None)]),
    ("ALTER TABLE documents SET LOGGED;", [("table_rewrite", "documents", None)]),
    ("TRUNCATE documents;", [("truncate", "documents", None)]),
    ("DELETE FROM sessions;", [("delete_without_where", "sessions", None)]),
    ("UPDATE users SET email = lower(email);", [("update_without_where", "users", None)]),
    ("DO $$ BEGIN EXECUTE 'SELECT 1'; END $$;", [("do_block", None, None)]),
    ("ALTER TABLE users ADDD COLUMN x int;", [("unparseable", None, None)]),
    ("ALTER SYSTEM SET work_mem = '64MB';", [("unreviewed_statement", None, None)]),
]


@pytest.mark.parametrize(("sql", "expected"), BLOCKING, ids=[f"{e[1][0][0]}-{i}" for i, e in enumerate(BLOCKING)])
def test_blocking_statements_keep_the_maintenance_window(
    sql: str, expected: list[tuple[str, str | None, str | None]]
) -> None:
    mode, found = rows(one_revision(sql))
    assert mode == "maintenance"
    assert found == [(kind, table, column, "0007") for kind, table, column in expected]


def test_every_kind_is_covered_and_explained() -> None:
    tested = {kind for dummy, expected in BLOCKING for kind, *rest in expected}
    untested = set(_online_migration._TEXTS) - tested - {"offline_sql_unavailable"}
    assert untested == set()
    for label, reason in _online_migration._TEXTS.values():
        assert label and reason and not reason.endswith(".")


SAFE = [
    "CREATE TABLE tags (id bigint PRIMARY KEY, name text NOT NULL UNIQUE, owner_id bigint REFERENCES users (id));",
    "ALTER TABLE users ADD COLUMN nickname text;",
    "ALTER TABLE users ADD COLUMN IF NOT EXISTS nickname varchar(40) NULL;",
    "ALTER TABLE users ADD COLUMN score integer DEFAULT 0;",
    "ALTER TABLE users ADD COLUMN active boolean NOT NULL DEFAULT false;",
    "ALTER TABLE users ADD COLUMN tier text NOT NULL DEFAULT 'free'::text;",
    "ALTER TABLE users ADD COLUMN prefs jsonb NOT NULL DEFAULT '{}'::jsonb;",
    "ALTER TABLE users ADD COLUMN created_at timestamptz NOT NULL DEFAULT now();",
    "ALTER TABLE users ADD COLUMN created_at timestamptz DEFAULT CURRENT_TIMESTAMP;",
    "ALTER TABLE users ADD COLUMN created_at timestamp DEFAULT timezone('utc', now());",
    "CREATE INDEX CONCURRENTLY ix_users_email ON users (email);",
    "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS ux_users_email ON users (lower(email));",
    "ALTER TABLE documents ADD CONSTRAINT fk_owner FOREIGN KEY (owner_id) REFERENCES users (id) NOT VALID;",
    "ALTER TABLE documents ADD CONSTRAINT ck_size CHECK (size >= 0) NOT VALID;",
    "ALTER TABLE documents VALIDATE CONSTRAINT ck_size;",
    "ALTER TABLE users ADD CONSTRAINT uq_email UNIQUE USING INDEX ux_users_email;",
    "ALTER TABLE users ADD CONSTRAINT users_pkey PRIMARY KEY USING INDEX ux_users_id;",
    "CREATE TYPE mood AS ENUM ('happy', 'sad');",
    "ALTER TYPE mood ADD VALUE 'calm';",
    "ALTER TYPE mood ADD VALUE IF NOT EXISTS 'calm' BEFORE 'sad';",
    "COMMENT ON COLUMN users.email IS 'DROP TABLE users; the address, lower case';",
    "GRANT SELECT ON documents TO reporting;",
    "CREATE TABLE tags (id int);\nINSERT INTO tags (id) VALUES (1), (2);",
    "INSERT INTO settings (key, value) VALUES ('theme', 'dark');",
    "UPDATE users SET tier = 'free' WHERE tier IS NULL AND id < 1000;",
    "ALTER TABLE users ALTER COLUMN email SET DEFAULT '';",
    "ALTER TABLE users ALTER COLUMN email DROP NOT NULL;",
    "ALTER TABLE users DROP CONSTRAINT ck_email;",
    "DROP INDEX CONCURRENTLY IF EXISTS ix_old;",
    "SET lock_timeout = '2s';",
    "CREATE VIEW active_users AS SELECT * FROM users WHERE active;",
    "CREATE SEQUENCE invoice_no;",
    "CREATE FUNCTION slugify(t text) RETURNS text LANGUAGE sql IMMUTABLE AS 'SELECT lower(t)';",
    "CREATE TRIGGER tr BEFORE UPDATE ON users FOR EACH ROW EXECUTE FUNCTION touch();",
    "CREATE EXTENSION IF NOT EXISTS pg_trgm;",
    "VACUUM ANALYZE documents;",
    "REINDEX INDEX CONCURRENTLY ix_documents_title;",
    "REFRESH MATERIALIZED VIEW CONCURRENTLY stats;",
    "ALTER INDEX ix_a RENAME TO ix_b;",
    "ALTER TABLE users RENAME CONSTRAINT ck_a TO ck_b;",
    "SELECT setval('invoice_no', 1000);",
    "-- DROP TABLE users;\n/* ALTER TABLE users DROP COLUMN email */ SELECT 1;",
    # A table created by the same SQL: the old release does not know it, and it is empty.
    (
        "CREATE TABLE shares (id bigint, doc_id bigint);\n"
        "CREATE INDEX ix_shares_doc ON shares (doc_id);\n"
        "ALTER TABLE shares ADD COLUMN token uuid NOT NULL DEFAULT gen_random_uuid();\n"
        "ALTER TABLE shares ADD CONSTRAINT fk_doc FOREIGN KEY (doc_id) REFERENCES documents (id);\n"
        "ALTER TABLE shares ADD CONSTRAINT uq_token UNIQUE (token);\n"
        "ALTER TABLE shares ALTER COLUMN doc_id SET NOT NULL;\n"
        "ALTER TABLE shares RENAME TO document_shares;\n"
        "CREATE INDEX ix_shares_token ON document_shares (token);"
    ),
    "CREATE TABLE public.exports (id int);\nCREATE INDEX ix_exports ON exports (id);",
    "CREATE TABLE reports AS SELECT id FROM documents;\nCREATE INDEX ix_reports ON reports (id);",
    # Separate transactions (transaction_per_migration): the lock of ADD ... NOT VALID is gone before VALIDATE.
    (
        "ALTER TABLE users ADD CONSTRAINT ck_email CHECK (email <> '') NOT VALID;\nCOMMIT;\nBEGIN;\n"
        "ALTER TABLE users VALIDATE CONSTRAINT ck_email;"
    ),
]


@pytest.mark.parametrize("sql", SAFE)
def test_expand_steps_run_online(sql: str) -> None:
    verdict = classify_online(one_revision(sql))
    assert (verdict.mode, verdict.blockers) == ("online", [])
    assert "revision(s) 0007" in verdict.reason
    assert verdict.reason.endswith("safe while the old release keeps serving.")


ALEMBIC_SQL = """BEGIN;

CREATE TABLE alembic_version (
    version_num VARCHAR(32) NOT NULL,
    CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);

-- Running upgrade  -> 0001

CREATE TABLE documents (id BIGSERIAL NOT NULL, title VARCHAR(200), PRIMARY KEY (id));

CREATE INDEX ix_documents_title ON documents (title);

INSERT INTO alembic_version (version_num) VALUES ('0001') RETURNING alembic_version.version_num;

-- Running upgrade 0001 -> 0002

ALTER TABLE users ADD COLUMN nickname TEXT;

CREATE INDEX ix_users_nickname ON users (nickname);

UPDATE alembic_version SET version_num='0002' WHERE alembic_version.version_num = '0001';

-- Running upgrade 0002 -> 0003

ALTER TABLE users RENAME COLUMN email TO mail;

ALTER TABLE users ALTER COLUMN nickname SET NOT NULL;

UPDATE alembic_version SET version_num='0003' WHERE alembic_version.version_num = '0002';

COMMIT;
"""


def test_revisions_are_named_from_alembic_markers() -> None:
    verdict = classify_online(ALEMBIC_SQL)
    assert verdict.mode == "maintenance"
    assert [(b.kind, b.table, b.column, b.revision) for b in verdict.blockers] == [
        ("create_index_not_concurrently", "users", None, "0002"),
        ("rename_column", "users", "email", "0003"),
        ("set_not_null", "users", "nickname", "0003"),
    ]
    assert verdict.blockers[0].statement == "CREATE INDEX ix_users_nickname ON users (nickname)"
    assert verdict.reason == (
        "CREATE INDEX without CONCURRENTLY on users (revision 0002) locks writes while the index is built; build it "
        "CONCURRENTLY in its own migration (also renaming column email of users (revision 0003), SET NOT NULL on "
        "users.nickname (revision 0003))."
    )
    assert verdict.as_dict()["blockers"][1] == {
        "kind": "rename_column",
        "statement": "ALTER TABLE users RENAME COLUMN email TO mail",
        "table": "users",
        "column": "email",
        "revision": "0003",
        "reason": "breaks the old release, which still reads and writes the old name; add the new column, backfill "
        "it, and drop the old one in a later release",
    }


def test_first_revisions_alone_are_online() -> None:
    first = ALEMBIC_SQL.split("-- Running upgrade 0001 -> 0002", maxsplit=1)[0] + "COMMIT;\n"
    verdict = classify_online(first)
    assert verdict.mode == "online", verdict.reason
    assert verdict.reason.startswith("All 2 pending statement(s) of revision(s) 0001 only add to the schema")


def test_more_than_four_blockers_are_counted() -> None:
    sql = one_revision("\n".join(f"ALTER TABLE t{i} DROP COLUMN c;" for i in range(6)))
    verdict = classify_online(sql)
    assert len(verdict.blockers) == 6
    assert verdict.reason.startswith("DROP COLUMN c of t0 (revision 0007) removes a column")
    assert verdict.reason.endswith("DROP COLUMN c of t3 (revision 0007) and 2 more).")


def test_nothing_pending_and_bookkeeping_only() -> None:
    empty = classify_online("")
    assert (empty.mode, empty.blockers) == ("online", [])
    assert empty.reason.startswith("Nothing is pending")
    bump = classify_online(one_revision(""))
    assert (bump.mode, bump.blockers) == ("online", [])
    assert "only records the revision in Alembic's version table" in bump.reason


@pytest.mark.parametrize(
    "sql",
    [
        "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL);",
        "INSERT INTO alembic_version (version_num) VALUES ('0001');",
        "UPDATE alembic_version SET version_num='0002';",
        "DELETE FROM alembic_version;",
        "UPDATE ops.alembic_version SET version_num='0002' WHERE alembic_version.version_num = '0001';",
    ],
)
def test_version_table_bookkeeping_never_blocks(sql: str) -> None:
    assert rows(sql) == ("online", [])


def test_custom_version_table() -> None:
    sql = "UPDATE deploy_versions SET version_num='0002';"
    assert classify_online(sql, version_table="deploy_versions").mode == "online"
    assert classify_online(sql).blockers[0].kind == "update_without_where"
    other_schema = classify_online("DELETE FROM audit.alembic_version;", version_table_schema="ops")
    assert [b.kind for b in other_schema.blockers] == ["delete_without_where"]


def test_unrendered_revisions_block_first() -> None:
    verdict = classify_online(
        one_revision("ALTER TABLE users DROP COLUMN x;"),
        unrendered=[{"revision": "0002", "reason": "AttributeError: 'NoneType' object has no attribute 'fetchall'"}],
    )
    assert verdict.mode == "maintenance"
    assert [(b.kind, b.revision) for b in verdict.blockers] == [
        ("offline_sql_unavailable", "0002"),
        ("drop_column", "0007"),
    ]
    assert verdict.reason.startswith(
        "a migration that cannot be rendered as offline SQL (AttributeError: 'NoneType' object has no attribute "
        "'fetchall') (revision 0002) cannot be checked"
    )
    assert classify_online("", unrendered=[{"revision": "0002", "reason": "x"}]).mode == "maintenance"


def test_long_statements_are_cut() -> None:
    values = ", ".join(f"ADD COLUMN c{i} int" for i in range(40))
    verdict = classify_online(one_revision(f"ALTER TABLE users {values}, DROP COLUMN legacy;"))
    statement = verdict.blockers[0].statement
    assert len(statement) == 200
    assert statement.startswith("ALTER TABLE users ADD COLUMN c0 int,")
    assert statement.endswith("...")


def test_tables_of_another_schema_are_not_new() -> None:
    sql = "CREATE TABLE archive.documents (id int);\nCREATE INDEX ix ON public.documents (id);"
    assert rows(sql) == ("maintenance", [("create_index_not_concurrently", "public.documents", None, None)])


# --------------------------------------------------------------------------- squawk

# The SQL and, below, squawk 2.70.0's real answer to it (`squawk --reporter json --stdin-filepath migration.sql`),
# plus two violations made up for the cases the real answer lacks (a blocking rule on the version table, an
# unknown rule on the revision 0002 index).
SQUAWK_SQL = """BEGIN;

CREATE TABLE alembic_version (
    version_num VARCHAR(32) NOT NULL,
    CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);

-- Running upgrade  -> 0001

CREATE TABLE documents (id BIGSERIAL NOT NULL, title VARCHAR(200), PRIMARY KEY (id));

INSERT INTO alembic_version (version_num) VALUES ('0001') RETURNING alembic_version.version_num;

-- Running upgrade 0001 -> 0002

ALTER TABLE documents ADD COLUMN "größe" INTEGER DEFAULT random();

CREATE INDEX ix_documents_title ON documents (title);

UPDATE alembic_version SET version_num='0002' WHERE alembic_version.version_num = '0001';

COMMIT;
"""


def violation(rule: str, line: int, column: int, message: str = "m", help_text: str | None = "h") -> dict[str, t.Any]:
    return {
        "file": "migration.sql",
        "line": line,
        "column": column,
        "level": "Warning",
        "message": message,
        "help": help_text,
        "rule_name": rule,
        "column_end": column + 1,
        "line_end": line,
    }


SQUAWK_JSON = json.dumps(
    [
        violation("prefer-text-field", 3, 16),
        violation("prefer-identity", 9, 27),
        violation("prefer-text-field", 9, 53),
        violation("require-lock-timeout", 15, 0),
        violation("require-statement-timeout", 15, 0),
        violation("prefer-bigint-over-int", 15, 43),
        violation(
            "adding-field-with-default",
            15,
            59,
            "Adding a generated column requires a table rewrite with an `ACCESS EXCLUSIVE` lock. In Postgres versions "
            "11+, non-VOLATILE DEFAULTs can be added without a rewrite.",
            "Add the column as nullable, backfill existing rows, and add a trigger to update the column on write "
            "instead.",
        ),
        # Made up: a blocking rule on Alembic's bookkeeping, and a rule without help.
        violation("adding-required-field", 11, 0),
        violation("future-rule", 17, 3, "Something new.", None),
    ]
)


def test_squawk_json_becomes_blockers_with_their_revision() -> None:
    found = squawk_blockers(SQUAWK_JSON, SQUAWK_SQL)
    assert [(b.kind, b.table, b.column, b.revision, b.statement) for b in found] == [
        (
            "squawk:adding-field-with-default",
            "documents",
            None,
            "0002",
            'ALTER TABLE documents ADD COLUMN "größe" INTEGER DEFAULT random()',
        ),
        ("squawk:future-rule", "documents", None, "0002", "CREATE INDEX ix_documents_title ON documents (title)"),
    ]
    assert found[0].reason.startswith("squawk: Adding a generated column requires a table rewrite")
    assert found[0].reason.endswith("add a trigger to update the column on write instead.")
    assert found[1].reason == "squawk: Something new."


def test_squawk_json_edge_cases() -> None:
    assert squawk_blockers("[]", SQUAWK_SQL) == []
    for bad in ("", "squawk: error", '{"rule_name": "x"}', '[{"line": 1}]'):
        with pytest.raises(ValueError, match="squawk"):
            squawk_blockers(bad, SQUAWK_SQL)
    # A line past the end maps to the last statement; the same rule twice on one statement is one blocker.
    twice = json.dumps([violation("ban-drop-table", 99, 0), violation("ban-drop-table", 99, 4)])
    found = squawk_blockers(twice, "DROP TABLE a;\nDROP TABLE b;")
    assert [(b.kind, b.statement) for b in found] == [("squawk:ban-drop-table", "DROP TABLE b")]


def test_style_rules_are_ignored() -> None:
    assert {
        "prefer-text-field",
        "prefer-bigint-over-int",
        "prefer-robust-stmts",
        "prefer-identity",
        "ban-char-field",
    } <= (SQUAWK_IGNORED_RULES)
    assert not {"adding-field-with-default", "renaming-column", "ban-drop-column"} & SQUAWK_IGNORED_RULES


class FakeSquawk:
    def __init__(self, rc: int, out: str, err: str = "") -> None:
        self.answer = (rc, out, err)
        self.calls: list[tuple[list[str], str]] = []

    def __call__(self, argv: list[str], data: str) -> tuple[int, str, str]:
        self.calls.append((argv, data))
        return self.answer


def test_classify_merges_squawk_after_the_pglast_rules() -> None:
    sql = one_revision("ALTER TABLE users ADD COLUMN n integer DEFAULT 0;\nALTER TABLE users RENAME TO people;")
    # squawk's line 4 (0-based) is the ADD COLUMN: pglast finds it safe, squawk (made up here) does not.
    runner = FakeSquawk(1, json.dumps([violation("prefer-bigint-over-int", 4, 38), violation("ban-add-column", 4, 0)]))
    verdict = classify_online(sql, squawk="/opt/bin/squawk", runner=runner)
    assert runner.calls == [(["/opt/bin/squawk", "--reporter", "json", "--stdin-filepath", "migration.sql"], sql)]
    assert [(b.kind, b.table, b.revision) for b in verdict.blockers] == [
        ("rename_table", "users", "0007"),
        ("squawk:ban-add-column", "users", "0007"),
    ]
    assert verdict.mode == "maintenance"
    clean = classify_online(
        one_revision("ALTER TABLE users ADD COLUMN n text;"), squawk="squawk", runner=FakeSquawk(0, "[]")
    )
    assert (clean.mode, clean.blockers) == ("online", [])
    assert "checked with PostgreSQL's parser and squawk" in clean.reason


def test_squawk_is_not_run_without_a_binary_or_sql() -> None:
    runner = FakeSquawk(1, "not json")
    assert classify_online(one_revision("SELECT 1;"), runner=runner).mode == "online"
    assert classify_online("", squawk="squawk", runner=runner).mode == "online"
    assert runner.calls == []


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ((2, "", "error: unexpected argument '--reporter'\n"), "exit code 2: error: unexpected argument"),
        ((1, "Found 3 issues", ""), "did not answer in JSON"),
    ],
)
def test_a_failing_squawk_blocks(answer: tuple[int, str, str], message: str) -> None:
    verdict = classify_online(one_revision("SELECT 1;"), squawk="squawk", runner=FakeSquawk(*answer))
    assert verdict.mode == "maintenance"
    assert [b.kind for b in verdict.blockers] == ["squawk:error"]
    assert message in verdict.reason


def test_a_missing_squawk_binary_blocks() -> None:
    verdict = classify_online(one_revision("SELECT 1;"), squawk="/nonexistent/squawk")
    assert [b.kind for b in verdict.blockers] == ["squawk:error"]
    assert "could not check the SQL" in verdict.blockers[0].reason
