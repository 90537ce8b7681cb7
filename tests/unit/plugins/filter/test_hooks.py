"""hook_files: a typo or a missing file in ablage_hooks is an error before the lock, never a silent skip."""

from __future__ import annotations

from pathlib import Path

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.ablage.ops.plugins.filter.hooks import POINTS, hook_files


@pytest.fixture
def base(tmp_path: Path) -> Path:
    (tmp_path / "hooks").mkdir()
    for name in ("warm.yml", "ticket.yml", "purge.yml"):
        (tmp_path / "hooks" / name).write_text("---\n[]\n", encoding="utf-8")
    return tmp_path


def test_relative_paths_are_taken_from_the_inventory_directory(base: Path) -> None:
    hooks = {"after_start": "hooks/warm.yml", "on_failure": ["hooks/ticket.yml", str(base / "hooks/purge.yml")]}
    assert hook_files(hooks, "after_start", str(base)) == [str(base / "hooks/warm.yml")]
    assert hook_files(hooks, "on_failure", str(base)) == [str(base / "hooks/ticket.yml"), str(base / "hooks/purge.yml")]
    assert hook_files(hooks, "after_migrate", str(base)) == []


def test_without_a_point_every_file_comes_in_the_order_of_the_points(base: Path) -> None:
    hooks = {"on_failure": "hooks/ticket.yml", "before_maintenance": "hooks/warm.yml"}
    assert hook_files(hooks, None, str(base)) == [str(base / "hooks/warm.yml"), str(base / "hooks/ticket.yml")]


@pytest.mark.parametrize("hooks", [None, "", {}])
def test_no_hooks(hooks: object, base: Path) -> None:
    assert hook_files(hooks, "after_start", str(base)) == []


def test_a_typo_in_a_point_names_the_points(base: Path) -> None:
    with pytest.raises(AnsibleFilterError, match=r"ablage_hooks.after_migration is not a hook point.*after_migrate"):
        hook_files({"after_migration": "hooks/warm.yml"}, "after_start", str(base))


def test_a_missing_file_is_named_whatever_point_is_asked(base: Path) -> None:
    with pytest.raises(AnsibleFilterError, match=r"ablage_hooks.on_failure: no such task file .*hooks/nope.yml"):
        hook_files({"on_failure": "hooks/nope.yml"}, "after_start", str(base))


def test_a_file_must_be_a_string_or_a_list_of_strings(base: Path) -> None:
    with pytest.raises(AnsibleFilterError, match="task file or a list of task files"):
        hook_files({"after_start": {"file": "x"}}, "after_start", str(base))
    with pytest.raises(AnsibleFilterError, match="must be a dict"):
        hook_files(["hooks/warm.yml"], "after_start", str(base))


def test_asking_for_an_unknown_point_is_a_programming_error(base: Path) -> None:
    with pytest.raises(AnsibleFilterError, match="unknown point 'after_lunch'"):
        hook_files({}, "after_lunch", str(base))


def test_the_points_are_in_deploy_order() -> None:
    assert POINTS[0] == "before_maintenance" and POINTS[-2:] == ("on_rollback", "on_failure")
