"""The release pointer: the version variable in .env, versions, images resolved by compose, registries."""

from __future__ import annotations

import pytest

from ansible_collections.ablage.ops.plugins.module_utils._release import (
    ReleaseError,
    follows_version,
    images_of,
    insecure_registries,
    is_insecure,
    manifest_summary,
    read_variable,
    registry_of,
    set_variable,
    variable_problem,
    version_problem,
)

ENV = "# release\nABLAGE_REGISTRY=127.0.0.1:5000\nABLAGE_VERSION=1.0.0\nOTHER=x # note\n"


@pytest.mark.parametrize("version", ["1.1.0", "1.2.0-broken", "v7_rc.1", "latest"])
def test_valid_versions(version: str) -> None:
    assert version_problem(version) is None


@pytest.mark.parametrize("version", ["", "1.0\n", "1.0;rm -rf /", "-1", ".1", "a" * 129, "1.0 ", "x/y"])
def test_invalid_versions_name_the_variable(version: str) -> None:
    problem = version_problem(version)
    assert problem is not None and "ablage_version=" in problem and "Docker tag" in problem


def test_variable_names() -> None:
    assert variable_problem("OCRDESK_RELEASE") is None
    assert "ablage_version_variable" in (variable_problem("1X") or "")


def test_read_variable_forms() -> None:
    assert read_variable(ENV, "ABLAGE_VERSION") == "1.0.0"
    assert read_variable(ENV, "OTHER") == "x"
    assert read_variable("export V='2.0'\nV=\"3.0\"\n", "V") == "3.0"
    assert read_variable(ENV, "MISSING") is None
    assert read_variable("ABLAGE_VERSION_OLD=9\n", "ABLAGE_VERSION") is None


def test_set_variable_keeps_every_other_line() -> None:
    out = set_variable(ENV, "ABLAGE_VERSION", "1.1.0")
    assert out == ENV.replace("ABLAGE_VERSION=1.0.0", "ABLAGE_VERSION=1.1.0")
    assert set_variable("A=1", "V", "2") == "A=1\nV=2\n"
    assert set_variable("export V=1\r\n", "V", "2") == "export V=2\r\n"


def test_images_of_resolved_config() -> None:
    config = {"services": {"api": {"image": "r/ocrdesk/server:1.1.0"}, "ocr": {"image": "r/ocrdesk/server:1.1.0"}}}
    assert images_of(config, ["api", "ocr"]) == {"api": "r/ocrdesk/server:1.1.0", "ocr": "r/ocrdesk/server:1.1.0"}
    with pytest.raises(ReleaseError, match=r"no service backend .*ablage_app_services"):
        images_of(config, ["backend"])
    with pytest.raises(ReleaseError, match="service api has no image"):
        images_of({"services": {"api": {"build": "."}}}, ["api"])


def test_static_services_do_not_follow_the_version() -> None:
    assert follows_version({"a": "x:1", "b": "y:2"}, {"a": "x:1", "b": "y:1"}) == ["a"]


@pytest.mark.parametrize(
    ("image", "registry"),
    [
        ("127.0.0.1:5000/ablage/backend:1.0", "127.0.0.1:5000"),
        ("registry.example/ablage/backend", "registry.example"),
        ("localhost/x", "localhost"),
        ("ablage-backend:latest", "docker.io"),
        ("team/app:1", "docker.io"),
    ],
)
def test_registry_of(image: str, registry: str) -> None:
    assert registry_of(image) == registry


def test_insecure_registries_from_engine_config() -> None:
    config = {
        "InsecureRegistryCIDRs": ["127.0.0.0/8"],
        "IndexConfigs": {"docker.io": {"Secure": True}, "plain.example:5000": {"Secure": False}},
    }
    insecure = insecure_registries(config)
    assert is_insecure("127.0.0.1:5000", insecure)
    assert is_insecure("plain.example:5000", insecure)
    assert not is_insecure("registry.example", insecure)
    assert not is_insecure("10.0.0.1:5000", insecure)


def test_manifest_summary_of_an_index_and_a_manifest() -> None:
    index = (
        '{"mediaType": "application/vnd.oci.image.index.v1+json",'
        ' "manifests": [{"platform": {"os": "linux", "architecture": "amd64"}}]}'
    )
    assert manifest_summary(index) == "index (application/vnd.oci.image.index.v1+json) with linux/amd64"
    assert "config sha256:1" in (manifest_summary('{"schemaVersion": 2, "config": {"digest": "sha256:1"}}') or "")
    assert manifest_summary("not json") is None


def test_up_to_date_compares_running_image_ids_with_the_registry() -> None:
    from ansible_collections.ablage.ops.plugins.module_utils._release import config_digest, up_to_date

    images = {"api": "r/o/server:1.1.0", "ocr": "r/o/server:1.1.0"}
    registry = {"r/o/server:1.1.0": {"exists": True, "config_digest": "sha256:aaa"}}
    running = {
        "api": {"state": "running", "image_id": "sha256:aaa"},
        "ocr": {"state": "running", "image_id": "sha256:aaa"},
    }
    assert up_to_date("1.1.0", "1.1.0", images, running, registry)[0]
    assert not up_to_date("1.0.0", "1.1.0", images, running, registry)[0]
    moved = dict(running, ocr={"state": "running", "image_id": "sha256:old"})
    ok, reason = up_to_date("1.1.0", "1.1.0", images, moved, registry)
    assert not ok and "ocr runs sha256:old" in reason
    assert "not running" in up_to_date("1.1.0", "1.1.0", images, {"api": running["api"]}, registry)[1]
    assert config_digest('{"config": {"digest": "sha256:c"}}') == "sha256:c"
    assert config_digest('{"manifests": []}') is None
