"""ablage.ops.pg_backup against a real PostgreSQL 15 server (see conftest.pg_server)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import stat
import subprocess
import sys
import time
import typing as t
from pathlib import Path

import pytest

from ansible_collections.ablage.ops.plugins.modules import pg_backup

pytestmark = pytest.mark.integration

SCHEMA = """
CREATE TABLE documents (id serial PRIMARY KEY, title text NOT NULL, body bytea);
CREATE TABLE users (id serial PRIMARY KEY, email text);
CREATE SCHEMA archive;
CREATE TABLE archive.events (id bigint, payload jsonb);
CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY);
INSERT INTO alembic_version VALUES ('0003');
INSERT INTO documents (title, body)
     SELECT 'doc ' || i, convert_to(repeat('x', i), 'UTF8') FROM generate_series(1, 250) i;
INSERT INTO users (email) SELECT 'u' || i || '@example.invalid' FROM generate_series(1, 7) i;
INSERT INTO archive.events SELECT i, jsonb_build_object('i', i) FROM generate_series(1, 40) i;
"""
EXPECTED = {"archive.events": 40, "public.alembic_version": 1, "public.documents": 250, "public.users": 7}


@pytest.fixture
def source_db(pg_server: t.Any, fresh_db: str) -> str:
    conn = pg_server.connect(fresh_db)
    try:
        with conn.cursor() as cur:
            cur.execute(SCHEMA)
    finally:
        conn.close()
    return fresh_db


@pytest.fixture
def base_args(pg_server: t.Any, source_db: str, tmp_path: Path) -> dict[str, t.Any]:
    return dict(
        pg_server.params,
        database=source_db,
        backup_dir=str(tmp_path / "backups"),
        pg_bin_dir=pg_server.bin_dir,
        label="1.0.0",
    )


def databases(pg_server: t.Any, prefix: str) -> list[str]:
    rows = pg_server.execute("postgres", "SELECT datname FROM pg_database WHERE datname LIKE %s", (prefix + "%",))
    return sorted(r[0] for r in rows)


def listing(path: str | Path) -> list[str]:
    return sorted(os.listdir(path)) if os.path.isdir(path) else []


def test_check_mode_predicts_and_writes_nothing(run_module: t.Any, base_args: dict[str, t.Any]) -> None:
    result = run_module(pg_backup.main, dict(base_args, keep=2), check_mode=True, diff=True)
    assert result.rc == 0, result["msg"]
    assert result["changed"] is True
    assert result["backup_path"].endswith("_1.0.0.dump")
    assert result["would_create"]["revision"] == "0003"
    assert result["would_create"]["server_version"].startswith("15")
    assert result["diff"]["after"]["backups"] == [os.path.basename(result["backup_path"])]
    assert not os.path.exists(base_args["backup_dir"]), "check mode must not even create backup_dir"


def test_custom_backup_is_verified_by_a_test_restore(
    run_module: t.Any, pg_server: t.Any, base_args: dict[str, t.Any], source_db: str
) -> None:
    result = run_module(pg_backup.main, dict(base_args, verify="restore", compression=9))
    assert result.rc == 0, result.get("msg")
    assert result["changed"] is True
    path = Path(result["backup_path"])
    manifest_path = Path(result["manifest_path"])
    # Modes: directory 0700, backup and manifest 0600.
    assert stat.S_IMODE(os.stat(base_args["backup_dir"]).st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(manifest_path.stat().st_mode) == 0o600
    # The checksum is the file's, the manifest on disk is the one returned.
    assert result["checksum"] == hashlib.sha256(path.read_bytes()).hexdigest()
    on_disk = json.loads(manifest_path.read_text(encoding="utf-8"))
    assert on_disk == result["manifest"]
    for key in ("database", "server_version", "size", "duration_s", "alembic_revision", "checksum", "label"):
        assert key in on_disk
    assert on_disk["created_at"].endswith("Z")
    assert on_disk["tables"] == EXPECTED
    assert on_disk["alembic_revision"] == "0003"
    assert on_disk["consistent_snapshot"] is True
    assert on_disk["size"] == path.stat().st_size
    # The test restore compared every table and the revision, then dropped its scratch database.
    restore = result["verification"]["restore"]
    assert restore["equal"] is True
    assert restore["tables"] == EXPECTED
    assert restore["scratch_database"].startswith(source_db + "_verify_")
    assert databases(pg_server, source_db) == [source_db]
    assert result["verification"]["checksum_ok"] is True
    assert result["verification"]["toc_entries"] > 5
    # No temporary files left behind.
    assert [n for n in listing(base_args["backup_dir"]) if n.startswith(".")] == []


def test_directory_backup_with_parallel_jobs(run_module: t.Any, base_args: dict[str, t.Any]) -> None:
    result = run_module(pg_backup.main, dict(base_args, format="directory", jobs=2, compression=1))
    assert result.rc == 0, result.get("msg")
    path = Path(result["backup_path"])
    assert path.is_dir() and path.name.endswith(".dir")
    assert stat.S_IMODE(path.stat().st_mode) == 0o700
    files = result["manifest"]["checksum"]["files"]
    assert "toc.dat" in files
    for name, digest in files.items():
        assert stat.S_IMODE((path / name).stat().st_mode) == 0o600
        assert hashlib.sha256((path / name).read_bytes()).hexdigest() == digest
    # The combined value is the SHA-256 of the sha256sum-style listing.
    listing_text = "".join(f"{files[n]}  {n}\n" for n in sorted(files))
    assert result["checksum"] == hashlib.sha256(listing_text.encode()).hexdigest()
    assert result["verification"]["list_ok"] is True


def test_backup_modify_restore_gives_the_data_back(
    run_module: t.Any, pg_server: t.Any, base_args: dict[str, t.Any], source_db: str
) -> None:
    backup = run_module(pg_backup.main, base_args)
    assert backup.rc == 0, backup.get("msg")

    # A deploy goes wrong: rows change, a migration adds a table and drops one, the revision moves.
    pg_server.execute(
        source_db,
        """
        DELETE FROM documents WHERE id > 100;
        UPDATE users SET email = NULL;
        INSERT INTO users (email) VALUES ('late@example.invalid');
        DROP TABLE archive.events;
        CREATE TABLE tags (id int);
        INSERT INTO tags VALUES (1);
        UPDATE alembic_version SET version_num = '0004';
        ALTER DATABASE "{db}" SET work_mem = '8MB';
        ALTER DATABASE "{db}" SET search_path = "$user", public, "Archiv ""alt"" 2";
        """.replace("{db}", source_db),
    )
    # An application session that the restore has to end.
    app = pg_server.connect(source_db)
    try:
        check = run_module(
            pg_backup.main, dict(base_args, state="restored", backup=backup["backup_path"]), check_mode=True, diff=True
        )
        assert check.rc == 0, check.get("msg")
        assert check["changed"] is True
        assert check["diff"]["before"]["alembic_revision"] == "0004"
        assert check["diff"]["after"]["alembic_revision"] == "0003"
        assert pg_server.execute(source_db, "SELECT count(*) FROM documents")[0][0] == 100  # untouched

        result = run_module(pg_backup.main, dict(base_args, state="restored", backup="latest"))
    finally:
        app.close()
    assert result.rc == 0, result.get("msg")
    assert result["changed"] is True
    assert result["comparison"]["equal"] is True
    assert result["comparison"]["tables"] == EXPECTED
    assert result["comparison"]["actual_revision"] == "0003"
    # Independently of the module: the data are those of backup time, the later table is gone.
    assert pg_server.execute(source_db, "SELECT count(*), count(DISTINCT title) FROM documents")[0] == (250, 250)
    assert pg_server.execute(source_db, "SELECT count(email) FROM users")[0][0] == 7
    assert pg_server.execute(source_db, "SELECT to_regclass('tags')")[0][0] is None
    assert pg_server.execute(source_db, "SELECT version_num FROM alembic_version")[0][0] == "0003"
    # Database-level settings of the replaced database were carried over; no staging database is left.
    settings = pg_server.execute(
        "postgres",
        "SELECT setconfig FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase WHERE d.datname = %s",
        (source_db,),
    )
    assert settings == [(["work_mem=8MB", 'search_path="$user", public, "Archiv ""alt"" 2"'],)]
    assert databases(pg_server, source_db) == [source_db]


def test_restore_can_keep_the_previous_database(
    run_module: t.Any, pg_server: t.Any, base_args: dict[str, t.Any], source_db: str
) -> None:
    assert run_module(pg_backup.main, base_args).rc == 0
    pg_server.execute(source_db, "TRUNCATE documents")
    result = run_module(pg_backup.main, dict(base_args, state="restored", keep_previous=True))
    assert result.rc == 0, result.get("msg")
    previous = result["previous_database"]
    assert previous.startswith(source_db + "_pre_restore_")
    assert pg_server.execute(previous, "SELECT count(*) FROM documents")[0][0] == 0
    assert pg_server.execute(source_db, "SELECT count(*) FROM documents")[0][0] == 250


def test_restore_refuses_while_sessions_exist_unless_allowed(
    run_module: t.Any, pg_server: t.Any, base_args: dict[str, t.Any], source_db: str
) -> None:
    assert run_module(pg_backup.main, base_args).rc == 0
    app = pg_server.connect(source_db)
    try:
        result = run_module(pg_backup.main, dict(base_args, state="restored", terminate_sessions=False))
    finally:
        app.close()
    assert result.failed
    assert "other session(s) are connected" in result["msg"]
    assert "terminate_sessions=true" in result["msg"]
    assert result["sessions"]


def test_corrupted_backup_fails_verification_and_is_not_restored(
    run_module: t.Any, pg_server: t.Any, base_args: dict[str, t.Any], source_db: str
) -> None:
    backup = run_module(pg_backup.main, base_args)
    assert backup.rc == 0
    path = Path(backup["backup_path"])
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    pg_server.execute(source_db, "DELETE FROM users")

    result = run_module(pg_backup.main, dict(base_args, state="restored", backup=str(path)))
    assert result.failed
    assert "is corrupted" in result["msg"]
    assert result["verification"]["checksum_ok"] is False
    assert pg_server.execute(source_db, "SELECT count(*) FROM users")[0][0] == 0  # untouched

    # A damaged file whose manifest was "fixed" to match: pg_restore --list must catch it.
    path.write_bytes(bytes(data[: len(data) // 3]))
    manifest_path = Path(backup["manifest_path"])
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest["checksum"]["value"] = hashlib.sha256(path.read_bytes()).hexdigest()
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    result = run_module(pg_backup.main, dict(base_args, state="restored", backup=str(manifest_path)))
    assert result.failed
    assert "pg_restore --list cannot read" in result["msg"]
    assert result["verification"]["list_ok"] is False


def _fake_pg_bin(tmp_path: Path, real_bin: str, dump_body: str) -> str:
    """A pg_bin_dir whose pg_dump writes part of a real dump and then fails."""
    fake = tmp_path / "fakebin"
    fake.mkdir()
    (fake / "pg_restore").symlink_to(Path(real_bin) / "pg_restore")
    script = fake / "pg_dump"
    script.write_text(
        '#!/bin/sh\nif [ "$1" = "--version" ]; then exec ' + real_bin + "/pg_dump --version; fi\n" + dump_body,
        encoding="utf-8",
    )
    script.chmod(0o755)
    return str(fake)


@pytest.mark.parametrize(
    ("dump_body", "exit_code"),
    [
        # pg_dump writes part of an archive and then dies of SIGKILL (OOM killer, operator).
        ('"$(dirname "$0")/../real_pg_dump" "$@" | head -c 700\nkill -9 $$\n', "-9"),
        # pg_dump fails with an error after some output.
        ('printf "PGDMP partial" ; echo "pg_dump: error: query failed: out of disk" >&2 ; exit 1\n', "1"),
    ],
    ids=["killed", "failed"],
)
def test_no_partial_file_after_a_failed_dump(
    run_module: t.Any, pg_server: t.Any, base_args: dict[str, t.Any], tmp_path: Path, dump_body: str, exit_code: str
) -> None:
    (tmp_path / "real_pg_dump").symlink_to(Path(pg_server.bin_dir) / "pg_dump")
    fake = _fake_pg_bin(tmp_path, pg_server.bin_dir, dump_body)
    result = run_module(pg_backup.main, dict(base_args, pg_bin_dir=fake))
    assert result.failed
    assert "pg_dump of" in result["msg"]
    assert f"failed (exit code {exit_code})" in result["msg"]
    assert listing(base_args["backup_dir"]) == [], "no file that could pass for a backup, and no temporary file"
    # The next good backup works and "latest" is that one.
    assert run_module(pg_backup.main, base_args).rc == 0


def test_stale_partial_of_a_killed_run_is_cleaned(run_module: t.Any, base_args: dict[str, t.Any]) -> None:
    os.makedirs(base_args["backup_dir"], mode=0o700)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    stale = Path(base_args["backup_dir"]) / f".x_20260101T000000Z_1.dump.partial-{dead.stdout.strip()}"
    stale.write_bytes(b"PGDMP...")
    foreign = Path(base_args["backup_dir"]) / "notes.txt"
    foreign.write_text("not a backup", encoding="utf-8")
    result = run_module(pg_backup.main, base_args)
    assert result.rc == 0
    assert result["cleaned_partials"] == [str(stale)]
    assert foreign.exists()


def test_retention_keeps_the_newest(run_module: t.Any, base_args: dict[str, t.Any], pg_server: t.Any) -> None:
    made = []
    for label in ("1.0.0", "1.1.0", "1.2.0"):
        result = run_module(pg_backup.main, dict(base_args, label=label, keep=2, verify="none"))
        assert result.rc == 0, result.get("msg")
        made.append(result["backup_path"])
    assert result["removed"] == [made[0]]
    assert not os.path.exists(made[0])
    assert not os.path.exists(pg_backup.manifest_path_for(made[0]))
    names = [m["label"] for m in pg_backup.load_manifests(base_args["backup_dir"], base_args["database"])]
    assert names == ["1.2.0", "1.1.0"]
    # Check mode names what the next run would remove, and removes nothing.
    preview = run_module(pg_backup.main, dict(base_args, keep=1), check_mode=True)
    assert preview["removed"] == [made[2], made[1]]
    assert os.path.exists(made[1])


def test_dump_and_restore_through_a_command_prefix(
    run_module: t.Any, pg_server: t.Any, base_args: dict[str, t.Any], source_db: str
) -> None:
    # `env PATH=...` stands in for `docker exec -i <container>`: the tools run behind a prefix,
    # the dump streams through its standard output into the file, the restore through stdin.
    prefix = ["env", f"PATH={pg_server.bin_dir}:/usr/bin:/bin"]
    args = dict(base_args, command_prefix=prefix)
    del args["pg_bin_dir"]
    result = run_module(pg_backup.main, dict(args, verify="restore"))
    assert result.rc == 0, result.get("msg")
    assert result["manifest"]["via"] == "command_prefix"
    assert result["verification"]["restore"]["equal"] is True
    pg_server.execute(source_db, "DELETE FROM documents")
    restored = run_module(pg_backup.main, dict(args, state="restored"))
    assert restored.rc == 0, restored.get("msg")
    assert pg_server.execute(source_db, "SELECT count(*) FROM documents")[0][0] == 250


def test_connection_failure_names_the_fix(run_module: t.Any, base_args: dict[str, t.Any]) -> None:
    result = run_module(pg_backup.main, dict(base_args, password="wrong"))
    assert result.failed
    assert "cannot connect to PostgreSQL as postgres@127.0.0.1:" in result["msg"]
    assert "Check host, port, user and password" in result["msg"]
    assert "wrong" not in result["_raw"].replace("********", "")


def test_through_ansible(ansible_cli: t.Any, base_args: dict[str, t.Any], pg_server: t.Any) -> None:
    """The real thing: ansible localhost -m ablage.ops.pg_backup (AnsiballZ, module_utils shipping, no_log)."""
    result = ansible_cli("pg_backup", dict(base_args, verify="list", keep=3))
    assert result.rc == 0, result.stdout + result.stderr
    assert result.result["changed"] is True
    assert result.result["verification"]["list_ok"] is True
    assert os.path.exists(result.result["backup_path"])
    assert pg_server.password not in result.stdout
    restored = ansible_cli("pg_backup", dict(base_args, state="restored"), "--diff")
    assert restored.rc == 0, restored.stdout + restored.stderr
    assert restored.result["comparison"]["equal"] is True


def test_connection_from_pg_environment_variables(
    run_module: t.Any, pg_server: t.Any, base_args: dict[str, t.Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No connection options: psycopg2 and pg_dump both take them from PG* variables (libpq)."""
    monkeypatch.setenv("PGHOST", pg_server.host)
    monkeypatch.setenv("PGPORT", str(pg_server.port))
    monkeypatch.setenv("PGUSER", pg_server.user)
    monkeypatch.setenv("PGPASSWORD", pg_server.password)
    args = {k: v for k, v in base_args.items() if k not in ("host", "port", "user", "password")}
    result = run_module(pg_backup.main, args)
    assert result.rc == 0, result.get("msg")
    assert result["manifest"]["tables"] == EXPECTED
    assert result["manifest"]["host"] is None


def test_terminated_module_removes_its_partial_file(
    pg_server: t.Any, base_args: dict[str, t.Any], tmp_path: Path
) -> None:
    """SIGTERM (a task timeout, a cancelled AWX job) while pg_dump runs: the module cleans up and says so."""
    fake = _fake_pg_bin(tmp_path, pg_server.bin_dir, 'printf "PGDMP partial"\nexec sleep 30\n')
    args_file = tmp_path / "args.json"
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": dict(base_args, pg_bin_dir=fake)}), encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2] / ".collections"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "ansible_collections.ablage.ops.plugins.modules.pg_backup", str(args_file)],
        stdout=subprocess.PIPE,
        env=env,
    )
    backup_dir = Path(base_args["backup_dir"])
    deadline = time.monotonic() + 20
    while not any(n.startswith(".") and ".partial-" in n for n in listing(backup_dir)):
        assert time.monotonic() < deadline, "pg_dump never started"
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out = proc.communicate(timeout=20)[0]
    result = json.loads(out)
    assert result["failed"] is True
    assert "was interrupted (terminated by signal 15); no backup was kept" in result["msg"]
    assert listing(backup_dir) == []
