"""Unit tests of the app's pure parts (no stack needed): GPU status from NVML numbers, text extraction."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app import gpu
from app.ocr import UnsupportedDocument, extract_text, page_count
from pdfgen import SMOKE_TEXT, make_pdf

GIB = 1024**3


def fake_nvml(monkeypatch: pytest.MonkeyPatch, used_gib: list[float], total_gib: float = 16.0) -> None:
    pynvml = pytest.importorskip("pynvml", reason="nvidia-ml-py not installed in this venv")
    calls: dict[str, Any] = {"shutdown": 0}
    monkeypatch.setattr(pynvml, "nvmlInit", lambda: None)
    monkeypatch.setattr(pynvml, "nvmlShutdown", lambda: calls.__setitem__("shutdown", calls["shutdown"] + 1))
    monkeypatch.setattr(pynvml, "nvmlSystemGetDriverVersion", lambda: "550.54")
    monkeypatch.setattr(pynvml, "nvmlDeviceGetCount", lambda: len(used_gib))
    monkeypatch.setattr(pynvml, "nvmlDeviceGetHandleByIndex", lambda i: i)
    monkeypatch.setattr(pynvml, "nvmlDeviceGetName", lambda h: b"NVIDIA GeForce RTX 4080")
    monkeypatch.setattr(
        pynvml,
        "nvmlDeviceGetMemoryInfo",
        lambda h: SimpleNamespace(
            total=int(total_gib * GIB), used=int(used_gib[h] * GIB), free=int((total_gib - used_gib[h]) * GIB)
        ),
    )
    monkeypatch.setattr(pynvml, "nvmlDeviceGetUtilizationRates", lambda h: SimpleNamespace(gpu=37, memory=10))


@pytest.mark.parametrize(
    ("used", "limit", "status"),
    [
        ([2.0], 13.6, "healthy"),
        ([13.65], 13.6, "unhealthy"),
        ([2.0, 14.0], 13.6, "unhealthy"),
        ([14.0], 15.0, "degraded"),  # under the limit, but above 85 % of the card
    ],
)
def test_gpu_status_from_memory(monkeypatch: pytest.MonkeyPatch, used: list[float], limit: float, status: str) -> None:
    fake_nvml(monkeypatch, used)
    result = gpu.check_gpu(limit)
    assert result["status"] == status, result
    assert result["gpu_count"] == len(used)
    first = result["gpus"][0]
    assert first["name"] == "NVIDIA GeForce RTX 4080"
    assert first["memory_total_mb"] == 16384.0
    assert first["utilization_percent"] == 37
    assert result["driver_version"] == "550.54"


def test_gpu_unavailable_without_nvml(monkeypatch: pytest.MonkeyPatch) -> None:
    pynvml = pytest.importorskip("pynvml", reason="nvidia-ml-py not installed in this venv")

    def fail() -> None:
        raise pynvml.NVMLError(pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)

    monkeypatch.setattr(pynvml, "nvmlInit", fail)
    result = gpu.check_gpu(13.6)
    assert result["status"] == "unavailable"
    assert "NVML" in result["reason"]


def test_worst_status() -> None:
    assert gpu.worst(["healthy", "unavailable"]) == "healthy"
    assert gpu.worst(["healthy", "degraded"]) == "degraded"
    assert gpu.worst(["degraded", "unhealthy", "healthy"]) == "unhealthy"


def test_pdf_text_and_pages() -> None:
    pdf = make_pdf(SMOKE_TEXT.split("\f"), compress=[False, True])
    text = extract_text(pdf, "application/pdf", "a.pdf")
    assert text == SMOKE_TEXT
    assert page_count(text) == 2
    tj = (
        b"%PDF-1.1\n1 0 obj << /Length 60 >>\nstream\n"
        b"BT [(Hel) -50 (lo) -300 (W\\157rld)] TJ T* <48693f> Tj ET\nendstream endobj"
    )
    assert extract_text(tj, "", "x.pdf") == "Hello World\nHi?"


def test_plain_text_and_unsupported() -> None:
    assert extract_text("Grüße\n".encode(), "text/plain", "x.txt") == "Grüße\n"
    assert extract_text(b"caf\xe9", "text/plain", "x.txt") == "café"
    with pytest.raises(UnsupportedDocument):
        extract_text(b"\x89PNG....", "image/png", "x.png")
    with pytest.raises(UnsupportedDocument):
        extract_text(b"%PDF-1.4\n1 0 obj << >> endobj", "application/pdf", "empty.pdf")
