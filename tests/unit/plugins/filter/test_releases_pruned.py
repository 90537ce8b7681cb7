"""releases_kept / images_to_prune: old releases leave the host, the running one and the rollback target never."""

from __future__ import annotations

from ansible_collections.ablage.ops.plugins.filter.release import images_to_prune, releases_kept

REG = "127.0.0.1:5000/ablage"


def _deploy(version: str, result: str = "success") -> dict[str, str]:
    return {"action": "deploy", "version": version, "result": result}


HISTORY = [
    _deploy("1.0.0"),
    _deploy("1.1.0"),
    _deploy("1.2.0-broken", "rolled_back"),
    {"action": "rollback", "version": "1.1.0", "result": "success"},
    _deploy("1.2.0"),
    _deploy("1.3.0"),
]


def test_the_running_and_the_rollback_target_first_then_the_newest_successes() -> None:
    assert releases_kept(HISTORY, 3, "1.3.0", "1.2.0") == ["1.3.0", "1.2.0", "1.1.0"]
    assert releases_kept(HISTORY, 4, "1.3.0", "1.2.0") == ["1.3.0", "1.2.0", "1.1.0", "1.0.0"]


def test_a_failed_deploy_is_never_a_release_to_keep() -> None:
    assert "1.2.0-broken" not in releases_kept(HISTORY, 0, "1.3.0", "1.2.0")


def test_the_rollback_target_stays_even_when_keep_is_one() -> None:
    assert releases_kept(HISTORY, 1, "1.3.0", "1.2.0") == ["1.3.0", "1.2.0"]


def test_keep_zero_keeps_every_version_deployed() -> None:
    assert releases_kept(HISTORY, 0, "1.3.0", None) == ["1.3.0", "1.2.0", "1.1.0", "1.0.0"]


def _local(*tags: str) -> list[dict[str, object]]:
    return [{"RepoTags": [tag], "Created": n} for n, tag in enumerate(tags)]


def test_only_tags_of_the_apps_repositories_that_no_kept_release_uses() -> None:
    local = _local(
        f"{REG}/backend:1.0.0",
        f"{REG}/worker:1.0.0",
        f"{REG}/backend:1.1.0",
        f"{REG}/worker:1.1.0",
        f"{REG}/postgres:15",
        "other/app:1.0.0",
    )
    kept = [{"backend": f"{REG}/backend:1.1.0", "worker": f"{REG}/worker:1.1.0"}]
    assert images_to_prune(local, kept) == [f"{REG}/backend:1.0.0", f"{REG}/worker:1.0.0"]


def test_one_image_for_several_services() -> None:
    local = _local(f"{REG}/server:1.0.0", f"{REG}/server:1.1.0")
    assert images_to_prune(local, [{"api": f"{REG}/server:1.1.0", "ocr": f"{REG}/server:1.1.0"}]) == [
        f"{REG}/server:1.0.0"
    ]


def test_a_repository_pinned_by_digest_is_left_alone() -> None:
    local = _local(f"{REG}/backend:1.0.0", f"{REG}/worker:1.0.0")
    kept = [{"backend": f"{REG}/backend@sha256:" + "a" * 64, "worker": f"{REG}/worker:1.1.0"}]
    assert images_to_prune(local, kept) == [f"{REG}/worker:1.0.0"]
