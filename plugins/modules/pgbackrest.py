#!/usr/bin/python
# Copyright (c) ablage.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: pgbackrest
short_description: Point-in-time recovery with pgBackRest - base backups, restore points and recovery to them
version_added: 0.9.0
description:
  - The rollback point of a deploy without a dump inside the maintenance window. A base backup is taken while users
    are served (O(action=backup)); with the application stopped, O(action=restore_point) writes a named restore point
    (milliseconds, whatever the size of the database) and waits until its WAL is in pgBackRest's archive;
    O(action=restore) brings the whole cluster back to exactly that point.
  - The module runs pgBackRest through O(command) (for example C(docker compose exec -T postgres pgbackrest)) and
    reads its JSON; pgBackRest keeps the backups and the WAL archive, checks archiving and expires old backups.
    PostgreSQL must archive its WAL there (C(archive_mode=on), C(archive_command=pgbackrest --stanza=S archive-push
    %p)); O(action=check) proves it.
  - 'What proves a recovery: at the restore point the module reads the Alembic revision and the row count of every
    table (nothing writes then); after the recovery it reads them again and fails unless they are equal.'
  - A recovery rewinds every database of the cluster, not only O(database).
author:
  - ablage.ops maintainers (@ablage-system)
requirements:
  - pgBackRest 2.x where O(command) runs it, with a stanza for the cluster
  - psycopg2 (C(psycopg2-binary)) on the managed host, for O(action=restore_point) and O(action=restore)
extends_documentation_fragment:
  - ablage.ops._attributes
attributes:
  check_mode:
    support: full
    details:
      - O(action=info) and O(action=check) run as usual (they change no data; C(check) switches to a new WAL segment).
      - O(action=backup), O(action=restore_point) and O(action=restore) read pgBackRest's info and report what they
        would do.
  diff_mode:
    support: none
  idempotent:
    support: none
    details:
      - Every O(action=backup) takes a backup, every O(action=restore_point) writes one, every O(action=restore)
        recovers.
options:
  action:
    description:
      - V(info) reads the stanza (its backups and WAL archive). V(check) also proves that WAL archiving works and that
        a backup exists. V(backup) creates the stanza when it is missing and takes a backup of O(backup_type).
        V(restore_point) writes the restore point O(name) and waits until its WAL is archived. V(restore) recovers the
        cluster to O(name) (PostgreSQL stopped), starts it with O(start_command) and compares with O(expected).
    type: str
    choices: [info, check, backup, restore_point, restore]
    required: true
  stanza:
    description: The pgBackRest stanza of the cluster.
    type: str
    required: true
  command:
    description:
      - Argument vector that runs pgBackRest where the cluster runs; the module appends the options and the command.
    type: list
    elements: str
    default: [pgbackrest]
  restore_command:
    description:
      - Argument vector that runs pgBackRest for O(action=restore), while PostgreSQL is stopped (for example
        C(docker compose run --rm --no-deps -T --entrypoint pgbackrest postgres)). Default O(command).
    type: list
    elements: str
  start_command:
    description:
      - Argument vector that starts PostgreSQL after O(action=restore) (for example C(docker compose start postgres)).
        The module then waits until the recovery ended, up to O(timeout) seconds, and compares with O(expected).
      - Unset leaves PostgreSQL stopped and compares nothing.
    type: list
    elements: str
  chdir:
    description: Directory to run the commands in (the compose project).
    type: path
  backup_type:
    description: V(full), V(diff) or V(incr); pgBackRest takes a full backup when none exists yet.
    type: str
    choices: [full, diff, incr]
    default: incr
  name:
    description:
      - The restore point (O(action=restore_point), O(action=restore)); letters, digits, C(.), C(_) and C(-), at most 63.
      - Recovery stops at the first restore point of that name, so each deploy uses its own (its run id).
    type: str
  expected:
    description:
      - What O(action=restore) must find after the recovery, as O(action=restore_point) returned it (C(revision) and
        C(row_counts)).
    type: dict
  timeout:
    description: Seconds the recovery gets after O(start_command), polled every 0.5 s.
    type: int
    default: 300
  require_backup:
    description: With O(action=check), fail unless the stanza holds a backup without error.
    type: bool
    default: true
  database:
    description: The database whose revision and row counts prove the restore point and the recovery.
    type: str
    aliases: [db]
  host:
    description: Host of the server, for O(action=restore_point) and O(action=restore). Unset uses libpq's default.
    type: str
    aliases: [login_host]
  port:
    description: Port of the server. Unset uses C(PGPORT) or 5432.
    type: int
    aliases: [login_port]
  user:
    description:
      - Role to connect as. O(action=restore_point) runs C(pg_create_restore_point), which needs superuser or an
        explicit C(GRANT EXECUTE) on it.
    type: str
    aliases: [login_user]
  password:
    description: Password of O(user). Unset uses C(PGPASSWORD) or C(~/.pgpass).
    type: str
    aliases: [login_password]
  maintenance_db:
    description: Not used; accepted for the connection options shared with M(ablage.ops.pg_backup).
    type: str
    default: postgres
  alembic_version_table:
    description: The Alembic version table in O(database).
    type: str
    default: alembic_version
seealso:
  - module: ablage.ops.pg_backup
  - name: pgBackRest user guide
    description: Stanzas, archive-push, backup types and restore targets.
    link: https://pgbackrest.org/user-guide.html
"""

EXAMPLES = r"""
- name: Base backup while users are served
  ablage.ops.pgbackrest:
    action: backup
    stanza: ablage
    command: [docker, compose, exec, -T, postgres, pgbackrest]
    chdir: /srv/ablage

- name: Restore point with the application stopped (the rollback point of this deploy)
  ablage.ops.pgbackrest:
    action: restore_point
    stanza: ablage
    name: ablage-deploy-20261205T131407-4711
    command: [docker, compose, exec, -T, postgres, pgbackrest]
    chdir: /srv/ablage
    host: 127.0.0.1
    user: postgres
    password: "{{ vault_db_password }}"
    database: ablage
  register: restore_point

- name: Recover to it (PostgreSQL stopped before)
  ablage.ops.pgbackrest:
    action: restore
    stanza: ablage
    name: "{{ restore_point.name }}"
    expected: "{{ restore_point }}"
    restore_command: [docker, compose, run, --rm, --no-deps, -T, --entrypoint, pgbackrest, postgres]
    start_command: [docker, compose, start, postgres]
    chdir: /srv/ablage
    host: 127.0.0.1
    user: postgres
    password: "{{ vault_db_password }}"
    database: ablage
"""

RETURN = r"""
info:
  description: The stanza as pgBackRest's info describes it (after the action).
  returned: always
  type: dict
  contains:
    status:
      description: C(code) (0 is ok) and C(message).
      type: dict
    backups:
      description: Oldest first; each C(label), C(type), C(start), C(stop), C(size), C(repo_size), C(wal_start), C(wal_stop).
      type: list
      elements: dict
    archive:
      description: C(min) and C(max) WAL segment in the archive.
      type: dict
backup:
  description: The backup taken (O(action=backup)), or the newest one.
  returned: when a backup exists
  type: dict
  sample: {label: 20261205-132107F, type: full, start: "2026-12-05T13:21:07Z", stop: "2026-12-05T13:21:10Z"}
name:
  description: The restore point.
  returned: O(action=restore_point) and O(action=restore)
  type: str
lsn:
  description: Where the restore point is in the WAL.
  returned: O(action=restore_point)
  type: str
  sample: 0/402D4B0
created_at:
  description: When the restore point was written (UTC).
  returned: O(action=restore_point)
  type: str
revision:
  description: The Alembic revision at the restore point (O(action=restore_point)) or after the recovery.
  returned: O(action=restore_point) and O(action=restore) with O(start_command)
  type: list
  elements: str
row_counts:
  description: Rows of every table at the restore point, or after the recovery.
  returned: O(action=restore_point) and O(action=restore) with O(start_command)
  type: dict
archived:
  description: Whether pgBackRest's check saw the WAL after the restore point arrive in the archive.
  returned: O(action=restore_point)
  type: bool
recovered_in_s:
  description: Seconds from O(start_command) until PostgreSQL ended its recovery.
  returned: O(action=restore) with O(start_command)
  type: float
timeline:
  description: The cluster's timeline after the recovery (it grows by one with every recovery).
  returned: O(action=restore) with O(start_command)
  type: int
comparison:
  description: C(equal), C(differences), C(expected_revision), C(actual_revision), C(tables), C(rows).
  returned: O(action=restore) with O(start_command)
  type: dict
elapsed_s:
  description: Seconds the action took.
  returned: always
  type: float
"""

import time
import typing as t

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.ablage.ops.plugins.module_utils._pgbackrest import (
    RESTORE_POINT_NAME,
    InfoError,
    compare,
    newest_backup,
    parse_info,
)
from ansible_collections.ablage.ops.plugins.module_utils._postgres import (
    HAS_PSYCOPG2,
    PSYCOPG2_IMPORT_ERROR,
    PsycopgError,
    alembic_revision,
    connect,
    connection_argument_spec,
    describe_target,
    row_counts,
    sentence,
)


class Failure(Exception):
    """A failed action, with the message for the operator."""


class PgBackRest:
    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.params = module.params
        self.result: dict[str, t.Any] = {"changed": False}

    # pgBackRest ---------------------------------------------------------------------------------------------
    def run(self, *args: str, prefix: list[str] | None = None, what: str = "") -> str:
        argv = [*(prefix or self.params["command"]), f"--stanza={self.params['stanza']}", *args]
        rc, out, err = self.module.run_command(argv, cwd=self.params["chdir"])
        if rc != 0:
            detail = " ".join((err or out or "").split())[-600:]
            raise Failure(f"pgBackRest {what or args[-1]} failed (exit {rc}): {detail}")
        return str(out)

    def info(self, prefix: list[str] | None = None) -> dict[str, t.Any]:
        try:
            info = parse_info(self.run("--output=json", "info", prefix=prefix), self.params["stanza"])
        except InfoError as exc:
            raise Failure(f"{exc}. Check the stanza name and O(command).") from exc
        self.result["info"] = info
        newest = newest_backup(info)
        if newest:
            self.result["backup"] = newest
        return info

    def require_backup(self, info: dict[str, t.Any]) -> None:
        if info["status"]["code"] not in (0, None) or not newest_backup(info):
            raise Failure(
                f"stanza {self.params['stanza']} has no usable backup ({info['status']['message'] or 'no status'}): "
                "take one with action=backup (a deploy with deploy_pitr_backup_type other than none takes one), "
                "then try again"
            )

    # SQL ----------------------------------------------------------------------------------------------------
    def connection(self) -> t.Any:
        if not HAS_PSYCOPG2:
            self.module.fail_json(msg=missing_required_lib("psycopg2"), exception=PSYCOPG2_IMPORT_ERROR)
        return connect(self.params, self.params["database"])

    def snapshot(self, conn: t.Any) -> dict[str, t.Any]:
        return {
            "revision": alembic_revision(conn, self.params["alembic_version_table"]),
            "row_counts": row_counts(conn),
        }

    # actions ------------------------------------------------------------------------------------------------
    def check(self) -> None:
        try:
            self.run("check", what="check")
        except Failure as exc:
            raise Failure(
                f"{exc}. WAL archiving into stanza {self.params['stanza']} does not work: create the stanza once "
                f"(pgbackrest --stanza={self.params['stanza']} stanza-create, where PostgreSQL runs) and set "
                f"archive_mode=on and archive_command='pgbackrest --stanza={self.params['stanza']} archive-push %p' "
                "(docs/backup.md)"
            ) from exc
        info = self.info()
        if self.params["require_backup"]:
            self.require_backup(info)

    def backup(self) -> None:
        if self.module.check_mode:
            self.info()
            self.result["changed"] = True
            return
        self.run("stanza-create", what="stanza-create")
        self.run(f"--type={self.params['backup_type']}", "backup")
        self.info()
        self.result["changed"] = True

    def restore_point(self) -> None:
        self.require_backup(self.info())
        name = self.params["name"]
        if self.module.check_mode:
            self.result.update(changed=True, name=name)
            return
        conn = self.connection()
        try:
            snapshot = self.snapshot(conn)
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT pg_create_restore_point(%s)::text, to_char(now() AT TIME ZONE 'UTC', %s)",
                    (name, 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                )
                lsn, created_at = cur.fetchone()
        finally:
            conn.close()
        self.result.update(changed=True, name=name, lsn=lsn, created_at=created_at, **snapshot)
        # check switches to a new WAL segment and waits until it is archived: the restore point's is then too.
        self.run("check", what="check (the restore point's WAL is not archived)")
        self.result["archived"] = True

    def restore(self) -> None:
        # PostgreSQL is stopped: pgBackRest reads its repository through the restore command.
        self.require_backup(self.info(prefix=self.params["restore_command"]))
        name = self.params["name"]
        self.result["name"] = name
        if self.module.check_mode:
            self.result["changed"] = True
            return
        self.run(
            "--delta",
            "--type=name",
            f"--target={name}",
            "--target-action=promote",
            "restore",
            prefix=self.params["restore_command"] or self.params["command"],
        )
        self.result["changed"] = True
        if not self.params["start_command"]:
            return
        rc, out, err = self.module.run_command(self.params["start_command"], cwd=self.params["chdir"])
        if rc != 0:
            raise Failure(f"PostgreSQL did not start after the restore (exit {rc}): {(err or out).strip()[-400:]}")
        started = time.monotonic()
        conn = self.wait_recovered(started)
        try:
            self.result["recovered_in_s"] = round(time.monotonic() - started, 2)
            with conn.cursor() as cur:
                cur.execute("SELECT timeline_id FROM pg_control_checkpoint()")
                self.result["timeline"] = int(cur.fetchone()[0])
            actual = self.snapshot(conn)
        finally:
            conn.close()
        self.result.update(actual)
        comparison = compare(self.params["expected"] or {}, actual)
        self.result["comparison"] = comparison
        if self.params["expected"] and not comparison["equal"]:
            raise Failure(
                f"the cluster recovered to {name}, but the database differs from the restore point: "
                + "; ".join(comparison["differences"][:10] or ["no row counts were given"])
            )

    def wait_recovered(self, started: float) -> t.Any:
        """A connection once PostgreSQL accepts connections and has ended its recovery (bounded)."""
        last = "no answer yet"
        while time.monotonic() - started < self.params["timeout"]:
            try:
                conn = self.connection()
            except PsycopgError as exc:
                last = sentence(exc)
            else:
                with conn.cursor() as cur:
                    cur.execute("SELECT pg_is_in_recovery()")
                    if not cur.fetchone()[0]:
                        return conn
                last = "still in recovery"
                conn.close()
            time.sleep(0.5)
        raise Failure(
            f"PostgreSQL did not end its recovery to {self.params['name']} within {self.params['timeout']} s "
            f"({last}). Read its log (docker compose logs postgres): a restore point missing from the archive "
            "leaves the server waiting for WAL"
        )


def main() -> None:
    argument_spec: dict[str, t.Any] = connection_argument_spec()
    argument_spec["database"]["required"] = False
    argument_spec.update(
        action={"type": "str", "choices": ["info", "check", "backup", "restore_point", "restore"], "required": True},
        stanza={"type": "str", "required": True},
        command={"type": "list", "elements": "str", "default": ["pgbackrest"]},
        restore_command={"type": "list", "elements": "str"},
        start_command={"type": "list", "elements": "str"},
        chdir={"type": "path"},
        backup_type={"type": "str", "choices": ["full", "diff", "incr"], "default": "incr"},
        name={"type": "str"},
        expected={"type": "dict"},
        timeout={"type": "int", "default": 300},
        require_backup={"type": "bool", "default": True},
        alembic_version_table={"type": "str", "default": "alembic_version"},
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        required_if=[
            ("action", "restore_point", ("name", "database")),
            ("action", "restore", ("name",)),
        ],
        required_by={"start_command": ("database",)},
        supports_check_mode=True,
    )
    name = module.params["name"]
    if name is not None and not RESTORE_POINT_NAME.match(name):
        module.fail_json(
            msg=f"name {name!r} is not a restore point name: use letters, digits, '.', '_' and '-' (at most 63), "
            "for example ablage-deploy-<run id>"
        )
    started = time.monotonic()
    runner = PgBackRest(module)
    try:
        getattr(runner, module.params["action"])()
    except Failure as exc:
        runner.result["elapsed_s"] = round(time.monotonic() - started, 2)
        module.fail_json(msg=str(exc), **runner.result)
    except PsycopgError as exc:
        runner.result["elapsed_s"] = round(time.monotonic() - started, 2)
        module.fail_json(msg=f"PostgreSQL error on {describe_target(module.params)}: {sentence(exc)}", **runner.result)
    runner.result["elapsed_s"] = round(time.monotonic() - started, 2)
    module.exit_json(**runner.result)


if __name__ == "__main__":
    main()
