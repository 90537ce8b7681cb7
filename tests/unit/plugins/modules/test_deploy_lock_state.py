"""deploy_lock and deploy_state against a real state directory (tmp_path)."""

from __future__ import annotations

import contextlib
import json
import os
import stat
import typing as t

import pytest

import ansible.module_utils._internal

from ansible_collections.ablage.ops.plugins.module_utils import _deploy_state
from ansible_collections.ablage.ops.plugins.modules import deploy_lock, deploy_state


def lock_args(state_dir: str, **kw: t.Any) -> dict[str, t.Any]:
    return {"state_dir": state_dir, "run_id": "run-1", "holder": "alice", "version": "1.1.0", **kw}


def test_lock_check_real_repeat_release(tmp_path: t.Any, run_module: t.Any) -> None:
    sd = str(tmp_path / "state")
    checked = run_module(deploy_lock.main, lock_args(sd), check_mode=True, diff=True)
    assert checked["changed"] and not os.path.exists(sd)
    taken = run_module(deploy_lock.main, lock_args(sd))
    assert taken["changed"] and taken["lock"]["holder"] == "alice"
    assert stat.S_IMODE(os.stat(sd).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(os.path.join(sd, "deploy.lock")).st_mode) == 0o600
    again = run_module(deploy_lock.main, lock_args(sd))
    assert not again["changed"]
    released = run_module(deploy_lock.main, lock_args(sd, state="absent"))
    assert released["changed"] and released["lock"] is None
    assert not os.path.exists(os.path.join(sd, "deploy.lock"))
    assert not run_module(deploy_lock.main, lock_args(sd, state="absent"))["changed"]


def test_lock_held_by_other_run_is_refused_then_broken(tmp_path: t.Any, run_module: t.Any) -> None:
    sd = str(tmp_path)
    run_module(deploy_lock.main, lock_args(sd, holder="bob", run_id="awx-17"))
    refused = run_module(deploy_lock.main, lock_args(sd))
    assert refused["failed"] and refused["_rc"] == 1
    assert "held by bob (run awx-17" in refused["msg"] and "break_lock=true" in refused["msg"]
    refused_release = run_module(deploy_lock.main, lock_args(sd, state="absent"))
    assert refused_release["failed"]
    broken = run_module(deploy_lock.main, lock_args(sd, break_lock=True))
    assert broken["changed"] and broken["broken"]["holder"] == "bob"
    assert json.loads((tmp_path / "deploy.lock").read_text())["run_id"] == "run-1"


def test_lock_race_lost_between_read_and_create(tmp_path: t.Any, run_module: t.Any, monkeypatch: t.Any) -> None:
    def other_run_wins(path: str, data: dict[str, t.Any]) -> bool:
        _deploy_state.write_json_atomic(path, {"holder": "carol", "run_id": "x", "created_at": _deploy_state.utc_now()})
        return False

    monkeypatch.setattr(deploy_lock, "create_exclusive", other_run_wins)
    res = run_module(deploy_lock.main, lock_args(str(tmp_path)))
    assert res["failed"] and "held by carol" in res["msg"]


def test_state_merge_idempotent_and_history(tmp_path: t.Any, run_module: t.Any) -> None:
    sd = str(tmp_path / "s")
    upd = {"current_version": "1.0.0", "images": {"backend": "sha256:a"}}
    check = run_module(deploy_state.main, {"state_dir": sd, "update": upd}, check_mode=True, diff=True)
    assert check["changed"] and check["diff"]["after"]["current_version"] == "1.0.0" and not os.path.exists(sd)
    first = run_module(deploy_state.main, {"state_dir": sd, "update": upd})
    assert first["changed"]
    assert not run_module(deploy_state.main, {"state_dir": sd, "update": upd})["changed"]
    nested = run_module(deploy_state.main, {"state_dir": sd, "update": {"images": {"worker": "sha256:b"}}})
    assert nested["state"]["images"] == {"backend": "sha256:a", "worker": "sha256:b"}
    for version in ("1.0.0", "1.1.0", "1.2.0"):
        run_module(deploy_state.main, {"state_dir": sd, "history": {"version": version, "result": "success"}})
    read = run_module(deploy_state.main, {"state_dir": sd, "history_limit": 2})
    assert not read["changed"]
    assert [h["version"] for h in read["history"]] == ["1.1.0", "1.2.0"]
    assert all("recorded_at" in h for h in read["history"])
    planned = run_module(deploy_state.main, {"state_dir": sd, "history": {"version": "2.0"}}, check_mode=True)
    assert planned["changed"] and planned["history"][-1]["version"] == "2.0"
    assert len((tmp_path / "s" / "history.jsonl").read_text().splitlines()) == 3


def test_state_file_not_an_object(tmp_path: t.Any, run_module: t.Any) -> None:
    (tmp_path / "state.json").write_text("[1, 2]")
    res = run_module(deploy_state.main, {"state_dir": str(tmp_path)})
    assert res["failed"] and "state.json cannot be read as a JSON object" in res["msg"]


def test_atomic_write_leaves_old_content_on_failure(tmp_path: t.Any) -> None:
    path = str(tmp_path / "state.json")
    _deploy_state.write_json_atomic(path, {"a": 1})
    with contextlib.suppress(TypeError):
        _deploy_state.write_json_atomic(path, {"bad": object()})
    assert json.loads((tmp_path / "state.json").read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


# --------------------------------------------------------------------------- unreadable lock (issue 14, point 5)


def _old_mtime(path: t.Any, seconds_ago: float) -> None:
    when = os.stat(path).st_mtime - seconds_ago
    os.utime(path, (when, when))


def test_unreadable_lock_is_reported_as_held_by_unknown_run(tmp_path: t.Any, run_module: t.Any) -> None:
    for content in (b"", b'{"holder": "bo', b"[1, 2]\n", b"\xff\xfe garbage"):
        lock = tmp_path / "deploy.lock"
        lock.write_bytes(content)
        _old_mtime(lock, 3600)
        res = run_module(deploy_lock.main, lock_args(str(tmp_path)))
        assert res["failed"], content
        assert "unreadable" in res["msg"] and "unknown run" in res["msg"], res["msg"]
        assert f"{len(content)} bytes" in res["msg"] and "break_lock=true" in res["msg"]
        assert 3500 < res["age_s"] < 3700
        assert res["lock"]["unreadable"] and res["lock"]["size"] == len(content)
        assert lock.read_bytes() == content  # never silently taken
        released = run_module(deploy_lock.main, lock_args(str(tmp_path), state="absent"))
        assert released["failed"] and lock.read_bytes() == content


def test_unreadable_lock_is_replaced_or_removed_by_break_lock(tmp_path: t.Any, run_module: t.Any) -> None:
    lock = tmp_path / "deploy.lock"
    lock.write_bytes(b"")
    taken = run_module(deploy_lock.main, lock_args(str(tmp_path), break_lock=True), diff=True)
    assert not taken.failed and taken["changed"], taken
    assert taken["broken"]["unreadable"] and taken["broken"]["size"] == 0
    assert json.loads(lock.read_text())["run_id"] == "run-1"
    lock.write_bytes(b"{not json")
    checked = run_module(deploy_lock.main, lock_args(str(tmp_path), state="absent", break_lock=True), check_mode=True)
    assert checked["changed"] and lock.exists()
    removed = run_module(deploy_lock.main, lock_args(str(tmp_path), state="absent", break_lock=True))
    assert removed["changed"] and removed["broken"]["head"] == "{not json" and not lock.exists()


def test_lock_with_bad_created_at_uses_the_file_age(tmp_path: t.Any, run_module: t.Any) -> None:
    lock = tmp_path / "deploy.lock"
    lock.write_text(json.dumps({"holder": "bob", "run_id": "awx-1", "created_at": "yesterday"}))
    _old_mtime(lock, 120)
    res = run_module(deploy_lock.main, lock_args(str(tmp_path)))
    assert res["failed"] and "held by bob" in res["msg"] and 100 < res["age_s"] < 200


# ------------------------------------------------------------------ torn history, corrupt state (issue 14)


@pytest.fixture
def target_side(monkeypatch: pytest.MonkeyPatch) -> None:
    """module.warn() lands in the result only on the target; importing controller code (another test's
    lookup plugin) flips ansible's is_controller, which would send warnings to Display instead."""
    monkeypatch.setattr(ansible.module_utils._internal, "is_controller", False)


def _warnings(res: t.Any) -> list[str]:
    """Warning texts; ansible-core 2.19 returns them as summaries with the text in event.msg."""
    return [w if isinstance(w, str) else w["event"]["msg"] for w in res.get("warnings", [])]


def _history(sd: t.Any, *versions: str) -> t.Any:
    path = sd / "history.jsonl"
    path.write_text("".join(json.dumps({"version": v, "result": "success"}) + "\n" for v in versions))
    return path


@pytest.mark.usefixtures("target_side")
def test_torn_last_history_line_is_skipped_with_a_warning(tmp_path: t.Any, run_module: t.Any) -> None:
    path = _history(tmp_path, "1.0.0", "1.1.0")
    with path.open("ab") as handle:
        handle.write(b'{"version": "1.2.0", "res')  # a run killed mid-write
    read = run_module(deploy_state.main, {"state_dir": str(tmp_path)})
    assert not read.failed, read["msg"]
    assert [h["version"] for h in read["history"]] == ["1.0.0", "1.1.0"]
    assert any(str(path) in w and "line 3" in w for w in _warnings(read)), read.get("warnings")


@pytest.mark.usefixtures("target_side")
def test_append_after_a_torn_line_starts_a_new_line(tmp_path: t.Any, run_module: t.Any) -> None:
    path = _history(tmp_path, "1.0.0")
    with path.open("ab") as handle:
        handle.write(b'{"version": "1.1.0", "res')
    appended = run_module(deploy_state.main, {"state_dir": str(tmp_path), "history": {"version": "1.2.0"}})
    assert not appended.failed, appended["msg"]
    lines = path.read_text().splitlines()
    assert lines[1] == '{"version": "1.1.0", "res'
    assert json.loads(lines[2])["version"] == "1.2.0"
    assert [h["version"] for h in appended["history"]] == ["1.0.0", "1.2.0"]
    assert any(str(path) in w and "line 2" in w for w in _warnings(appended))


@pytest.mark.usefixtures("target_side")
def test_corrupt_history_line_in_the_middle_is_skipped(tmp_path: t.Any, run_module: t.Any) -> None:
    path = tmp_path / "history.jsonl"
    path.write_bytes(b'{"version": "1.0.0"}\n\xff\xfe{oops\n[1]\n{"version": "1.1.0"}\n')
    read = run_module(deploy_state.main, {"state_dir": str(tmp_path)})
    assert not read.failed, read["msg"]
    assert [h["version"] for h in read["history"]] == ["1.0.0", "1.1.0"]
    warned = " ".join(_warnings(read))
    assert "line 2" in warned and "line 3" in warned and str(path) in warned


def test_state_json_unparsable_fails_naming_the_file_and_the_fix(tmp_path: t.Any, run_module: t.Any) -> None:
    (tmp_path / "state.json").write_text('{"current_version": "1.0')
    res = run_module(deploy_state.main, {"state_dir": str(tmp_path), "update": {"phase": "migrating"}})
    assert res.failed
    assert str(tmp_path / "state.json") in res["msg"] and "rollback point" in res["msg"], res["msg"]
    assert "history.jsonl" not in res["msg"]
    assert (tmp_path / "state.json").read_text() == '{"current_version": "1.0'  # not overwritten


def test_an_unknown_phase_is_never_written(tmp_path: t.Any, run_module: t.Any) -> None:
    (tmp_path / "state.json").write_text('{"phase": "locked"}')
    res = run_module(deploy_state.main, {"state_dir": str(tmp_path), "update": {"phase": "preflight"}})
    assert res.failed and "'preflight' is not a phase" in res["msg"] and "rolled_back" in res["msg"], res["msg"]
    assert (tmp_path / "state.json").read_text() == '{"phase": "locked"}'


def test_state_reports_the_lock_and_its_age(tmp_path: t.Any, run_module: t.Any) -> None:
    free = run_module(deploy_state.main, {"state_dir": str(tmp_path)})
    assert (free["lock"], free["lock_age_s"]) == (None, 0.0)
    run_module(deploy_lock.main, {"state_dir": str(tmp_path), "run_id": "run-9", "holder": "anna", "version": "1.1.0"})
    held = run_module(deploy_state.main, {"state_dir": str(tmp_path)})
    assert (held["lock"]["run_id"], held["lock"]["holder"], held["changed"]) == ("run-9", "anna", False)
    assert 0 <= held["lock_age_s"] < 60
    (tmp_path / "deploy.lock").write_bytes(b"")
    torn = run_module(deploy_state.main, {"state_dir": str(tmp_path)})
    assert torn["lock"]["unreadable"] is True and torn["lock"]["size"] == 0
