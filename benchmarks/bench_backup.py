"""ablage.ops.pg_backup against plain pg_dump / pg_restore on a pgbench database (~1 GB), alternating.

A throwaway PostgreSQL 15 cluster (initdb into a temporary directory, 127.0.0.1, a free port,
run as the ``postgres`` OS user when we are root) holds a database made by ``pgbench -i -s SCALE``
(scale 68 is about 1 GB on disk; BENCH_PG_SCALE=5 for a quick run). Nothing here touches the
reference stack. The module runs the way Ansible runs it on a host, minus Ansible's own task
overhead (measured by the other benchmarks): ``python -m ...plugins.modules.pg_backup ARGS.json``.

Comparisons, each side alternating with the other, ``--rounds`` times (``--restore-rounds`` for the
two that restore the whole database; medians, ratio):

- ``backup_list``: pg_backup verify=list (SHA-256 + manifest + row counts + checksum recomputed +
  ``pg_restore --list``) against ``pg_dump -Fc -f FILE``;
- ``backup_restore``: pg_backup verify=restore (also a test restore into a scratch database,
  compared with the manifest) against ``pg_dump -Fc`` and against ``pg_dump -Fc`` + ``createdb`` +
  ``pg_restore`` (the same work done by hand);
- ``restore``: pg_backup state=restored (verify, restore beside, compare, swap) against
  ``createdb`` + ``pg_restore`` of the same file;
- ``directory``: pg_backup format=directory with jobs=2 against jobs=1 (2 cores here).

    .venv/bin/python benchmarks/bench_backup.py [--rounds 3] [--scale 68] [--only backup_list,restore]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import typing as t
from collections.abc import Callable, Iterator
from pathlib import Path

import benchlib as bl

PG_BIN = Path(os.environ.get("ABLAGE_PG_BIN", "/usr/lib/postgresql/15/bin"))
SUPERUSER = "postgres"
DATABASE = "bench"
COMPARISONS = ("backup_list", "backup_restore", "restore", "directory")


class Cluster:
    """A throwaway PostgreSQL cluster on 127.0.0.1 (the integration tests' recipe, tests/integration/conftest.py)."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="ablage-bench-pg-", dir=os.environ.get("BENCH_TMPDIR")))
        self.data = self.root / "data"
        self.password = secrets.token_urlsafe(16)
        self.port = free_port()
        self.env = dict(os.environ, PGHOST="127.0.0.1", PGPORT=str(self.port), PGUSER=SUPERUSER)
        self.env["PGPASSWORD"] = self.password

    def as_postgres(self, argv: list[str]) -> list[str]:
        return ["runuser", "-u", SUPERUSER, "--", *argv] if os.geteuid() == 0 else argv

    def start(self) -> None:
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n", encoding="utf-8")
        if os.geteuid() == 0:
            entry = pwd.getpwnam(SUPERUSER)
            self.root.chmod(0o755)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
            os.chown(pwfile, entry.pw_uid, entry.pw_gid)
        pwfile.chmod(0o600)
        subprocess.run(
            self.as_postgres(
                [
                    str(PG_BIN / "initdb"),
                    "-D",
                    str(self.data),
                    "-U",
                    SUPERUSER,
                    "--auth=scram-sha-256",
                    f"--pwfile={pwfile}",
                    "--encoding=UTF8",
                    "--locale=C.UTF-8",
                    "--no-sync",
                    "--no-instructions",
                ]
            ),
            check=True,
            capture_output=True,
        )
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.root} "
            "-c fsync=off -c full_page_writes=off -c synchronous_commit=off -c max_wal_size=4GB"
        )
        subprocess.run(
            self.as_postgres(
                [
                    str(PG_BIN / "pg_ctl"),
                    "-D",
                    str(self.data),
                    "-l",
                    str(self.root / "log"),
                    "-o",
                    options,
                    "-w",
                    "start",
                ]
            ),
            check=True,
            capture_output=True,
        )

    def stop(self) -> None:
        subprocess.run(
            self.as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"]),
            check=False,
            capture_output=True,
        )
        shutil.rmtree(self.root, ignore_errors=True)

    def tool(self, name: str, *args: str) -> float:
        return bl.run([str(PG_BIN / name), *args], env=self.env)

    def sql(self, statement: str, database: str = "postgres") -> str:
        proc = subprocess.run(
            [str(PG_BIN / "psql"), "-X", "-qAt", "-d", database, "-c", statement],
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        )
        return proc.stdout.strip()

    @property
    def module_params(self) -> dict[str, t.Any]:
        return {
            "host": "127.0.0.1",
            "port": self.port,
            "user": SUPERUSER,
            "password": self.password,
            "pg_bin_dir": str(PG_BIN),
        }


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_module(args: dict[str, t.Any], workdir: Path) -> dict[str, t.Any]:
    """pg_backup's real main() in its own process, as AnsiballZ runs it (arguments from a JSON file)."""
    args_file = workdir / f"args-{secrets.token_hex(4)}.json"
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}), encoding="utf-8")
    args_file.chmod(0o600)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "ansible_collections.ablage.ops.plugins.modules.pg_backup", str(args_file)],
            env=dict(os.environ, PYTHONPATH=str(bl.REPO / ".collections")),
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        args_file.unlink()
    try:
        result: dict[str, t.Any] = json.loads(proc.stdout)
    except ValueError as exc:
        raise RuntimeError(f"pg_backup printed no JSON (exit {proc.returncode}): {proc.stderr[-1500:]}") from exc
    if result.get("failed"):
        raise RuntimeError(f"pg_backup failed: {result.get('msg')}")
    return result


@contextlib.contextmanager
def scratch_dir(parent: Path) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="run-", dir=parent))
    path.chmod(0o700)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


class Bench:
    def __init__(self, cluster: Cluster, work: Path) -> None:
        self.cluster = cluster
        self.work = work
        self.reference_dump = work / "reference.dump"

    def timed(self, fn: Callable[[Path], t.Any]) -> float:
        with scratch_dir(self.work) as where:
            started = time.monotonic()
            fn(where)
            return round(time.monotonic() - started, 3)

    # ------------------------------------------------------------ contestants
    def pg_dump(self, where: Path) -> None:
        self.cluster.tool("pg_dump", "-Fc", "-f", str(where / "plain.dump"), "-d", DATABASE)

    def pg_dump_and_restore(self, where: Path) -> None:
        self.pg_dump(where)
        self.plain_restore_file(where / "plain.dump")

    def plain_restore_file(self, dump: Path) -> None:
        name = f"bench_plain_{secrets.token_hex(3)}"
        self.cluster.tool("createdb", name)
        try:
            self.cluster.tool("pg_restore", "--exit-on-error", "-d", name, str(dump))
        finally:
            self.cluster.tool("dropdb", name)

    def module_backup(self, where: Path, verify: str, fmt: str = "custom", jobs: int = 1) -> dict[str, t.Any]:
        return run_module(
            {
                **self.cluster.module_params,
                "database": DATABASE,
                "backup_dir": str(where / "backups"),
                "label": "bench",
                "verify": verify,
                "format": fmt,
                "jobs": jobs,
            },
            self.work,
        )

    def module_restore(self, where: Path) -> None:
        # An empty database of its own is what the module replaces with the restored copy.
        target = f"bench_target_{secrets.token_hex(3)}"
        self.cluster.tool("createdb", target)
        try:
            run_module(
                {
                    **self.cluster.module_params,
                    "state": "restored",
                    "database": target,
                    "backup": str(self.reference_dump),
                },
                self.work,
            )
        finally:
            self.cluster.tool("dropdb", "--if-exists", target)

    def prepare_restore_source(self) -> None:
        """One backup with its manifest, made once, that both restore contestants restore."""
        result = self.module_backup(self.work, "none")
        shutil.move(result["backup_path"], self.reference_dump)
        manifest = json.loads(Path(result["manifest_path"]).read_text(encoding="utf-8"))
        manifest["file"] = self.reference_dump.name
        (self.work / "reference.json").write_text(json.dumps(manifest), encoding="utf-8")


def alternate(
    name: str, sides: dict[str, Callable[[Path], t.Any]], bench: Bench, rounds: int, results: list[dict[str, t.Any]]
) -> None:
    for order in bl.round_orders(list(sides), rounds):
        for side in order:
            seconds = bench.timed(sides[side])
            bl.log(f"{name}: {side} {seconds} s")
            results.append({"comparison": name, "contestant": side, "wall_s": seconds})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_BACKUP_ROUNDS", "3")))
    parser.add_argument(
        "--restore-rounds",
        type=int,
        default=int(os.environ.get("BENCH_BACKUP_RESTORE_ROUNDS", "2")),
        help="rounds of the comparisons that restore the whole database (backup_restore, restore)",
    )
    parser.add_argument("--scale", type=int, default=int(os.environ.get("BENCH_PG_SCALE", "68")))
    parser.add_argument("--only", default=",".join(COMPARISONS))
    parser.add_argument("--name", default="backup", help="results file name (benchmarks/results/NAME.json)")
    args = parser.parse_args()
    only = [c for c in args.only.split(",") if c]
    if not (PG_BIN / "initdb").exists():
        parser.error(f"no PostgreSQL server binaries in {PG_BIN} (set ABLAGE_PG_BIN)")

    cluster = Cluster()
    started = time.monotonic()
    try:
        cluster.start()
        bl.log(f"cluster on 127.0.0.1:{cluster.port}; pgbench -i -s {args.scale}")
        init_s = cluster.tool("createdb", DATABASE)
        init_s += bl.run([str(PG_BIN / "pgbench"), "-i", "-q", "-s", str(args.scale), DATABASE], env=cluster.env)
        size = int(cluster.sql(f"SELECT pg_database_size('{DATABASE}')"))
        bl.log(f"database {DATABASE}: {size / 1e9:.2f} GB, made in {init_s:.0f} s")
        work = cluster.root / "work"
        work.mkdir(mode=0o700)
        bench = Bench(cluster, work)
        results: list[dict[str, t.Any]] = []
        extra: dict[str, t.Any] = {}

        if "backup_list" in only:
            sides = {
                "pg_dump": bench.pg_dump,
                "pg_backup_list": lambda where: bench.module_backup(where, "list"),
            }
            alternate("backup_list", sides, bench, args.rounds, results)
        if "backup_restore" in only:
            sides = {
                "pg_dump": bench.pg_dump,
                "pg_dump_and_restore": bench.pg_dump_and_restore,
                "pg_backup_restore": lambda where: bench.module_backup(where, "restore"),
            }
            alternate("backup_restore", sides, bench, args.restore_rounds, results)
        if "restore" in only or "directory" in only:
            bench.prepare_restore_source()
            extra["dump_size_bytes"] = bench.reference_dump.stat().st_size
        if "restore" in only:
            sides = {
                "pg_restore": lambda where: bench.plain_restore_file(bench.reference_dump),
                "pg_backup_restored": bench.module_restore,
            }
            alternate("restore", sides, bench, args.restore_rounds, results)
        if "directory" in only:
            sides = {
                "directory_jobs1": lambda where: bench.module_backup(where, "list", "directory", 1),
                "directory_jobs2": lambda where: bench.module_backup(where, "list", "directory", 2),
            }
            alternate("directory", sides, bench, args.rounds, results)
    finally:
        cluster.stop()

    summaries: dict[str, t.Any] = {}
    pairs = {
        "backup_list": [("pg_backup_list", "pg_dump")],
        "backup_restore": [("pg_backup_restore", "pg_dump"), ("pg_backup_restore", "pg_dump_and_restore")],
        "restore": [("pg_backup_restored", "pg_restore")],
        "directory": [("directory_jobs2", "directory_jobs1")],
    }
    for comparison in only:
        runs = [r for r in results if r["comparison"] == comparison]
        summaries[comparison] = bl.summarize(runs, ["wall_s"], pairs[comparison])
    benchmark = {
        "benchmark": "backup",
        "scale": args.scale,
        "database_size_bytes": size,
        "rounds": args.rounds,
        "restore_rounds": args.restore_rounds,
    }
    bl.record(args.name, benchmark, started, results, {"summaries": summaries, **extra}, shown=summaries)
    return 0


if __name__ == "__main__":
    sys.exit(main())
