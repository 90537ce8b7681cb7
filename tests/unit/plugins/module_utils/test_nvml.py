"""plugins/module_utils/_nvml.py: error explanations, the optional import, version text."""

from __future__ import annotations

import ctypes
import importlib
import sys

import pynvml
import pytest

from ansible_collections.ablage.ops.plugins.module_utils import _nvml


@pytest.mark.parametrize(("value", "text"), [(12040, "12.4"), (12000, "12.0"), (11080, "11.8"), (13010, "13.1")])
def test_cuda_version_string(value: int, text: str) -> None:
    assert _nvml.cuda_version_string(value) == text


def test_explain_library_not_found_means_no_gpu() -> None:
    message, no_gpu = _nvml.explain_nvml_error(pynvml.NVMLError(pynvml.NVML_ERROR_LIBRARY_NOT_FOUND))
    assert no_gpu is True
    assert "libnvidia-ml.so.1" in message


def test_explain_unknown_error_keeps_the_nvml_text() -> None:
    message, no_gpu = _nvml.explain_nvml_error(pynvml.NVMLError(pynvml.NVML_ERROR_IN_USE))
    assert no_gpu is False
    assert message.startswith("NVML failed: ")
    assert "NVMLError_InUse" in message


def test_real_init_without_driver_raises_unavailable() -> None:
    try:
        ctypes.CDLL("libnvidia-ml.so.1")
    except OSError:
        pass
    else:  # pragma: no cover - only on GPU hosts
        pytest.skip("this host has the NVIDIA driver")
    with pytest.raises(_nvml.NvmlUnavailable) as exc:
        _nvml.read_gpus()
    assert exc.value.no_gpu is True
    assert exc.value.error_name == "NVMLError_LibraryNotFound"


def test_import_without_pynvml(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real ImportError branch: reload the module while pynvml cannot be imported."""
    monkeypatch.setitem(sys.modules, "pynvml", None)
    try:
        reloaded = importlib.reload(_nvml)
        assert reloaded.HAS_PYNVML is False
        assert reloaded.pynvml is None
        assert "pynvml" in (reloaded.PYNVML_IMPORT_ERROR or "")
    finally:
        monkeypatch.undo()
        importlib.reload(_nvml)
    assert _nvml.HAS_PYNVML is True
