"""Upload, OCR by the worker, export, admin panel: the smoke path of the checklist."""

from __future__ import annotations

import requests
from pdfgen import make_pdf
from refstack import API, BASE_URL, FIXTURES, start_ocr, upload, wait_for, wait_job


def test_text_document_ocr_and_export(user: dict[str, str], has_page_count: bool) -> None:
    content = "Hallo Ablage\nZweite Zeile äöü\n"
    doc = upload(user, "notiz.txt", content.encode(), "text/plain")
    assert doc["status"] == "uploaded" and doc["size_bytes"] == len(content.encode())
    job = start_ocr(user, doc["id"])
    assert job["status"] == "queued" and job["document_id"] == doc["id"]
    finished = wait_job(user, job["job_id"])
    assert finished["status"] == "completed", finished
    assert finished["text"] == content
    assert finished["worker"]

    got = requests.get(f"{API}/documents/{doc['id']}", headers=user, timeout=10).json()
    assert got["status"] == "processed" and got["text"] == content and got["sha256"] == doc["sha256"]
    if has_page_count:
        assert got["page_count"] == 1
    else:
        assert "page_count" not in got

    txt = requests.get(f"{API}/documents/{doc['id']}/export", params={"format": "txt"}, headers=user, timeout=10)
    assert txt.status_code == 200 and txt.text == content
    assert txt.headers["content-type"].startswith("text/plain")
    assert 'filename="notiz.txt"' in txt.headers["content-disposition"]
    js = requests.get(f"{API}/documents/{doc['id']}/export", params={"format": "json"}, headers=user, timeout=10)
    assert js.status_code == 200 and js.json()["text"] == content and js.json()["format"] == "json"
    bad = requests.get(f"{API}/documents/{doc['id']}/export", params={"format": "xml"}, headers=user, timeout=10)
    assert bad.status_code == 422


def test_pdf_fixture_ocr(user: dict[str, str], has_page_count: bool) -> None:
    pdf = (FIXTURES / "test_document.pdf").read_bytes()
    expected = (FIXTURES / "test_document.expected.txt").read_text()
    doc = upload(user, "test_document.pdf", pdf, "application/pdf")
    finished = wait_job(user, start_ocr(user, doc["id"])["job_id"])
    assert finished["status"] == "completed", finished
    assert finished["text"] == expected
    if has_page_count:
        got = requests.get(f"{API}/documents/{doc['id']}", headers=user, timeout=10).json()
        assert got["page_count"] == 2


def test_generated_pdf_with_compressed_pages(user: dict[str, str]) -> None:
    pages = ["Seite eins (mit Klammern)", "Seite zwei\nnoch eine Zeile", "Seite drei"]
    doc = upload(user, "drei.pdf", make_pdf(pages, compress=True), "application/pdf")
    finished = wait_job(user, start_ocr(user, doc["id"])["job_id"])
    assert finished["text"] == "\f".join(pages)


def test_unsupported_document_fails_the_job(user: dict[str, str]) -> None:
    doc = upload(user, "bild.png", b"\x89PNG\r\n\x1a\nnot really", "image/png")
    finished = wait_job(user, start_ocr(user, doc["id"])["job_id"])
    assert finished["status"] == "failed"
    assert "cannot extract text" in finished["error"]
    got = requests.get(f"{API}/documents/{doc['id']}", headers=user, timeout=10).json()
    assert got["status"] == "failed"
    export = requests.get(f"{API}/documents/{doc['id']}/export", headers=user, timeout=10)
    assert export.status_code == 409


def test_export_before_processing_is_409(user: dict[str, str]) -> None:
    doc = upload(user, "spaeter.txt", b"later", "text/plain")
    response = requests.get(f"{API}/documents/{doc['id']}/export", headers=user, timeout=10)
    assert response.status_code == 409
    assert "uploaded" in response.json()["detail"]


def test_ocr_process_accepts_runbook_curl_body(user: dict[str, str]) -> None:
    """The checklist's `curl -d '{...}'` sends JSON as application/x-www-form-urlencoded."""
    doc = upload(user, "curl.txt", b"curl body", "text/plain")
    response = requests.post(
        f"{API}/ocr/process",
        headers={**user, "Content-Type": "application/x-www-form-urlencoded"},
        data=f'{{"document_id": "{doc["id"]}", "backend": "auto"}}',
        timeout=10,
    )
    assert response.status_code == 202, response.text
    assert wait_job(user, response.json()["job_id"])["status"] == "completed"


def test_ocr_process_validation(user: dict[str, str]) -> None:
    missing = requests.post(f"{API}/ocr/process", headers=user, json={"document_id": "nope"}, timeout=10)
    assert missing.status_code == 404
    doc = upload(user, "v.txt", b"v", "text/plain")
    bad = requests.post(f"{API}/ocr/process", headers=user, json={"document_id": doc["id"], "backend": "x"}, timeout=10)
    assert bad.status_code == 422
    assert requests.post(f"{API}/ocr/process", headers=user, json={}, timeout=10).status_code == 422
    assert requests.get(f"{API}/ocr/jobs/nope", headers=user, timeout=10).status_code == 404


def test_upload_without_trailing_slash_and_empty_file(user: dict[str, str]) -> None:
    response = requests.post(
        f"{API}/documents", headers=user, files={"file": ("a.txt", b"x", "text/plain")}, timeout=10
    )
    assert response.status_code == 201, response.text
    empty = requests.post(f"{API}/documents/", headers=user, files={"file": ("e.txt", b"", "text/plain")}, timeout=10)
    assert empty.status_code == 422


def test_admin_sees_user_documents(user: dict[str, str], admin: dict[str, str]) -> None:
    doc = upload(user, "fuer-admin.txt", b"x", "text/plain")
    assert requests.get(f"{API}/documents/{doc['id']}", headers=admin, timeout=10).status_code == 200


def test_admin_panel(version: str) -> None:
    response = requests.get(f"{BASE_URL}/admin", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert f'<strong id="version">{version}</strong>' in response.text


def test_queue_drains_and_pipeline_tracks_jobs(user: dict[str, str]) -> None:
    docs = [upload(user, f"q{i}.txt", f"queued {i}".encode(), "text/plain") for i in range(3)]
    jobs = [start_ocr(user, d["id"], simulate_seconds=0.6)["job_id"] for d in docs]

    def busy() -> dict[str, int] | None:
        queue = requests.get(f"{API}/health/pipeline", timeout=10).json()["queue"]
        return queue if queue["processing"] == 1 else None

    seen = wait_for(busy, 5, 0.05, "a job in processing")
    assert seen["pending"] + seen["processing"] <= 3

    def drained() -> bool:
        queue = requests.get(f"{API}/health/pipeline", timeout=10).json()["queue"]
        return queue == {"pending": 0, "processing": 0}

    wait_for(drained, 15, 0.1, "the queue to drain")
    assert all(wait_job(user, j)["status"] == "completed" for j in jobs)
