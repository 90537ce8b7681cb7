"""The fault campaign: every failure a Friday-evening deploy can meet, with users writing meanwhile.

Each case runs playbooks/deploy.yml (1.0.0 -> 1.1.0, a migration pending) against the reference
stack while a user uploads documents and queues OCR jobs (tests/integration/user_load.py), and
injects one fault: the controller killed (SIGKILL) or cancelled (SIGTERM, as AWX cancels) when a
given step begins, an external part failing at the step that uses it, or bad state and input.
When the run cannot clean up after itself (it was killed, or it refused a lock) the documented
recovery of docs/runbook.md runs next. Then the system must be as users need it:

- a known version healthy, maintenance off, the deploy lock free;
- every document and OCR job the API confirmed still there (0 rows lost), every job completed
  or still queued;
- no password or token in the output of the run or the recovery;
- and where the fault came before anything changed: the running containers never restarted.

Each case's outcome (what the run did, the phase it left, the time to recovery, rows written and
lost) is collected and rendered as docs/reliability.md (``ABLAGE_RELIABILITY_DOC`` names the
file to write; by default it goes next to the other test artefacts in /tmp).
"""

from __future__ import annotations

import calendar
import contextlib
import dataclasses
import json
import os
import re
import signal
import subprocess
import textwrap
import threading
import time
import typing as t
import uuid
from pathlib import Path

import pytest
import requests
from reference_stack import (
    API_URL,
    ENV_FILE,
    PROJECT_DIR,
    REPO,
    VENV_BIN,
    Stack,
    ansible_env,
    containers,
    prepared_stack,
    read_env_file,
)
from user_load import UserLoad, audit

pytestmark = pytest.mark.stack

STATE_DIR = Path(os.environ.get("ABLAGE_STATE_DIR", "/var/lib/ablage-deploy"))
INVENTORY = REPO / "inventories" / "local"
DOC = Path(os.environ.get("ABLAGE_RELIABILITY_DOC", "/tmp/ablage-campaign/reliability.md"))
FROM, TO = "1.0.0", "1.1.0"
KNOWN_VERSIONS = {FROM, TO}
# The documented recovery after a run that died (docs/runbook.md, "A deploy was killed"):
RECOVERY = ["playbooks/rollback.yml", "-e", "deploy_lock_break=true", "-e", "rollback_note=fault campaign recovery"]


@dataclasses.dataclass
class Fault:
    """One fault: what is done to the run, and what the run must do about it."""

    id: str
    group: str
    what: str
    args: list[str] = dataclasses.field(default_factory=list)
    # The fault strikes when a task whose name contains ``at`` begins (None: at the start).
    at: str | None = None
    ready: t.Callable[[], bool] | None = None  # after ``at``, wait until this holds (bounded)
    signal: int | None = None
    inject: t.Callable[[], None] | None = None
    before: t.Callable[[], None] | None = None
    heal: t.Callable[[], None] | None = None  # the operator fixes the cause
    recovery: list[str] | None = None  # the documented recovery, when the run cannot clean up itself
    expect: str = "rolled_back"  # rolled_back | untouched | killed | success
    preflight: bool = False
    # The fault came before users were locked out: neither the run nor the recovery may restart the app.
    no_restart: bool = False
    # Further checks of this case after the run: (output, the user load) -> problems.
    check: t.Callable[[str, UserLoad], list[str]] | None = None


@dataclasses.dataclass
class Outcome:
    fault: Fault
    rc: int
    said: str
    phase_left: str
    maintenance_left: bool | None
    lock_left: bool
    recovery_rc: int | None
    recovered_s: float
    version: str
    written: int
    jobs: int
    lost: int
    restarted: bool
    problems: list[str]


OUTCOMES: list[Outcome] = []


# --------------------------------------------------------------------------- the stack's parts


def _compose_container(service: str) -> str:
    return containers()[service][0]


def _docker(*argv: str) -> None:
    subprocess.run(["docker", *argv], check=True, capture_output=True, timeout=120)


def _oneoff_running() -> bool:
    """A `docker compose run` container (the Alembic migration) of the project is running."""
    out = subprocess.run(
        [
            "docker",
            "ps",
            "-q",
            "--filter",
            "label=com.docker.compose.oneoff=True",
            "--filter",
            "label=com.docker.compose.project=ablage",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    ).stdout
    return bool(out.strip())


def _cmdlines() -> t.Iterator[tuple[int, list[bytes]]]:
    """(pid, argv) of every process that can still be read."""
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                yield int(proc.name), (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue


class Registry:
    """The local registry process (scripts/infra.sh): stopped for a fault, started again as it was."""

    argv: t.ClassVar[list[str]] = []

    @staticmethod
    def _find() -> tuple[int, list[str]] | None:
        for pid, argv in _cmdlines():
            if argv and argv[0].endswith(b"docker-registry") and b"serve" in argv:
                return pid, [a.decode() for a in argv if a]
        return None

    @classmethod
    def stop(cls) -> None:
        found = cls._find()
        assert found, "the registry process of scripts/infra.sh is not running"
        pid, cls.argv = found
        os.kill(pid, signal.SIGTERM)
        _wait(lambda: cls._find() is None, 20, "the registry to stop")

    @classmethod
    def start(cls) -> None:
        if cls._find() is None:
            log = open("/tmp/ablage-campaign-registry.log", "ab")  # noqa: SIM115 - the daemon keeps it
            subprocess.Popen(cls.argv, stdout=log, stderr=log, start_new_session=True)
        _wait(lambda: _http_ok("http://127.0.0.1:5000/v2/"), 30, "the registry to answer")


FULL_DIR = Path("/tmp/ablage-campaign-full")


def _fill_backup_dir() -> None:
    """A small filesystem for the backups, already full."""
    FULL_DIR.mkdir(parents=True, exist_ok=True)
    subprocess.run(["umount", str(FULL_DIR)], capture_output=True, check=False)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", str(FULL_DIR)], check=True)
    subprocess.run(["dd", "if=/dev/zero", f"of={FULL_DIR}/filler", "bs=4k"], capture_output=True, check=False)


def _empty_backup_dir() -> None:
    subprocess.run(["umount", str(FULL_DIR)], capture_output=True, check=False)


def _hide_api_pg_dump() -> None:
    """The application's own backup (POST /api/v1/backup/full) fails: its pg_dump is gone."""
    script = 'p="$(command -v pg_dump)" && mv "$p" /tmp/pg_dump.hidden && echo "$p" >/tmp/pg_dump.path'
    subprocess.run(
        ["docker", "exec", "-u", "0", _compose_container("backend"), "sh", "-c", script],
        check=True,
        capture_output=True,
        timeout=30,
    )


def _restore_api_pg_dump() -> None:
    """Undo _hide_api_pg_dump, and check it: a later case would fail at its API backup otherwise."""
    # -L too: pg_dump is a symlink whose relative target does not resolve from /tmp.
    hidden = "/tmp/pg_dump.hidden"
    script = f'if [ -e {hidden} ] || [ -L {hidden} ]; then mv {hidden} "$(cat /tmp/pg_dump.path)"; fi'
    subprocess.run(
        ["docker", "exec", "-u", "0", _compose_container("backend"), "sh", "-c", script + " && command -v pg_dump"],
        check=True,
        capture_output=True,
        timeout=30,
    )


def _long_job(seconds: int = 60) -> None:
    """A job the worker is busy with for ``seconds``: the drain waits on it (never-drains: past its bound)."""
    stack = Stack()
    headers = {"Authorization": f"Bearer {stack.user_token}"}
    up = requests.post(
        f"{API_URL}/api/v1/documents/",
        headers=headers,
        files={"file": ("long.txt", "a long job", "text/plain")},
        timeout=10,
    )
    job = requests.post(
        f"{API_URL}/api/v1/ocr/process",
        headers=headers,
        json={"document_id": up.json()["id"], "simulate_seconds": seconds},
        timeout=10,
    )
    assert job.status_code == 202, job.text


def _write_lock(content: str) -> None:
    STATE_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
    (STATE_DIR / "deploy.lock").write_text(content, encoding="utf-8")


def _stale_lock() -> None:
    since = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() - 7200))
    _write_lock(json.dumps({"run_id": "awx-4711", "holder": "a cancelled AWX job", "version": TO, "since": since}))


def _earlier_done_state() -> None:
    """state.json as an earlier, finished deploy left it: a recovery that acted on it would roll that one back."""
    STATE_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
    earlier = {
        "run_id": "an-earlier-run",
        "phase": "done",
        "previous_version": "0.9.0",
        "target_version": FROM,
        "current_version": FROM,
        "migrated": True,
        "maintenance_enabled_by_deploy": True,
        "alembic_revision_before": "0000",
    }
    (STATE_DIR / "state.json").write_text(json.dumps(earlier), encoding="utf-8")


def _writes_after_maintenance_off_kept(_out: str, load: UserLoad) -> list[str]:
    """The rollback after maintenance off kept users' writes: it downgraded, and there were such writes."""
    state = _state()
    problems = []
    if not state.get("serving_at"):
        return ["the run never recorded that users were let in again (serving_at)"]
    serving_at = calendar.timegm(time.strptime(state["serving_at"], "%Y-%m-%dT%H:%M:%SZ"))
    documents, _jobs = load.confirmed(since=serving_at)
    if not documents:
        problems.append(f"no write was confirmed after maintenance went off at {state['serving_at']}: proves nothing")
    history = [
        json.loads(line) for line in (STATE_DIR / "history.jsonl").read_text().splitlines() if line.startswith("{")
    ]
    rollback = next((h for h in reversed(history) if h.get("action") == "rollback"), {})
    if rollback.get("database") != "downgrade":
        problems.append(f"the rollback after maintenance off did not downgrade: {rollback}")
    return problems


def _pitr_stanza() -> None:
    """The pgBackRest stanza of the reference stack exists: the one-time setup of docs/backup.md (idempotent)."""
    subprocess.run(
        ["docker", "compose", "exec", "-T", "postgres", "pgbackrest", "--stanza=ablage", "stanza-create"],
        cwd=PROJECT_DIR,
        check=True,
        capture_output=True,
        timeout=120,
    )


def _recovered_to_restore_point(_out: str, _load: UserLoad) -> list[str]:
    """The rollback recovered the cluster to this deploy's restore point (pgBackRest), not from a dump."""
    state = _state()
    point = ((state.get("backup") or {}).get("restore_point") or {}).get("name")
    history = [
        json.loads(line) for line in (STATE_DIR / "history.jsonl").read_text().splitlines() if line.startswith("{")
    ]
    rollback = next((h for h in reversed(history) if h.get("action") == "rollback"), {})
    if not point or (state.get("backup") or {}).get("path"):
        return [f"the deploy recorded no restore point, or a dump as well: {state.get('backup')}"]
    if rollback.get("database") != "restore" or rollback.get("restored_backup") != f"restore point {point}":
        return [f"the rollback did not recover the cluster to restore point {point}: {rollback}"]
    return []


def _torn_history() -> None:
    STATE_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
    with open(STATE_DIR / "history.jsonl", "a", encoding="utf-8") as handle:
        handle.write('{"action": "deploy", "result": "succ')


def _http_ok(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def _wait(condition: t.Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.2)


# --------------------------------------------------------------------------- the cases

KILL_POINTS = [
    (
        "after-lock",
        "after the lock is taken (state.json still an earlier run's)",
        "Reset the deploy state for this run",
        None,
    ),
    ("release-pointed", "after .env was pointed, before maintenance", "Switch maintenance mode on and verify", None),
    ("maintenance-on", "maintenance switched on", "Wait until the OCR queue is drained", None),
    ("drained", "the queue drained", "The application's full backup", None),
    ("api-backup", "the API backup taken", "Stop the app services", None),
    ("stopped", "the application stopped", "Verified pg_dump backup", None),
    ("dumped", "the pg_dump taken", "Record the point of no return", None),
    ("mid-migration", "in the middle of the migration", "Alembic upgrade head", _oneoff_running),
    ("started", "the new release started", "Record the deployed version", None),
    ("maintenance-off", "maintenance switched off", "Note when maintenance went off", None),
    ("verify", "during the checks with users on", "Smoke | Login, upload", None),
]

CASES: list[Fault] = [
    Fault(
        id=f"{name}-{sig.name}",
        group="controller killed" if sig == signal.SIGKILL else "controller cancelled",
        what=f"{sig.name} {when}",
        at=at,
        ready=ready,
        signal=sig,
        recovery=RECOVERY,
        expect="killed",
        before=_earlier_done_state if name == "after-lock" else None,
        no_restart=name in ("after-lock", "release-pointed"),
    )
    for sig in (signal.SIGKILL, signal.SIGTERM)
    for name, when, at, ready in KILL_POINTS
]

CASES += [
    Fault(
        "postgres-down",
        "external part",
        "PostgreSQL stopped at the pg_dump",
        # Struck as the app stops, the step before the dump: stopped at the dump's own start, a fast
        # pg_dump could finish before PostgreSQL is gone.
        at="Stop the app services",
        inject=lambda: _docker("stop", _compose_container("postgres")),
        heal=lambda: _docker("start", _compose_container("postgres")),
    ),
    Fault(
        "registry-down",
        "external part",
        "the registry unreachable at the pull",
        # Down from the start (with pre-flight skipped the pull is the first to ask it): stopped when
        # the pull begins, a fast pull could finish first.
        before=Registry.stop,
        heal=Registry.start,
        expect="untouched",
    ),
    Fault(
        "backup-disk-full",
        "external part",
        "the backup directory full (a 256 KiB filesystem)",
        args=["-e", f"deploy_backup_dir={FULL_DIR}"],
        before=_fill_backup_dir,
        heal=_empty_backup_dir,
    ),
    Fault(
        "api-backup-fails",
        "external part",
        "the application's own backup fails",
        # Hidden before the run (nothing else uses it): hidden when the drain begins, a drain that
        # finds the queue idle at once could let the backup start first.
        before=_hide_api_pg_dump,
        heal=_restore_api_pg_dump,
    ),
    Fault(
        "redis-down",
        "external part",
        "Redis stopped at the drain",
        # Stopped once the drain has begun, with a 15 s job still running: the drain is surely waiting
        # when Redis goes (struck at the maintenance switch, Redis could die before the switch, a
        # different case that the wrong admin token already covers).
        args=["-e", "deploy_queue_drain_timeout=30"],
        before=lambda: _long_job(15),
        at="Wait until the OCR queue is drained",
        inject=lambda: _docker("stop", _compose_container("redis")),
        heal=lambda: _docker("start", _compose_container("redis")),
    ),
    Fault(
        "migration-fails",
        "external part",
        "a migration failing half-way (1.3.0-badmigration, its SET NOT NULL approved)",
        args=["-e", "ablage_version=1.3.0-badmigration", "-e", "deploy_allow_destructive_migration=true"],
    ),
    Fault(
        "destructive-refused",
        "bad input",
        "a destructive migration not approved (1.3.0-badmigration): refused before maintenance",
        args=["-e", "ablage_version=1.3.0-badmigration"],
        expect="untouched",
    ),
    Fault(
        "never-drains",
        "external part",
        "a worker busy for 60 s, drain bounded to 5 s",
        args=["-e", "deploy_queue_drain_timeout=5"],
        before=_long_job,
    ),
    Fault(
        "never-healthy",
        "external part",
        "a release that never turns healthy (1.2.0-broken)",
        args=["-e", "ablage_version=1.2.0-broken", "-e", "deploy_health_timeout=20"],
    ),
    Fault(
        "empty-lock",
        "bad state",
        "an empty deploy.lock",
        before=lambda: _write_lock(""),
        recovery=RECOVERY,
        expect="untouched",
    ),
    Fault(
        "stale-lock",
        "bad state",
        "the lock of a dead run (2 h old)",
        before=_stale_lock,
        recovery=RECOVERY,
        expect="untouched",
    ),
    Fault(
        "wrong-admin-token",
        "bad input",
        "a wrong admin token, pre-flight skipped",
        args=["-e", "ablage_admin_token=not-a-token"],
        expect="untouched",
    ),
    Fault(
        "wrong-db-password",
        "bad input",
        "a wrong database password, pre-flight skipped",
        args=["-e", "ablage_db_password=wrong"],
        expect="untouched",
    ),
    Fault(
        "version-semicolon",
        "bad input",
        "a version with ';'",
        args=["-e", "ablage_version=1.1.0;rm -rf /"],
        expect="untouched",
        preflight=True,
    ),
    Fault(
        "version-newline",
        "bad input",
        "a version with a newline",
        args=["-e", '{"ablage_version": "1.1.0\\nX=1"}'],
        expect="untouched",
        preflight=True,
    ),
    Fault(
        "smoke-fails-after-off",
        "external part",
        "the smoke test fails after maintenance went off (users have written since)",
        args=["-e", "verify_smoke_expected_text=this is not what the OCR reads"],
        check=_writes_after_maintenance_off_kept,
    ),
    Fault(
        "hook-fails-after-verify",
        "external part",
        "an operator's after_verify hook fails (users have written since maintenance off)",
        args=[
            "-e",
            json.dumps({"ablage_hooks": {"after_verify": str(REPO / "tests/integration/fixtures/hooks/fail.yml")}}),
        ],
        check=_writes_after_maintenance_off_kept,
    ),
    # ablage_backup_method pitr: the rollback point is a restore point in pgBackRest's archive, and the rollback
    # recovers the whole cluster to it, also after a dead run (the recovery reads it from state.json).
    Fault(
        "pitr-never-healthy",
        "point-in-time recovery",
        "a release that never turns healthy (1.2.0-broken), rollback point a pgBackRest restore point",
        args=["-e", "ablage_version=1.2.0-broken", "-e", "deploy_health_timeout=20", "-e", "ablage_backup_method=pitr"],
        before=_pitr_stanza,
        check=_recovered_to_restore_point,
    ),
    Fault(
        "pitr-migration-fails",
        "point-in-time recovery",
        "a migration failing half-way (1.3.0-badmigration), rollback point a pgBackRest restore point",
        args=[
            "-e",
            "ablage_version=1.3.0-badmigration",
            "-e",
            "deploy_allow_destructive_migration=true",
            "-e",
            "ablage_backup_method=pitr",
        ],
        before=_pitr_stanza,
        check=_recovered_to_restore_point,
    ),
    Fault(
        "pitr-started-SIGKILL",
        "point-in-time recovery",
        "SIGKILL once the new release started, rollback point a pgBackRest restore point; recovered by rollback.yml",
        args=["-e", "ablage_backup_method=pitr"],
        at="Record the deployed version",
        signal=signal.SIGKILL,
        recovery=RECOVERY,
        expect="killed",
        before=_pitr_stanza,
        check=_recovered_to_restore_point,
    ),
    # Last: it deploys TO for good.
    Fault("torn-history", "bad state", "a torn last line in history.jsonl", before=_torn_history, expect="success"),
]


# --------------------------------------------------------------------------- running a case


def _marked_pids(marker: str) -> list[int]:
    return [pid for pid, argv in _cmdlines() if marker.encode() in b"\0".join(argv)]


def _descendants(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(proc.name))
    found, todo = set(), [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "Z" not in Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1][:3]


def _playbook(argv: list[str], marker: str) -> subprocess.Popen[str]:
    command = [str(VENV_BIN / "ansible-playbook"), "-i", str(INVENTORY), *argv, "-e", f"campaign_marker={marker}"]
    return subprocess.Popen(
        command,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=ansible_env(
            ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default", ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0"
        ),
        start_new_session=True,
    )


def _run_with_fault(fault: Fault) -> tuple[int, str, float]:
    """The deploy with the fault; its exit code, its output and the moment the fault struck."""
    marker = uuid.uuid4().hex
    # A queue that cannot drain fails the run after 60 s instead of 300 s (never-drains sets its own bound).
    argv = ["playbooks/deploy.yml", "-e", f"ablage_version={TO}", "-e", "preflight_quality_enabled=false"]
    argv += ["-e", "deploy_queue_drain_timeout=60"]
    if not fault.preflight:
        argv += ["--skip-tags", "preflight"]
    proc = _playbook(argv + fault.args, marker)
    struck = time.time()
    lines: list[str] = []
    fired = threading.Event()

    def strike() -> None:
        nonlocal struck
        if fault.ready is not None:
            deadline = time.monotonic() + 30
            while not fault.ready() and time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.05)
        struck = time.time()
        if fault.inject is not None:
            fault.inject()
        if fault.signal == signal.SIGKILL:
            # The controller is gone: ansible-playbook and its forked workers at once.
            tree = _descendants(proc.pid)
            for pid in [proc.pid, *_marked_pids(marker)]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            # What the workers had started on the host (a migration container, a pg_dump) runs to its end,
            # as on a real host; the recovery waits for it as the runbook says.
            _wait(lambda: not any(_alive(p) for p in tree), 180, "the killed run's processes on the host to end")
        elif fault.signal is not None:
            os.kill(proc.pid, fault.signal)

    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            lines.append(line)
            if not fired.is_set() and fault.at is not None and line.startswith("TASK [") and fault.at in line:
                fired.set()
                strike()
    except BaseException:
        # A harness failure must not leave a deploy running into the next case.
        for pid in [proc.pid, *_marked_pids(marker)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.wait(timeout=60)
        raise
    rc = proc.wait(timeout=60)
    if fault.at is not None:
        assert fired.is_set(), f"the run never reached {fault.at!r}:\n" + "".join(lines)[-3000:]
    return rc, "".join(lines), struck


def _queue_after_settle(settle_s: float = 60.0) -> dict[str, t.Any]:
    """The queue as the drain step reads it, once it is idle or after ``settle_s``."""
    deadline = time.monotonic() + settle_s
    while True:
        queue = requests.get(f"{API_URL}/api/v1/health/pipeline", timeout=5).json().get("queue", {})
        if queue == {"pending": 0, "processing": 0} or time.monotonic() > deadline:
            return queue
        time.sleep(1.0)


def _state() -> dict[str, t.Any]:
    path = STATE_DIR / "state.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def _running_version() -> str:
    try:
        response = requests.get(f"{API_URL}/api/v1/health", timeout=5)
        return (
            str(response.json().get("version", "?")) if response.status_code == 200 else f"HTTP {response.status_code}"
        )
    except requests.RequestException as exc:
        return f"unreachable ({type(exc).__name__})"


def _secrets() -> list[str]:
    env = read_env_file(ENV_FILE)
    return [v for k, v in env.items() if ("PASSWORD" in k or "SECRET" in k or k.endswith("_KEY")) and len(v) >= 8]


def _said(out: str) -> str:
    """The run's own last word: the failure summary, the refusal, or the recap."""
    flat = " ".join(out.split())
    for pattern in (r"Deploy of \S+ FAILED at (.{0,160})", r"(The deploy lock .{0,160})", r"msg\": \"(.{0,160})"):
        found = re.findall(pattern, flat)
        if found:
            return found[-1].strip()
    return "killed" if not flat.rstrip().endswith("ignored=0") else "finished"


def _ensure_from_version() -> None:
    """Every case starts at FROM with TO's migration pending (a case that ended at TO is taken back)."""
    if _running_version() == FROM and not (STATE_DIR / "deploy.lock").exists():
        return
    proc = _playbook(RECOVERY, uuid.uuid4().hex)
    out, _err = proc.communicate(timeout=600)
    assert _running_version() == FROM, f"could not bring the stack back to {FROM}:\n{out[-3000:]}"


@pytest.fixture(scope="module")
def stack() -> t.Iterator[Stack]:
    yield from prepared_stack()
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(render(OUTCOMES), encoding="utf-8")


@pytest.mark.parametrize("fault", CASES, ids=[c.id for c in CASES])
def test_fault(stack: Stack, fault: Fault) -> None:
    if fault.expect != "success":
        _ensure_from_version()
    if fault.before is not None:
        fault.before()
    before = containers()
    load = UserLoad()
    load.start()
    problems: list[str] = []
    recovery_rc = None
    try:
        rc, out, struck = _run_with_fault(fault)
        state_left = _state()
        lock_left = (STATE_DIR / "deploy.lock").exists()
        try:
            maintenance_left: bool | None = Stack().maintenance()
        except (AssertionError, Exception):
            maintenance_left = None
        if fault.heal is not None:
            fault.heal()
        recovery_out = ""
        if fault.recovery is not None:
            proc = _playbook(fault.recovery, uuid.uuid4().hex)
            recovery_out, _err = proc.communicate(timeout=600)
            recovery_rc = proc.returncode
            if recovery_rc != 0:
                problems.append(f"the recovery failed (rc {recovery_rc}): {_said(recovery_out)}")
        recovered = time.time()
        time.sleep(1.0)  # a few writes after the recovery too
    finally:
        load.stop()

    version = _running_version()
    health = requests.get(f"{API_URL}/api/v1/health/complete", timeout=10)
    checked = Stack()
    documents, jobs = load.confirmed()
    found = audit(checked.user_token, documents, jobs)
    lost = len(found["lost_documents"]) + len(found["lost_jobs"])
    after = containers()
    restarted = any(after.get(s, ("", ""))[1] != before[s][1] for s in ("backend", "worker"))

    if version not in KNOWN_VERSIONS or health.status_code != 200 or health.json().get("status") != "healthy":
        problems.append(
            f"not a healthy known version: {version}, health/complete {health.status_code} {health.text[:200]}"
        )
    if checked.maintenance():
        problems.append("maintenance is still on")
    if (STATE_DIR / "deploy.lock").exists():
        problems.append("the deploy lock is still held")
    if lost:
        problems.append(f"{lost} confirmed rows lost: {found['lost_documents'][:3]} {found['lost_jobs'][:3]}")
    queue = _queue_after_settle()
    if queue != {"pending": 0, "processing": 0}:
        problems.append(f"the OCR queue does not drain after the recovery: {queue} (a later deploy would wait on it)")
    if found["failed_jobs"] or found["stuck_jobs"]:
        problems.append(f"jobs failed {found['failed_jobs'][:3]} or stuck processing {found['stuck_jobs'][:3]}")
    leaked = [s[:3] + "…" for s in _secrets() if s in out or s in recovery_out]
    if leaked or re.search(r"eyJ[A-Za-z0-9_-]{10,}\.", out + recovery_out):
        problems.append(f"a secret in the output: {leaked or 'a bearer token'}")
    if fault.no_restart and restarted:
        problems.append("the application was restarted although users had never been locked out")
    if fault.expect == "untouched":
        if restarted:
            problems.append("the application was restarted although the fault came before anything changed")
        if rc == 0:
            problems.append("the run passed although it should have refused")
        said_untouched = "Nothing was changed on the running system" in " ".join(out.split())
        if fault.recovery is None and not fault.preflight and not said_untouched:
            problems.append(f"the run did not say that nothing was changed: {_said(out)}")
    if fault.expect == "rolled_back" and "Rolled back to" not in " ".join(out.split()):
        problems.append(f"the run did not roll back by itself: {_said(out)}")
    if fault.check is not None:
        problems.extend(fault.check(out, load))
    if fault.expect == "success" and rc != 0:
        problems.append(f"the run failed: {_said(out)}")

    OUTCOMES.append(
        Outcome(
            fault=fault,
            rc=rc,
            said=_said(out),
            phase_left=str(state_left.get("phase", "-")),
            maintenance_left=maintenance_left,
            lock_left=lock_left,
            recovery_rc=recovery_rc,
            recovered_s=round(recovered - struck, 1),
            version=version,
            written=len(documents),
            jobs=len(jobs),
            lost=lost,
            restarted=restarted,
            problems=problems,
        )
    )
    assert not problems, (
        f"{fault.id}: "
        + "; ".join(problems)
        + "\n--- run ---\n"
        + out[-4000:]
        + "\n--- recovery ---\n"
        + recovery_out[-3000:]
    )


# --------------------------------------------------------------------------- docs/reliability.md


def render(outcomes: list[Outcome]) -> str:
    """docs/reliability.md: one row per fault, as measured by this campaign."""
    rows = []
    for o in outcomes:
        f = o.fault
        did = (
            "refused, nothing changed"
            if f.expect == "untouched"
            else {
                "killed": "killed",
                "rolled_back": "rolled back by itself",
                "success": "deployed",
            }[f.expect]
        )
        if o.problems:
            did = "**FAILED**: " + "; ".join(o.problems)
        maintenance = {True: "on", False: "off", None: "?"}[o.maintenance_left]
        left = f"phase `{o.phase_left}`, maintenance {maintenance}"
        left += ", lock held" if o.lock_left else ", lock free"
        recovery = (
            "—"
            if f.recovery is None
            else ("rollback.yml (lock broken)" if o.recovery_rc == 0 else f"failed (rc {o.recovery_rc})")
        )
        rows.append(
            f"| {f.group} | {f.what} | {did} | {left} | {recovery} | {o.recovered_s:.0f} s | {o.version} "
            f"| {o.written} / {o.jobs} | **{o.lost}** |"
        )
    failed = sum(1 for o in outcomes if o.problems)
    return (
        textwrap.dedent(
            f"""\
        # Reliability: the fault campaign

        Generated by `tests/integration/test_fault_campaign.py` (part of `make test`; `make reliability`
        writes this file). Each row is one run of `playbooks/deploy.yml` ({FROM} → {TO}, one Alembic
        migration pending) on the reference stack while a user uploads a document every 0.25 s, queues
        an OCR job for every third and reads each back. The fault strikes when the named step begins.
        After the run (and, where the run could not clean up, the documented recovery:
        `ansible-playbook playbooks/rollback.yml -e deploy_lock_break=true`, docs/runbook.md) the
        campaign checks: a known version healthy, maintenance off, the lock free, every document and job
        the API confirmed still there, every job completed or still queued, no secret in the output,
        and, for faults before anything changed, that the application was never restarted.

        *Left behind* is what the fault left before any recovery. *Recovered* is the time from the
        fault to the end of the recovery (or of the run, when it recovered by itself). *Written* is
        documents / OCR jobs the API confirmed during the case; *lost* counts those not found afterwards.

        {len(outcomes)} faults, {failed} failed.

        | kind | fault | what the run did | left behind | recovery | recovered | version after | written | lost |
        |---|---|---|---|---|---|---|---|---|
        """
        )
        + "\n".join(rows)
        + "\n"
    )
