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


@pytest.mark.parametrize(
    ("text", "value"),
    [
        # The same as before the env file was read by _dotenv.
        ("V=1.0 # c\n", "1.0"),
        ("  export   V = 1.0\n", "1.0"),
        ("V=1.0\r\n", "1.0"),
        ("V='1.0'\r\n", "1.0"),
        ("V=a=b\n", "a=b"),
        ("V=1\nV=2\n", "2"),
        ("V=\n", ""),
        ("V='${X}'\n", "${X}"),
        ("V\n", None),
        ("#V=1\n", None),
        # Read as compose reads it now (before: the quotes kept, escapes and '$$' left as written, lines of a
        # quoted value taken for assignments, 'V:' and a BOM not seen, '\t#' taken for a comment).
        ("V='1.0' # c\n", "1.0"),
        ('V="1.0" # c\n', "1.0"),
        ("V='1.0'#c\n", "1.0"),
        ('V="a\\"b\\nc"\n', 'a"b\nc'),
        ("V=a$$b\n", "a$b"),
        ("V: 1.0\n", "1.0"),
        ("\ufeffV=1.0\n", "1.0"),
        ("A='x\nV=9\n'\n", None),
        ('V="multi\nline"\n', "multi\nline"),
        ("V=1.0\t# c\n", "1.0\t# c"),
        ("V=1\x0cV=3\n", "1\x0cV=3"),
        # Left to the environment compose runs in: no value of the file's own.
        ("V=${X}\n", None),
        ('V="$X"\n', None),
        ("V=1\nV\n", None),
    ],
)
def test_read_variable_like_compose(text: str, value: str | None) -> None:
    assert read_variable(text, "V") == value


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # The same as before.
        ("", "V=2.0\n"),
        ("A=1", "A=1\nV=2.0\n"),
        ("V=1", "V=2.0\n"),
        ("A=1\nV=1", "A=1\nV=2.0\n"),
        ("V=1\nA=1", "V=2.0\nA=1"),
        ("V=1\nA=x\nV=1\n# end\n", "V=1\nA=x\nV=2.0\n# end\n"),
        ("  export V = '1.0'\r\nA=1\r\n", "  export V=2.0\r\nA=1\r\n"),
        ("V=${X}\n", "V=2.0\n"),
        # The inline comment stays now (it was dropped).
        ("V=1.0 # pinned\n", "V=2.0 # pinned\n"),
        ("V='1.0' # pinned\nA=1\n", "V=2.0 # pinned\nA=1\n"),
        # The line compose reads is rewritten now (before: a second line appended, or a line inside a quoted
        # value rewritten, or only the first line of a value over several lines).
        ("V: 1.0\n", "V=2.0\n"),
        ("V\n", "V=2.0\n"),
        ("V=1\nV\n", "V=1\nV=2.0\n"),
        ("\ufeffV=1.0\n", "\ufeffV=2.0\n"),
        ("A='x\nV=9\n'\n", "A='x\nV=9\n'\nV=2.0\n"),
        ('V="multi\nline"\nA=1\n', "V=2.0\nA=1\n"),
    ],
)
def test_set_variable_rewrites_what_compose_reads(text: str, expected: str) -> None:
    assert set_variable(text, "V", "2.0") == expected
    assert read_variable(expected, "V") == "2.0"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("A=1\nV='1.0\n", "line 2: the quoted value of V has no closing quote"),
        ('V="1" "2"\n', "line 1: text follows the closing quote of V"),
    ],
)
def test_unreadable_env_file_is_refused(text: str, message: str) -> None:
    # compose fails on these files too; before, a value was guessed and the line replaced.
    with pytest.raises(ReleaseError, match=message):
        read_variable(text, "V")
    with pytest.raises(ReleaseError, match=message):
        set_variable(text, "V", "2.0")


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
