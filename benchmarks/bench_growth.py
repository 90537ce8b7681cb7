"""How the cost of a deploy 1.1.0 -> 1.1.1 grows with the database and with the number of app hosts (issue 17).

The other deploy benchmarks run on the reference stack's few megabytes of data and on one host, where
the steps that copy data (the verified pg_dump with its test restore, the application's own backup) take
seconds. These measurements show what they cost when the data grow, and what each extra app host adds.
Each case runs once: they are growth curves, not rounds to take medians of.

A) Database size, for each size S in GB (``--sizes``, default 1,10): the stack at 1.1.0, then the
   database ``ablage`` grown to about S GB with ``pgbench -i -s 68*S`` inside the postgres container
   (pgbench's tables sit next to the application's and are dumped and restored like user data; the real
   size is ``pg_database_size``). From 1.1.0 each time (``scripts/stack.sh up 1.1.0`` keeps the data):
   - ``window``: ``deploy.yml -i inventories/local -e ablage_version=1.1.1`` (no migration pending);
   - ``zero downtime``: ``playbooks/proxy.yml`` first (outside the timing), then the same deploy with
     ``ablage_proxy_enabled=true ablage_api_url=http://127.0.0.1:8080 ablage_deploy_strategy=zero_downtime``.
   Afterwards the pgbench tables are dropped (VACUUM), and the backups this run wrote (the deploy's in
   /var/lib/ablage-deploy/backups, the application's in its /backups volume) are deleted: disk matters.

B) App hosts, for each N (``--hosts``, default 1,2,4): the stack is the primary (/srv/ablage, :8000);
   N-1 app nodes (``scripts/stack.sh node up``: /srv/ablage-node2 :8001, -node3 :8003, -node4 :8004;
   8002 is the proxy's surge slot) share its database. A temporary inventory modelled on
   inventories/local and molecule/multihost lists them, primary first, and
   ``deploy.yml -e ablage_version=1.1.1 -e ablage_serial=1`` rolls them one at a time. The nodes are
   removed afterwards.

Measured for every deploy: the wall time; from outside, as bench_deploy.py does, the maintenance window
(Redis flag) and the outage a user sees (``GET /api/v1/documents/{id}`` every 50 ms, through the proxy
for zero downtime, else the primary's backend); and, from the profile_tasks callback's recap in the
run's log (benchmarks/results/logs/growth-<case>.log), the steps that grow with the data: pg_dump
backup, the application's backup, the migration, the start. A step not found is null.

Every case holds the stack lock (``scripts/stack.sh locked``) for its size or host count; every wait is
bounded. A failed case is recorded (ok: false, with the tail of its output) and the next one runs; the
benchmark then ends non-zero. Results: benchmarks/results/NAME.json (runs per case, growth ratios
against the smallest size and host count) and a Markdown table.

    .venv/bin/python benchmarks/bench_growth.py [--sizes 1,10] [--hosts 1,2,4] [--name growth]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import typing as t
from collections.abc import Mapping, Sequence
from pathlib import Path

import benchlib as bl

LOGS = bl.RESULTS / "logs"
STACK = bl.REPO / "scripts" / "stack.sh"
PLAYBOOK = str(bl.VENV_BIN / "ansible-playbook")
STRATEGIES = {"window": "window", "zero_downtime": "zero downtime", "window_pitr": "window, pitr"}
STANZA = "ablage"
GB = 1_000_000_000
SCALE_PER_GB = 68
PGBENCH_TABLES = ("pgbench_accounts", "pgbench_branches", "pgbench_history", "pgbench_tellers")
PGBENCH = 'PATH=/usr/lib/postgresql/15/bin:$PATH; exec pgbench -i -q -s "$1" -U postgres ablage'
DEPLOY_BACKUPS = Path("/var/lib/ablage-deploy/backups")
APP_BACKUPS = "/backups"
PROXY_CONTAINERS = ("ablage-proxy", "ablage-backend-surge")
INVENTORY = bl.REPO / "inventories" / "local"
PRIMARY = "ablage-local"
HOST_VARS = {"ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}"}

STACK_TIMEOUT = 600
NODE_TIMEOUT = 300
PLAYBOOK_TIMEOUT = 300
SQL_TIMEOUT = 600
RECOVERY_WAIT = 60
UNIT_CLEANUP = 900

RECAP = "TASKS RECAP"
TASK_TIME = re.compile(r"^(?P<name>\S.*?) -*\s?(?P<seconds>\d+\.\d+)s$")
STEPS: dict[str, tuple[str, ...]] = {
    "pg_dump_s": ("Deploy | Verified pg_dump backup",),
    "api_backup_s": ("Deploy | The application's full backup",),
    "migration_review_s": ("Deploy | Render and check the migration",),
    "migration_s": ("Deploy | Alembic upgrade head",),
    # ablage_backup_method pitr: the incremental base backup before the window, the restore point inside it.
    "base_backup_s": ("Deploy | pgBackRest base backup",),
    "restore_point_s": ("Deploy | Restore point in the WAL archive",),
    "start_s": (
        "Deploy | Start infrastructure, backend and worker",
        "Deploy | Wait until the started release answers",
        "Deploy | Start the new backend in the main slot",
        "Proxy | Start the surge slot",
        "Proxy | Wait until the surge slot answers",
    ),
}
METRICS = (
    "wall_s",
    "maintenance_s",
    "user_outage_s",
    "user_failed_s",
    *STEPS,
    "database_gb",
)
TABLE = (
    ("database GB", "database_gb", 2),
    ("wall s", "wall_s", 1),
    ("maintenance window s", "maintenance_s", 1),
    ("user outage s", "user_outage_s", 1),
    ("pg_dump s", "pg_dump_s", 1),
    ("base backup s", "base_backup_s", 1),
    ("restore point s", "restore_point_s", 1),
    ("API backup s", "api_backup_s", 1),
    ("migration s", "migration_s", 1),
    ("start s", "start_s", 1),
)


@dataclasses.dataclass(frozen=True)
class Node:
    """An extra app host: backend and worker of their own compose project, sharing the stack's database."""

    host: str
    port: int

    @property
    def project_dir(self) -> Path:
        return Path(f"/srv/{self.host}")

    @property
    def state_dir(self) -> Path:
        return Path(f"/var/lib/ablage-deploy-{self.host.removeprefix('ablage-')}")

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def stack_env(self) -> dict[str, str]:
        return {
            "ABLAGE_NODE_DIR": str(self.project_dir),
            "ABLAGE_NODE_PORT": str(self.port),
            "ABLAGE_NODE_PROJECT": self.host,
        }

    @property
    def host_vars(self) -> dict[str, t.Any]:
        return {
            **HOST_VARS,
            "ablage_project_dir": str(self.project_dir),
            "ablage_api_url": self.api_url,
            "ablage_state_dir": str(self.state_dir),
            "deploy_infra_services": [],
            "ablage_prometheus_url": "",
            "preflight_db_enabled": False,
        }


NODES = (Node("ablage-node2", 8001), Node("ablage-node3", 8003), Node("ablage-node4", 8004))
MAX_HOSTS = 1 + len(NODES)

# --------------------------------------------------------------------------- pure helpers


def parse_sizes(text: str) -> list[float]:
    sizes = sorted({float(item) for item in text.split(",") if item.strip()})
    if any(size <= 0 for size in sizes):
        raise ValueError(f"database sizes must be positive GB, not {text!r}")
    return sizes


def parse_hosts(text: str) -> list[int]:
    hosts = sorted({int(item) for item in text.split(",") if item.strip()})
    if any(not 1 <= n <= MAX_HOSTS for n in hosts):
        raise ValueError(f"host counts must be 1 to {MAX_HOSTS}, not {text!r}")
    return hosts


def scale_for_size(size_gb: float) -> int:
    """pgbench's scale for a database of about ``size_gb`` GB on disk (scale 68 is about 1 GB)."""
    return max(1, round(size_gb * SCALE_PER_GB))


def size_label(size_gb: float) -> str:
    return f"{size_gb:g} GB"


def strategies() -> list[str]:
    """The deploy strategies measured at each size: BENCH_GROWTH_STRATEGIES (comma-separated), default all."""
    chosen = [
        s.strip() for s in os.environ.get("BENCH_GROWTH_STRATEGIES", ",".join(STRATEGIES)).split(",") if s.strip()
    ]
    unknown = [s for s in chosen if s not in STRATEGIES]
    if unknown or not chosen:
        raise ValueError(
            f"BENCH_GROWTH_STRATEGIES: {', '.join(unknown) or 'none given'}; known: {', '.join(STRATEGIES)}"
        )
    return chosen


def db_case(size_gb: float, strategy: str) -> str:
    return f"{size_label(size_gb)}, {STRATEGIES[strategy]}"


def hosts_case(hosts: int) -> str:
    return f"{hosts} host{'' if hosts == 1 else 's'}, serial 1"


def slug(case: str) -> str:
    return re.sub(r"[^a-z0-9.]+", "-", case.lower()).strip("-")


def parse_task_times(output: str) -> list[tuple[str, float]]:
    """(task, seconds) from the profile_tasks recap at the end of ansible's output, in the recap's order.

    Lines read ``<task> ----- 12.34s`` (no dashes when the name fills the line); only the lines after
    the last ``TASKS RECAP`` banner are read, all lines when there is none.
    """
    lines = output.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith(RECAP)]
    tasks = []
    for line in lines[starts[-1] + 1 :] if starts else lines:
        match = TASK_TIME.match(line.rstrip())
        if match:
            tasks.append((match["name"], float(match["seconds"])))
    return tasks


def step_seconds(tasks: Sequence[tuple[str, float]]) -> dict[str, float | None]:
    """Seconds of each step of STEPS: the sum over the tasks whose name contains one of its names; None if none."""
    steps: dict[str, float | None] = {}
    for step, names in STEPS.items():
        matched = [seconds for task, seconds in tasks if any(name in task for name in names)]
        steps[step] = round(sum(matched), 3) if matched else None
    return steps


def slowest_tasks(tasks: Sequence[tuple[str, float]], count: int = 10) -> list[dict[str, t.Any]]:
    return [{"task": task, "s": seconds} for task, seconds in sorted(tasks, key=lambda item: -item[1])[:count]]


def inventory(hosts: int) -> dict[str, t.Any]:
    """The YAML inventory (as data) of the primary and ``hosts`` - 1 nodes; group_vars come from inventories/local."""
    if not 1 <= hosts <= MAX_HOSTS:
        raise ValueError(f"{hosts} app hosts: 1 to {MAX_HOSTS} are possible here")
    members: dict[str, t.Any] = {PRIMARY: dict(HOST_VARS)}
    for node in NODES[: hosts - 1]:
        members[node.host] = node.host_vars
    return {"ablage_app": {"hosts": members}}


def write_inventory(directory: Path, hosts: int) -> Path:
    """hosts.yml (JSON is YAML) and a link to inventories/local/group_vars in ``directory``."""
    (directory / "hosts.yml").write_text(json.dumps(inventory(hosts), indent=2) + "\n", encoding="utf-8")
    (directory / "group_vars").symlink_to(INVENTORY / "group_vars", target_is_directory=True)
    return directory


def growth_pairs(sizes: Sequence[float], hosts: Sequence[int]) -> list[tuple[str, str]]:
    """(case, baseline) pairs: every size against the smallest, every host count against the smallest."""
    pairs = [(db_case(size, strategy), db_case(sizes[0], strategy)) for strategy in strategies() for size in sizes[1:]]
    pairs += [(hosts_case(n), hosts_case(hosts[0])) for n in hosts[1:]]
    return pairs


def failed_run(case: str, error: str, **extra: t.Any) -> dict[str, t.Any]:
    return {"contestant": case, "case": case, "ok": False, "error": error[-2000:], **extra}


def cell(value: t.Any, places: int) -> str:
    if value is None:
        return "n/a"
    return f"{float(value):.{places}f}"


# A step under this many seconds was skipped: profile_tasks still lists a skipped task, at 0.02-0.1 s
# (more with several hosts or a loaded machine); the steps measured here take 0.9 s and more.
SKIPPED_BELOW_S = 0.2


def step_cell(key: str, value: t.Any, places: int) -> str:
    """A step that did not run in this case (the dump of a pitr deploy) reads "-", not 0.0."""
    if key in STEPS and value is not None and float(value) < SKIPPED_BELOW_S:
        return "-"
    return cell(value, places)


def markdown_table(runs: Sequence[Mapping[str, t.Any]]) -> str:
    header = ["case", *(title for title, _key, _places in TABLE)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for run in runs:
        case = str(run["case"]) + ("" if run.get("ok") else " (failed)")
        cells = [step_cell(key, run.get(key), places) for _title, key, places in TABLE]
        lines.append("| " + " | ".join([case, *cells]) + " |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- commands, bounded


def stop_group(proc: subprocess.Popen[str], grace: float) -> tuple[str, str]:
    """SIGTERM to the process group, SIGKILL after ``grace`` seconds; what it printed until then."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            stdout, stderr = proc.communicate(timeout=wait)
            return stdout or "", stderr or ""
        except subprocess.TimeoutExpired:
            continue
    return "", ""


def run_bounded(
    argv: Sequence[str],
    *,
    timeout: float,
    env: Mapping[str, str] | None = None,
    log_file: Path | None = None,
    capture: bool = True,
    grace: float = 30.0,
) -> tuple[float, int, str]:
    """(wall seconds, exit status, stdout + stderr) of a command in a process group of its own.

    Past ``timeout`` the group is stopped (status 124); on an interrupt (Ctrl-C, or SIGTERM in a unit)
    it is stopped too, with ``grace`` seconds to clean up, and the interrupt goes on.
    """
    started = time.monotonic()
    out = subprocess.PIPE if capture else None
    proc = subprocess.Popen(
        list(argv),
        stdout=out,
        stderr=out,
        text=True,
        env=dict(env) if env is not None else None,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
        status = proc.returncode
    except subprocess.TimeoutExpired:
        stdout, stderr = stop_group(proc, grace)
        status = 124
        stderr += f"\n{argv[0]}: stopped after {timeout:.0f} s"
    except KeyboardInterrupt:
        bl.log(f"interrupted: stopping {argv[0]} (up to {grace:.0f} s)")
        stop_group(proc, grace)
        raise
    elapsed = time.monotonic() - started
    output = (stdout or "") + ("\n--- stderr ---\n" + stderr if stderr else "")
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        log_file.write_text(output, encoding="utf-8")
    return elapsed, status, output


def tail(output: str, lines: int = 25) -> str:
    return "\n".join(output.splitlines()[-lines:])


def check(
    argv: Sequence[str], *, timeout: float, env: Mapping[str, str] | None = None, log_file: Path | None = None
) -> tuple[float, str]:
    elapsed, status, output = run_bounded(argv, timeout=timeout, env=env, log_file=log_file)
    if status != 0:
        raise RuntimeError(f"{' '.join(argv)} failed (exit {status}):\n{tail(output)}")
    return elapsed, output


def compose_exec(service: str, *argv: str) -> list[str]:
    return ["docker", "compose", "--project-directory", str(bl.PROJECT_DIR), "exec", "-T", service, *argv]


def sql(*statements: str, timeout: float = SQL_TIMEOUT) -> str:
    commands = [arg for statement in statements for arg in ("-c", statement)]
    _elapsed, output = check(
        compose_exec("postgres", "psql", "-X", "-U", "postgres", "-d", "ablage", "-tA", *commands), timeout=timeout
    )
    return output.strip()


def database_bytes() -> int:
    return int(sql("SELECT pg_database_size('ablage')").splitlines()[0])


# --------------------------------------------------------------------------- the stack


def reset_stack(version: str) -> float:
    """The primary at ``version``, maintenance off (as bench_deploy.reset_stack)."""
    elapsed, _output = check(["bash", str(STACK), "up", version], timeout=STACK_TIMEOUT)
    bl.maintenance_off()
    return elapsed


def node(action: str, target: Node, version: str | None = None) -> None:
    argv = ["bash", str(STACK), "node", action, *([version] if version else [])]
    check(argv, timeout=NODE_TIMEOUT, env={**os.environ, **target.stack_env})


def grow_database(size_gb: float) -> dict[str, t.Any]:
    scale = scale_for_size(size_gb)
    bl.log(f"{size_label(size_gb)}: pgbench -i -s {scale}")
    elapsed, _output = check(
        compose_exec("postgres", "sh", "-c", PGBENCH, "pgbench", str(scale)), timeout=900 + 240 * size_gb
    )
    size = database_bytes()
    bl.log(f"{size_label(size_gb)}: database ablage is {size / GB:.2f} GB (grown in {elapsed:.0f} s)")
    return {"pgbench_scale": scale, "grow_s": round(elapsed, 1), "database_bytes": size}


def shrink_database() -> None:
    sql(f"DROP TABLE IF EXISTS {', '.join(PGBENCH_TABLES)}", "VACUUM")


def free_gb(path: Path) -> float:
    while not path.exists():
        path = path.parent
    return shutil.disk_usage(path).free / GB


def delete_backups_since(since: float) -> None:
    """The backups written since ``since`` (epoch s): the deploy's on the host, the application's in its volume."""
    removed = 0
    if DEPLOY_BACKUPS.is_dir():
        for entry in DEPLOY_BACKUPS.iterdir():
            if entry.lstat().st_mtime >= since:
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
                removed += 1
    bl.log(f"removed {removed} entries of {DEPLOY_BACKUPS} written during this run")
    minutes = math.ceil((time.time() - since) / 60) + 1
    script = f'find {APP_BACKUPS} -maxdepth 1 -type f -mmin "-$1" -print -delete | wc -l'
    _elapsed, output = check(compose_exec("backend", "sh", "-c", script, "sh", str(minutes)), timeout=120)
    bl.log(f"removed {output.strip()} files of the application's {APP_BACKUPS} written during this run")


def pitr_full_backup(size_gb: float) -> float:
    """The stanza and a full base backup, outside the timing: what a schedule (nightly) leaves before a deploy."""
    check(compose_exec("postgres", "pgbackrest", f"--stanza={STANZA}", "stanza-create"), timeout=SQL_TIMEOUT)
    elapsed, _output = check(
        compose_exec("postgres", "pgbackrest", f"--stanza={STANZA}", "--type=full", "backup"),
        timeout=900 + 300 * size_gb,
    )
    bl.log(f"{size_label(size_gb)}: pgBackRest full backup in {elapsed:.0f} s (outside the timing)")
    return round(elapsed, 1)


def pitr_remove() -> None:
    """The repository emptied: without archive.info the stack's archive_command lets WAL go again (compose.yml)."""
    check(
        compose_exec("postgres", "sh", "-c", "rm -rf /var/lib/pgbackrest/archive /var/lib/pgbackrest/backup"),
        timeout=SQL_TIMEOUT,
    )


def proxy_running() -> bool:
    _elapsed, status, output = run_bounded(
        ["docker", "ps", "-q", "--filter", f"name=^{PROXY_CONTAINERS[0]}$"], timeout=60
    )
    return status == 0 and bool(output.strip())


def remove_proxy() -> None:
    run_bounded(["docker", "rm", "-f", *PROXY_CONTAINERS], timeout=120)


def remove_dir(path: Path) -> None:
    if path.exists():
        shutil.rmtree(path)


def interrupted(_signum: int, _frame: t.Any) -> None:
    raise KeyboardInterrupt


def cleanup(what: str, action: t.Callable[[], object]) -> None:
    try:
        action()
    except Exception as exc:  # one failed clean-up step must not skip the others
        bl.log(f"clean-up {what} failed: {exc}")


# --------------------------------------------------------------------------- one deploy


def deploy_argv(inventory_path: str | Path, version: str, *extra: str) -> list[str]:
    return [PLAYBOOK, "playbooks/deploy.yml", "-i", str(inventory_path), "-e", f"ablage_version={version}", *extra]


def measure(case: str, argv: Sequence[str], api: str, timeout: float) -> dict[str, t.Any]:
    """One deploy, timed and watched from outside (as bench_deploy.run_contestant), its steps from the recap."""
    secrets = bl.env_production()
    user = bl.login(secrets["SMOKE_USERNAME"], secrets["SMOKE_PASSWORD"])
    document = bl.upload_probe_document(user)
    env = bl.ansible_env(
        ANSIBLE_CALLBACKS_ENABLED="ansible.posix.profile_tasks",
        PROFILE_TASKS_SORT_ORDER="none",
        PROFILE_TASKS_TASK_OUTPUT_LIMIT="all",
    )
    log_file = LOGS / f"growth-{slug(case)}.log"
    poller = bl.Poller(user_url=f"{api}/api/v1/documents/{document}", user_token=user)
    poller.start()
    time.sleep(1.0)
    started = poller.now()
    bl.log(f"{case}: deploying ({' '.join(argv[1:])})")
    _elapsed, status, output = run_bounded(argv, timeout=timeout, env=env, log_file=log_file)
    finished = poller.now()
    deadline = time.monotonic() + RECOVERY_WAIT
    while time.monotonic() < deadline:
        time.sleep(0.5)
        if poller.user and poller.user[-1][1] and poller.now() - finished > 1.0:
            break
    seen = poller.stop()
    tasks = parse_task_times(output)
    outage, maintenance = seen["user_outage"], seen["maintenance"]
    run = {
        "contestant": case,
        "case": case,
        "ok": status == 0,
        "error": None if status == 0 else f"exit {status}:\n{tail(output)}"[-2000:],
        "wall_s": round(finished - started, 3),
        "maintenance_s": maintenance["window_s"],
        "user_outage_s": outage["window_s"],
        "user_failed_s": outage["failed_s"],
        "user_statuses": seen["user_statuses"],
        "samples": seen["samples"],
        **step_seconds(tasks),
        "tasks_profiled": len(tasks),
        "slowest_tasks": slowest_tasks(tasks),
        "log": str(log_file.relative_to(bl.REPO)),
    }
    bl.log(
        f"{case}: wall {run['wall_s']} s, maintenance {run['maintenance_s']} s, user outage {run['user_outage_s']} s, "
        f"pg_dump {run['pg_dump_s']} s, API backup {run['api_backup_s']} s{'' if run['ok'] else ' FAILED'}"
    )
    return run


# --------------------------------------------------------------------------- units (each under the stack lock)


class Unit:
    """The cases of one size or one host count, run in a child process that holds the stack lock."""

    def __init__(self, out: Path, from_version: str, to_version: str) -> None:
        self.out = out
        self.from_version = from_version
        self.to_version = to_version
        self.runs: list[dict[str, t.Any]] = []

    def add(self, run: dict[str, t.Any]) -> None:
        self.runs.append(run)
        self.out.write_text(json.dumps(self.runs), encoding="utf-8")

    def attempt(self, case: str, action: t.Callable[[], dict[str, t.Any]], **extra: t.Any) -> None:
        try:
            run = action()
        except Exception as exc:  # a failed case is recorded and the next one runs
            bl.log(f"{case}: FAILED: {exc}")
            run = failed_run(case, str(exc))
        self.add({**run, **extra})

    def database(self, size_gb: float) -> None:
        since = time.time()
        cases = [(strategy, db_case(size_gb, strategy)) for strategy in strategies()]
        proxy_before = proxy_running()
        grown: dict[str, t.Any] | None = None
        try:
            reset_stack(self.from_version)
            needed = 2.5 * size_gb + 5
            available = free_gb(Path("/var/lib/docker"))
            if available < needed:
                raise RuntimeError(f"{available:.0f} GB free, {needed:.0f} GB needed for {size_label(size_gb)}")
            grown = grow_database(size_gb)
        except Exception as exc:  # nothing to measure at this size
            bl.log(f"{size_label(size_gb)}: FAILED before the deploys: {exc}")
            for _strategy, case in cases:
                self.add(failed_run(case, f"preparing {size_label(size_gb)}: {exc}", size_gb=size_gb))
        try:
            if grown is not None:
                extra = {**grown, "size_gb": size_gb, "database_gb": round(grown["database_bytes"] / GB, 3)}
                for strategy, case in cases:
                    self.attempt(case, functools.partial(self.deploy, strategy, case, size_gb), **extra)
        finally:
            cleanup("drop the pgbench tables", shrink_database)
            cleanup(f"reset to {self.from_version}", functools.partial(reset_stack, self.from_version))
            cleanup("delete this run's backups", functools.partial(delete_backups_since, since))
            cleanup("empty the pgBackRest repository", pitr_remove)
            if not proxy_before:
                cleanup("remove the proxy", remove_proxy)

    def deploy(self, strategy: str, case: str, size_gb: float) -> dict[str, t.Any]:
        reset_stack(self.from_version)
        timeout = 1200 + 180 * size_gb
        if strategy == "zero_downtime":
            proxy_log = LOGS / f"growth-{slug(case)}-proxy.log"
            proxy = [PLAYBOOK, "playbooks/proxy.yml", "-i", str(INVENTORY)]
            check(proxy, timeout=PLAYBOOK_TIMEOUT, env=bl.ansible_env(), log_file=proxy_log)
            return measure(case, deploy_argv(INVENTORY, self.to_version, *bl.ZERO_DOWNTIME_VARS), bl.PROXY, timeout)
        if strategy == "window_pitr":
            full_s = pitr_full_backup(size_gb)
            run = measure(
                case, deploy_argv(INVENTORY, self.to_version, "-e", "ablage_backup_method=pitr"), bl.API, timeout
            )
            return {**run, "full_backup_s": full_s}
        return measure(case, deploy_argv(INVENTORY, self.to_version), bl.API, timeout)

    def hosts(self, count: int) -> None:
        case = hosts_case(count)
        nodes = NODES[: count - 1]
        try:
            self.attempt(case, functools.partial(self.rolling, count, nodes), hosts=count)
        finally:
            for extra in reversed(nodes):
                cleanup(f"{extra.host} down", functools.partial(node, "down", extra))
                cleanup(f"remove {extra.project_dir}", functools.partial(remove_dir, extra.project_dir))
                cleanup(f"remove {extra.state_dir}", functools.partial(remove_dir, extra.state_dir))
            cleanup(f"reset to {self.from_version}", functools.partial(reset_stack, self.from_version))

    def rolling(self, count: int, nodes: Sequence[Node]) -> dict[str, t.Any]:
        for extra in nodes:
            remove_dir(extra.state_dir)
        reset_stack(self.from_version)
        for extra in nodes:
            bl.log(f"{extra.host}: up at {self.from_version} on {extra.api_url}")
            node("up", extra, self.from_version)
        size = database_bytes()
        with tempfile.TemporaryDirectory(prefix="ablage-growth-inventory-") as tmp:
            path = write_inventory(Path(tmp), count)
            argv = deploy_argv(path, self.to_version, "-e", "ablage_serial=1")
            run = measure(hosts_case(count), argv, bl.API, 900 + 300 * count)
        return {**run, "database_gb": round(size / GB, 3), "nodes": [n.host for n in nodes]}


def run_unit(args: argparse.Namespace) -> int:
    signal.signal(signal.SIGTERM, interrupted)
    unit = Unit(Path(args.unit_json), args.from_version, args.to_version)
    kind, _sep, value = args.unit.partition(":")
    if kind == "db":
        unit.database(float(value))
    elif kind == "hosts":
        unit.hosts(int(value))
    else:
        raise SystemExit(f"unknown unit {args.unit!r}")
    return 0 if all(run["ok"] for run in unit.runs) else 1


def unit_cases(unit: str) -> list[str]:
    kind, _sep, value = unit.partition(":")
    if kind == "db":
        return [db_case(float(value), strategy) for strategy in strategies()]
    return [hosts_case(int(value))]


def unit_timeout(unit: str) -> float:
    kind, _sep, value = unit.partition(":")
    lock_wait = float(os.environ.get("ABLAGE_STACK_LOCK_WAIT", "900"))
    if kind == "db":
        return lock_wait + 6 * STACK_TIMEOUT + 3 * PLAYBOOK_TIMEOUT + 2 * SQL_TIMEOUT + 5000 + 1400 * float(value)
    return lock_wait + 2 * STACK_TIMEOUT + 6 * NODE_TIMEOUT + 900 + 300 * int(value)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--sizes",
        default=os.environ.get("BENCH_GROWTH_SIZES", "1,10"),
        help="database sizes in GB (comma-separated; empty: none)",
    )
    parser.add_argument(
        "--hosts",
        default=os.environ.get("BENCH_GROWTH_HOSTS", "1,2,4"),
        help=f"app host counts, 1 to {MAX_HOSTS} (empty: none)",
    )
    parser.add_argument("--from-version", default="1.1.0")
    parser.add_argument("--to-version", default="1.1.1")
    parser.add_argument("--name", default="growth", help="results file name (benchmarks/results/NAME.json)")
    parser.add_argument("--unit", help=argparse.SUPPRESS)
    parser.add_argument("--unit-json", help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.chdir(bl.REPO)
    if args.unit:
        return run_unit(args)
    try:
        sizes, hosts = parse_sizes(args.sizes), parse_hosts(args.hosts)
    except ValueError as exc:
        parser.error(str(exc))
    units = [f"db:{size:g}" for size in sizes] + [f"hosts:{count}" for count in hosts]
    if not units:
        parser.error("nothing to measure: give --sizes and/or --hosts")

    runs: list[dict[str, t.Any]] = []
    started = time.monotonic()
    stopped = False
    for unit in units:
        with tempfile.NamedTemporaryFile(suffix=".json") as handle:
            argv = [
                sys.executable,
                __file__,
                "--unit",
                unit,
                "--unit-json",
                handle.name,
                "--from-version",
                args.from_version,
                "--to-version",
                args.to_version,
            ]
            bl.log(f"{unit}: waiting for the stack lock")
            try:
                _elapsed, status, _output = run_bounded(
                    bl.under_stack_lock(argv), timeout=unit_timeout(unit), capture=False, grace=UNIT_CLEANUP
                )
            except KeyboardInterrupt:
                status, stopped = 130, True
            text = Path(handle.name).read_text(encoding="utf-8")
        try:
            done = json.loads(text) if text.strip() else []
        except ValueError:
            done = []
        runs.extend(done)
        seen = {run["case"] for run in done}
        for case in unit_cases(unit):
            if case not in seen:
                runs.append(failed_run(case, f"not measured: the unit {unit} ended with exit {status}"))
        if stopped:
            bl.log("interrupted: the cases measured so far are recorded")
            break

    summary = bl.summarize([r for r in runs if r["ok"]], METRICS, growth_pairs(sizes, hosts))
    benchmark = {
        "benchmark": "growth",
        "from_version": args.from_version,
        "to_version": args.to_version,
        "sizes_gb": sizes,
        "hosts": hosts,
        "pgbench_scale_per_gb": SCALE_PER_GB,
        "nodes": {n.host: n.api_url for n in NODES},
    }
    bl.record(args.name, benchmark, started, runs, summary, shown={"ratios": summary["ratios"]})
    print()
    print(markdown_table(runs))
    return 0 if runs and all(run["ok"] for run in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
