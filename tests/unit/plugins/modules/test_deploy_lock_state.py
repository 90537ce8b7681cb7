"""deploy_lock and deploy_state against a real state directory (tmp_path)."""

from __future__ import annotations

import contextlib
import json
import os
import stat
import typing as t

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


def test_lock_file_not_json_fails_with_hint(tmp_path: t.Any, run_module: t.Any) -> None:
    (tmp_path / "deploy.lock").write_text("garbage")
    res = run_module(deploy_lock.main, lock_args(str(tmp_path)))
    assert res["failed"] and "valid JSON" in res["msg"]


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
    assert res["failed"] and "valid JSON" in res["msg"]


def test_atomic_write_leaves_old_content_on_failure(tmp_path: t.Any) -> None:
    path = str(tmp_path / "state.json")
    _deploy_state.write_json_atomic(path, {"a": 1})
    with contextlib.suppress(TypeError):
        _deploy_state.write_json_atomic(path, {"bad": object()})
    assert json.loads((tmp_path / "state.json").read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]
