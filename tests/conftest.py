"""Shared by every pytest suite of the collection.

- The checkout must be importable as ``ansible_collections.ablage.ops``: pyproject puts
  ``.collections`` on sys.path; the link is created here if ``make collection`` has not run.
- ``run_module`` runs a module's real ``main()`` with patched arguments and returns the JSON
  it printed (so no_log masking is part of what is tested) plus its exit code.
"""

from __future__ import annotations

import importlib
import json
import sys
import typing as t
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
COLLECTIONS = REPO / ".collections"


def _ensure_collection_link() -> None:
    ns_dir = COLLECTIONS / "ansible_collections" / "ablage"
    link = ns_dir / "ops"
    if not link.exists():
        ns_dir.mkdir(parents=True, exist_ok=True)
        link.symlink_to("../../..")
    if str(COLLECTIONS) not in sys.path:
        sys.path.insert(0, str(COLLECTIONS))
    sys.path_importer_cache.pop(str(COLLECTIONS), None)
    importlib.invalidate_caches()


_ensure_collection_link()

from ansible.module_utils.testing import patch_module_args  # noqa: E402


class ModuleRun(dict):  # type: ignore[type-arg]
    """The JSON a module printed, plus the exit code."""

    @property
    def rc(self) -> int:
        return int(self["_rc"])

    @property
    def failed(self) -> bool:
        return bool(self.get("failed"))


@pytest.fixture
def run_module(capsys: pytest.CaptureFixture[str]) -> t.Callable[..., ModuleRun]:
    def run(
        main: t.Callable[[], None], args: dict[str, t.Any], check_mode: bool = False, diff: bool = False
    ) -> ModuleRun:
        module_args = dict(args)
        module_args["_ansible_check_mode"] = check_mode
        module_args["_ansible_diff"] = diff
        capsys.readouterr()
        with patch_module_args(module_args), pytest.raises(SystemExit) as exc:
            main()
        out = capsys.readouterr().out
        result = ModuleRun(json.loads(out))
        result["_rc"] = exc.value.code or 0
        result["_raw"] = out
        return result

    return run
