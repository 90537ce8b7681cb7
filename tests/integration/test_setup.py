"""playbooks/setup.yml prepares an empty project directory, and deploy.yml then runs on it.

The reference stack's project files (compose.yml, .env, .env.production) are moved away (the
containers keep running, as on a host whose files were lost or never written), setup.yml writes
them from the settings (the secrets as a vault would give them), and a real deploy follows. Check
mode with --diff first: it names the keys that would be written and never a value.
"""

from __future__ import annotations

import json
import shutil
import typing as t
from pathlib import Path

import pytest
from reference_stack import PROJECT_DIR, Stack, playbook_cli, prepared_stack, read_env_file

pytestmark = pytest.mark.stack

FILES = ("compose.yml", ".env", ".env.production")
FROM, TO = "1.0.0", "1.1.0"


@pytest.fixture(scope="module")
def stack() -> t.Iterator[Stack]:
    yield from prepared_stack()


@pytest.fixture
def emptied(tmp_path: Path) -> t.Iterator[tuple[Path, dict[str, str]]]:
    """The project's files moved to tmp_path (put back afterwards whatever happens); the secrets as vars."""
    saved = tmp_path / "saved"
    saved.mkdir()
    for name in FILES:
        shutil.move(PROJECT_DIR / name, saved / name)
    secrets = read_env_file(saved / ".env.production")
    extra = tmp_path / "vault.json"
    # As the vault gives them: the secrets for .env.production, and the logins the inventory would read from it.
    extra.write_text(
        json.dumps(
            {
                "setup_env_production": secrets,
                "ablage_admin_username": secrets["ADMIN_USERNAME"],
                "ablage_admin_password": secrets["ADMIN_PASSWORD"],
                "ablage_smoke_username": secrets["SMOKE_USERNAME"],
                "ablage_smoke_password": secrets["SMOKE_PASSWORD"],
                "ablage_db_password": secrets["POSTGRES_PASSWORD"],
            }
        ),
        encoding="utf-8",
    )
    extra.chmod(0o600)
    try:
        yield extra, secrets
    finally:
        for name in FILES:
            if (saved / name).exists():
                shutil.copy2(saved / name, PROJECT_DIR / name)


def _leaked(secrets: dict[str, str], out: str) -> list[str]:
    """The secrets (passwords, keys) whose value is in the output; plain settings like APP_ENV may well be."""
    marks = ("PASSWORD", "SECRET", "KEY", "TOKEN")
    return [k for k, v in secrets.items() if any(m in k for m in marks) and len(v) >= 8 and v in out]


def _setup(extra: Path, *args: str) -> tuple[int, str]:
    run = playbook_cli("setup.yml", "-e", f"@{extra}", *args)
    return run.returncode, run.stdout + run.stderr


def test_setup_then_deploy_on_an_empty_project_directory(stack: Stack, emptied: tuple[Path, dict[str, str]]) -> None:
    extra, secrets = emptied
    rc, out = _setup(extra, "--check", "--diff")
    assert rc == 0, out[-3000:]
    assert not any((PROJECT_DIR / name).exists() for name in FILES), "check mode wrote a file"
    assert "SECRET_KEY=<added>" in out and "POSTGRES_PASSWORD=<added>" in out, out[-3000:]
    leaked = _leaked(secrets, out)
    assert not leaked, f"check mode printed the values of {leaked}"

    rc, out = _setup(extra)
    assert rc == 0, out[-3000:]
    assert (PROJECT_DIR / "compose.yml").read_bytes() == (
        Path(__file__).parents[1] / "reference-app/compose.yml"
    ).read_bytes()
    assert read_env_file(PROJECT_DIR / ".env.production") == secrets
    assert read_env_file(PROJECT_DIR / ".env") == {"ABLAGE_REGISTRY": "127.0.0.1:5000", "ABLAGE_VERSION": FROM}
    assert (PROJECT_DIR / ".env.production").stat().st_mode & 0o777 == 0o600
    assert not _leaked(secrets, out)

    rc, out = _setup(extra)
    assert rc == 0 and "changed=0" in out, out[-2000:]

    deploy = playbook_cli(
        "deploy.yml", "-e", f"@{extra}", "-e", f"ablage_version={TO}", "-e", "preflight_quality_enabled=false"
    )
    assert deploy.returncode == 0, (deploy.stdout + deploy.stderr)[-3000:]
    assert stack.version() == TO
    back = playbook_cli("rollback.yml", "-e", f"@{extra}", "-e", "rollback_note=test_setup")
    assert back.returncode == 0, back.stdout[-3000:]
    assert stack.version() == FROM
