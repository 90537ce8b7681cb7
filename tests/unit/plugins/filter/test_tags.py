"""deploy_run_scope: which tag-scoped deploy.yml runs narrow the run and which are refused."""

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.ablage.ops.plugins.filter.tags import ELSEWHERE, PREFLIGHT, deploy_run_scope


@pytest.mark.parametrize(
    ("run", "skip", "scope"),
    [
        (["all"], [], "deploy"),
        ([], [], "deploy"),
        (["all"], ["preflight"], "deploy"),
        (["all"], ["preflight_quality", "preflight_db"], "deploy"),
        (["preflight"], [], "preflight"),
        (["preflight_config", "preflight_contract"], [], "preflight"),
        (["pull"], [], "pull"),
        (["preflight_infra", "pull"], [], "pull"),
    ],
)
def test_narrowing_runs(run: list[str], skip: list[str], scope: str) -> None:
    result = deploy_run_scope(run, skip)
    assert result["refused"] == ""
    assert result["scope"] == scope


@pytest.mark.parametrize("tag", sorted(ELSEWHERE))
def test_a_step_alone_is_refused_and_the_playbook_named(tag: str) -> None:
    result = deploy_run_scope([tag], [])
    assert result["scope"] == ""
    playbook = ELSEWHERE[tag].split("playbooks/")[1].split()[0]
    assert f"playbooks/{playbook}" in result["refused"]
    assert result["refused"].endswith("Nothing was changed.")


def test_a_step_with_pull_or_the_gates_is_refused_too() -> None:
    assert deploy_run_scope(["pull", "migrate"], [])["scope"] == ""
    assert "migrate" in deploy_run_scope(["preflight", "migrate"], [])["refused"]
    # With the whole deploy, an extra step tag would still mean a cut: refused, not silently widened.
    assert "smoke" in deploy_run_scope(["all", "smoke"], [])["refused"]


def test_an_unknown_tag_names_the_tag_page() -> None:
    refused = deploy_run_scope(["migrat"], [])["refused"]
    assert "'migrat'" in refused and "docs/tags.md" in refused


@pytest.mark.parametrize("tag", ["backup", "migrate", "smoke", "maintenance", "pull"])
def test_skipping_a_step_of_the_deploy_is_refused(tag: str) -> None:
    result = deploy_run_scope(["all"], [tag])
    assert result["scope"] == ""
    assert f"--skip-tags {tag}" in result["refused"]


def test_skipping_a_tag_that_no_task_carries_changes_nothing_and_is_allowed() -> None:
    assert deploy_run_scope(["all"], ["molecule-notest", "notest"]) == {
        "scope": "deploy",
        "refused": "",
        "run_tags": ["all"],
        "skip_tags": ["molecule-notest", "notest"],
    }


@pytest.mark.parametrize("tag", ["rollback", "verify", "maintenance"])
def test_skipping_the_rollback_or_a_check_is_refused(tag: str) -> None:
    assert deploy_run_scope(["all"], [tag])["scope"] == ""


def test_every_preflight_tag_may_be_skipped() -> None:
    assert deploy_run_scope(["all"], list(PREFLIGHT))["refused"] == ""


def test_the_tags_are_lists() -> None:
    with pytest.raises(AnsibleFilterError, match="list of tag names"):
        deploy_run_scope("preflight")
