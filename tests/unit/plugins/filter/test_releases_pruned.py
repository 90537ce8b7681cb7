"""releases_kept / releases_old / images_to_prune: old releases leave the host; what runs, the rollback target and
images no deploy named (pulled ahead of a window) never do."""

from __future__ import annotations

from ansible_collections.ablage.ops.plugins.filter.release import images_to_prune, releases_kept, releases_old

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


def test_a_failed_deploy_is_never_a_release_to_keep_but_an_old_one() -> None:
    kept = releases_kept(HISTORY, 0, "1.3.0", "1.2.0")
    assert "1.2.0-broken" not in kept
    assert releases_old(HISTORY, kept) == ["1.2.0-broken"]


def test_the_rollback_target_stays_even_when_keep_is_one() -> None:
    kept = releases_kept(HISTORY, 1, "1.3.0", "1.2.0")
    assert kept == ["1.3.0", "1.2.0"]
    assert releases_old(HISTORY, kept) == ["1.0.0", "1.1.0", "1.2.0-broken"]


def test_keep_zero_keeps_every_version_deployed() -> None:
    assert releases_kept(HISTORY, 0, "1.3.0", None) == ["1.3.0", "1.2.0", "1.1.0", "1.0.0"]


def _local(*tags: str) -> list[dict[str, object]]:
    return [{"RepoTags": [tag], "Created": n} for n, tag in enumerate(tags)]


def _release(version: str) -> dict[str, str]:
    return {"backend": f"{REG}/backend:{version}", "worker": f"{REG}/worker:{version}"}


def test_only_the_local_tags_of_old_releases() -> None:
    local = _local(
        f"{REG}/backend:1.0.0",
        f"{REG}/worker:1.0.0",
        f"{REG}/backend:1.1.0",
        f"{REG}/worker:1.1.0",
        f"{REG}/backend:1.4.0",  # pulled ahead of its window: no deploy named it
        f"{REG}/postgres:15",
    )
    prune = images_to_prune(local, [_release("1.1.0")], [_release("1.0.0"), _release("0.9.0")])
    assert prune == [f"{REG}/backend:1.0.0", f"{REG}/worker:1.0.0"]


def test_an_image_a_kept_release_shares_with_an_old_one_stays() -> None:
    shared = {"api": f"{REG}/server:2", "ocr": f"{REG}/server:2"}
    assert images_to_prune(_local(f"{REG}/server:2"), [shared], [shared]) == []
