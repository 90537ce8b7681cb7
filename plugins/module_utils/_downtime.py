# Copyright (c) ablage.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Downtime as users see it: a detached poller and the summary of its samples (PRIVATE to this collection).

The poller requests one public URL in a loop and appends one JSON line per request to a samples
file: ``{"t": <epoch start>, "ok": bool, "status": int|null, "error": str|null, "latency_ms": float}``.
Its pid file says which process runs and where it writes. ``summarize`` turns the samples into
outage ranges: a range starts at the first failed request and ends at the next successful one.
"""

from __future__ import annotations

import datetime
import json
import os
import signal
import socket
import ssl
import time
import typing as t
import urllib.error
import urllib.request

from ansible_collections.ablage.ops.plugins.module_utils._process import pid_alive

Sample = t.Dict[str, t.Any]


def iso(epoch: float) -> str:
    """UTC ISO 8601 with milliseconds."""
    moment = datetime.datetime.fromtimestamp(epoch, tz=datetime.timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(value: str) -> float:
    return datetime.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def summarize(samples: list[Sample], window: dict[str, str] | None = None) -> dict[str, t.Any]:
    """Outage ranges and totals from time-ordered samples.

    A range starts at the first failed sample and ends at the next successful sample; a range still
    open at the last sample ends there (``open: true``). ``window`` (maintenance ``on``/``off``
    ISO timestamps) is copied into the summary with its length, for comparison.
    """
    ordered = sorted(samples, key=lambda s: float(s["t"]))
    outages: list[dict[str, t.Any]] = []
    current: dict[str, t.Any] | None = None
    for sample in ordered:
        if not sample.get("ok"):
            if current is None:
                current = {"start_t": float(sample["t"]), "failed_samples": 0, "reasons": {}}
                outages.append(current)
            current["failed_samples"] += 1
            reason = (
                "status {}".format(sample["status"]) if sample.get("status") is not None else str(sample.get("error"))
            )
            current["reasons"][reason] = current["reasons"].get(reason, 0) + 1
        elif current is not None:
            current["end_t"] = float(sample["t"])
            current = None
    ranges: list[dict[str, t.Any]] = []
    for outage in outages:
        is_open = "end_t" not in outage
        end = float(ordered[-1]["t"]) if is_open else outage["end_t"]
        ranges.append(
            {
                "start": iso(outage["start_t"]),
                "end": iso(end),
                "duration_s": round(end - outage["start_t"], 3),
                "failed_samples": outage["failed_samples"],
                "reasons": outage["reasons"],
                "open": is_open,
            }
        )
    total = round(sum(r["duration_s"] for r in ranges), 3)
    observed = round(float(ordered[-1]["t"]) - float(ordered[0]["t"]), 3) if ordered else 0.0
    summary: dict[str, t.Any] = {
        "samples": len(ordered),
        "failed_samples": sum(1 for s in ordered if not s.get("ok")),
        "observed_from": iso(float(ordered[0]["t"])) if ordered else None,
        "observed_to": iso(float(ordered[-1]["t"])) if ordered else None,
        "observed_s": observed,
        "downtime_s": total,
        "outages": ranges,
        "availability_percent": round(100.0 * (1 - total / observed), 2) if observed > 0 else None,
        "max_latency_ms": max((float(s.get("latency_ms") or 0) for s in ordered), default=None),
    }
    if window and window.get("on") and window.get("off"):
        summary["maintenance_window"] = {
            "on": window["on"],
            "off": window["off"],
            "duration_s": round(parse_iso(window["off"]) - parse_iso(window["on"]), 3),
        }
    return summary


def read_samples(path: str) -> list[Sample]:
    """Samples from the file; a torn last line (poller killed mid-write) is ignored."""
    samples: list[Sample] = []
    if not os.path.exists(path):
        return samples
    with open(path, encoding="utf-8") as handle:
        for raw in handle:
            try:
                record = json.loads(raw)
            except ValueError:
                continue
            if isinstance(record, dict) and "t" in record:
                samples.append(record)
    return samples


def probe_once(
    url: str, headers: dict[str, str], timeout: float, status_codes: list[int], validate_certs: bool = True
) -> Sample:
    """One request; a sample. Redirects are not followed (a redirect to a login page is not service)."""

    class _NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: t.Any, **kwargs: t.Any) -> None:
            return None

    handlers: list[t.Any] = [_NoRedirect()]
    if not validate_certs:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        handlers.append(urllib.request.HTTPSHandler(context=context))
    opener = urllib.request.build_opener(*handlers)
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - the URL is the operator's own
    started = time.time()
    status: int | None = None
    error: str | None = None
    try:
        with opener.open(request, timeout=timeout) as response:
            status = int(response.status)
            response.read()
    except urllib.error.HTTPError as exc:
        status = int(exc.code)
    except (urllib.error.URLError, socket.timeout, ConnectionError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        error = f"{type(reason).__name__}: {reason}"
    latency = round((time.time() - started) * 1000, 1)
    ok = status is not None and status in status_codes
    return {"t": round(started, 3), "ok": ok, "status": status, "error": error, "latency_ms": latency}


class _Stop:
    requested = False


def _request_stop(_signum: int, _frame: t.Any) -> None:
    _Stop.requested = True


class LockWatch:
    """Ends the poller with the deploy it measures, also when that deploy was killed.

    The probe starts before its deploy takes the lock. Once a lock appeared, the poller stops when
    the lock is released or taken over by another run (the recovery of a killed deploy breaks it);
    when no lock appears within ``grace`` seconds, the run died before taking it.
    """

    def __init__(self, path: str, grace: float = 300.0, now: t.Callable[[], float] = time.time) -> None:
        self.path = path
        self.now = now
        self.until = now() + grace
        self.owner: str | None = None

    def _holder(self) -> str | None:
        try:
            with open(self.path, "rb") as handle:
                raw = handle.read(4096)
        except OSError:
            return None
        try:
            data = json.loads(raw.decode("utf-8"))
        except ValueError:
            return "(unreadable)"
        return str(data.get("run_id", "")) if isinstance(data, dict) else "(unreadable)"

    def ended(self) -> bool:
        holder = self._holder()
        if self.owner is None:
            if holder is not None:
                self.owner = holder
                return False
            return self.now() > self.until
        return holder != self.owner


def poll_loop(
    samples_file: str,
    url: str,
    headers: dict[str, str],
    timeout: float,
    status_codes: list[int],
    interval: float,
    max_duration: float,
    validate_certs: bool = True,
    watch: LockWatch | None = None,
) -> int:
    """Poll until SIGTERM, ``max_duration`` seconds or the end of the watched deploy; one JSON line per request."""
    signal.signal(signal.SIGTERM, _request_stop)
    deadline = time.time() + max_duration
    count = 0
    fd = os.open(samples_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as handle:
        while not _Stop.requested and time.time() < deadline and not (watch is not None and watch.ended()):
            sample = probe_once(url, headers, timeout, status_codes, validate_certs)
            handle.write(json.dumps(sample, sort_keys=True) + "\n")
            handle.flush()
            count += 1
            # Pace the requests; a stop request is seen within one interval.
            next_at = float(sample["t"]) + interval
            while not _Stop.requested and time.time() < next_at:
                time.sleep(min(0.05, max(0.0, next_at - time.time())))
    return count


def detach(run: t.Callable[[], t.Any]) -> int:  # pragma: no cover - the daemon half is not traced
    """Run ``run`` in a daemon (double fork, new session, stdio on /dev/null); the daemon's pid."""
    read_end, write_end = os.pipe()
    first = os.fork()
    if first:
        os.close(write_end)
        with os.fdopen(read_end, "r") as pipe:
            daemon_pid = int(pipe.read() or "0")
        os.waitpid(first, 0)
        return daemon_pid
    os.close(read_end)
    os.setsid()
    second = os.fork()
    if second:
        os.write(write_end, str(second).encode())
        os.close(write_end)
        os._exit(0)
    os.close(write_end)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.chdir("/")
    try:
        run()
    finally:
        os._exit(0)


def stop_process(pid: int, deadline_s: float) -> bool:
    """SIGTERM, then wait (bounded) until gone; SIGKILL at the deadline. True when it was running."""
    if not pid_alive(pid):
        return False
    os.kill(pid, signal.SIGTERM)
    end = time.time() + deadline_s
    while time.time() < end:
        if not pid_alive(pid):
            return True
        time.sleep(0.05)
    if pid_alive(pid):
        os.kill(pid, signal.SIGKILL)
    return True
