"""The worker finishes its current job on SIGTERM (compose stop), and the pipeline shows it gone."""

from __future__ import annotations

import requests
from refstack import API, compose, pipeline, start_ocr, upload, wait_for, wait_job


def test_sigterm_finishes_current_job(user: dict[str, str]) -> None:
    doc = upload(user, "lang.txt", b"long running job", "text/plain")
    job = start_ocr(user, doc["id"], simulate_seconds=3)
    wait_for(lambda: pipeline()["queue"]["processing"] == 1, 5, 0.05, "the job to be taken")
    try:
        compose("stop", "worker", timeout=90)
        status = requests.get(f"{API}/ocr/jobs/{job['job_id']}", headers=user, timeout=10).json()
        assert status["status"] == "completed", status
        assert status["text"] == "long running job"
        after = requests.get(f"{API}/health/pipeline", timeout=10)
        assert after.status_code == 503
        body = after.json()
        assert body["status"] == "unhealthy" and body["workers_alive"] == 0
        assert body["queue"] == {"pending": 0, "processing": 0}
        complete = requests.get(f"{API}/health/complete", timeout=10)
        assert complete.status_code == 503 and complete.json()["status"] == "unhealthy"
        logs = compose("logs", "--no-log-prefix", "--tail", "20", "worker").stdout
        assert "finishing the current job" in logs
    finally:
        compose("up", "-d", "--wait", "worker", timeout=120)
    assert wait_job(user, start_ocr(user, doc["id"])["job_id"])["status"] == "completed"
