"""The api action group: every module that talks HTTP(S) to the application is in it, and every play that runs
one of them sets the group's defaults, so one ablage_api_tls setting reaches them all."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
GROUP = "group/ablage.ops.api"


def _http_modules() -> set[str]:
    return {p.stem for p in (REPO / "plugins" / "modules").glob("*.py") if "tls_argument_spec()" in p.read_text()}


def test_the_group_holds_every_module_with_the_http_options() -> None:
    runtime = yaml.safe_load((REPO / "meta" / "runtime.yml").read_text())
    assert set(runtime["action_groups"]["api"]) == _http_modules()


def _texts(playbook: Path) -> str:
    """The playbook, its task files and the roles it names (their task files), as one text."""
    text = playbook.read_text()
    for role in set(re.findall(r"ablage\.ops\.(\w+)\n", text)) | set(re.findall(r"name: ablage\.ops\.(\w+)", text)):
        text += "".join(p.read_text() for p in (REPO / "roles" / role / "tasks").glob("*.yml"))
    for tasks in re.findall(r"import_tasks: (tasks/\S+\.yml)", text):
        text += (playbook.parent / tasks).read_text()
    for imported in re.findall(r"import_playbook: (\S+\.yml)", text):
        text += _texts(playbook.parent / imported)
    return text


def test_every_play_that_runs_an_api_module_sets_the_group_defaults() -> None:
    modules = _http_modules()
    missing = []
    for playbook in sorted((REPO / "playbooks").glob("*.yml")):
        uses = any(f"ablage.ops.{m}:" in _texts(playbook) for m in modules)
        plays = yaml.safe_load(playbook.read_text()) or []
        for play in plays:
            if "hosts" not in play or not uses or not (play.get("tasks") or play.get("roles")):
                continue
            if play["name"].endswith("(a deploy is one unit)"):
                continue  # the tag check runs no module
            if GROUP not in (play.get("module_defaults") or {}):
                missing.append(f"{playbook.name}: {play['name']}")
    assert not missing, f"plays without {GROUP}: {missing}"
