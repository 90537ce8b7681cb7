"""pgbackrest against a stand-in pgBackRest CLI that keeps its stanza in a JSON file.

The stand-in answers the commands the module runs (info, check, stanza-create, backup, restore) with
pgBackRest 2.45's exit codes and JSON, and logs every command, so the tests say what the module ran and
in which order. Restore points and recoveries against a real PostgreSQL and pgBackRest are in the fault
campaign (tests/integration/test_fault_campaign.py, the pitr cases).
"""

from __future__ import annotations

import json
import sys
import textwrap
import typing as t
from pathlib import Path

import pytest

from ansible_collections.ablage.ops.plugins.modules import pgbackrest

FAKE = textwrap.dedent(
    """\
    #!{python}
    import json, sys, time
    STATE = {state!r}
    with open(STATE) as fh:
        st = json.load(fh)
    argv = sys.argv[1:]
    st["log"].append(argv)
    cmd = argv[-1]
    rc = 0
    if cmd == "info":
        status = {{"code": 0, "message": "ok"}} if st["stanza"] else {{"code": 1, "message": "missing stanza path"}}
        print(json.dumps([{{"name": "ablage", "status": status, "archive": [], "backup": st["backups"]}}]))
    elif cmd == "check":
        if not st["archiving"]:
            sys.stderr.write("ERROR: [082]: WAL segment 000000010000000000000005 was not archived in time\\n")
            rc = 82
    elif cmd == "stanza-create":
        st["stanza"] = True
    elif cmd == "backup":
        kind = next(a.split("=", 1)[1] for a in argv if a.startswith("--type="))
        kind = "full" if not st["backups"] else kind
        st["backups"].append({{"label": "L%d" % len(st["backups"]), "type": kind, "error": False,
                               "timestamp": {{"start": 1796476867, "stop": 1796476870}}}})
    elif cmd == "restore":
        st["restored"] = [a for a in argv if a.startswith("--target")]
    with open(STATE, "w") as fh:
        json.dump(st, fh)
    sys.exit(rc)
    """
)


class FakePgBackRest:
    def __init__(self, tmp_path: Path) -> None:
        self.state_path = tmp_path / "pgbackrest.json"
        self.cli = tmp_path / "pgbackrest"
        self.cli.write_text(FAKE.format(python=sys.executable, state=str(self.state_path)))
        self.cli.chmod(0o755)
        self.write({"stanza": True, "archiving": True, "backups": [], "log": []})

    def write(self, state: dict[str, t.Any]) -> None:
        self.state_path.write_text(json.dumps(state))

    def read(self) -> dict[str, t.Any]:
        return t.cast(dict[str, t.Any], json.loads(self.state_path.read_text()))

    def set(self, **changes: t.Any) -> None:
        self.write({**self.read(), **changes})

    def commands(self) -> list[str]:
        return [argv[-1] for argv in self.read()["log"]]


@pytest.fixture
def fake(tmp_path: Path) -> FakePgBackRest:
    return FakePgBackRest(tmp_path)


def run(run_module: t.Any, fake: FakePgBackRest, action: str, check_mode: bool = False, **kw: t.Any) -> t.Any:
    args = {"action": action, "stanza": "ablage", "command": [str(fake.cli)], **kw}
    return run_module(pgbackrest.main, args, check_mode=check_mode)


def test_backup_creates_the_stanza_and_takes_a_full_one_first(run_module: t.Any, fake: FakePgBackRest) -> None:
    fake.set(stanza=False)
    result = run(run_module, fake, "backup")
    assert not result.failed and result["changed"] is True
    assert fake.commands() == ["stanza-create", "backup", "info"]
    assert result["backup"]["type"] == "full" and result["backup"]["stop"] == "2026-12-05T13:21:10Z"
    assert "--stanza=ablage" in fake.read()["log"][0]
    again = run(run_module, fake, "backup", backup_type="diff")
    assert again["backup"]["type"] == "diff" and len(again["info"]["backups"]) == 2


def test_backup_in_check_mode_only_reads(run_module: t.Any, fake: FakePgBackRest) -> None:
    result = run(run_module, fake, "backup", check_mode=True)
    assert result["changed"] is True and fake.commands() == ["info"]


def test_check_names_the_fix_when_archiving_does_not_work(run_module: t.Any, fake: FakePgBackRest) -> None:
    fake.set(archiving=False)
    result = run(run_module, fake, "check")
    assert result.failed
    assert "pgBackRest check failed (exit 82): ERROR: [082]: WAL segment" in result["msg"]
    assert (
        "stanza-create" in result["msg"]
        and "archive_command='pgbackrest --stanza=ablage archive-push %p'" in result["msg"]
    )


def test_check_wants_a_backup_unless_told_otherwise(run_module: t.Any, fake: FakePgBackRest) -> None:
    result = run(run_module, fake, "check")
    assert result.failed and "has no usable backup" in result["msg"]
    result = run(run_module, fake, "check", require_backup=False)
    assert not result.failed and result["changed"] is False and result["info"]["status"]["code"] == 0


def test_restore_uses_the_restore_command_while_postgres_is_stopped(
    run_module: t.Any, fake: FakePgBackRest, tmp_path: Path
) -> None:
    run(run_module, fake, "backup")
    # The running-server command must not be used: PostgreSQL (and its container) are stopped.
    result = run(
        run_module,
        fake,
        "restore",
        name="ablage-deploy-4711",
        command=["/nonexistent/pgbackrest"],
        restore_command=[str(fake.cli)],
    )
    assert not result.failed and result["changed"] is True, result.get("msg")
    assert fake.read()["restored"] == ["--target=ablage-deploy-4711", "--target-action=promote"]
    restore = fake.read()["log"][-1]
    assert restore[-5:] == [
        "--delta",
        "--type=name",
        "--target=ablage-deploy-4711",
        "--target-action=promote",
        "restore",
    ]
    assert "comparison" not in result, "no start_command: nothing started, nothing compared"


def test_restore_without_a_backup_is_refused_before_anything_is_touched(
    run_module: t.Any, fake: FakePgBackRest
) -> None:
    result = run(run_module, fake, "restore", name="ablage-deploy-4711")
    assert result.failed and "has no usable backup" in result["msg"]
    assert "restore" not in fake.commands()


@pytest.mark.parametrize("name", ["a b", "x;drop", "-flag", "x" * 64])
def test_a_restore_point_name_that_could_be_mistaken_is_refused(
    run_module: t.Any, fake: FakePgBackRest, name: str
) -> None:
    result = run(run_module, fake, "restore_point", name=name, database="ablage")
    assert result.failed and "is not a restore point name" in result["msg"]
    assert fake.commands() == []


def test_restore_point_needs_a_backup_first(run_module: t.Any, fake: FakePgBackRest) -> None:
    result = run(run_module, fake, "restore_point", name="ablage-deploy-4711", database="ablage")
    assert result.failed and "has no usable backup" in result["msg"] and "deploy_pitr_backup_type" in result["msg"]
