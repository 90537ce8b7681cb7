"""env_file_check against real files: rules, and that no value ever reaches the output."""

from __future__ import annotations

import typing as t

import pytest

from ansible_collections.ablage.ops.plugins.module_utils import _dotenv
from ansible_collections.ablage.ops.plugins.modules import env_file_check

STRONG = "Zq8#vL2m!Rt5@Xw9$Kp3^Nb7&Hd4*Fj6%"  # 33 characters, many distinct


def write_env(tmp_path: t.Any, body: str) -> str:
    path = tmp_path / ".env.production"
    path.write_text(body)
    return str(path)


GOOD = f"""# production
DATABASE_URL=postgresql://ablage:pw@db:5432/ablage
REDIS_URL=redis://redis:6379/0
export MINIO_ENDPOINT="minio:9000"
SECRET_KEY='{STRONG}'
JWT_SECRET_KEY={STRONG[::-1]}
CORS_ORIGINS=https://ablage.example.org, https://admin.ablage.example.org
GPU_MEMORY_LIMIT_GB=13.6  # of 16 GB
"""


def test_good_file_passes(tmp_path: t.Any, run_module: t.Any) -> None:
    res = run_module(env_file_check.main, {"path": write_env(tmp_path, GOOD)})
    assert not res.get("failed"), res
    assert res["problems"] == [] and not res["changed"]
    assert "GPU_MEMORY_LIMIT_GB" in res["variables"]
    assert all(c["ok"] for c in res["checked"])


def test_every_rule_reports_without_values(tmp_path: t.Any, run_module: t.Any) -> None:
    body = """DATABASE_URL=postgresql://x
SECRET_KEY=short-but-secret-value
JWT_SECRET_KEY=changeme-changeme-changeme-changeme-123456
CORS_ORIGINS=*
GPU_MEMORY_LIMIT_GB=lots
MINIO_ENDPOINT=
"""
    res = run_module(env_file_check.main, {"path": write_env(tmp_path, body)})
    assert res["failed"] and res["_rc"] == 1
    assert set(res["missing"]) == {"REDIS_URL", "MINIO_ENDPOINT"}
    text = " ".join(res["problems"])
    assert "SECRET_KEY has 22 characters; it needs at least 32" in text
    assert "JWT_SECRET_KEY looks like a placeholder" in text
    assert "CORS_ORIGINS allows every origin" in text
    assert "GPU_MEMORY_LIMIT_GB is not a number" in text
    for secret in ("short-but-secret-value", "changeme-changeme", "postgresql://x"):
        assert secret not in res["_raw"]


def test_low_entropy_and_range(tmp_path: t.Any, run_module: t.Any) -> None:
    body = GOOD.replace(f"SECRET_KEY='{STRONG}'", "SECRET_KEY=" + "ab" * 20).replace("13.6", "99")
    res = run_module(env_file_check.main, {"path": write_env(tmp_path, body)})
    assert res["failed"]
    assert any("only 2 different characters" in p for p in res["problems"])
    assert any("GPU_MEMORY_LIMIT_GB=99 is outside [0.5, 80]" in p for p in res["problems"])


def test_missing_file_names_the_fix(tmp_path: t.Any, run_module: t.Any) -> None:
    res = run_module(env_file_check.main, {"path": str(tmp_path / "nope")})
    assert res["failed"] and "Create the file on the host" in res["msg"]


def test_read_assigned_forms() -> None:
    parsed = _dotenv.read_assigned("A=1\n#c\nexport B = 'x y'\nC=\"q\"\nD=v # note\nnoequals\n")
    assert parsed == {"A": "1", "B": "x y", "C": "q", "D": "v"}


@pytest.mark.parametrize(
    ("body", "values"),
    [
        # Read as compose reads them (the old split-on-'=' parser kept the quotes or broke the value up).
        ("A='x y' # note\n", {"A": "x y"}),
        ('A="x" # note\n', {"A": "x"}),
        ("A='x'#note\n", {"A": "x"}),
        ('A="a\\"b\\\\c\\nd"\n', {"A": 'a"b\\c\nd'}),
        ("A='it\\'s'\n", {"A": "it's"}),
        ("A=pa$$word\n", {"A": "pa$word"}),
        ('A="\\$HOME"\n', {"A": "$HOME"}),
        ("A: yaml\n", {"A": "yaml"}),
        ("\ufeffA=1\n", {"A": "1"}),
        ("A='first\nB=inside\n'\n", {"A": "first\nB=inside\n"}),
        ("A=1\x0cB=2\n", {"A": "1\x0cB=2"}),
        # compose refuses a key with a blank in it; here it is no variable either (it was "MY KEY").
        ("MY KEY=1\n", {}),
        # Unchanged: what compose fills in from the environment is checked as written.
        ("A=postgresql://u:${PW}@db/x\n", {"A": "postgresql://u:${PW}@db/x"}),
        ('A="$PW"\n', {"A": "$PW"}),
        ("A=1\nA\n", {"A": "1"}),
        ("A\n", {}),
        ("A=1\t# not a comment\n", {"A": "1\t# not a comment"}),
        ("A=x=y\r\nB = 'z'\r\n", {"A": "x=y", "B": "z"}),
        ("A=1\nA=2\n", {"A": "2"}),
        ("A=\n", {"A": ""}),
    ],
)
def test_reads_like_compose(body: str, values: dict[str, str]) -> None:
    assert _dotenv.read_assigned(body) == values


def test_values_from_the_environment_count_as_set(tmp_path: t.Any, run_module: t.Any) -> None:
    body = GOOD.replace("DATABASE_URL=postgresql://ablage:pw@db:5432/ablage", "DATABASE_URL=postgresql://a:${PW}@db/a")
    res = run_module(env_file_check.main, {"path": write_env(tmp_path, body)})
    assert not res.get("failed"), res
    assert "DATABASE_URL" in res["variables"]


def test_quoted_value_with_comment_is_unquoted(tmp_path: t.Any, run_module: t.Any) -> None:
    # The old parser kept the quotes here (41 characters with them); compose reads the 40 between.
    body = GOOD.replace(f"SECRET_KEY='{STRONG}'", "SECRET_KEY='" + "Ab1" * 13 + "x' # rotated")
    res = run_module(env_file_check.main, {"path": write_env(tmp_path, body), "min_secret_length": 41})
    assert res["failed"]
    assert "SECRET_KEY has 40 characters; it needs at least 41" in " ".join(res["problems"])


def test_file_compose_cannot_read_fails_without_value(tmp_path: t.Any, run_module: t.Any) -> None:
    body = GOOD.replace(f"SECRET_KEY='{STRONG}'", f"SECRET_KEY='{STRONG}")
    res = run_module(env_file_check.main, {"path": write_env(tmp_path, body)})
    assert res["failed"] and "line 5: the quoted value of SECRET_KEY has no closing quote" in res["msg"]
    assert STRONG not in res["_raw"] and STRONG[::-1] not in res["_raw"]
