"""Shared helpers of the benchmarks: statistics, downtime intervals, the stack lock, a user-side poller.

The pure functions (``median``, ``ratio``, ``summarize``, ``outage_window``, ``state_window``,
``round_orders``) are unit tested in tests/unit/test_bench_lib.py; the rest talks to the
reference stack and is exercised by running the benchmarks.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import platform
import re
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import typing as t
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = REPO / ".venv" / "bin"
RESULTS = REPO / "benchmarks" / "results"
API = os.environ.get("ABLAGE_API_URL", "http://127.0.0.1:8000")
PROJECT_DIR = Path(os.environ.get("ABLAGE_PROJECT_DIR", "/srv/ablage"))
# The reverse proxy of playbooks/proxy.yml, and deploy.yml's variables for a zero-downtime deploy through it.
PROXY = "http://127.0.0.1:8080"
ZERO_DOWNTIME_VARS = (
    "-e",
    "ablage_proxy_enabled=true",
    "-e",
    f"ablage_api_url={PROXY}",
    "-e",
    "ablage_deploy_strategy=zero_downtime",
)

# --------------------------------------------------------------------------- pure helpers


def median(values: Iterable[float]) -> float | None:
    """Median of the values, None when there are none."""
    data = [float(v) for v in values]
    return statistics.median(data) if data else None


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """numerator / denominator rounded to 3 places; None when either is missing or the denominator is 0."""
    if numerator is None or denominator is None or denominator == 0:
        return None
    return round(numerator / denominator, 3)


def round_orders(contestants: Sequence[str], rounds: int) -> list[list[str]]:
    """The contestants' order in each round, rotated by one per round (A B C, B C A, C A B, ...).

    Every contestant runs once per round; rotating keeps one from always running first
    (on a cold cache) or always after the same neighbour.
    """
    count = len(contestants)
    return [[contestants[(r + i) % count] for i in range(count)] for r in range(rounds)] if count else []


def outage_window(samples: Sequence[tuple[float, bool]]) -> dict[str, float | int | None]:
    """What a user polling an endpoint saw: samples are (seconds, answered OK), in time order.

    ``window_s`` runs from the first failed sample to the first good sample after the last
    failed one (or to the last sample when the service never came back); ``failed_s`` adds up
    only the time covered by failed samples (each lasts until the next sample), so short good
    phases inside the window do not count. Both are 0 when no sample failed.
    """
    failed = [i for i, (_when, ok) in enumerate(samples) if not ok]
    if not failed:
        return {"window_s": 0.0, "failed_s": 0.0, "failed_samples": 0, "start_s": None, "end_s": None}
    first, last = failed[0], failed[-1]
    end = samples[last + 1][0] if last + 1 < len(samples) else samples[last][0]
    failed_s = 0.0
    for i in failed:
        if i + 1 < len(samples):
            failed_s += samples[i + 1][0] - samples[i][0]
    return {
        "window_s": round(end - samples[first][0], 3),
        "failed_s": round(failed_s, 3),
        "failed_samples": len(failed),
        "start_s": round(samples[first][0], 3),
        "end_s": round(end, 3),
    }


def state_window(samples: Sequence[tuple[float, bool | None]]) -> dict[str, float | None]:
    """How long a flag was on: samples are (seconds, on / off / None = could not read), in time order.

    Unreadable samples keep the last known state. The window runs from the first sample that
    saw the flag on to the first sample that saw it off again after the last "on" sample;
    None when the flag was never seen on.
    """
    known: list[tuple[float, bool]] = []
    state: bool | None = None
    for when, value in samples:
        if value is not None:
            state = value
        if state is not None:
            known.append((when, state))
    on = [i for i, (_when, value) in enumerate(known) if value]
    if not on:
        return {"window_s": None, "start_s": None, "end_s": None}
    first, last = on[0], on[-1]
    end = known[last + 1][0] if last + 1 < len(known) else None
    return {
        "window_s": None if end is None else round(end - known[first][0], 3),
        "start_s": round(known[first][0], 3),
        "end_s": None if end is None else round(end, 3),
    }


def summarize(
    runs: Sequence[Mapping[str, t.Any]], metrics: Sequence[str], baseline_pairs: Sequence[tuple[str, str]]
) -> dict[str, t.Any]:
    """Medians per contestant and metric, and the ratios of the medians for each (contestant, baseline) pair.

    ``runs`` are flat dicts with ``contestant`` and numeric metrics (None = not measured).
    """
    medians: dict[str, dict[str, float | None]] = {}
    for run in runs:
        medians.setdefault(str(run["contestant"]), {})
    for contestant, per_metric in medians.items():
        for metric in metrics:
            values = [r[metric] for r in runs if r["contestant"] == contestant and r.get(metric) is not None]
            med = median(values)
            per_metric[metric] = None if med is None else round(med, 3)
    ratios: dict[str, dict[str, float | None]] = {}
    for contestant, baseline in baseline_pairs:
        if contestant in medians and baseline in medians:
            ratios[f"{contestant}/{baseline}"] = {
                metric: ratio(medians[contestant][metric], medians[baseline][metric]) for metric in metrics
            }
    return {"medians": medians, "ratios": ratios}


# --------------------------------------------------------------------------- environment and output


def machine() -> dict[str, t.Any]:
    """What the numbers were measured on."""
    mem_kb = 0
    with open("/proc/meminfo", encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    cpu = ""
    with open("/proc/cpuinfo", encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "mem_gib": round(mem_kb / 1048576, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def ansible_env(**extra: str) -> dict[str, str]:
    """Environment for ansible-playbook with this checkout as ablage.ops (as the Makefile sets it)."""
    env = dict(os.environ)
    env.update(
        PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
        ANSIBLE_COLLECTIONS_PATH=f"{REPO / '.collections'}:{REPO / '.venv/lib/python3.11/site-packages'}",
        ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
        ANSIBLE_NOCOLOR="1",
    )
    env.update(extra)
    return env


def write_result(name: str, data: Mapping[str, t.Any]) -> Path:
    """Write a benchmark's result as benchmarks/results/<name>.json and print where."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(f"==> results written to {path.relative_to(REPO)}")
    return path


def record(
    name: str,
    benchmark: Mapping[str, t.Any],
    started: float,
    runs: Sequence[Mapping[str, t.Any]],
    summary: Mapping[str, t.Any],
    shown: t.Any = None,
) -> Path:
    """Print the summary (or ``shown``) and write the result with the machine and the elapsed time."""
    data = {
        **benchmark,
        "machine": machine(),
        "elapsed_s": round(time.monotonic() - started, 1),
        "runs": list(runs),
        **summary,
    }
    print(json.dumps(summary if shown is None else shown, indent=2))
    return write_result(name, data)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def run(argv: Sequence[str], *, env: Mapping[str, str] | None = None, log_file: Path | None = None) -> float:
    """Run a command to completion and return its wall time; raise with its output's tail when it fails."""
    started = time.monotonic()
    proc = subprocess.run(list(argv), capture_output=True, text=True, env=dict(env) if env else None, check=False)
    elapsed = time.monotonic() - started
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        log_file.write_text(proc.stdout + "\n--- stderr ---\n" + proc.stderr, encoding="utf-8")
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-25:])
        raise RuntimeError(f"{shlex.join(argv)} failed (exit {proc.returncode}):\n{tail}")
    return elapsed


def under_stack_lock(argv: Sequence[str]) -> list[str]:
    """argv wrapped so it runs holding the reference stack's lock (scripts/stack.sh locked)."""
    return ["bash", str(REPO / "scripts" / "stack.sh"), "locked", *argv]


def self_command(*args: str) -> list[str]:
    return [sys.executable, *args]


# --------------------------------------------------------------------------- the reference stack


def env_production() -> dict[str, str]:
    values: dict[str, str] = {}
    for line in (PROJECT_DIR / ".env.production").read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip()
    return values


def http(
    method: str, url: str, *, token: str | None = None, body: bytes | None = None, timeout: float = 2.0
) -> tuple[int, bytes]:
    """One request; (status, body), status 0 when nothing answered."""
    request = urllib.request.Request(url, data=body, method=method)  # noqa: S310 - http on loopback
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if body is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310  # nosec B310
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), bytes(exc.read())
    except (OSError, ValueError):
        return 0, b""


def login(username: str, password: str) -> str:
    status, body = http(
        "POST", f"{API}/api/v1/auth/login", body=json.dumps({"username": username, "password": password}).encode()
    )
    if status != 200:
        raise RuntimeError(f"login of {username} failed with HTTP {status}")
    return str(json.loads(body)["access_token"])


def upload_probe_document(token: str) -> str:
    """A small text document owned by the smoke user: the poller reads it back as a user would."""
    status, body = upload_document(token, API, "bench.txt", "benchmark probe", timeout=10)
    if status != 201:
        raise RuntimeError(f"upload of the probe document failed with HTTP {status}")
    return str(json.loads(body)["id"])


def maintenance_off() -> None:
    """Every contestant starts with users served."""
    secrets = env_production()
    admin = login(secrets["ADMIN_USERNAME"], secrets["ADMIN_PASSWORD"])
    http("POST", f"{API}/api/v1/admin/maintenance/disable", token=admin, timeout=10)


def upload_document(token: str, api: str, name: str, text: str, timeout: float = 5.0) -> tuple[int, bytes]:
    """POST /api/v1/documents/ as a user does (multipart); (status, body), status 0 when nothing answered."""
    boundary = "ablagebench"
    payload = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        f"Content-Type: text/plain\r\n\r\n{text}\r\n--{boundary}--\r\n"
    ).encode()
    request = urllib.request.Request(f"{api}/api/v1/documents/", data=payload, method="POST")  # noqa: S310
    request.add_header("Authorization", f"Bearer {token}")
    request.add_header("Content-Type", f"multipart/form-data; boundary={boundary}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310  # nosec B310
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), bytes(exc.read())
    except (OSError, ValueError):
        return 0, b""


def latency_summary(seconds: Sequence[float]) -> dict[str, float | None]:
    """Median, 99th percentile and maximum in milliseconds."""
    ordered = sorted(seconds)
    if not ordered:
        return {"median_ms": None, "p99_ms": None, "max_ms": None}
    return {
        "median_ms": round(1000 * ordered[len(ordered) // 2], 1),
        # nearest rank: the smallest value with at least 99 % of the samples at or below it
        "p99_ms": round(1000 * ordered[max(0, -(-len(ordered) * 99 // 100) - 1)], 1),
        "max_ms": round(1000 * ordered[-1], 1),
    }


@dataclasses.dataclass
class WriteLoad:
    """A user who writes: an upload every ``interval`` s, an OCR job for every ``job_every``-th, a read back.

    Every request is timed; an answer other than the one a user expects (201, 202, 200) or none is a failure.
    ``finish()`` waits (bounded) until every accepted OCR job completed and says which did not.
    """

    api: str
    token: str
    interval: float = 0.1
    job_every: int = 3
    requests: list[tuple[float, float, str]] = dataclasses.field(default_factory=list)
    jobs: list[str] = dataclasses.field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="bench-write-load", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _timed(
        self, expected: int, what: str, call: Callable[..., tuple[int, bytes]], *args: t.Any, **kwargs: t.Any
    ) -> tuple[int, bytes]:
        sent, started = time.time(), time.monotonic()
        status, body = call(*args, **kwargs)
        self.requests.append((sent, time.monotonic() - started, "" if status == expected else f"{what}: {status}"))
        return status, body

    def _loop(self) -> None:
        n = 0
        while not self._stop.is_set():
            n += 1
            status, body = self._timed(201, "upload", upload_document, self.token, self.api, f"load-{n}.txt", f"#{n}")
            if status == 201:
                document = str(json.loads(body)["id"])
                if n % self.job_every == 0:
                    payload = json.dumps({"document_id": document}).encode()
                    url = f"{self.api}/api/v1/ocr/process"
                    status, body = self._timed(202, "ocr", http, "POST", url, token=self.token, body=payload, timeout=5)
                    if status == 202:
                        self.jobs.append(str(json.loads(body)["job_id"]))
                url = f"{self.api}/api/v1/documents/{document}"
                self._timed(200, "read", http, "GET", url, token=self.token, timeout=5)
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=15)

    def finish(self, since: float, until: float, settle_s: float = 120.0) -> dict[str, t.Any]:
        """What users saw between ``since`` and ``until`` (epoch s), and whether every accepted job completed."""
        window = [(seconds, problem) for sent, seconds, problem in self.requests if since <= sent <= until]
        deadline = time.monotonic() + settle_s
        pending = list(self.jobs)
        while pending and time.monotonic() < deadline:
            still = []
            for job in pending:
                status, body = http("GET", f"{self.api}/api/v1/ocr/jobs/{job}", token=self.token, timeout=5)
                if status != 200 or json.loads(body).get("status") != "completed":
                    still.append(job)
            pending = still
            if pending:
                time.sleep(1.0)
        return {
            "requests": len(window),
            "failed": [problem for _seconds, problem in window if problem],
            "latency": latency_summary([seconds for seconds, _problem in window]),
            "jobs": len(self.jobs),
            "jobs_not_completed": pending,
        }


def parse_hey(output: str) -> dict[str, t.Any]:
    """hey's summary: responses per status code, errors (no HTTP answer) by message, latency percentiles in ms."""
    statuses = {int(code): int(count) for code, count in re.findall(r"\[(\d{3})\]\s+(\d+) responses", output)}
    errors: dict[str, int] = {}
    section = output.split("Error distribution:", 1)[1] if "Error distribution:" in output else ""
    for count, message in re.findall(r"^\s*\[(\d+)\]\s+(.+)$", section, flags=re.MULTILINE):
        errors[message.strip()] = errors.get(message.strip(), 0) + int(count)
    percentiles = {
        f"p{p}_ms": round(float(secs) * 1000, 1) for p, secs in re.findall(r"(\d+)% in ([\d.]+) secs", output)
    }
    slowest = re.search(r"Slowest:\s+([\d.]+) secs", output)
    return {
        "responses": sum(statuses.values()),
        "statuses": {str(code): count for code, count in sorted(statuses.items())},
        "errors": errors,
        "latency": {
            "median_ms": percentiles.get("p50_ms"),
            "p99_ms": percentiles.get("p99_ms"),
            "max_ms": round(float(slowest.group(1)) * 1000, 1) if slowest else None,
        },
    }


@dataclasses.dataclass
class Hey:
    """A read load from hey (Debian's package): GETs of ``url`` at ``rate`` per worker until ``stop()``."""

    url: str
    token: str
    concurrency: int = 2
    rate: float = 20.0

    def start(self) -> None:
        self._proc = subprocess.Popen(
            [
                "hey",
                "-z",
                "60m",
                "-c",
                str(self.concurrency),
                "-q",
                str(self.rate),
                "-H",
                f"Authorization: Bearer {self.token}",
                self.url,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def stop(self) -> dict[str, t.Any]:
        """hey prints its summary when interrupted."""
        self._proc.send_signal(signal.SIGINT)
        output, _err = self._proc.communicate(timeout=60)
        return parse_hey(output)


def redis_flag(key: str, host: str = "127.0.0.1", port: int = 6379, timeout: float = 0.5) -> bool | None:
    """EXISTS key over Redis' wire protocol; None when Redis does not answer."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(f"EXISTS {key}\r\n".encode())
            reply = sock.recv(64)
    except OSError:
        return None
    if reply.startswith(b":"):
        return reply[1:].strip() != b"0"
    return None


@dataclasses.dataclass
class Poller:
    """Polls, every ``interval`` seconds, what a user sees (GET of their document) and the maintenance flag.

    Runs in a thread between ``start()`` and ``stop()``; times are seconds since ``start()``.
    """

    user_url: str
    user_token: str
    interval: float = 0.05
    user: list[tuple[float, bool]] = dataclasses.field(default_factory=list)
    maintenance: list[tuple[float, bool | None]] = dataclasses.field(default_factory=list)
    statuses: dict[int, int] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="bench-poller", daemon=True)
        self._t0 = 0.0

    def start(self) -> None:
        self._t0 = time.monotonic()
        self._thread.start()

    def now(self) -> float:
        return time.monotonic() - self._t0

    def _loop(self) -> None:
        while not self._stop.is_set():
            tick = time.monotonic()
            status, _body = http("GET", self.user_url, token=self.user_token, timeout=1.0)
            self.user.append((self.now(), status == 200))
            self.statuses[status] = self.statuses.get(status, 0) + 1
            self.maintenance.append((self.now(), redis_flag("ablage:maintenance")))
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - tick)))

    def stop(self) -> dict[str, t.Any]:
        self._stop.set()
        self._thread.join(timeout=5)
        return {
            "user_outage": outage_window(self.user),
            "maintenance": state_window(self.maintenance),
            "user_statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "samples": len(self.user),
        }


def timed(fn: Callable[[], t.Any]) -> float:
    started = time.monotonic()
    fn()
    return time.monotonic() - started
