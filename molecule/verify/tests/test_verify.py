"""After the verify role: users are served, and the smoke document went through the OCR worker."""

from __future__ import annotations


def psql(host, sql: str) -> str:
    cmd = host.run("docker exec ablage-postgres-1 psql -U postgres -d ablage -Atc %s", sql)
    assert cmd.rc == 0, cmd.stderr
    return cmd.stdout.strip()


def test_maintenance_is_off(host) -> None:
    status = host.check_output("curl -s -o /dev/null -w '%%{http_code}' http://127.0.0.1:8000/api/v1/documents/")
    assert status != "503"


def test_smoke_document_was_processed_by_the_worker(host) -> None:
    rows = psql(host, "SELECT status, ocr_text FROM documents WHERE filename = 'smoke-document.pdf'")
    assert rows, "no smoke document in the database"
    worker_log = host.run("docker logs --tail 30 ablage-worker-1").stdout
    for row in rows.splitlines():
        assert row == "processed|Ablage-System smoke test 4711", worker_log
