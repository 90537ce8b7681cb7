"""OCR worker: takes jobs from Redis, extracts text, writes results to PostgreSQL.

Reliable queue: BLMOVE moves a job from ablage:ocr:queue to ablage:ocr:processing,
where it stays until the job is finished, so `pending` and `processing` counts
(LLEN of the two lists) tell a deploy when the pipeline has drained. A heartbeat
with TTL is written every WORKER_HEARTBEAT_INTERVAL seconds. On SIGTERM the
current job is finished before the worker exits.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import signal
import socket
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from sqlalchemy import text

from app.config import load_settings
from app.ocr import UnsupportedDocument, extract_text, page_count
from app.release import Release, load_release
from app.services import HEARTBEAT_PREFIX, PROCESSING_KEY, QUEUE_KEY, Services, make_services

log = logging.getLogger("ablage.worker")
HEARTBEAT_FILE = Path(os.environ.get("WORKER_HEARTBEAT_FILE", "/tmp/worker-heartbeat"))  # nosec B108


class Worker:
    def __init__(self, services: Services, release: Release) -> None:
        self.services = services
        self.release = release
        # host networking: every container shares the host name, so add a random part
        self.name = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.stop = threading.Event()
        self.current_job: str | None = None
        self.jobs_processed = 0
        self.started_at = datetime.now(UTC).isoformat(timespec="seconds")
        self.heartbeat_key = HEARTBEAT_PREFIX + self.name

    # -- heartbeat
    def beat(self) -> None:
        payload = {
            "worker": self.name,
            "version": self.release.version,
            "ts": time.time(),
            "current_job": self.current_job,
            "jobs_processed": self.jobs_processed,
            "started_at": self.started_at,
        }
        ttl = self.services.settings.worker_heartbeat_ttl
        self.services.redis.set(self.heartbeat_key, json.dumps(payload), ex=ttl)
        HEARTBEAT_FILE.touch()

    def heartbeat_loop(self) -> None:
        interval = self.services.settings.worker_heartbeat_interval
        while not self.stop.is_set():
            try:
                self.beat()
            except Exception as exc:  # Redis blip: the healthcheck file goes stale and tells
                log.warning("heartbeat failed: %s", exc)
            self.stop.wait(interval)

    # -- jobs
    def requeue_orphans(self) -> None:
        """Jobs left in 'processing' by a worker that died: back to the queue, if no other worker lives."""
        others = [k for k in self.services.redis.scan_iter(match=HEARTBEAT_PREFIX + "*") if k != self.heartbeat_key]
        if others:
            return
        moved = dropped = 0
        redis = self.services.redis
        for raw in redis.lrange(PROCESSING_KEY, 0, -1):
            pipe = redis.pipeline(transaction=True)  # off the list and back in the queue at once
            pipe.lrem(PROCESSING_KEY, 1, raw)
            if self._finished(raw):
                dropped += 1  # its worker finished it but could not take it off the list
            else:
                pipe.rpush(QUEUE_KEY, raw)
                moved += 1
            pipe.execute()
        if moved or dropped:
            log.warning(
                "requeued %d job(s) left in processing by a previous worker, dropped %d finished", moved, dropped
            )

    def _finished(self, raw: Any) -> bool:
        try:
            job_id = json.loads(raw)["job_id"]
        except (ValueError, KeyError, TypeError):
            return False
        with self.services.engine.connect() as conn:
            status = conn.execute(text("SELECT status FROM ocr_jobs WHERE id = :id"), {"id": job_id}).scalar()
        return status in ("completed", "failed")

    def run(self) -> None:
        self.beat()
        self.requeue_orphans()
        threading.Thread(target=self.heartbeat_loop, name="heartbeat", daemon=True).start()
        log.info("worker %s (release %s) waiting for jobs on %s", self.name, self.release.version, QUEUE_KEY)
        while not self.stop.is_set():
            try:
                raw = self.services.redis.blmove(QUEUE_KEY, PROCESSING_KEY, 1, "RIGHT", "LEFT")
            except Exception as exc:
                log.warning("queue unavailable: %s", exc)
                self.stop.wait(1)
                continue
            if raw is None:
                continue
            try:
                self.process(json.loads(raw))
            except Exception as exc:  # never lose the loop; the job row carries the error
                log.error("job %s crashed: %s", raw, exc)
            finally:
                self.current_job = None
                self.release_job(raw)
        log.info("worker %s stopping after %d job(s)", self.name, self.jobs_processed)
        with contextlib.suppress(Exception):  # shutting down; the TTL removes the key anyway
            self.services.redis.delete(self.heartbeat_key)

    def release_job(self, raw: Any) -> None:
        """Take the finished job off the processing list, retrying while Redis is away.

        Seen in the fault campaign: with Redis stopped at the moment a job finished, the entry stayed
        in processing for good, and every later deploy's drain waited for it.
        """
        while True:
            try:
                self.services.redis.lrem(PROCESSING_KEY, 1, raw)
                return
            except Exception as exc:
                log.warning("could not release job %s (%s); retrying", raw, exc)
                if self.stop.wait(1):
                    # Shutting down: the next worker's requeue_orphans finds it and drops it as finished.
                    return

    def process(self, job: dict[str, Any]) -> None:
        job_id, document_id = job["job_id"], job["document_id"]
        self.current_job = job_id
        engine = self.services.engine
        with engine.begin() as conn:
            row = conn.execute(
                text("SELECT id, filename, content_type, object_key FROM documents WHERE id = :id"),
                {"id": document_id},
            ).first()
            conn.execute(
                text("UPDATE ocr_jobs SET status = 'processing', started_at = now(), worker = :w WHERE id = :id"),
                {"id": job_id, "w": self.name},
            )
            conn.execute(
                text("UPDATE documents SET status = 'processing', updated_at = now() WHERE id = :id"),
                {"id": document_id},
            )
        if row is None:
            self._fail(job_id, document_id, "document not found")
            return
        log.info("job %s: OCR of document %s (%s)", job_id, document_id, row.filename)
        try:
            data = self.services.get_object(row.object_key)
            extracted = extract_text(data, row.content_type, row.filename)
        except UnsupportedDocument as exc:
            self._fail(job_id, document_id, str(exc))
            return
        except Exception as exc:
            self._fail(job_id, document_id, f"{type(exc).__name__}: {exc}")
            raise
        delay = job.get("simulate_seconds", self.services.settings.ocr_simulated_delay_seconds)
        if delay:
            time.sleep(float(delay))  # stands in for GPU time; deploys must wait for it
        with engine.begin() as conn:
            conn.execute(
                text("UPDATE documents SET status = 'processed', ocr_text = :text, updated_at = now() WHERE id = :id"),
                {"id": document_id, "text": extracted},
            )
            if self.release.has("page_count"):  # column added by revision 0002 (release 1.1.0)
                conn.execute(
                    text("UPDATE documents SET page_count = :pages WHERE id = :id"),
                    {"id": document_id, "pages": page_count(extracted)},
                )
            conn.execute(
                text("UPDATE ocr_jobs SET status = 'completed', finished_at = now(), error = NULL WHERE id = :id"),
                {"id": job_id},
            )
        self.jobs_processed += 1
        log.info("job %s completed: %d characters", job_id, len(extracted))

    def _fail(self, job_id: str, document_id: str, error: str) -> None:
        log.warning("job %s failed: %s", job_id, error)
        with self.services.engine.begin() as conn:
            conn.execute(
                text("UPDATE ocr_jobs SET status = 'failed', error = :e, finished_at = now() WHERE id = :id"),
                {"id": job_id, "e": error[:1000]},
            )
            conn.execute(
                text("UPDATE documents SET status = 'failed', updated_at = now() WHERE id = :id"), {"id": document_id}
            )


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = load_settings()
    worker = Worker(make_services(settings), load_release())

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %s: finishing the current job (%s), then exiting", signum, worker.current_job or "none")
        worker.stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    worker.run()


if __name__ == "__main__":
    main()
