"""env_file against real files: in-place edits, compose's quoting, and that no value ever reaches the output."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import typing as t
from pathlib import Path

import pytest

from ansible_collections.ablage.ops.plugins.module_utils import _dotenv
from ansible_collections.ablage.ops.plugins.modules import env_file

SECRET = "Zq8vL2mRt5Xw9Kp3Nb7Hd4Fj6-secret-one"
OTHER = "pw with space # and $HOME and 'quote'"

EXISTING = """# production settings
DATABASE_URL=postgresql://ablage:old@db:5432/ablage

# secrets
export SECRET_KEY='old-secret-value'  # rotated yearly
CORS_ORIGINS=https://ablage.example.org
"""

# Values compose treats specially: blanks, '#', '$', both quotes, '=', '\' at the end, tabs, unicode.
TRICKY = {
    "PLAIN": "abc123",
    "URL": "postgresql://u:p@db:5432/x?sslmode=require",
    "SPACES": "  two  spaces  ",
    "HASH": "a #b#c",
    "HASH_START": "#start",
    "DOLLAR": "$HOME ${HOME} $$ $1 $",
    "DOUBLE": 'say "hi"',
    "SINGLE": "it's",
    "BOTH": """'"both"'""",
    "EQUALS": "a=b==c",
    "BACKSLASH": r"C:\path\n\t",
    "TRAILING_BACKSLASH": "ends\\",
    "QUOTE_BACKSLASH": "a\\'b\\\\",
    "ESCAPES_IN_DOUBLE": "it's \\n \\$x \\\\ \\\" \\0123",
    "TAB": "a\tb",
    "EMPTY": "",
    "UNICODE": "Grüße \u2013 秘密",
    "BASE64": "q+/9Zm==",
}


def env_path(tmp_path: Path, body: str | None = None) -> Path:
    path = tmp_path / ".env.production"
    if body is not None:
        path.write_text(body)
    return path


def run(run_module: t.Any, path: Path, values: dict[str, t.Any], **kw: t.Any) -> t.Any:
    check_mode, diff = kw.pop("check_mode", False), kw.pop("diff", False)
    return run_module(env_file.main, {"path": str(path), "values": values, **kw}, check_mode=check_mode, diff=diff)


def assert_no_value(res: t.Any, *secrets: str) -> None:
    """No secret in the printed JSON (as is, JSON-escaped, or any line of it), and nothing Ansible had to mask."""
    for secret in secrets:
        forms = {secret, json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]}
        forms.update(part for part in re.split("[\x00\r\n\u2028]", secret) if len(part) >= 6)
        for form in forms:
            assert form not in res["_raw"], form
    assert "********" not in res["_raw"]


def test_new_file_is_created_0600(tmp_path: Path, run_module: t.Any) -> None:
    path = env_path(tmp_path)
    res = run(run_module, path, {"SECRET_KEY": SECRET, "GPU_MEMORY_LIMIT_GB": 13.6})
    assert res["changed"] and not res.failed
    assert res["added"] == ["GPU_MEMORY_LIMIT_GB", "SECRET_KEY"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == f"SECRET_KEY={SECRET}\nGPU_MEMORY_LIMIT_GB=13.6\n"
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_one_key_changes_in_place(tmp_path: Path, run_module: t.Any) -> None:
    path = env_path(tmp_path, EXISTING)
    res = run(run_module, path, {"SECRET_KEY": SECRET})
    assert res["changed"]
    assert res["changed_keys"] == ["SECRET_KEY"] and res["added"] == res["removed"] == res["unchanged"] == []
    assert path.read_text() == EXISTING.replace("'old-secret-value'", SECRET)
    assert _dotenv.read(path.read_text())["CORS_ORIGINS"] == "https://ablage.example.org"


def test_second_run_changes_nothing(tmp_path: Path, run_module: t.Any) -> None:
    path = env_path(tmp_path, EXISTING)
    values = {"SECRET_KEY": SECRET, "NEW_KEY": OTHER, "DATABASE_URL": "postgresql://ablage:old@db:5432/ablage"}
    first = run(run_module, path, values)
    assert first["changed"] and first["added"] == ["NEW_KEY"] and first["unchanged"] == ["DATABASE_URL"]
    written = path.read_bytes()
    second = run(run_module, path, values, diff=True)
    assert not second["changed"] and path.read_bytes() == written
    assert second["unchanged"] == ["DATABASE_URL", "NEW_KEY", "SECRET_KEY"] and second["changed_keys"] == []


def test_exact_removes_other_keys_keeps_comments(tmp_path: Path, run_module: t.Any) -> None:
    path = env_path(tmp_path, EXISTING + "SECRET_KEY=override\nINHERITED\n")
    res = run(run_module, path, {"SECRET_KEY": SECRET}, state="exact")
    assert res["removed"] == ["CORS_ORIGINS", "DATABASE_URL", "INHERITED"] and res["changed_keys"] == ["SECRET_KEY"]
    assert path.read_text() == f"# production settings\n\n# secrets\nSECRET_KEY={SECRET}\n"
    assert not run(run_module, path, {"SECRET_KEY": SECRET}, state="exact")["changed"]


def test_check_mode_writes_nothing(tmp_path: Path, run_module: t.Any) -> None:
    path = env_path(tmp_path, EXISTING)
    path.chmod(0o644)
    res = run(run_module, path, {"SECRET_KEY": SECRET, "NEW_KEY": "x"}, check_mode=True)
    assert res["changed"] and res["changed_keys"] == ["SECRET_KEY"] and res["added"] == ["NEW_KEY"]
    assert path.read_text() == EXISTING and stat.S_IMODE(path.stat().st_mode) == 0o644
    missing = tmp_path / ".env.new"
    assert run(run_module, missing, {"A": "1"}, check_mode=True)["changed"] and not missing.exists()


def test_mode_only_change_is_a_change(tmp_path: Path, run_module: t.Any) -> None:
    path = env_path(tmp_path, "A=1\n")
    path.chmod(0o644)
    res = run(run_module, path, {"A": "1"}, diff=True)
    assert res["changed"] and res["unchanged"] == ["A"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert res["diff"][1] == {"before": {"mode": "0644"}, "after": {"mode": "0600"}}


def test_diff_lists_keys_only(tmp_path: Path, run_module: t.Any) -> None:
    path = env_path(tmp_path, EXISTING)
    values = {"DATABASE_URL": "postgresql://ablage:old@db:5432/ablage", "SECRET_KEY": SECRET, "NEW_KEY": OTHER}
    res = run(run_module, path, values, state="exact", check_mode=True, diff=True)
    text = res["diff"][0]
    assert text["before"] == "DATABASE_URL=<unchanged>\nSECRET_KEY=<old value>\nCORS_ORIGINS=<removed>\n"
    assert text["after"] == "DATABASE_URL=<unchanged>\nSECRET_KEY=<changed>\nNEW_KEY=<added>\n"
    assert text["before_header"] == text["after_header"] == str(path)
    assert_no_value(res, SECRET, OTHER, "old-secret-value", "postgresql://ablage:old@db")


def test_link_is_followed(tmp_path: Path, run_module: t.Any) -> None:
    target = env_path(tmp_path, "A=1\n")
    link = tmp_path / ".env"
    link.symlink_to(target.name)
    assert run(run_module, link, {"A": "2"})["changed"]
    assert link.is_symlink() and target.read_text() == "A=2\n"


def test_only_the_last_of_duplicates_counts(tmp_path: Path, run_module: t.Any) -> None:
    path = env_path(tmp_path, "A=1\nA=2\n")
    res = run(run_module, path, {"A": "1"})
    assert res["changed_keys"] == ["A"] and path.read_text() == "A=1\nA=1\n"
    res = run(run_module, path, {"A": "1"}, state="exact")
    assert res["changed_keys"] == ["A"] and path.read_text() == "A=1\n"


def test_backup_keeps_the_old_file(tmp_path: Path, run_module: t.Any) -> None:
    path = env_path(tmp_path, EXISTING)
    res = run(run_module, path, {"SECRET_KEY": SECRET}, backup=True)
    assert Path(res["backup_file"]).read_text() == EXISTING


@pytest.mark.parametrize("key", ["bad-key", "1ST", "WITH SPACE", ""])
def test_bad_key_is_named(tmp_path: Path, run_module: t.Any, key: str) -> None:
    path = env_path(tmp_path)
    res = run(run_module, path, {key: SECRET, "GOOD": OTHER})
    assert res.failed and f"values has a key {key!r} that is not a variable name" in res["msg"]
    assert not path.exists()
    assert_no_value(res, SECRET, OTHER)


@pytest.mark.parametrize(
    "value", [f"{SECRET}\nsecond-line-secret", f"{SECRET}\r", "nul\x00separated-secret", "ls\u2028separated-secret"]
)
def test_line_break_in_value_fails(tmp_path: Path, run_module: t.Any, value: str) -> None:
    path = env_path(tmp_path, EXISTING)
    res = run(run_module, path, {"GOOD": OTHER, "MULTI": value})
    assert res.failed and "values.MULTI contains a line break" in res["msg"]
    assert path.read_text() == EXISTING
    assert_no_value(res, SECRET, OTHER, value)


@pytest.mark.parametrize("value", [True, None, ["list-item-secret"], {"a": "nested-secret"}])
def test_non_string_value_fails(tmp_path: Path, run_module: t.Any, value: t.Any) -> None:
    res = run(run_module, env_path(tmp_path), {"FLAG": value, "GOOD": SECRET})
    assert res.failed and "values.FLAG is a" in res["msg"] and "not a string" in res["msg"]
    assert_no_value(res, SECRET)


def expected_lines() -> list[tuple[str, str]]:
    return [
        ("abc123", "abc123"),
        ("a=b==c", "a=b==c"),
        ("", "''"),
        ("two words", "'two words'"),
        ("a #b", "'a #b'"),
        ("$HOME", "'$HOME'"),
        ('say "hi"', """'say "hi"'"""),
        (r"C:\dir", r"'C:\dir'"),
        ("it's $x", '"it\'s \\$x"'),
        ("ends\\", '"ends\\\\"'),
    ]


@pytest.mark.parametrize(("value", "written"), expected_lines())
def test_quote_forms(value: str, written: str) -> None:
    assert _dotenv.quote(value) == written
    assert _dotenv.read(f"K={written}\n") == {"K": value}


def test_quoting_round_trip(tmp_path: Path, run_module: t.Any) -> None:
    path = env_path(tmp_path, "# header\nHASH=old\n")
    res = run(run_module, path, TRICKY)
    assert res["changed"] and not res.failed
    assert _dotenv.read(path.read_text()) == TRICKY
    assert not run(run_module, path, TRICKY)["changed"]
    assert_no_value(res, *(v for v in TRICKY.values() if len(v) >= 6))


@pytest.mark.parametrize(
    ("line", "value"),
    [
        # compose-go's own cases (dotenv/godotenv_test.go, fixtures/quoted.env)
        ("FOO='Let\\'s go!'", "Let's go!"),
        ('FOO="\\"quoted\\""', '"quoted"'),
        ("export FOO='\\n'", "\\n"),
        ('FOO="bar\\nbaz"', "bar\nbaz"),
        ("FOO='bar#baz' # comment", "bar#baz"),
        ("FOO=bar # this is foo", "bar"),
        ("FOO=bar#baz", "bar#baz"),
        ("FOO = 'spaced'", "spaced"),
        ("FOO: yaml", "yaml"),
        ('FOO="a$$b \\$c"', "a$b $c"),
        ("FOO='first\nsecond'", "first\nsecond"),
        ("FOO=$OTHER", None),
        ('FOO="${OTHER:-x}"', None),
        ("FOO", None),
    ],
)
def test_reads_like_compose(line: str, value: str | None) -> None:
    assert _dotenv.read(line + "\n") == {"FOO": value}


def test_layout_is_kept_where_keys_change(tmp_path: Path, run_module: t.Any) -> None:
    body = "\ufeffA=1\r\nexport B = 'old' # note\r\nC='multi\nline'\nD=${A}\nE=x"
    path = env_path(tmp_path)
    path.write_bytes(body.encode("utf-8"))
    res = run(run_module, path, {"B": "new value", "C": "one line", "D": "1", "E": "x", "F": "f"})
    assert res["changed_keys"] == ["B", "C", "D"] and res["unchanged"] == ["E"] and res["added"] == ["F"]
    expected = "\ufeffA=1\r\nexport B='new value' # note\r\nC='one line'\nD=1\nE=x\nF=f\n"
    assert path.read_bytes().decode("utf-8") == expected


def test_unterminated_quote_fails_without_value(tmp_path: Path, run_module: t.Any) -> None:
    path = env_path(tmp_path, f"A=1\nB='{SECRET}\n")
    res = run(run_module, path, {"A": OTHER})
    assert res.failed and "line 2: the quoted value of B has no closing quote" in res["msg"]
    assert_no_value(res, SECRET, OTHER)


def test_unreadable_file_fails_without_value(tmp_path: Path, run_module: t.Any) -> None:
    path = env_path(tmp_path)
    path.mkdir()
    res = run(run_module, path, {"A": SECRET})
    assert res.failed and f"Cannot read {path}: Is a directory" in res["msg"]
    assert_no_value(res, SECRET)


def test_permission_denied_fails_without_value(
    tmp_path: Path, run_module: t.Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = env_path(tmp_path, f"A={SECRET}\n")

    def denied(*_args: t.Any, **_kw: t.Any) -> t.NoReturn:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(env_file, "open", denied, raising=False)
    res = run(run_module, path, {"A": OTHER})
    assert res.failed and f"Cannot read {path}: Permission denied" in res["msg"]
    assert_no_value(res, SECRET, OTHER)


def test_undecodable_file_fails_without_value(tmp_path: Path, run_module: t.Any) -> None:
    path = env_path(tmp_path)
    path.write_bytes(b"A=" + SECRET.encode() + b"\xff\n")
    res = run(run_module, path, {"A": OTHER})
    assert res.failed and "is not UTF-8 text (byte 38)" in res["msg"]
    assert_no_value(res, SECRET, OTHER)


def test_missing_directory_fails_without_value(tmp_path: Path, run_module: t.Any) -> None:
    res = run(run_module, tmp_path / "nope" / ".env", {"A": SECRET})
    assert res.failed and "Cannot create a temporary file" in res["msg"]
    assert_no_value(res, SECRET)


@pytest.mark.parametrize(
    "kw",
    [{}, {"check_mode": True}, {"diff": True}, {"check_mode": True, "diff": True}, {"state": "exact", "diff": True}],
)
def test_no_value_in_any_success_output(tmp_path: Path, run_module: t.Any, kw: dict[str, t.Any]) -> None:
    path = env_path(tmp_path, EXISTING)
    res = run(run_module, path, {"SECRET_KEY": SECRET, "NEW_KEY": OTHER, **TRICKY}, backup=True, **kw)
    assert res["changed"] and not res.failed
    assert_no_value(res, SECRET, OTHER, "old-secret-value", *(v for v in TRICKY.values() if len(v) >= 6))
    assert "SECRET_KEY" in json.dumps(res["changed_keys"])


def compose_environment(directory: Path, env: Path) -> dict[str, str] | None:
    """What docker compose itself reads from ``env`` (``config`` needs no daemon), or None without compose."""
    docker = shutil.which("docker")
    if docker is None:
        return None
    (directory / "compose.yml").write_text(f"services:\n  app:\n    image: busybox\n    env_file: [{env.name}]\n")
    proc = subprocess.run(
        [docker, "compose", "--project-directory", str(directory), "config", "--format", "json"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(directory)},
    )
    if proc.returncode != 0 and "is not a docker command" in proc.stderr:
        return None
    assert proc.returncode == 0, proc.stderr
    environment = json.loads(proc.stdout)["services"]["app"]["environment"]
    # config prints a compose file, where a literal '$' is written '$$'.
    return {key: value.replace("$$", "$") for key, value in environment.items()}


def test_docker_compose_reads_what_was_written(tmp_path: Path, run_module: t.Any) -> None:
    path = env_path(tmp_path)
    assert run(run_module, path, TRICKY)["changed"]
    environment = compose_environment(tmp_path, path)
    if environment is None:
        pytest.skip("docker compose is not installed")
    assert environment == TRICKY
