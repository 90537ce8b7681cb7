"""A user-side load on the reference stack: what the API confirmed is what must survive.

One thread uploads a document every ``interval`` seconds, queues an OCR job for every third one
and reads a document back. A write counts only once the API answered it with success (201 for
the upload, 202 for the job); everything refused (503 in maintenance, connection refused while
the backend restarts) is dropped, never retried as the same write. ``audit`` then asks the API
for every confirmed document and job: a document that is gone is a lost row.
"""

from __future__ import annotations

import contextlib
import threading
import time
import typing as t

import requests
from reference_stack import API_URL, ENV_FILE, read_env_file


class UserLoad(threading.Thread):
    """Reads and writes as a user of the smoke account, for as long as the test runs."""

    def __init__(self, interval: float = 0.25, job_every: int = 3, base_url: str = API_URL) -> None:
        super().__init__(daemon=True)
        self.base_url = base_url
        # Every request: (sent at, seconds, what went wrong or ""), for the zero-downtime proof.
        self.requests: list[tuple[float, float, str]] = []
        env = read_env_file(ENV_FILE)
        self.credentials = {"username": env["SMOKE_USERNAME"], "password": env["SMOKE_PASSWORD"]}
        self.interval = interval
        self.job_every = job_every
        self.halt = threading.Event()
        self.lock = threading.Lock()
        self.documents: list[tuple[str, float]] = []
        self.jobs: list[tuple[str, float]] = []
        self.session = requests.Session()
        self.token = ""

    def _call(self, method: str, path: str, expected: int, **kwargs: t.Any) -> requests.Response:
        """One request, timed; anything but ``expected`` (or no answer) is recorded as a failure."""
        sent = time.time()
        started = time.monotonic()
        try:
            response = self.session.request(method, f"{self.base_url}{path}", timeout=5, **kwargs)
        except requests.RequestException as exc:
            with self.lock:
                self.requests.append((sent, time.monotonic() - started, f"{method} {path}: {type(exc).__name__}"))
            raise
        problem = "" if response.status_code == expected else f"{method} {path}: HTTP {response.status_code}"
        with self.lock:
            self.requests.append((sent, time.monotonic() - started, problem))
        return response

    def failures(self) -> list[str]:
        with self.lock:
            return [request[2] for request in self.requests if request[2]]

    def _login(self) -> None:
        response = self._call("POST", "/api/v1/auth/login", 200, json=self.credentials)
        if response.status_code == 200:
            self.token = response.json()["access_token"]

    def _cycle(self, n: int) -> None:
        if not self.token:
            self._login()
            if not self.token:
                return
        headers = {"Authorization": f"Bearer {self.token}"}
        response = self._call(
            "POST",
            "/api/v1/documents/",
            201,
            headers=headers,
            files={"file": (f"user-{n}.txt", f"written by a user during a fault test, #{n}", "text/plain")},
        )
        if response.status_code == 401:
            self.token = ""
        if response.status_code != 201:
            return
        document = response.json()["id"]
        with self.lock:
            self.documents.append((document, time.time()))
        if n % self.job_every == 0:
            job = self._call("POST", "/api/v1/ocr/process", 202, headers=headers, json={"document_id": document})
            if job.status_code == 202:
                with self.lock:
                    self.jobs.append((job.json()["job_id"], time.time()))
        self._call("GET", f"/api/v1/documents/{document}", 200, headers=headers)

    def run(self) -> None:
        n = 0
        while not self.halt.is_set():
            n += 1
            # No answer while the backend restarts: dropped, the next cycle is a new write.
            with contextlib.suppress(requests.RequestException):
                self._cycle(n)
            self.halt.wait(self.interval)

    def stop(self) -> None:
        self.halt.set()
        self.join(timeout=15)

    def confirmed(self, since: float = 0.0) -> tuple[list[str], list[str]]:
        """Documents and jobs the API confirmed at or after ``since`` (epoch seconds)."""
        with self.lock:
            return [d for d, at in self.documents if at >= since], [j for j, at in self.jobs if at >= since]


def audit(token: str, documents: list[str], jobs: list[str], settle_s: float = 60.0) -> dict[str, t.Any]:
    """Every confirmed document still there, every confirmed job completed or still queued.

    Jobs that are queued or processing are given ``settle_s`` seconds to finish (the worker runs
    again after a recovery); a job the API no longer knows is lost like a document.
    """
    session = requests.Session()
    headers = {"Authorization": f"Bearer {token}"}
    lost_documents = [
        d
        for d in documents
        if session.get(f"{API_URL}/api/v1/documents/{d}", headers=headers, timeout=5).status_code != 200
    ]
    deadline = time.monotonic() + settle_s
    pending = list(jobs)
    statuses: dict[str, str] = {}
    while True:
        still: list[str] = []
        for job in pending:
            response = session.get(f"{API_URL}/api/v1/ocr/jobs/{job}", headers=headers, timeout=5)
            status = (
                response.json().get("status", "?") if response.status_code == 200 else f"HTTP {response.status_code}"
            )
            statuses[job] = status
            if status in ("queued", "processing"):
                still.append(job)
        pending = still
        if not pending or time.monotonic() > deadline:
            break
        time.sleep(1.0)
    lost_jobs = [j for j, s in statuses.items() if s.startswith("HTTP")]
    failed_jobs = [j for j, s in statuses.items() if s == "failed"]
    # Still queued is fine (the queue holds it); processing after the settle time means a worker lost it.
    stuck_jobs = [j for j in pending if statuses.get(j) == "processing"]
    return {
        "documents": len(documents),
        "jobs": len(jobs),
        "lost_documents": lost_documents,
        "lost_jobs": lost_jobs,
        "failed_jobs": failed_jobs,
        "stuck_jobs": stuck_jobs,
    }
