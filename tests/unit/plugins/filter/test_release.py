"""service_digests: each service's image by digest, whatever the image naming."""

from __future__ import annotations

from ansible_collections.ablage.ops.plugins.filter.release import service_digests


def _pulled(item: str, *digests: str) -> dict[str, object]:
    return {"item": item, "image": {"RepoDigests": list(digests)}}


def test_one_image_for_two_services_gives_both_the_same_digest() -> None:
    images = {"api": "127.0.0.1:5000/ocrdesk/server:1.1.0", "ocr": "127.0.0.1:5000/ocrdesk/server:1.1.0"}
    digest = "127.0.0.1:5000/ocrdesk/server@sha256:" + "a" * 64
    assert service_digests(images, [_pulled(images["api"], digest)]) == {"api": digest, "ocr": digest}


def test_the_digest_of_the_images_own_repository_is_chosen() -> None:
    images = {"backend": "registry.example:443/team/ablage-backend:2.0"}
    other = "mirror.example/team/ablage-backend@sha256:" + "b" * 64
    mine = "registry.example:443/team/ablage-backend@sha256:" + "c" * 64
    assert service_digests(images, [_pulled(images["backend"], other, mine)]) == {"backend": mine}


def test_digest_pinned_image_and_unknown_digest() -> None:
    pinned = "registry.example/ablage/worker@sha256:" + "d" * 64
    images = {"worker": pinned, "backend": "ablage-backend:latest"}
    assert service_digests(images, [_pulled(pinned, pinned)]) == {"worker": pinned, "backend": ""}


def test_deploy_plan() -> None:
    from ansible_collections.ablage.ops.plugins.filter.release import deploy_plan

    same = {"current_version": "1.1.0", "version": "1.1.0", "up_to_date": True}
    idle = {"pending": [], "current_before": "0002"}
    assert deploy_plan(same, idle, False)["action"] == "none"
    assert "already at 1.1.0" in deploy_plan(same, idle, False)["reason"]
    assert deploy_plan(same, idle, True)["action"] == "deploy"
    assert "lock is held" in deploy_plan(same, idle, False, locked=True)["reason"]
    assert "0003" in deploy_plan(same, {"pending": ["0003"]}, False)["reason"]
    assert deploy_plan(same, {"skipped": True}, False)["action"] == "deploy"
    other = {
        "current_version": "1.0.0",
        "version": "1.1.0",
        "up_to_date": False,
        "up_to_date_reason": "points at 1.0.0",
    }
    assert deploy_plan(other, None, False) == {
        "current_version": "1.0.0",
        "version": "1.1.0",
        "action": "deploy",
        "reason": "points at 1.0.0",
    }
