#!/usr/bin/python
# Copyright (c) ablage.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: pg_backup
short_description: Verified PostgreSQL backups (pg_dump) with checksum, manifest and retention, and verified restores
version_added: 0.1.0
description:
  - With O(state=present), dumps one database with C(pg_dump) in the custom or directory format, writes a SHA-256
    checksum and a JSON manifest beside it, verifies the result and applies retention. Implements the checklist's
    "backup before deploy" item; a zero exit code of C(pg_dump) alone is not taken as proof of anything.
  - The dump is written under a temporary hidden name (C(.<name>.partial-<pid>)) and renamed to its final name
    only after C(pg_dump) succeeded and the data were synced to disk; the manifest is written last (also atomically).
    A backup counts as complete only when its manifest exists. On failure, and when the module is terminated, the
    temporary files are removed; leftovers of a killed run are removed by the next run.
  - Row counts of every table and the Alembic revision are read inside the same REPEATABLE READ snapshot that
    C(pg_dump) dumps (C(pg_export_snapshot()) and C(pg_dump --snapshot)), so the manifest describes exactly the
    data in the backup even while the application writes.
  - 'Verification (O(verify)): V(list) recomputes the checksum and runs C(pg_restore --list) on the backup.
    V(restore) also restores it into a scratch database on the same server, compares the row count of every table
    and the Alembic revision with the manifest, and drops the scratch database.'
  - 'With O(state=restored), verifies a backup (checksum and C(pg_restore --list)), restores it into a new staging
    database, compares its row counts and Alembic revision with the manifest, and only then swaps it in place of
    O(database) (C(ALTER DATABASE ... RENAME)), dropping the old one. Why not C(pg_restore --clean) into the live
    database: C(--clean) drops only the objects that are in the dump, so tables a later migration added would
    survive the restore, and a failure half-way through a non-transactional restore would leave the live database
    damaged. Restoring beside it leaves O(database) untouched until the restored copy is proven equal to the backup.'
  - Owner, encoding, locale, per-database settings (C(ALTER DATABASE ... SET)) and database-level grants of the
    replaced database are carried over to the restored one.
  - C(pg_dump) and C(pg_restore) run on the managed host (from O(pg_bin_dir) or the PATH), or inside the database
    container through O(command_prefix) (for example C(docker exec -i <container>)), streaming the dump to a file on
    the host. The checks (server version, row counts, Alembic revision, scratch and staging databases) use psycopg2
    from the managed host with O(host), O(port), O(user), O(password).
author:
  - ablage.ops maintainers (@ablage-system)
requirements:
  - psycopg2 (C(psycopg2-binary)) on the managed host
  - C(pg_dump) and C(pg_restore) of the server's major version or newer, on the host or in the container
extends_documentation_fragment:
  - ablage.ops._attributes
attributes:
  check_mode:
    support: full
    details:
      - With O(state=present), connects to the database (read-only) and reports the backup it would create and the
        backups retention would remove; writes nothing.
      - With O(state=restored), verifies the backup (checksum and C(pg_restore --list)) and reports the restore it
        would do; changes no database.
  diff_mode:
    support: full
    details:
      - With O(state=present), the list of backups in O(backup_dir) before and after.
      - With O(state=restored), the Alembic revision and table row counts of O(database) before and after.
  idempotent:
    support: none
    details:
      - Every run with O(state=present) creates a new backup, every run with O(state=restored) restores.
options:
  state:
    description:
      - V(present) creates a new backup. V(restored) restores O(backup) into O(database).
    type: str
    choices: [present, restored]
    default: present
  database:
    description:
      - Name of the database to back up or to restore into.
    type: str
    required: true
    aliases: [db]
  host:
    description:
      - Host name or address of the server (or a Unix socket directory). Unset uses C(PGHOST) or libpq's default.
    type: str
    aliases: [login_host]
  port:
    description:
      - Port of the server. Unset uses C(PGPORT) or 5432.
    type: int
    aliases: [login_port]
  user:
    description:
      - Role to connect as. Unset uses C(PGUSER) or the name of the OS user.
      - Restores and O(verify=restore) need the C(CREATEDB) privilege; restores also need to own O(database)
        (or be superuser) to rename and drop it.
    type: str
    aliases: [login_user]
  password:
    description:
      - Password of O(user). Unset uses C(PGPASSWORD) or C(~/.pgpass). Handed to the client tools as C(PGPASSWORD)
        in their environment, never on a command line.
    type: str
    aliases: [login_password]
  maintenance_db:
    description:
      - Database to connect to for creating, renaming and dropping databases.
    type: str
    default: postgres
  backup_dir:
    description:
      - Directory of the backups. Created with mode 0700 (and set to 0700 when it exists); backup files are 0600.
    type: path
    default: /var/lib/ablage-deploy/backups
  label:
    description:
      - Version label put into the backup's name and manifest, for example the release being deployed.
      - Characters other than letters, digits, C(.), C(_) and C(-) are replaced with C(-).
    type: str
    default: manual
  format:
    description:
      - V(custom) writes one file (C(pg_dump -Fc), C(<name>.dump)); V(directory) writes one file per table
        (C(pg_dump -Fd), C(<name>.dir/)) and allows parallel dumps with O(jobs).
      - V(directory) is not available with O(command_prefix), which streams one file out of the container.
    type: str
    choices: [custom, directory]
    default: custom
  jobs:
    description:
      - Parallel jobs of C(pg_dump) (O(format=directory) only) and of C(pg_restore) (backups read from a file on the
        host, that is without O(command_prefix)).
    type: int
    default: 1
  compression:
    description:
      - Compression level 0 (none) to 9 passed to C(pg_dump --compress). Unset uses C(pg_dump)'s default.
    type: int
  verify:
    description:
      - 'What proves a new backup (O(state=present)): V(none) nothing beyond the checksum written; V(list) the checksum
        recomputed from disk and C(pg_restore --list); V(restore) also a test restore into a scratch database whose
        row counts and Alembic revision must equal the manifest.'
      - A backup that fails verification is removed (it must not be mistaken for a good one) and retention is skipped.
      - O(state=restored) always verifies the checksum and C(pg_restore --list) first, and always compares the
        restored data with the manifest before replacing O(database).
    type: str
    choices: [none, list, restore]
    default: list
  keep:
    description:
      - Retention. Keep this many newest complete backups of O(database) in O(backup_dir) (by the manifests'
        C(created_at), counting the new one) and remove older ones. Unset keeps all.
      - Files without a manifest of this module are never touched.
    type: int
  backup:
    description:
      - O(state=restored) only. The backup to restore, a path to its C(.dump) file, C(.dir) directory or C(.json)
        manifest, or V(latest) for the newest complete backup of O(database) in O(backup_dir).
    type: str
    default: latest
  backup_revision:
    description:
      - O(state=restored) with O(backup=latest) only. The newest complete backup whose manifest records this Alembic
        revision - the data a release with that head runs on (a rollback to an older release).
      - Fails, naming the revisions the backups have, when there is none.
    type: str
  terminate_sessions:
    description:
      - O(state=restored) only. End other sessions on O(database) before replacing it. When V(false) and sessions
        exist, the module fails and names them.
    type: bool
    default: true
  keep_previous:
    description:
      - O(state=restored) only. Keep the replaced database renamed to C(<database>_pre_restore_<timestamp>) instead of
        dropping it.
    type: bool
    default: false
  pg_bin_dir:
    description:
      - Directory of C(pg_dump) and C(pg_restore) on the managed host, for example C(/usr/lib/postgresql/15/bin).
        Unset searches the PATH. They must be of the server's major version or newer.
    type: path
  command_prefix:
    description:
      - Run C(pg_dump) and C(pg_restore) through this command, for example V([docker, exec, -i, ablage-postgres-1]);
        the tool name and its arguments are appended. The dump streams from its standard output into the backup
        file on the host; restores stream the file into its standard input.
      - Inside the container the tools use their own connection defaults (the local socket, or C(PGHOST) set there);
        O(database) and O(user) are passed as arguments. To pass O(password), add C(-e PGPASSWORD) to the prefix.
    type: list
    elements: str
  alembic_version_table:
    description:
      - Name of Alembic's version table (as in C(version_table) of the Alembic environment), found through the
        search path. Its revision is recorded in the manifest and compared after restores.
    type: str
    default: alembic_version
notes:
  - Backups are named C(<database>_<YYYYmmddTHHMMSSZ>_<label>) plus C(.dump) or C(.dir), with the manifest
    C(<name>.json) beside them.
  - 'Checksums: for V(custom), the SHA-256 of the file. For V(directory), the manifest lists the SHA-256 of every
    file (C(checksum.files)), and C(checksum.value) is the SHA-256 of the text made of one C(<sha256>  <path>) line
    per file, sorted by path (the format of C(sha256sum)), so one value covers the whole directory and
    C(cd <name>.dir && sha256sum -c) can check each file by hand.'
seealso:
  - name: pg_dump
    description: The PostgreSQL backup tool this module drives.
    link: https://www.postgresql.org/docs/current/app-pgdump.html
  - module: ablage.ops.alembic_migrate
"""

EXAMPLES = r"""
- name: Backup before deploy, verified by a test restore, keep the 7 newest
  ablage.ops.pg_backup:
    database: ablage
    host: 127.0.0.1
    user: postgres
    password: "{{ vault_postgres_password }}"
    label: "{{ ablage_version }}"
    verify: restore
    keep: 7
  register: ablage_backup

- name: Parallel directory-format backup with the PostgreSQL 15 tools
  ablage.ops.pg_backup:
    database: ablage
    format: directory
    jobs: 4
    compression: 6
    pg_bin_dir: /usr/lib/postgresql/15/bin

- name: Dump inside the postgres container, streamed to the host (connection from PG* variables)
  ablage.ops.pg_backup:
    database: ablage
    user: ablage
    command_prefix: [docker, exec, -i, -e, PGPASSWORD, ablage-postgres-1]
  environment:
    PGHOST: 127.0.0.1
    PGPASSWORD: "{{ vault_postgres_password }}"

- name: Disaster recovery - restore the newest backup
  ablage.ops.pg_backup:
    state: restored
    database: ablage
    backup: latest
    user: postgres
    password: "{{ vault_postgres_password }}"
  register: ablage_restore

- name: Restore the backup recorded before the deploy
  ablage.ops.pg_backup:
    state: restored
    database: ablage
    backup: "{{ ablage_backup.backup_path }}"
"""

RETURN = r"""
backup_path:
  description: Path of the backup (the C(.dump) file or C(.dir) directory); in check mode, the one it would create.
  returned: always
  type: str
  sample: /var/lib/ablage-deploy/backups/ablage_20260127T101500Z_1.1.0.dump
manifest_path:
  description: Path of the backup's JSON manifest.
  returned: always
  type: str
  sample: /var/lib/ablage-deploy/backups/ablage_20260127T101500Z_1.1.0.json
manifest:
  description: The manifest (as written beside the backup); empty in check mode with O(state=present).
  returned: always
  type: dict
  contains:
    database:
      description: Database name.
      type: str
      returned: success
    label:
      description: Version label.
      type: str
      returned: success
    created_at:
      description: Start of the dump (UTC, ISO 8601).
      type: str
      returned: success
    format:
      description: 'V(custom) or V(directory).'
      type: str
      returned: success
    server_version:
      description: Server version (C(SHOW server_version)).
      type: str
      returned: success
    pg_dump_version:
      description: Output of C(pg_dump --version).
      type: str
      returned: success
    size:
      description: Size in bytes.
      type: int
      returned: success
    duration_s:
      description: Seconds the dump and checksum took.
      type: float
      returned: success
    alembic_revision:
      description: Alembic revision at backup time, null without version table.
      type: str
      returned: success
    tables:
      description: Exact row count per C(schema.table) at backup time.
      type: dict
      returned: success
    checksum:
      description: 'C(algorithm), C(value) and (directory format) C(files).'
      type: dict
      returned: success
    consistent_snapshot:
      description: Whether counts and dump share one snapshot.
      type: bool
      returned: success
  sample:
    database: ablage
    label: 1.1.0
    created_at: "2026-01-27T10:15:00.123456Z"
    format: custom
    server_version: "15.10"
    size: 1048576
    duration_s: 1.42
    alembic_revision: 7f1c2a9e
    tables: {public.documents: 1200, public.users: 15}
    checksum: {algorithm: sha256, value: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08}
size:
  description: Size of the backup in bytes (sum of the files for the directory format).
  returned: success
  type: int
  sample: 1048576
checksum:
  description: SHA-256 of the backup (see the notes for the directory format).
  returned: success
  type: str
  sample: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
duration_s:
  description: Seconds the whole operation took (dump, checksum, verification, or the restore).
  returned: success
  type: float
  sample: 2.7
verification:
  description: What was checked and with what result.
  returned: success
  type: dict
  contains:
    level:
      description: 'V(none), V(list) or V(restore).'
      type: str
      returned: always
    checksum_ok:
      description: Recomputed checksum equals the manifest.
      type: bool
      returned: when checked
    list_ok:
      description: 'C(pg_restore --list) succeeded.'
      type: bool
      returned: when checked
    toc_entries:
      description: Number of entries C(pg_restore --list) printed.
      type: int
      returned: when checked
    restore:
      description: Result of the test restore (see RV(comparison)).
      type: dict
      returned: with O(verify=restore)
  sample: {level: list, checksum_ok: true, list_ok: true, toc_entries: 42}
comparison:
  description: O(state=restored) only. Row counts and Alembic revision of the restored database against the manifest.
  returned: when O(state=restored) and not in check mode
  type: dict
  sample:
    equal: true
    tables_match: true
    revision_match: true
    expected_revision: 7f1c2a9e
    actual_revision: 7f1c2a9e
    mismatches: []
    tables: {public.documents: 1200, public.users: 15}
removed:
  description: Backups removed by retention (payload paths); in check mode, the ones that would be.
  returned: always
  type: list
  elements: str
  sample: [/var/lib/ablage-deploy/backups/ablage_20260101T101500Z_1.0.0.dump]
cleaned_partials:
  description: Temporary files of earlier killed runs that were removed.
  returned: always
  type: list
  elements: str
  sample: []
previous_database:
  description: O(state=restored) with O(keep_previous=true) only. Name the replaced database was renamed to.
  returned: when kept
  type: str
  sample: ablage_pre_restore_20260127T101500Z
"""

import concurrent.futures
import datetime
import json
import os
import re
import signal
import subprocess  # nosec B404 - argv lists only, never a shell
import tempfile
import time
import typing as t

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

# Backup files, names, checksums, manifests, retention. All names are also re-exported here for callers
# and tests that use pg_backup.<name> (those marked "re-export" are not used in this file).
from ansible_collections.ablage.ops.plugins.module_utils._pg_backup_files import (  # pylint: disable=unused-import
    MANIFEST_VERSION,
    TOOL,
    backup_basename,
    combined_checksum,  # noqa: F401 - re-export
    compute_checksum,
    directory_checksums,  # noqa: F401 - re-export
    fsync_path,
    load_manifests,
    manifest_path_for,
    payload_name,
    payload_size,
    public_manifest,
    remove_path,
    sanitize,  # noqa: F401 - re-export
    scratch_name,
    select_for_removal,
    sha256_file,  # noqa: F401 - re-export
)
from ansible_collections.ablage.ops.plugins.module_utils._postgres import (
    HAS_PSYCOPG2,
    PSYCOPG2_IMPORT_ERROR,
    PsycopgError,
    Snapshot,
    alembic_revision,
    apply_database_properties,
    connect,
    connection_argument_spec,
    create_database,
    database_exists,
    database_properties,
    describe_target,
    drop_database,
    libpq_env,
    rename_database,
    row_counts,
    sentence,
    server_version,
    sessions,
    set_allow_connections,
    terminate_sessions,
)
from ansible_collections.ablage.ops.plugins.module_utils._process import pid_alive

_PARTIAL = re.compile(r"^\..+\.partial-(?P<pid>\d+)$")


class BackupError(Exception):
    """A failure with a message that names the cause and the fix."""

    def __init__(self, message: str, **details: t.Any) -> None:
        super().__init__(message)
        self.details = details


# --------------------------------------------------------------------------- pure helpers


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def compare_data(
    expected_tables: t.Mapping[str, int],
    actual_tables: t.Mapping[str, int],
    expected_revision: t.Any,
    actual_revision: t.Any,
) -> dict[str, t.Any]:
    """Row counts and Alembic revision of a restored database against the manifest."""
    mismatches = []
    for table in sorted(set(expected_tables) | set(actual_tables)):
        expected, actual = expected_tables.get(table), actual_tables.get(table)
        if expected != actual:
            mismatches.append({"table": table, "expected": expected, "actual": actual})
    tables_match = not mismatches
    revision_match = expected_revision == actual_revision
    return {
        "equal": tables_match and revision_match,
        "tables_match": tables_match,
        "revision_match": revision_match,
        "expected_revision": expected_revision,
        "actual_revision": actual_revision,
        "mismatches": mismatches,
        "tables": dict(actual_tables),
    }


def format_revision(rows: list[str] | None) -> str | None:
    return ",".join(rows) if rows else None


def dbname_argument(database: str) -> str:
    """A --dbname value that is never mistaken for a connection string."""
    if "=" in database or database.startswith(("postgresql:", "postgres:")):
        return "dbname='" + database.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return database


class _Terminated(Exception):
    pass


def _raise_terminated(signum: int, frame: t.Any) -> None:
    raise _Terminated(f"terminated by signal {signum}")


# --------------------------------------------------------------------------- client tools


class PgTools:
    """pg_dump / pg_restore on the host or through a command prefix."""

    def __init__(self, module: AnsibleModule, params: t.Mapping[str, t.Any]) -> None:
        self.module = module
        self.params = params
        self.prefix: list[str] = list(params.get("command_prefix") or [])
        self.bin_dir: str | None = params.get("pg_bin_dir")
        self.env = dict(os.environ)
        self.env.update(libpq_env(params))
        self.env["PGAPPNAME"] = TOOL

    @property
    def streams(self) -> bool:
        return bool(self.prefix)

    def argv(self, tool: str, *args: str) -> list[str]:
        if self.prefix:
            return [*self.prefix, tool, *args]
        if self.bin_dir:
            path = os.path.join(self.bin_dir, tool)
            if not os.access(path, os.X_OK):
                raise BackupError(
                    f"{tool} not found at {path}: set pg_bin_dir to the directory of the PostgreSQL tools"
                )
            return [path, *args]
        path = self.module.get_bin_path(tool)
        if not path:
            raise BackupError(
                f"{tool} is not on the PATH of the managed host: install the PostgreSQL client tools "
                "(of the server's major version), set pg_bin_dir, or use command_prefix to run it in the container"
            )
        return [path, *args]

    def connection_args(self, database: str) -> list[str]:
        """Database (and, in a container, user) arguments; host/port/password travel as PG* variables."""
        args = ["--dbname", dbname_argument(database)]
        if self.prefix and self.params.get("user"):
            args += ["--username", str(self.params["user"])]
        return args

    def version(self) -> str:
        argv = self.argv("pg_dump", "--version")
        rc, out, err = self.module.run_command(argv, environ_update=self._env_update())
        if rc != 0:
            raise BackupError(f"'{' '.join(argv)}' failed (exit code {rc}): {err.strip() or out.strip()}")
        return str(out).strip()

    def _env_update(self) -> dict[str, str]:
        update = libpq_env(self.params)
        update["PGAPPNAME"] = TOOL
        return update

    def run_restore_tool(self, args: list[str], source: str, fmt: str, jobs: int = 1) -> tuple[int, str, str]:
        """pg_restore ``args`` on a backup (file or directory on the host; streamed in through a prefix)."""
        if self.streams:
            if fmt == "directory":
                raise BackupError("a directory-format backup cannot be streamed through command_prefix")
            argv = self.argv("pg_restore", *args)
            with open(source, "rb") as stdin:
                return self._run(argv, stdin=stdin)
        if jobs > 1 and "--list" not in args:
            args = [*args, "--jobs", str(jobs)]
        return self._run(self.argv("pg_restore", *args, source))

    def _run(self, argv: list[str], stdin: t.IO[bytes] | None = None) -> tuple[int, str, str]:
        proc = subprocess.run(  # noqa: S603  # nosec B603 - argv list from options, no shell
            argv,
            stdin=stdin if stdin is not None else subprocess.DEVNULL,
            capture_output=True,
            env=self.env,
            check=False,
        )
        return proc.returncode, proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace")

    def dump(self, database: str, target: str, fmt: str, snapshot: str | None) -> None:
        """Run pg_dump into ``target``, a path that does not exist yet (file, or directory for -Fd).

        The custom format goes through pg_dump's standard output straight into the file (so the same
        code works behind a command prefix such as ``docker exec -i``); nothing passes through Python.
        """
        args = [f"--format={fmt}", "--no-password"]
        if self.params.get("compression") is not None:
            args.append(f"--compress={self.params['compression']}")
        if snapshot:
            args.append(f"--snapshot={snapshot}")
        if fmt == "directory":
            args += ["--jobs", str(self.params["jobs"]), "--file", target]
        args += self.connection_args(database)
        argv = self.argv("pg_dump", *args)
        # Files pg_dump creates (directory format) are 0600 in a 0700 directory; the child inherits the umask.
        old_umask = os.umask(0o077)
        try:
            with tempfile.TemporaryFile() as errors:
                if fmt == "directory":
                    rc = self._run_to(argv, subprocess.DEVNULL, errors)
                else:
                    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                    try:
                        rc = self._run_to(argv, fd, errors)
                        if rc == 0:
                            os.fsync(fd)
                    finally:
                        os.close(fd)
                errors.seek(0)
                stderr = errors.read().decode("utf-8", "replace").strip()
        finally:
            os.umask(old_umask)
        if rc != 0:
            hint = ""
            if "server version mismatch" in stderr:
                hint = (
                    " Use pg_dump of the server's major version or newer (pg_bin_dir), "
                    "or run it in the container (command_prefix)."
                )
            elif "authentication failed" in stderr or "no password supplied" in stderr:
                hint = " Check user and password (or PGPASSWORD / ~/.pgpass; with command_prefix add -e PGPASSWORD)."
            raise BackupError(
                f"pg_dump of {database} failed (exit code {rc}): {sentence(stderr or 'no error output')}{hint}"
            )

    def _run_to(self, argv: list[str], stdout: t.Any, stderr: t.Any) -> int:
        proc = subprocess.run(  # noqa: S603  # nosec B603 - argv list from options, no shell
            argv, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr, env=self.env, check=False
        )
        return proc.returncode


# --------------------------------------------------------------------------- manager


class PgBackupManager:
    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.params = module.params
        self.check_mode = module.check_mode
        self.database: str = self.params["database"]
        self.backup_dir: str = self.params["backup_dir"]
        self.tools = PgTools(module, self.params)
        self.result: dict[str, t.Any] = {
            "changed": False,
            "backup_path": "",
            "manifest_path": "",
            "manifest": {},
            "removed": [],
            "cleaned_partials": [],
        }

    # ---------------------------------------------------------------- shared steps

    def connect(self, database: str | None = None) -> t.Any:
        if not HAS_PSYCOPG2:
            self.module.fail_json(msg=missing_required_lib("psycopg2"), exception=PSYCOPG2_IMPORT_ERROR)
        try:
            return connect(self.params, database=database or self.database)
        except PsycopgError as exc:
            raise BackupError(
                f"cannot connect to PostgreSQL as {describe_target(self.params, database)}: {sentence(exc)} "
                "Check host, port, user and password (or the PG* environment variables), and that the database exists."
            ) from exc

    def table_state(self, database: str) -> tuple[dict[str, int], str | None]:
        conn = self.connect(database)
        try:
            tables = row_counts(conn)
            revision = format_revision(alembic_revision(conn, self.params["alembic_version_table"]))
        finally:
            conn.close()
        return tables, revision

    def ensure_backup_dir(self) -> None:
        if not os.path.isdir(self.backup_dir):
            os.makedirs(self.backup_dir, mode=0o700, exist_ok=True)
        if (os.stat(self.backup_dir).st_mode & 0o777) != 0o700:
            os.chmod(self.backup_dir, 0o700)

    def clean_partials(self) -> None:
        if not os.path.isdir(self.backup_dir):
            return
        for name in sorted(os.listdir(self.backup_dir)):
            match = _PARTIAL.match(name)
            if match and not pid_alive(int(match.group("pid"))):
                remove_path(os.path.join(self.backup_dir, name))
                self.result["cleaned_partials"].append(os.path.join(self.backup_dir, name))

    def verify(self, manifest: dict[str, t.Any], payload: str, level: str) -> dict[str, t.Any]:
        """Checksum + pg_restore --list (+ test restore). Raises BackupError with the details on failure."""
        report: dict[str, t.Any] = {"level": level}
        if level == "none":
            return report
        fmt = str(manifest.get("format") or "custom")
        if not os.path.exists(payload):
            raise BackupError(f"backup {payload} is missing (its manifest {manifest.get('_manifest_path')} exists)")
        expected = manifest.get("checksum") or {}
        actual = compute_checksum(payload, fmt)
        report["checksum_ok"] = actual["value"] == expected.get("value")
        if not report["checksum_ok"]:
            bad = []
            if fmt == "directory":
                exp_files, act_files = expected.get("files") or {}, actual.get("files") or {}
                bad = sorted(n for n in set(exp_files) | set(act_files) if exp_files.get(n) != act_files.get(n))
            report["checksum_mismatch_files"] = bad
            raise BackupError(
                f"backup {payload} is corrupted: its SHA-256 {actual['value']} differs from the manifest's "
                f"{expected.get('value')}{' (files: ' + ', '.join(bad) + ')' if bad else ''}. "
                "Do not use it; restore an older backup or take a new one.",
                verification=report,
            )
        rc, out, err = self.tools.run_restore_tool(["--list"], payload, fmt)
        report["list_ok"] = rc == 0
        report["toc_entries"] = sum(1 for line in out.splitlines() if line.strip() and not line.startswith(";"))
        if rc != 0:
            raise BackupError(
                f"pg_restore --list cannot read backup {payload} (exit code {rc}): {err.strip()}. "
                "The file is damaged or not a pg_dump archive; restore an older backup or take a new one.",
                verification=report,
            )
        if level == "restore":
            report["restore"] = self.test_restore(manifest, payload)
            if not report["restore"]["equal"]:
                raise BackupError(
                    f"test restore of {payload} does not match its manifest: {report['restore']['mismatches']}"
                    f" (revision {report['restore']['actual_revision']} vs {report['restore']['expected_revision']})",
                    verification=report,
                )
        return report

    def restore_into(self, admin: t.Any, name: str, payload: str, fmt: str, like: dict[str, t.Any] | None) -> None:
        create_database(admin, name, like)
        rc, _out, err = self.tools.run_restore_tool(
            ["--exit-on-error", "--no-password", *self.tools.connection_args(name)], payload, fmt, self.params["jobs"]
        )
        if rc != 0:
            raise BackupError(f"pg_restore of {payload} into {name} failed (exit code {rc}): {err.strip()}")

    def test_restore(self, manifest: dict[str, t.Any], payload: str) -> dict[str, t.Any]:
        scratch = scratch_name(self.database, "verify")
        admin = self.connect(self.params["maintenance_db"])
        try:
            self.restore_into(admin, scratch, payload, str(manifest.get("format")), None)
            tables, revision = self.table_state(scratch)
            comparison = compare_data(manifest.get("tables") or {}, tables, manifest.get("alembic_revision"), revision)
            comparison["scratch_database"] = scratch
            return comparison
        finally:
            try:
                drop_database(admin, scratch)
            finally:
                admin.close()

    # ---------------------------------------------------------------- state=present

    def present(self) -> None:
        started = time.monotonic()
        now = utcnow()
        fmt = self.params["format"]
        basename = backup_basename(self.database, self.params["label"], now)
        final = os.path.join(self.backup_dir, payload_name(basename, fmt))
        counter = 1
        while os.path.lexists(final) or os.path.lexists(manifest_path_for(final)):
            final = os.path.join(self.backup_dir, payload_name(f"{basename}-{counter}", fmt))
            counter += 1
        manifest_file = manifest_path_for(final)
        self.result.update(backup_path=final, manifest_path=manifest_file, changed=True)
        existing = load_manifests(self.backup_dir, self.database)
        would_remove = select_for_removal([{"_payload_path": final}, *existing], self.params["keep"])
        before = [os.path.basename(m["_payload_path"]) for m in existing]

        conn = self.connect()
        try:
            version = server_version(conn)
            if self.check_mode:
                pg_dump_version = self.tools.version()
                self.result["removed"] = [m["_payload_path"] for m in would_remove]
                self.result["verification"] = {"level": self.params["verify"]}
                self.result["would_create"] = {
                    "server_version": version,
                    "pg_dump_version": pg_dump_version,
                    "format": fmt,
                    "revision": format_revision(alembic_revision(conn, self.params["alembic_version_table"])),
                }
                self._diff(before, final, would_remove)
                return
            self.ensure_backup_dir()
            self.clean_partials()
            pg_dump_version = self.tools.version()
            manifest = self._dump(conn, final, fmt, now, version, pg_dump_version)
        finally:
            conn.close()
        manifest["duration_s"] = round(time.monotonic() - started, 3)
        self._write_manifest(manifest_file, manifest)
        self.result.update(
            manifest=public_manifest(manifest), size=manifest["size"], checksum=manifest["checksum"]["value"]
        )
        manifest["_manifest_path"] = manifest_file
        try:
            self.result["verification"] = self.verify(manifest, final, self.params["verify"])
        except BackupError as exc:
            # A backup that failed verification must not look like a good one.
            remove_path(manifest_file)
            remove_path(final)
            exc.details.setdefault("removed_failed_backup", final)
            raise
        removed = []
        for old in select_for_removal(load_manifests(self.backup_dir, self.database), self.params["keep"]):
            if old["_payload_path"] == final:  # pragma: no cover - the new one is the newest
                continue
            remove_path(old["_manifest_path"])  # first: without it the payload no longer counts as a backup
            remove_path(old["_payload_path"])
            removed.append(old["_payload_path"])
        self.result["removed"] = removed
        self.result["duration_s"] = round(time.monotonic() - started, 3)
        self._diff(before, final, [{"_payload_path": p} for p in removed])

    def _diff(self, before: list[str], final: str, removed: list[dict[str, t.Any]]) -> None:
        if not self.module._diff:
            return
        gone = {os.path.basename(m["_payload_path"]) for m in removed}
        after = sorted([b for b in before if b not in gone] + [os.path.basename(final)])
        self.result["diff"] = {"before": {"backups": sorted(before)}, "after": {"backups": after}}

    def _dump(
        self, conn: t.Any, final: str, fmt: str, now: datetime.datetime, version: str, pg_dump_version: str
    ) -> dict[str, t.Any]:
        partial = os.path.join(self.backup_dir, f".{os.path.basename(final)}.partial-{os.getpid()}")
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
        dump_started = time.monotonic()
        try:
            with Snapshot(conn) as snap, concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
                # Count rows in the exported snapshot while pg_dump dumps it: the same data, in parallel.
                counting = pool.submit(self._snapshot_state, conn)
                try:
                    self.tools.dump(self.database, partial, fmt, snap.snapshot_id)
                except BaseException:
                    conn.cancel()
                    raise
                tables, revision = counting.result()
            if fmt == "directory":
                for root, dirs, names in os.walk(partial):
                    os.chmod(root, 0o700)
                    for name in names:
                        os.chmod(os.path.join(root, name), 0o600)
                        fsync_path(os.path.join(root, name))
                    dirs.sort()
            checksum = compute_checksum(partial, fmt)
            size = payload_size(partial)
            os.replace(partial, final)
            fsync_path(self.backup_dir)
        except BaseException as exc:
            remove_path(partial)
            if isinstance(exc, _Terminated):
                raise BackupError(f"backup of {self.database} was interrupted ({exc}); no backup was kept") from exc
            raise
        finally:
            signal.signal(signal.SIGTERM, previous)
        return {
            "tool": TOOL,
            "manifest_version": MANIFEST_VERSION,
            "file": os.path.basename(final),
            "database": self.database,
            "label": self.params["label"],
            "created_at": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "format": fmt,
            "compression": self.params["compression"],
            "jobs": self.params["jobs"] if fmt == "directory" else 1,
            "server_version": version,
            "pg_dump_version": pg_dump_version,
            "size": size,
            "dump_duration_s": round(time.monotonic() - dump_started, 3),
            "alembic_revision": revision,
            "tables": tables,
            "consistent_snapshot": snap.snapshot_id is not None,
            "checksum": checksum,
            "host": self.params.get("host"),
            "port": self.params.get("port"),
            "via": "command_prefix" if self.tools.streams else "host",
        }

    def _snapshot_state(self, conn: t.Any) -> tuple[dict[str, int], str | None]:
        tables = row_counts(conn)
        return tables, format_revision(alembic_revision(conn, self.params["alembic_version_table"]))

    def _write_manifest(self, path: str, manifest: dict[str, t.Any]) -> None:
        partial = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.partial-{os.getpid()}")
        try:
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(public_manifest(manifest), handle, indent=2, sort_keys=True)
                handle.write("\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(partial, path)
            fsync_path(os.path.dirname(path))
        except BaseException:
            remove_path(partial)
            raise

    # ---------------------------------------------------------------- state=restored

    def resolve_backup(self) -> tuple[dict[str, t.Any], str]:
        spec = self.params["backup"]
        if spec == "latest":
            manifests = load_manifests(self.backup_dir, self.database)
            if not manifests:
                raise BackupError(
                    f"no complete backup of {self.database} in {self.backup_dir} (no manifest of {TOOL}): "
                    "create one with state=present or name the backup to restore"
                )
            wanted = self.params["backup_revision"]
            if wanted:
                at_revision = [m for m in manifests if m.get("alembic_revision") == wanted]
                if not at_revision:
                    seen = sorted({str(m.get("alembic_revision") or "base") for m in manifests})
                    raise BackupError(
                        f"no complete backup of {self.database} in {self.backup_dir} is at Alembic revision {wanted} "
                        f"(the backups there are at {', '.join(seen)})"
                    )
                manifests = at_revision
            return manifests[0], manifests[0]["_payload_path"]
        spec = spec.rstrip("/")
        manifest_file = spec if spec.endswith(".json") else manifest_path_for(spec)
        try:
            with open(manifest_file, encoding="utf-8") as handle:
                manifest = json.load(handle)
        except FileNotFoundError as exc:
            raise BackupError(
                f"backup {spec} has no manifest at {manifest_file}: it is incomplete or not made by {TOOL}; "
                "only backups with a manifest can be verified and restored"
            ) from exc
        except ValueError as exc:
            raise BackupError(
                f"manifest {manifest_file} is not valid JSON ({exc}); the backup cannot be verified"
            ) from exc
        if not isinstance(manifest, dict) or manifest.get("tool") != TOOL or not manifest.get("file"):
            raise BackupError(f"{manifest_file} is not a manifest of {TOOL}")
        manifest["_manifest_path"] = manifest_file
        payload = os.path.join(os.path.dirname(manifest_file), os.path.basename(str(manifest["file"])))
        return manifest, payload

    def restored(self) -> None:
        started = time.monotonic()
        manifest, payload = self.resolve_backup()
        self.result.update(
            backup_path=payload, manifest_path=manifest["_manifest_path"], manifest=public_manifest(manifest)
        )
        if manifest.get("database") != self.database:
            self.module.warn(f"restoring a backup of database {manifest.get('database')!r} into {self.database!r}")
        self.result["verification"] = self.verify(manifest, payload, "list")
        self.result.update(size=manifest.get("size"), checksum=(manifest.get("checksum") or {}).get("value"))
        fmt = str(manifest.get("format") or "custom")
        admin = self.connect(self.params["maintenance_db"])
        try:
            exists = database_exists(admin, self.database)
            before: dict[str, t.Any] = {"exists": exists}
            if exists:
                if self.module._diff:
                    tables, revision = self.table_state(self.database)
                    before.update(alembic_revision=revision, tables=tables)
                others = sessions(admin, self.database)
                if others and not self.params["terminate_sessions"]:
                    raise BackupError(
                        f"{len(others)} other session(s) are connected to {self.database}: {others}. Stop the "
                        "application (or set terminate_sessions=true) before restoring.",
                        sessions=others,
                    )
            after = {
                "exists": True,
                "alembic_revision": manifest.get("alembic_revision"),
                "tables": manifest.get("tables"),
            }
            if self.module._diff:
                self.result["diff"] = {"before": before, "after": after}
            self.result["changed"] = True
            if self.check_mode:
                return
            self._swap_in(admin, manifest, payload, fmt, exists)
        finally:
            admin.close()
        self.result["duration_s"] = round(time.monotonic() - started, 3)

    def _swap_in(self, admin: t.Any, manifest: dict[str, t.Any], payload: str, fmt: str, exists: bool) -> None:
        like = database_properties(admin, self.database) if exists else None
        staging = scratch_name(self.database, "restore")
        try:
            self.restore_into(admin, staging, payload, fmt, like)
            tables, revision = self.table_state(staging)
            comparison = compare_data(manifest.get("tables") or {}, tables, manifest.get("alembic_revision"), revision)
            self.result["comparison"] = comparison
            if not comparison["equal"]:
                raise BackupError(
                    f"the restored data differ from the backup's manifest ({comparison['mismatches']}, revision "
                    f"{revision} vs {manifest.get('alembic_revision')}); {self.database} was left unchanged",
                    comparison=comparison,
                )
            if like:
                apply_database_properties(admin, staging, like)
        except BaseException:
            drop_database(admin, staging)
            raise
        stamp = utcnow().strftime("%Y%m%dT%H%M%SZ")
        previous = f"{self.database.encode('utf-8')[:40].decode('utf-8', 'ignore')}_pre_restore_{stamp}"
        if exists:
            # No new sessions between terminating the old ones and the rename.
            set_allow_connections(admin, self.database, False)
            try:
                if self.params["terminate_sessions"]:
                    terminate_sessions(admin, self.database)
                rename_database(admin, self.database, previous)
            except BaseException:
                set_allow_connections(admin, self.database, True)
                drop_database(admin, staging)
                raise
        try:
            rename_database(admin, staging, self.database)
        except BaseException:
            if exists:  # put the original back
                rename_database(admin, previous, self.database)
                set_allow_connections(admin, self.database, True)
            drop_database(admin, staging)
            raise
        if exists:
            if self.params["keep_previous"]:
                set_allow_connections(admin, previous, True)
                self.result["previous_database"] = previous
            else:
                drop_database(admin, previous)


def validate(module: AnsibleModule) -> None:
    p = module.params
    if p["format"] == "directory" and p["command_prefix"]:
        module.fail_json(
            msg="format=directory cannot be streamed out of a container: use format=custom with command_prefix, "
            "or run pg_dump on the host (pg_bin_dir) for a directory-format backup"
        )
    if p["jobs"] < 1:
        module.fail_json(msg=f"jobs must be 1 or more, got {p['jobs']}")
    if p["jobs"] > 1 and p["format"] != "directory" and p["state"] == "present":
        module.fail_json(msg="pg_dump runs parallel jobs only with format=directory; set format=directory or jobs=1")
    if p["compression"] is not None and not 0 <= p["compression"] <= 9:
        module.fail_json(msg=f"compression must be between 0 and 9, got {p['compression']}")
    if p["keep"] is not None and p["keep"] < 1:
        module.fail_json(msg=f"keep must be 1 or more (it counts the new backup), got {p['keep']}; omit it to keep all")
    if p["maintenance_db"] == p["database"]:
        module.fail_json(
            msg="maintenance_db must be another database than database (it is connected to while database is "
            "created, renamed and dropped); the default is postgres"
        )
    if p["backup_revision"] and p["backup"] != "latest":
        module.fail_json(msg="backup_revision picks the newest backup at a revision: use it with backup=latest")
    if p["command_prefix"] is not None and not p["command_prefix"]:
        module.fail_json(msg="command_prefix must name a command, e.g. [docker, exec, -i, <container>]")


def main() -> None:
    argument_spec: dict[str, t.Any] = connection_argument_spec()
    argument_spec.update(
        state={"type": "str", "choices": ["present", "restored"], "default": "present"},
        backup_dir={"type": "path", "default": "/var/lib/ablage-deploy/backups"},
        label={"type": "str", "default": "manual"},
        format={"type": "str", "choices": ["custom", "directory"], "default": "custom"},
        jobs={"type": "int", "default": 1},
        compression={"type": "int"},
        verify={"type": "str", "choices": ["none", "list", "restore"], "default": "list"},
        keep={"type": "int"},
        backup={"type": "str", "default": "latest"},
        backup_revision={"type": "str"},
        terminate_sessions={"type": "bool", "default": True},
        keep_previous={"type": "bool", "default": False},
        pg_bin_dir={"type": "path"},
        command_prefix={"type": "list", "elements": "str"},
        alembic_version_table={"type": "str", "default": "alembic_version"},
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        mutually_exclusive=[("pg_bin_dir", "command_prefix")],
        supports_check_mode=True,
    )
    validate(module)
    manager = PgBackupManager(module)
    try:
        if module.params["state"] == "present":
            manager.present()
        else:
            manager.restored()
    except BackupError as exc:
        manager.result.update(exc.details)
        manager.result.pop("changed", None)
        module.fail_json(msg=str(exc), **manager.result)
    except OSError as exc:
        module.fail_json(
            msg=f"file system error on {exc.filename or module.params['backup_dir']}: {exc.strerror or exc}. "
            "Check that backup_dir is writable and has free space.",
            **manager.result,
        )
    except PsycopgError as exc:
        module.fail_json(
            msg=f"PostgreSQL error on {describe_target(module.params)}: {sentence(exc)} "
            "Check that the role has the privileges this needs (CREATEDB for restores and verify=restore).",
            **manager.result,
        )
    module.exit_json(**manager.result)


if __name__ == "__main__":
    main()
