"""Unit tests of the API-shape settings (no stack needed): the defaults are the reference shape,
the "ocrdesk" build (compose.ocrdesk.yml) switches upload status, export and queue field names."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.config import load_settings
from app.ocr import extract_text
from app.shape import export_json, queue_view
from pdfgen import OCRDESK_SMOKE_PAGES, OCRDESK_SMOKE_TEXT, make_pdf

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
BASE_ENV = {
    "DATABASE_URL": "postgresql://u:p@127.0.0.1:5432/d",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "MINIO_ENDPOINT": "127.0.0.1:9000",
    "MINIO_ACCESS_KEY": "access",
    "MINIO_SECRET_KEY": "secret",
    "SECRET_KEY": "s" * 40,
    "JWT_SECRET_KEY": "j" * 40,
    "CORS_ORIGINS": "http://127.0.0.1:8000",
    "ADMIN_USERNAME": "admin",
    "ADMIN_PASSWORD": "pw",
    "SMOKE_USERNAME": "smoke",
    "SMOKE_PASSWORD": "pw",
}
SHAPE_VARS = ("API_UPLOAD_STATUS", "API_EXPORT_FORMATS", "API_EXPORT_JSON_STYLE", "API_QUEUE_FIELDS")
OCRDESK = {
    "API_UPLOAD_STATUS": "200",
    "API_EXPORT_FORMATS": "json",
    "API_EXPORT_JSON_STYLE": "text",
    "API_QUEUE_FIELDS": "jobs,waiting,active",
}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name, value in BASE_ENV.items():
        monkeypatch.setenv(name, value)
    for name in SHAPE_VARS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_defaults_are_the_reference_shape(env: pytest.MonkeyPatch) -> None:
    settings = load_settings()
    assert settings.upload_status_code == 201
    assert settings.export_formats == ("json", "txt")
    assert settings.export_json_style == "document"
    assert settings.queue_fields == ("queue", "pending", "processing")


def test_ocrdesk_shape(env: pytest.MonkeyPatch) -> None:
    for name, value in OCRDESK.items():
        env.setenv(name, value)
    settings = load_settings()
    assert settings.upload_status_code == 200
    assert settings.export_formats == ("json",)
    assert settings.export_json_style == "text"
    assert settings.queue_fields == ("jobs", "waiting", "active")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("API_UPLOAD_STATUS", "202"),
        ("API_EXPORT_FORMATS", "json,xml"),
        ("API_EXPORT_FORMATS", " , "),
        ("API_EXPORT_JSON_STYLE", "flat"),
        ("API_QUEUE_FIELDS", "jobs,waiting"),
        ("API_QUEUE_FIELDS", "jobs,active,active"),
    ],
)
def test_bad_shape_settings_refuse_to_start(env: pytest.MonkeyPatch, name: str, value: str) -> None:
    env.setenv(name, value)
    with pytest.raises(SystemExit, match=name):
        load_settings()


def test_queue_view() -> None:
    depth = {"pending": 3, "processing": 1}
    assert queue_view(depth, ("queue", "pending", "processing")) == {"queue": {"pending": 3, "processing": 1}}
    assert queue_view(depth, ("jobs", "waiting", "active")) == {"jobs": {"waiting": 3, "active": 1}}


def test_export_json_styles() -> None:
    doc = {"id": "d1", "filename": "a.pdf", "status": "processed", "text": "hallo", "page_count": 1}
    full = export_json(doc, "document", "2025-01-01T00:00:00Z")
    assert full == {**doc, "exported_at": "2025-01-01T00:00:00Z", "format": "json"}
    assert "exported_at" not in doc  # the document itself is not changed
    short = export_json(doc, "text", "2025-01-01T00:00:00Z")
    assert short == {
        "document_id": "d1",
        "text": "hallo",
        "page_count": 1,
        "exported_at": "2025-01-01T00:00:00Z",
        "format": "json",
    }
    assert "page_count" not in export_json({"id": "d1", "text": "x"}, "text", "t")


def test_ocrdesk_smoke_fixture() -> None:
    pdf = (FIXTURES / "ocrdesk" / "smoke_document.pdf").read_bytes()
    expected = (FIXTURES / "ocrdesk" / "smoke_document.expected.txt").read_text()
    assert expected == OCRDESK_SMOKE_TEXT
    assert pdf == make_pdf(OCRDESK_SMOKE_PAGES, compress=True)  # regenerate: python3 tests/pdfgen.py ... ocrdesk
    assert extract_text(pdf, "application/pdf", "smoke_document.pdf") == expected
