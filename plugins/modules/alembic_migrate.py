#!/usr/bin/python
# Copyright (c) ablage.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: alembic_migrate
short_description: Preview, check for destructive SQL, and apply Alembic migrations
version_added: 0.1.0
description:
  - Reads the current revision of the database and the revision graph of the Alembic project, and upgrades to
    V(head) or a given revision, or downgrades to a given revision. When the database is already there, nothing
    runs and C(changed) is V(false).
  - Before anything is applied (and in check mode, as the preview of the checklist's pre-flight step), renders the
    pending range as offline SQL (C(alembic upgrade <current>:<target> --sql)) and parses it with PostgreSQL's own
    parser (pglast) to find destructive statements - C(DROP TABLE), C(DROP SCHEMA), C(DROP COLUMN), C(TRUNCATE),
    C(ALTER COLUMN ... TYPE), C(SET NOT NULL) on a table that has rows, C(DELETE) or C(UPDATE) without C(WHERE),
    and C(DO) blocks that cannot be analysed. Each is listed in RV(destructive) with its statement, kind, table,
    column and revision. They are refused unless O(allow_destructive=true).
  - A migration that cannot be rendered offline (it reads data, or fails in C(--sql) mode for another reason) is
    reported with RV(offline_sql_available=false) and the reason, revision by revision, and needs the same explicit
    O(allow_destructive=true); it never passes silently. The revisions around it are still rendered and checked.
  - Alembic runs through its command line, with the application's own Python and models - on the host
    (O(command) unset finds C(alembic) on the PATH, or runs C(python -m alembic)), or behind a command prefix such as
    V([docker, compose, run, --rm, -T, backend, alembic]).
  - The current revision is read from the version table with psycopg2 when O(database_url) is given (also needed to
    know whether a table has rows for C(SET NOT NULL)); otherwise from C(alembic current).
  - In check mode, RV(online) says whether the pending SQL may run while the old release keeps serving (a
    zero-downtime deploy) - only when every statement is additive (an "expand" step such as C(CREATE TABLE), a nullable
    C(ADD COLUMN) or one with a constant default, C(CREATE INDEX CONCURRENTLY), C(ADD CONSTRAINT ... NOT VALID)).
    Renames, drops, table rewrites, long locks, whole-table data changes, C(DO) blocks and revisions without offline
    SQL keep the maintenance window, and RV(online.reason) names the first such statement, its revision and what to
    write instead. When a C(squawk) binary is on the PATH, its findings are added (style-only rules left out).
  - Alembic calls that do not wait for each other run at the same time (behind C(docker compose run), each is a
    container start). With O(database_url), the offline SQL up to O(revision) is rendered while C(alembic history)
    reads the revision graph, so a check-mode preview needs one wave of Alembic calls and an upgrade two. That early
    render is used only when it is the one the graph calls for, and discarded when nothing is pending; a relative
    O(revision) (V(+1)) is rendered after the graph.
author:
  - ablage.ops maintainers (@ablage-system)
requirements:
  - Alembic in the environment that O(command) runs (not in the module's Python)
  - pglast on the managed host, for the SQL analysis
  - psycopg2 on the managed host, when O(database_url) is set
  - squawk (optional, the PostgreSQL migration linter) on the managed host's PATH, to add its findings to RV(online)
extends_documentation_fragment:
  - ablage.ops._attributes
attributes:
  check_mode:
    support: full
    details:
      - Returns the pending revisions and their offline SQL, the destructive findings, and whether the SQL can run
        online (RV(online)); applies nothing. It fails
        exactly when the real run would refuse to migrate.
  diff_mode:
    support: full
    details:
      - The revision before and after, and the offline SQL of the pending range.
  idempotent:
    support: full
options:
  action:
    description:
      - V(upgrade) migrates forward to O(revision), V(downgrade) back to O(revision), V(status) only reports the
        current and head revisions, and the revisions between the current one and O(revision) (those an upgrade
        would apply, or a downgrade would revert for an older O(revision)), without rendering SQL or changing
        anything.
      - V(heads) only reads the project's head revisions (one C(alembic history)), without the database. That is
        the revision a release's images run on, also when the database is at a revision they do not know (a
        rollback or restore to an older release).
      - An upgrade to a revision below the current one fails (and names V(downgrade)), and the other way round.
    type: str
    choices: [upgrade, downgrade, status, heads]
    default: upgrade
  revision:
    description:
      - Target revision. A revision id or a unique prefix of one, V(head), V(heads), V(base), or relative V(+N) or
        V(-N) from the current revision.
      - Defaults to V(head) for O(action=upgrade) and O(action=status); required for O(action=downgrade).
    type: str
  from_revision:
    description:
      - Check mode with O(action=upgrade) only. Render and check the upgrades from this revision to the database's
        current one, instead of from the current one to O(revision) - SQL that already ran, as a rollback to an
        older release would have to undo it (RV(destructive) then names what a downgrade cannot bring back).
      - RV(pending) lists those revisions, oldest first; empty when the database is at O(from_revision). Mutually
        exclusive with O(revision). Findings are reported, never refused (nothing is applied).
    type: str
  reviewed:
    description:
      - The registered result of a check-mode run of this same call (same O(action), O(revision), O(command) and
        images), made earlier in the play. When the database is still at that run's RV(current_before) (read with
        SQL, so O(database_url) is required), the migration is applied without reading the revision history and
        rendering the SQL again, and its SQL, RV(destructive) findings and RV(pending) revisions are the reviewed
        ones - one Alembic call instead of two waves inside a maintenance window.
      - When the database moved since (or the result is not a check-mode result of an upgrade or downgrade to one
        revision), everything is read and rendered again, as without this option; RV(reviewed_used) tells which.
      - Pass it only when the images O(command) runs did not change between the two calls (a deploy pulls them
        before it reviews).
    type: dict
  allow_destructive:
    description:
      - Apply migrations even when their SQL has destructive statements, or when a revision cannot be rendered as
        offline SQL. Review RV(sql) and RV(destructive) of a check-mode run first.
    type: bool
    default: false
  config:
    description:
      - Path of C(alembic.ini), passed as C(-c). With a command prefix, the path as seen by the command (inside the
        container). Unset lets Alembic look for C(alembic.ini) in O(chdir).
    type: path
  command:
    description:
      - The command that runs Alembic; C(-c), C(-x) and the subcommand are appended. For example
        V([/opt/ablage/.venv/bin/alembic]) or V([docker, compose, run, --rm, -T, backend, alembic]).
      - Unset uses C(alembic) from the PATH, or C(<python> -m alembic) with the module's Python when alembic is
        importable there.
    type: list
    elements: str
  chdir:
    description:
      - Working directory of O(command) (the Alembic project, or the compose project directory).
    type: path
  environment:
    description:
      - Extra environment variables for O(command). Values are logged; put secrets in O(secret_environment) or
        O(database_url).
      - With C(docker compose run) or C(docker exec), a variable reaches the container only when the prefix passes it
        (C(-e NAME)).
    type: dict
    default: {}
  secret_environment:
    description:
      - Like O(environment), for values that must not be logged (passwords, tokens).
    type: dict
    default: {}
  database_url:
    description:
      - SQLAlchemy URL of the database, for example C(postgresql+psycopg2://user:pass@127.0.0.1:5432/ablage).
        Exported to O(command) as O(database_url_env), and read the way SQLAlchemy reads it (user, password, host,
        port, database, query options as libpq keywords) to read the version table and to check whether tables have
        rows.
      - Percent-encode the user name and password; the P(ablage.ops.postgres_url#filter) filter builds such a URL.
        No part of the password appears in the module's output or error messages.
    type: str
  database_url_env:
    description:
      - Name of the environment variable the Alembic C(env.py) reads the URL from.
    type: str
    default: DATABASE_URL
  version_table:
    description:
      - Name of Alembic's version table (C(version_table) in C(env.py)).
    type: str
    default: alembic_version
  version_table_schema:
    description:
      - Schema of the version table (C(version_table_schema) in C(env.py)). Unset uses the search path.
    type: str
  x_arguments:
    description:
      - Values passed to Alembic as C(-x <value>) each, for C(env.py) that reads C(context.get_x_argument()).
    type: list
    elements: str
    default: []
notes:
  - 'C(SET NOT NULL) is reported only when the table has rows or when that cannot be known (no O(database_url), or
    the pending SQL inserts rows into it first); a table created earlier in the same pending SQL and not inserted into
    since is known to be empty.'
  - 'Whole-table C(UPDATE) backfills are reported as C(update_without_where): that is a deliberate, reviewed choice
    with O(allow_destructive=true), not something to pass unseen.'
seealso:
  - name: Alembic offline mode
    description: How Alembic renders migrations as SQL scripts.
    link: https://alembic.sqlalchemy.org/en/latest/offline.html
  - module: ablage.ops.pg_backup
"""

EXAMPLES = r"""
- name: Migration SQL preview (pre-flight) - fails on destructive or unrenderable migrations
  ablage.ops.alembic_migrate:
    command: [docker, compose, run, --rm, -T, -e, DATABASE_URL, backend, alembic]
    chdir: /opt/ablage
    database_url: "{{ ablage_database_url }}"
  check_mode: true
  register: ablage_migration_preview

- name: Migrate to head, after the reviewed preview
  ablage.ops.alembic_migrate:
    config: /opt/ablage/backend/alembic.ini
    command: [/opt/ablage/.venv/bin/alembic]
    database_url: "{{ ablage_database_url }}"
    allow_destructive: "{{ ablage_migration_approved | default(false) | bool }}"
  register: ablage_migration

- name: Rollback - downgrade to the revision recorded before the deploy
  ablage.ops.alembic_migrate:
    action: downgrade
    revision: "{{ ablage_state.alembic_revision_before }}"
    config: /opt/ablage/backend/alembic.ini
    database_url: "{{ ablage_database_url }}"
    allow_destructive: true

- name: Record the current revision (rollback plan)
  ablage.ops.alembic_migrate:
    action: status
    chdir: /opt/ablage/backend
    secret_environment:
      DATABASE_URL: "{{ ablage_database_url }}"
  register: ablage_revision
"""

RETURN = r"""
action:
  description: The action that ran.
  returned: always
  type: str
  sample: upgrade
current_before:
  description: Revision of the database before (several joined with commas; null at base).
  returned: success, except with O(action=heads)
  type: str
  sample: "0002"
current_after:
  description: Revision after (equal to RV(current_before) in check mode and when nothing was pending).
  returned: success, except with O(action=heads)
  type: str
  sample: "0004"
head:
  description: The head revision of the project (several joined with commas).
  returned: success
  type: str
  sample: "0004"
heads:
  description: All head revisions of the project.
  returned: success
  type: list
  elements: str
  sample: ["0004"]
target:
  description: The resolved target revision (null for base).
  returned: success, except with O(action=heads)
  type: str
  sample: "0004"
pending:
  description: Revisions the action applies (upgrade, oldest first) or reverts (downgrade, newest first).
  returned: success, except with O(action=heads)
  type: list
  elements: str
  sample: ["0003", "0004"]
sql:
  description: Offline SQL of the pending range (for revisions that cannot be rendered, a comment with the reason).
  returned: when something is pending and O(action) is not V(status)
  type: str
  sample: "BEGIN;\n-- Running upgrade 0003 -> 0004\nALTER TABLE users DROP COLUMN legacy_flag;\n..."
destructive:
  description: Destructive statements found in RV(sql).
  returned: success
  type: list
  elements: dict
  contains:
    kind:
      description: Kind of finding (for example C(drop_column), C(set_not_null)).
      type: str
      returned: always
    statement:
      description: The statement as rendered.
      type: str
      returned: always
    table:
      description: Table (C(schema.table) when qualified).
      type: str
      returned: when known
    column:
      description: Column.
      type: str
      returned: when known
    revision:
      description: Revision whose SQL holds it.
      type: str
      returned: when known
    reason:
      description: Why it is destructive.
      type: str
      returned: always
    table_has_rows:
      description: For C(set_not_null), whether the table has rows (null when unknown).
      type: bool
      returned: always
  sample:
    - kind: drop_column
      statement: ALTER TABLE users DROP COLUMN legacy_flag
      table: users
      column: legacy_flag
      revision: "0004"
      reason: DROP COLUMN removes the column and its data
      table_has_rows: null
offline_sql_available:
  description: Whether every pending revision could be rendered as offline SQL.
  returned: success
  type: bool
  sample: false
offline_sql_reason:
  description: Why offline SQL is not available (first failing revision), empty when it is.
  returned: success
  type: str
  sample: "0002: AttributeError: 'NoneType' object has no attribute 'fetchall'"
offline_sql_failures:
  description: Each revision that could not be rendered, with the reason.
  returned: success
  type: list
  elements: dict
  sample: [{revision: "0002", reason: "AttributeError: 'NoneType' object has no attribute 'fetchall'"}]
reviewed_used:
  description:
    - Whether the SQL of O(reviewed) was applied without rendering it again, and if not, why.
  returned: when O(reviewed) is set
  type: dict
  contains:
    used:
      description: V(true) when the reviewed SQL was used.
      type: bool
      returned: always
    reason:
      description: Why it was not used (empty when it was).
      type: str
      returned: always
  sample: {used: false, reason: "the database moved from 0001 to 0002 since the review"}
online:
  description:
    - Whether the pending SQL can run while the old release keeps serving (zero-downtime deploy), and why not.
    - Computed from the same offline SQL as RV(destructive); with O(action=downgrade), for the downgrade's SQL.
  returned: in check mode, except with O(action=status) and O(action=heads)
  type: dict
  contains:
    mode:
      description:
        - V(online) when nothing is pending or every pending statement is additive and takes no long lock,
          V(maintenance) otherwise (also when a revision cannot be rendered as offline SQL).
      type: str
      returned: always
      choices: [online, maintenance]
    reason:
      description: One sentence for the pre-flight report; for V(maintenance), the first blocking statement, its
        revision and what to do instead, then the next ones.
      type: str
      returned: always
    blockers:
      description: Each statement that keeps the maintenance window, in SQL order (empty for V(online)).
      type: list
      elements: dict
      returned: always
      contains:
        kind:
          description:
            - For example C(create_index_not_concurrently), C(rename_column), C(add_column_volatile_default),
              C(set_not_null), every kind of RV(destructive), C(offline_sql_unavailable), or C(squawk:<rule>) for a
              squawk finding.
          type: str
          returned: always
        statement:
          description: The statement, whitespace collapsed and cut at 200 characters.
          type: str
          returned: always
        table:
          description: Table (C(schema.table) when qualified), null when none.
          type: str
          returned: always
        column:
          description: Column, null when none.
          type: str
          returned: always
        revision:
          description: Revision whose SQL holds it, null when not known.
          type: str
          returned: always
        reason:
          description: Why it blocks an online deploy and what to write instead.
          type: str
          returned: always
  sample:
    mode: maintenance
    reason: "CREATE INDEX without CONCURRENTLY on documents (revision 0007) locks writes while the index is built;
      build it CONCURRENTLY in its own migration."
    blockers:
      - kind: create_index_not_concurrently
        statement: CREATE INDEX ix_documents_title ON documents (title)
        table: documents
        column: null
        revision: "0007"
        reason: locks writes while the index is built; build it CONCURRENTLY in its own migration
output:
  description: Alembic's log of the migration run (its standard error and output).
  returned: when migrations ran
  type: str
  sample: "INFO  [alembic.runtime.migration] Running upgrade 0003 -> 0004, drop users.legacy_flag"
"""

import concurrent.futures
import contextlib
import importlib.util
import sys
import typing as t

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.ablage.ops.plugins.module_utils._alembic import (
    AlembicCli,
    AlembicError,
    RevisionGraph,
    format_revisions,
    interrupted_step,
)
from ansible_collections.ablage.ops.plugins.module_utils._online_migration import classify_online
from ansible_collections.ablage.ops.plugins.module_utils._postgres import (
    HAS_PSYCOPG2,
    PSYCOPG2_IMPORT_ERROR,
    PsycopgError,
    alembic_revision,
    connect,
    connect_keywords_from_url,
    sentence,
    table_has_rows,
)
from ansible_collections.ablage.ops.plugins.module_utils._sql_safety import (
    HAS_PGLAST,
    PGLAST_IMPORT_ERROR,
    Finding,
    analyze_sql,
    summarize,
)


def find_squawk(module: AnsibleModule) -> str | None:
    """The squawk linter on the managed host's PATH, if installed: optional, it adds findings to ``online``."""
    path = module.get_bin_path("squawk")
    return str(path) if path else None


def alembic_importable() -> bool:
    """Whether the module's own Python could run ``python -m alembic``."""
    return importlib.util.find_spec("alembic") is not None


class AlembicMigrateManager:
    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.params = module.params
        self.action: str = self.params["action"]
        self.conn: t.Any = None
        self.result: dict[str, t.Any] = {"changed": False, "action": self.action, "destructive": []}
        env: dict[str, str] = {str(k): str(v) for k, v in (self.params["environment"] or {}).items()}
        env.update({str(k): str(v) for k, v in (self.params["secret_environment"] or {}).items()})
        if self.params["database_url"]:
            env[self.params["database_url_env"]] = self.params["database_url"]
        self.env = env
        self.cli = AlembicCli(self._run, self._command(), self.params["config"], self.params["x_arguments"])
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=2)
        # (start, destination, render) of the offline SQL started next to `alembic history`, see graph_and_current.
        self.prefetched: tuple[tuple[str, ...], str, concurrent.futures.Future[tuple[bool, str, str]]] | None = None

    def _command(self) -> list[str]:
        if self.params["command"]:
            return [str(c) for c in self.params["command"]]
        binary = self.module.get_bin_path("alembic")
        if binary:
            return [binary]
        if alembic_importable():
            return [sys.executable, "-m", "alembic"]
        self.module.fail_json(
            msg="alembic was not found: it is not on the PATH and not importable by the module's Python. Set "
            "command to the application's alembic (e.g. [/opt/ablage/.venv/bin/alembic] or "
            "[docker, compose, run, --rm, -T, backend, alembic])",
            **self.result,
        )
        raise AssertionError("unreachable")  # pragma: no cover - fail_json exits

    def _run(self, argv: list[str]) -> tuple[int, str, str]:
        rc, out, err = self.module.run_command(argv, cwd=self.params["chdir"], environ_update=self.env)
        return int(rc), str(out), str(err)

    # ----------------------------------------------------------------- database

    def _connection(self) -> t.Any:
        if self.conn is None:
            if not HAS_PSYCOPG2:
                self.module.fail_json(
                    msg=missing_required_lib("psycopg2") + " (needed because database_url is set)",
                    exception=PSYCOPG2_IMPORT_ERROR,
                )
            try:
                keywords = connect_keywords_from_url(self.params["database_url"])
            except ValueError as exc:
                raise AlembicError(f"database_url is {exc}: give a postgresql:// or postgresql+driver:// URL") from exc
            try:
                self.conn = connect(keywords=keywords)
            except PsycopgError as exc:
                raise AlembicError(
                    f"cannot connect to the database of database_url: {sentence(exc)} "
                    "Check the URL (host, port, user, password, database) and that the server is running."
                ) from exc
        return self.conn

    def graph_and_current(self) -> tuple[RevisionGraph, tuple[str, ...]]:
        """The revision graph and the current revision, starting the Alembic calls that need not wait at once.

        Each Alembic call can be a container start (about a second), and the maintenance window waits for every
        wave of them. Without database_url, ``history`` and ``current`` run together. With it, the revision is read
        by SQL first, so the first offline render can run next to ``history``, to the revision spec as given (the
        graph is not known yet; relative specs need it, so they wait). ``_render_range`` takes that result only
        where it is the render the sequential path would start (same start, a literal destination that resolves to
        the same target); otherwise, and when nothing is pending, it is discarded. An upgrade is then two waves
        instead of three, a preview one instead of two.
        """
        history = self.pool.submit(self.cli.run, "history", "--verbose", what="reading the revision history")
        if not self.params["database_url"]:
            current = self.pool.submit(self.cli.run, "current", what="reading the current revision")
            graph = RevisionGraph.from_history(history.result())
            return graph, graph.parse_current(current.result())
        try:
            revs = self.version_table()
        except (AlembicError, PsycopgError):
            history.result()  # a failing `alembic history` is reported first, as when it ran first
            raise
        spec = self.params["revision"] or "head"
        if self.action != "status" and not spec.startswith(("+", "-")) and not self.params["from_revision"]:
            self.prefetched = (revs, spec, self.pool.submit(self.cli.render, self.action, revs, spec))
        graph = RevisionGraph.from_history(history.result())
        return graph, self.known(graph, revs)

    def version_table(self) -> tuple[str, ...]:
        rows = alembic_revision(self._connection(), self.params["version_table"], self.params["version_table_schema"])
        return tuple(rows or ())

    def current(self, graph: RevisionGraph) -> tuple[str, ...]:
        return self.known(graph, self.version_table() if self.params["database_url"] else self.cli.current(graph))

    @staticmethod
    def known(graph: RevisionGraph, revs: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [r for r in revs if r not in graph.revisions]
        if unknown:
            raise AlembicError(
                f"the database is at revision {', '.join(unknown)}, which this Alembic project does not know: "
                "the database was migrated by a newer release. Deploy that release's code, or downgrade with it."
            )
        return revs

    def row_probe(self, schema: str | None, table: str) -> bool | None:
        if not self.params["database_url"]:
            return None
        return table_has_rows(self._connection(), schema, table)

    # ----------------------------------------------------------------- SQL

    def render(
        self, graph: RevisionGraph, current: tuple[str, ...], target: tuple[str, ...], pending: list[str]
    ) -> None:
        """Offline SQL of the pending range; revisions that cannot be rendered are skipped and recorded."""
        dest = self._dest(graph, target)
        parts: list[str] = []
        failures: list[dict[str, str]] = []
        remaining = list(pending)
        start = current
        while remaining:
            ok, sql, reason = self._render_range(graph, start, dest)
            if ok:
                parts.append(sql)
                break
            # The step that failed is the last one Alembic started; what came before it rendered fine.
            failed, offset = interrupted_step(sql)
            if failed is None or failed not in remaining:
                self._render_each(graph, remaining, parts, failures, reason)
                break
            parts.append(sql[:offset])
            parts.append(f"-- revision {failed}: offline SQL not available: {reason}\n")
            failures.append({"revision": failed, "reason": reason})
            remaining = remaining[remaining.index(failed) + 1 :]
            downs = graph.revisions[failed].down
            if self.action == "upgrade":
                start = (failed,)
            elif len(downs) <= 1:
                start = downs
            else:  # pragma: no cover - a downgrade through a merge point
                self._render_each(graph, remaining, parts, failures, reason)
                break
        sql = "\n".join(part for part in parts if part)
        self.result.update(
            sql=sql,
            offline_sql_available=not failures,
            offline_sql_failures=failures,
            offline_sql_reason=f"{failures[0]['revision']}: {failures[0]['reason']}" if failures else "",
        )
        findings: list[Finding] = analyze_sql(sql, row_probe=self.row_probe)
        self.result["destructive"] = [f.as_dict() for f in findings]

    def _render_range(self, graph: RevisionGraph, start: tuple[str, ...], dest: str) -> tuple[bool, str, str]:
        """``alembic <action> <start>:<dest> --sql``, or the same render started with the graph (graph_and_current)."""
        prefetched, self.prefetched = self.prefetched, None
        if prefetched is not None:
            early_start, early_dest, early = prefetched
            literal = early_dest in ("head", "heads", "base") or early_dest in graph.revisions
            if early_start == start and literal and graph.resolve(early_dest, start) == graph.resolve(dest, start):
                return early.result()
        return self.cli.render(self.action, start, dest)

    def _render_each(
        self,
        graph: RevisionGraph,
        revisions: list[str],
        parts: list[str],
        failures: list[dict[str, str]],
        range_reason: str,
    ) -> None:
        """Render revision by revision (when Alembic's output does not say which step failed)."""
        failed_before = len(failures)
        for rev in revisions:
            downs = graph.revisions[rev].down
            if len(downs) > 1:
                ok, sql, reason = False, "", "merge revision: cannot be rendered on its own"
            elif self.action == "upgrade":
                ok, sql, reason = self.cli.render("upgrade", downs, rev)
            else:
                ok, sql, reason = self.cli.render("downgrade", (rev,), downs[0] if downs else "base")
            if ok:
                parts.append(sql)
            else:
                failures.append({"revision": rev, "reason": reason})
                parts.append(f"-- revision {rev}: offline SQL not available: {reason}\n")
        if len(failures) == failed_before:  # each step renders on its own, only the range does not
            failures.append({"revision": ",".join(revisions), "reason": range_reason})

    @staticmethod
    def _dest(graph: RevisionGraph, target: tuple[str, ...]) -> str:
        if not target:
            return "base"
        if len(target) == 1:
            return target[0]
        if sorted(target) == graph.heads:
            return "heads"
        raise AlembicError("several target revisions are only supported as 'heads'")  # pragma: no cover

    # ----------------------------------------------------------------- run

    def run(self) -> None:
        if self.action == "heads":
            heads = self.cli.graph().heads
            self.result.update(head=format_revisions(heads), heads=list(heads))
            return
        if self.params["reviewed"] is not None and self.apply_reviewed():
            return
        graph, current = self.graph_and_current()
        in_database = current
        if self.params["from_revision"]:
            # SQL that already ran: from the older revision up to where the database is now.
            current, target = graph.resolve(self.params["from_revision"], current), current
        else:
            target = graph.resolve(self.params["revision"] or "head", current)
        if self.action == "downgrade":
            pending = graph.downgrade_path(current, target)
        elif self.action == "upgrade" or not graph.ancestors(target) < graph.ancestors(current):
            pending = graph.upgrade_path(current, target)
        else:  # status towards an older revision: what a downgrade would revert
            pending = graph.downgrade_path(current, target)
        self.result.update(
            current_before=format_revisions(in_database),
            current_after=format_revisions(in_database),
            head=format_revisions(graph.heads),
            heads=list(graph.heads),
            target=format_revisions(target),
            pending=pending,
            offline_sql_available=True,
            offline_sql_reason="",
            offline_sql_failures=[],
        )
        if self.action == "status" or not pending:
            if self.action != "status" and self.module.check_mode:
                self.result["online"] = classify_online("").as_dict()
            return
        if not HAS_PGLAST:
            self.module.fail_json(
                msg=missing_required_lib("pglast") + " (the pending SQL must be analysed before it is applied)",
                exception=PGLAST_IMPORT_ERROR,
                **self.result,
            )
        self.render(graph, current, target, pending)
        if self.module._diff:
            self.result["diff"] = [
                {
                    "before": f"revision: {format_revisions(current) or 'base'}\n",
                    "after": f"revision: {format_revisions(target) or 'base'}\n",
                    "before_header": "alembic revision",
                    "after_header": "alembic revision",
                },
                {"before": "", "after": self.result["sql"], "after_header": f"offline SQL of {self.action}"},
            ]
        if self.module.check_mode:
            self.result["online"] = self.online()
        self.refuse_unless_allowed()
        self.result["changed"] = True
        if self.module.check_mode:
            return
        self.result["output"] = self.cli.migrate(self.action, self._dest(graph, target))
        after = self.current(graph)
        self.result["current_after"] = format_revisions(after)
        if set(after) != set(target):
            raise AlembicError(
                f"alembic {self.action} finished, but the database is at {format_revisions(after) or 'base'} "
                f"instead of {format_revisions(target) or 'base'}: check env.py (transaction handling) and the output"
            )

    # Fields of a check-mode result that the reviewed path takes over as they are.
    REVIEWED_FIELDS = ("head", "heads", "target", "pending", "sql", "destructive", "online")
    REVIEWED_SQL_FIELDS = ("offline_sql_available", "offline_sql_reason", "offline_sql_failures")

    def reviewed_problem(self, reviewed: dict[str, t.Any], current: tuple[str, ...]) -> str:
        """Why the reviewed result cannot stand for this run ("" when it can)."""
        if not self.params["database_url"]:
            return "database_url is not set, so the revision cannot be read without Alembic"
        if self.params["from_revision"] or self.action not in ("upgrade", "downgrade"):
            return f"a reviewed result is only used for an upgrade or downgrade, not {self.action}"
        if reviewed.get("action") != self.action or "sql" not in reviewed or "current_before" not in reviewed:
            return f"it is not the check-mode result of an {self.action} (no action, sql or current_before)"
        target = [r for r in str(reviewed.get("target") or "").split(",") if r.strip()]
        if len(target) > 1:
            return "it migrates to several heads; those are resolved with the revision history"
        before = str(reviewed.get("current_before") or "")
        if before != (format_revisions(current) or ""):
            return (
                f"the database moved from {before or 'base'} to {format_revisions(current) or 'base'} since the review"
            )
        return ""

    def apply_reviewed(self) -> bool:
        """Apply the SQL reviewed in check mode with one Alembic call, when the database did not move since.

        Inside a maintenance window each Alembic wave is a container start; the review already read the history and
        rendered the SQL with the same images, and the revision is read with SQL here, so only the upgrade itself
        is left. Returns False (and records why) when the full path has to run instead.
        """
        reviewed: dict[str, t.Any] = self.params["reviewed"]
        current = self.version_table() if self.params["database_url"] else ()
        problem = self.reviewed_problem(reviewed, current)
        self.result["reviewed_used"] = {"used": not problem, "reason": problem}
        if problem:
            return False
        self.result.update({k: reviewed[k] for k in self.REVIEWED_FIELDS if k in reviewed})
        self.result.update({k: reviewed.get(k, d) for k, d in zip(self.REVIEWED_SQL_FIELDS, (True, "", []))})
        target = tuple(r.strip() for r in str(reviewed.get("target") or "").split(",") if r.strip())
        self.result.update(current_before=format_revisions(current), current_after=format_revisions(current))
        if not self.result.get("pending"):
            return True
        self.refuse_unless_allowed()
        self.result["changed"] = True
        if self.module.check_mode:
            return True
        self.result["output"] = self.cli.migrate(self.action, target[0] if target else "base")
        after = self.version_table()
        self.result["current_after"] = format_revisions(after)
        if set(after) != set(target):
            raise AlembicError(
                f"alembic {self.action} finished, but the database is at {format_revisions(after) or 'base'} "
                f"instead of {format_revisions(target) or 'base'}, the target of the reviewed SQL: the images may "
                "have changed since the review; check the output"
            )
        return True

    def online(self) -> dict[str, t.Any]:
        """Whether the rendered SQL can run while the old release serves (see _online_migration)."""
        try:
            verdict = classify_online(
                self.result["sql"],
                squawk=find_squawk(self.module),
                runner=self._run_with_input,
                version_table=self.params["version_table"],
                version_table_schema=self.params["version_table_schema"],
                unrendered=self.result["offline_sql_failures"],
            )
        except Exception as exc:  # a classifier bug must not fail the preview: it only costs the online mode
            return {
                "mode": "maintenance",
                "reason": f"The SQL could not be classified ({type(exc).__name__}: {exc}): keep the maintenance window.",
                "blockers": [],
            }
        return verdict.as_dict()

    def _run_with_input(self, argv: list[str], data: str) -> tuple[int, str, str]:
        rc, out, err = self.module.run_command(argv, data=data, binary_data=True)
        return int(rc), str(out), str(err)

    def refuse_unless_allowed(self) -> None:
        if self.params["allow_destructive"] or self.params["from_revision"]:
            return
        findings = self.result["destructive"]
        failures = self.result["offline_sql_failures"]
        if not findings and not failures:
            return
        reasons = []
        if findings:
            reasons.append(f"{len(findings)} destructive statement(s) ({summarize([Finding(**f) for f in findings])})")
        if failures:
            reasons.append(
                f"{len(failures)} revision(s) without offline SQL, so they cannot be checked ("
                + "; ".join(f"{f['revision']}: {f['reason']}" for f in failures)
                + ")"
            )
        raise AlembicError(
            f"refusing to {self.action} from {self.result['current_before'] or 'base'} to "
            f"{self.result['target'] or 'base'}: {' and '.join(reasons)}. Review the SQL and the findings in this "
            "result, take a backup, and rerun with allow_destructive=true to apply them."
        )

    def close(self) -> None:
        self.pool.shutdown()  # waits for a render nobody needed (nothing pending, or an error came first)
        if self.conn is not None:
            self.conn.close()


def mask_url_password(module: AnsibleModule) -> None:
    """Mask the decoded password of database_url too: no_log masks only the URL as given, and Alembic or
    the server may print the password itself. Shorter than 4 characters it would mask common words instead."""
    with contextlib.suppress(ValueError):
        password = connect_keywords_from_url(module.params["database_url"] or "").get("password", "")
        if len(password) >= 4:
            module.no_log_values.add(password)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "action": {"type": "str", "choices": ["upgrade", "downgrade", "status", "heads"], "default": "upgrade"},
            "revision": {"type": "str"},
            "from_revision": {"type": "str"},
            "reviewed": {"type": "dict"},
            "allow_destructive": {"type": "bool", "default": False},
            "config": {"type": "path"},
            "command": {"type": "list", "elements": "str"},
            "chdir": {"type": "path"},
            "environment": {"type": "dict", "default": {}},
            "secret_environment": {"type": "dict", "default": {}, "no_log": True},
            "database_url": {"type": "str", "no_log": True},
            "database_url_env": {"type": "str", "default": "DATABASE_URL"},
            "version_table": {"type": "str", "default": "alembic_version"},
            "version_table_schema": {"type": "str"},
            "x_arguments": {"type": "list", "elements": "str", "default": []},
        },
        required_if=[("action", "downgrade", ["revision"])],
        mutually_exclusive=[("revision", "from_revision")],
        supports_check_mode=True,
    )
    mask_url_password(module)
    if module.params["from_revision"] and not (module.check_mode and module.params["action"] == "upgrade"):
        module.fail_json(
            msg="from_revision previews upgrades that already ran: use it with action=upgrade in check mode "
            "(check_mode: true); nothing was changed"
        )
    manager = AlembicMigrateManager(module)
    try:
        manager.run()
    except AlembicError as exc:
        if exc.stderr:
            manager.result["stderr"] = exc.stderr
        if exc.stdout:
            manager.result["stdout"] = exc.stdout
        manager.result.pop("changed", None)
        module.fail_json(msg=str(exc), **manager.result)
    except PsycopgError as exc:
        manager.result.pop("changed", None)
        module.fail_json(
            msg=f"PostgreSQL error while reading the Alembic version table: {sentence(exc)} "
            "Check database_url, version_table and version_table_schema.",
            **manager.result,
        )
    finally:
        manager.close()
    module.exit_json(**manager.result)


if __name__ == "__main__":
    main()
