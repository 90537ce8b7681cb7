"""pg_backup: naming, checksums, manifests, retention, comparison and argument errors (no database)."""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import socket
import typing as t
from pathlib import Path

import pytest

from ansible_collections.ablage.ops.plugins.modules import pg_backup

Run = t.Callable[..., t.Any]


def write_manifest(directory: Path, name: str, database: str, created_at: str, **extra: t.Any) -> Path:
    payload = directory / f"{name}.dump"
    payload.write_bytes(b"PGDMP")
    manifest = {"tool": pg_backup.TOOL, "file": payload.name, "database": database, "created_at": created_at, **extra}
    path = directory / f"{name}.json"
    path.write_text(json.dumps(manifest), encoding="utf-8")
    return path


def test_names() -> None:
    when = datetime.datetime(2026, 1, 27, 10, 15, 0, tzinfo=datetime.UTC)
    assert pg_backup.backup_basename("ablage", "1.1.0", when) == "ablage_20260127T101500Z_1.1.0"
    assert pg_backup.backup_basename("my db/x", "release 2 (rc)", when) == "my-db-x_20260127T101500Z_release-2-rc"
    assert pg_backup.sanitize("///") == "x"
    assert pg_backup.payload_name("n", "custom") == "n.dump"
    assert pg_backup.payload_name("n", "directory") == "n.dir"
    assert pg_backup.manifest_path_for("/b/n.dump") == "/b/n.json"
    assert pg_backup.manifest_path_for("/b/n.dir/") == "/b/n.json"
    assert pg_backup.manifest_path_for("/b/other") == "/b/other.json"
    assert pg_backup.utcnow().tzinfo is not None


def test_scratch_names_fit_postgres_identifiers() -> None:
    name = pg_backup.scratch_name("d" * 80, "verify")
    assert len(name.encode()) <= 63
    assert "_verify_" in name
    assert pg_backup.scratch_name("ümläut" * 20, "restore").encode().__len__() <= 63
    assert pg_backup.scratch_name("a", "x") != pg_backup.scratch_name("a", "x")


def test_dbname_argument_is_never_a_connection_string() -> None:
    assert pg_backup.dbname_argument("ablage") == "ablage"
    assert pg_backup.dbname_argument("a=b") == "dbname='a=b'"
    assert pg_backup.dbname_argument("postgresql://evil") == "dbname='postgresql://evil'"
    assert pg_backup.dbname_argument("o'k=1") == "dbname='o\\'k=1'"


def test_checksums(tmp_path: Path) -> None:
    one = tmp_path / "one.dump"
    one.write_bytes(b"abc" * 1000)
    assert pg_backup.sha256_file(str(one)) == hashlib.sha256(b"abc" * 1000).hexdigest()
    assert pg_backup.compute_checksum(str(one), "custom") == {
        "algorithm": "sha256",
        "value": hashlib.sha256(b"abc" * 1000).hexdigest(),
    }
    directory = tmp_path / "x.dir"
    (directory / "sub").mkdir(parents=True)
    (directory / "toc.dat").write_bytes(b"toc")
    (directory / "3001.dat.gz").write_bytes(b"data")
    (directory / "sub" / "z").write_bytes(b"")
    files = pg_backup.directory_checksums(str(directory))
    assert sorted(files) == ["3001.dat.gz", "sub/z", "toc.dat"]
    listing = "".join(f"{files[n]}  {n}\n" for n in sorted(files))
    checksum = pg_backup.compute_checksum(str(directory), "directory")
    assert checksum["value"] == hashlib.sha256(listing.encode()).hexdigest()
    assert checksum["files"] == files
    assert pg_backup.payload_size(str(directory)) == 7
    assert pg_backup.payload_size(str(one)) == 3000


def test_load_manifests_and_retention(tmp_path: Path) -> None:
    assert pg_backup.load_manifests(str(tmp_path / "missing")) == []
    write_manifest(tmp_path, "ablage_1", "ablage", "2026-01-01T00:00:00.000000Z")
    write_manifest(tmp_path, "ablage_3", "ablage", "2026-03-01T00:00:00.000000Z")
    write_manifest(tmp_path, "ablage_2", "ablage", "2026-02-01T00:00:00.000000Z")
    write_manifest(tmp_path, "other_1", "other", "2026-04-01T00:00:00.000000Z")
    # Not ours, broken, hidden, or pointing outside the directory: ignored.
    (tmp_path / "foreign.json").write_text(json.dumps({"tool": "something else", "file": "x"}), encoding="utf-8")
    (tmp_path / "broken.json").write_text("{", encoding="utf-8")
    (tmp_path / "list.json").write_text("[]", encoding="utf-8")
    (tmp_path / ".partial.json").write_text("{}", encoding="utf-8")
    (tmp_path / "escape.json").write_text(
        json.dumps({"tool": pg_backup.TOOL, "file": "../etc/passwd", "database": "ablage"}), encoding="utf-8"
    )
    (tmp_path / "nofile.json").write_text(json.dumps({"tool": pg_backup.TOOL, "database": "ablage"}), encoding="utf-8")
    found = pg_backup.load_manifests(str(tmp_path), "ablage")
    assert [m["file"] for m in found] == ["ablage_3.dump", "ablage_2.dump", "ablage_1.dump"]
    assert found[0]["_payload_path"] == str(tmp_path / "ablage_3.dump")
    assert found[0]["_manifest_path"] == str(tmp_path / "ablage_3.json")
    assert len(pg_backup.load_manifests(str(tmp_path))) == 4

    assert pg_backup.select_for_removal(found, None) == []
    assert [m["file"] for m in pg_backup.select_for_removal(found, 2)] == ["ablage_1.dump"]
    assert [m["file"] for m in pg_backup.select_for_removal(found, 1)] == ["ablage_2.dump", "ablage_1.dump"]
    assert pg_backup.select_for_removal(found, 5) == []
    assert pg_backup.public_manifest(found[0]) == {
        "tool": pg_backup.TOOL,
        "file": "ablage_3.dump",
        "database": "ablage",
        "created_at": "2026-03-01T00:00:00.000000Z",
    }


def test_compare_data() -> None:
    same = pg_backup.compare_data({"public.a": 1}, {"public.a": 1}, "0003", "0003")
    assert same["equal"] is True
    assert same["mismatches"] == []
    diff = pg_backup.compare_data({"public.a": 1, "public.b": 2}, {"public.a": 0, "public.c": 5}, "0003", None)
    assert diff["equal"] is False
    assert diff["tables_match"] is False
    assert diff["revision_match"] is False
    assert diff["mismatches"] == [
        {"table": "public.a", "expected": 1, "actual": 0},
        {"table": "public.b", "expected": 2, "actual": None},
        {"table": "public.c", "expected": None, "actual": 5},
    ]
    assert pg_backup.format_revision(None) is None
    assert pg_backup.format_revision([]) is None
    assert pg_backup.format_revision(["a", "b"]) == "a,b"


def test_pid_alive_and_remove_path(tmp_path: Path) -> None:
    assert pg_backup.pid_alive(os.getpid()) is True
    assert pg_backup.pid_alive(2**22 + 12345) is False
    directory = tmp_path / "d"
    (directory / "x").mkdir(parents=True)
    pg_backup.remove_path(str(directory))
    file = tmp_path / "f"
    file.write_text("x", encoding="utf-8")
    pg_backup.remove_path(str(file))
    pg_backup.remove_path(str(tmp_path / "missing"))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            {"format": "directory", "command_prefix": ["docker", "exec", "-i", "pg"]},
            "format=directory cannot be streamed",
        ),
        ({"jobs": 0}, "jobs must be 1 or more"),
        ({"jobs": 4}, "pg_dump runs parallel jobs only with format=directory"),
        ({"compression": 10}, "compression must be between 0 and 9"),
        ({"keep": 0}, "keep must be 1 or more"),
        ({"command_prefix": []}, "command_prefix must name a command"),
        ({"maintenance_db": "ablage"}, "maintenance_db must be another database than database"),
        (
            {"pg_bin_dir": "/x", "command_prefix": ["docker"]},
            "parameters are mutually exclusive: pg_bin_dir|command_prefix",
        ),
        ({"format": "tar"}, "value of format must be one of: custom, directory"),
        ({"state": "absent"}, "value of state must be one of: present, restored"),
    ],
)
def test_argument_errors(run_module: Run, extra: dict[str, t.Any], message: str) -> None:
    result = run_module(pg_backup.main, {"database": "ablage", **extra})
    assert result.get("failed")
    assert message in result["msg"]


def test_database_is_required(run_module: Run) -> None:
    result = run_module(pg_backup.main, {})
    assert "missing required arguments: database" in result["msg"]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_connection_failure_names_the_target_and_the_fix(run_module: Run, tmp_path: Path) -> None:
    port = _closed_port()
    result = run_module(
        pg_backup.main,
        {
            "database": "ablage",
            "host": "127.0.0.1",
            "port": port,
            "user": "backup",
            "password": "pw-unit-secret",
            "backup_dir": str(tmp_path / "b"),
        },
    )
    assert result.get("failed")
    assert f"cannot connect to PostgreSQL as backup@127.0.0.1:{port}/ablage" in result["msg"]
    assert "Check host, port, user and password" in result["msg"]
    assert "pw-unit-secret" not in result["_raw"]
    assert not (tmp_path / "b").exists()


def test_missing_psycopg2(run_module: Run, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(pg_backup, "HAS_PSYCOPG2", False)
    result = run_module(pg_backup.main, {"database": "ablage", "backup_dir": str(tmp_path)})
    assert result.get("failed")
    assert "Failed to import the required Python library (psycopg2)" in result["msg"]


def test_restore_needs_a_complete_backup(run_module: Run, tmp_path: Path) -> None:
    base = {"database": "ablage", "state": "restored", "backup_dir": str(tmp_path)}
    latest = run_module(pg_backup.main, base)
    assert f"no complete backup of ablage in {tmp_path}" in latest["msg"]

    (tmp_path / "lonely.dump").write_bytes(b"PGDMP")
    no_manifest = run_module(pg_backup.main, dict(base, backup=str(tmp_path / "lonely.dump")))
    assert "has no manifest at" in no_manifest["msg"]
    assert "incomplete or not made by ablage.ops.pg_backup" in no_manifest["msg"]

    (tmp_path / "lonely.json").write_text("{not json", encoding="utf-8")
    broken = run_module(pg_backup.main, dict(base, backup=str(tmp_path / "lonely.dump")))
    assert "is not valid JSON" in broken["msg"]

    (tmp_path / "lonely.json").write_text(json.dumps({"tool": "x"}), encoding="utf-8")
    foreign = run_module(pg_backup.main, dict(base, backup=str(tmp_path / "lonely.json")))
    assert "is not a manifest of ablage.ops.pg_backup" in foreign["msg"]

    write_manifest(tmp_path, "gone", "ablage", "2026-01-01T00:00:00Z", format="custom", checksum={"value": "0"})
    (tmp_path / "gone.dump").unlink()
    missing = run_module(pg_backup.main, base)
    assert "backup" in missing["msg"]
    assert "is missing" in missing["msg"]


class FakeModule:
    def __init__(self, path: str | None = None) -> None:
        self.path = path

    def get_bin_path(self, name: str) -> str | None:
        return self.path


def test_tool_lookup(tmp_path: Path) -> None:
    params: dict[str, t.Any] = {"command_prefix": None, "pg_bin_dir": str(tmp_path), "user": "u"}
    with pytest.raises(pg_backup.BackupError, match=f"pg_dump not found at {tmp_path}/pg_dump: set pg_bin_dir"):
        pg_backup.PgTools(FakeModule(), params).argv("pg_dump")  # type: ignore[arg-type]
    tool = tmp_path / "pg_dump"
    tool.write_text("#!/bin/sh\n", encoding="utf-8")
    tool.chmod(0o755)
    assert pg_backup.PgTools(FakeModule(), params).argv("pg_dump", "-V") == [str(tool), "-V"]  # type: ignore[arg-type]

    on_path = dict(params, pg_bin_dir=None)
    with pytest.raises(pg_backup.BackupError, match="is not on the PATH of the managed host"):
        pg_backup.PgTools(FakeModule(None), on_path).argv("pg_restore")  # type: ignore[arg-type]
    assert pg_backup.PgTools(FakeModule("/usr/bin/pg_restore"), on_path).argv("pg_restore") == ["/usr/bin/pg_restore"]  # type: ignore[arg-type]

    prefixed = dict(params, pg_bin_dir=None, command_prefix=["docker", "exec", "-i", "pg"])
    tools = pg_backup.PgTools(FakeModule(), prefixed)  # type: ignore[arg-type]
    assert tools.streams is True
    assert tools.argv("pg_dump", "-Fc") == ["docker", "exec", "-i", "pg", "pg_dump", "-Fc"]
    assert tools.connection_args("ablage") == ["--dbname", "ablage", "--username", "u"]
    host = pg_backup.PgTools(FakeModule(), dict(params, password="s"))  # type: ignore[arg-type]
    assert host.connection_args("ablage") == ["--dbname", "ablage"]
    assert host.env["PGPASSWORD"] == "s"
    with pytest.raises(pg_backup.BackupError, match="cannot be streamed"):
        tools.run_restore_tool(["--list"], str(tmp_path), "directory")


def test_backup_revision_picks_the_newest_backup_at_that_revision(run_module: Run, tmp_path: Path) -> None:
    for name, created, revision in (
        ("old-0001", "2026-01-01T00:00:00Z", "0001"),
        ("new-0001", "2026-02-01T00:00:00Z", "0001"),
        ("newest-0002", "2026-03-01T00:00:00Z", "0002"),
    ):
        write_manifest(
            tmp_path, name, "ablage", created, format="custom", checksum={"value": "0"}, alembic_revision=revision
        )
    base = {"database": "ablage", "state": "restored", "backup_dir": str(tmp_path)}
    # The payloads do not match their checksums: the error names the backup that was picked, before any connection.
    picked = run_module(pg_backup.main, dict(base, backup_revision="0001"))
    assert "new-0001.dump is corrupted" in picked["msg"], picked["msg"]
    none = run_module(pg_backup.main, dict(base, backup_revision="0009"))
    assert "is at Alembic revision 0009 (the backups there are at 0001, 0002)" in none["msg"], none["msg"]
    named = run_module(pg_backup.main, dict(base, backup=str(tmp_path / "old-0001.dump"), backup_revision="0001"))
    assert "use it with backup=latest" in named["msg"]
