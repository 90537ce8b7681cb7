"""compose_services against a stand-in Docker CLI that keeps its containers in a JSON file.

The stand-in answers the four commands the module runs (compose up --no-start, compose ps, compose stop,
docker start) the way Compose 2.26 does: progress lines on stderr, one JSON object per line from ps,
stop in reverse dependency order. Every command it receives is logged, so the tests can say what the
module did and in which order, not only what it returned.
"""

from __future__ import annotations

import json
import sys
import textwrap
import typing as t
from pathlib import Path

import pytest

from ansible_collections.ablage.ops.plugins.modules import compose_services

FAKE_DOCKER = textwrap.dedent(
    """\
    #!{python}
    import json, sys
    STATE = {state!r}
    DEPENDS = {{"worker": ["backend"], "backend": []}}
    with open(STATE) as fh:
        st = json.load(fh)
    argv = sys.argv[1:]
    st["log"].append(argv)
    def save():
        with open(STATE, "w") as fh:
            json.dump(st, fh)
    def services_after_dashdash():
        return argv[argv.index("--") + 1:] if "--" in argv else []
    if argv[0] == "compose":
        cmd = argv[3]
        svcs = services_after_dashdash()
        if cmd == "up":
            dry = "--dry-run" in argv
            prefix = "DRY-RUN MODE -  " if dry else ""
            for svc in svcs:
                c = st["containers"].get(svc)
                if c is None or c["config"] != st["wanted"]:
                    verb = "Created" if c is None else "Recreated"
                    name = ("0123456789ab_" if dry and c is not None else "") + f"ablage-{{svc}}-1"
                    sys.stderr.write(f" {{prefix}}Container {{name}}  {{verb[:-1]}}\\n")
                    sys.stderr.write(f" {{prefix}}Container {{name}}  {{verb}}\\n")
                    if not dry:
                        st["containers"][svc] = {{"config": st["wanted"], "state": "created"}}
                else:
                    sys.stderr.write(f" {{prefix}}Container ablage-{{svc}}-1  Running\\n")
        elif cmd == "ps":
            for svc in svcs:
                c = st["containers"].get(svc)
                if c:
                    print(json.dumps({{"Service": svc, "Name": f"ablage-{{svc}}-1", "State": c["state"]}}))
        elif cmd == "stop":
            order = sorted(svcs, key=lambda s: -len(DEPENDS.get(s, [])))  # dependants first
            for svc in order:
                if svc in st["containers"]:
                    st["containers"][svc]["state"] = "exited"
                    st["stopped_order"].append(svc)
    elif argv[0] == "start":
        for name in argv[1:]:
            svc = name.split("-")[1]
            if svc in st.get("crashing", []):
                st["containers"][svc]["state"] = "exited"
            else:
                st["containers"][svc]["state"] = "running"
    save()
    """
)


class FakeDocker:
    def __init__(self, tmp_path: Path) -> None:
        self.state_path = tmp_path / "docker.json"
        self.cli = tmp_path / "docker"
        self.cli.write_text(FAKE_DOCKER.format(python=sys.executable, state=str(self.state_path)))
        self.cli.chmod(0o755)
        self.project = tmp_path / "project"
        self.project.mkdir()
        self.write({"containers": {}, "wanted": "1.0.0", "log": [], "stopped_order": [], "crashing": []})

    def write(self, state: dict[str, t.Any]) -> None:
        self.state_path.write_text(json.dumps(state))

    def read(self) -> dict[str, t.Any]:
        return t.cast(dict[str, t.Any], json.loads(self.state_path.read_text()))

    def set(self, **changes: t.Any) -> None:
        state = self.read()
        state.update(changes)
        self.write(state)

    def containers(self, **states: str) -> None:
        state = self.read()
        state["containers"] = {svc: {"config": state["wanted"], "state": s} for svc, s in states.items()}
        self.write(state)

    def commands(self) -> list[str]:
        return [" ".join(a for a in argv if not a.startswith("/")) for argv in self.read()["log"]]


@pytest.fixture
def docker(tmp_path: Path) -> FakeDocker:
    return FakeDocker(tmp_path)


def run(run_module: t.Any, docker: FakeDocker, state: str, check_mode: bool = False, **kw: t.Any) -> t.Any:
    args = {"project_src": str(docker.project), "services": ["backend", "worker"], "state": state}
    args["docker_cli"] = str(docker.cli)
    args.update(kw)
    return run_module(compose_services.main, args, check_mode=check_mode)


def by_name(result: t.Any) -> dict[str, dict[str, t.Any]]:
    return {c["name"]: c for c in result["containers"]}


def test_started_creates_what_the_release_needs_and_starts_all_at_once(run_module: t.Any, docker: FakeDocker) -> None:
    docker.containers(backend="exited", worker="exited")
    docker.set(wanted="1.1.0")
    result = run(run_module, docker, "started")
    assert result["changed"] is True and not result.failed
    assert result["changed_containers"] == ["ablage-backend-1", "ablage-worker-1"]
    containers = by_name(result)
    assert containers["ablage-backend-1"]["created"] and containers["ablage-worker-1"]["created"]
    assert {c["state"] for c in containers.values()} == {"running"}
    assert {c["state_before"] for c in containers.values()} == {"created"}
    starts = [c for c in docker.commands() if c.startswith("start")]
    assert starts == ["start ablage-backend-1 ablage-worker-1"], "one docker start for every container"
    up = next(c for c in docker.commands() if " up " in f" {c} ")
    assert "--no-start" in up and "--no-deps" in up


def test_started_is_idempotent(run_module: t.Any, docker: FakeDocker) -> None:
    docker.containers(backend="running", worker="running")
    result = run(run_module, docker, "started")
    assert result["changed"] is False
    assert result["changed_containers"] == []
    assert not [c for c in docker.commands() if c.startswith("start")]


def test_started_with_dependencies_creates_them_too(run_module: t.Any, docker: FakeDocker) -> None:
    docker.containers(backend="exited", worker="exited")
    run(run_module, docker, "started", dependencies=True)
    up = next(c for c in docker.commands() if " up " in f" {c} ")
    assert "--no-deps" not in up


def test_started_check_mode_changes_nothing_and_names_what_it_would_do(run_module: t.Any, docker: FakeDocker) -> None:
    docker.containers(backend="exited")
    docker.set(wanted="1.1.0")
    before = docker.read()["containers"]
    result = run(run_module, docker, "started", check_mode=True)
    assert result["changed"] is True
    assert docker.read()["containers"] == before
    assert not [c for c in docker.commands() if c.startswith("start")]
    containers = by_name(result)
    assert containers["ablage-backend-1"]["created"] is True and containers["ablage-backend-1"]["state"] == "running"
    assert containers["ablage-worker-1"]["created"] is True, "a container the dry run would create is listed"
    assert sorted(result["changed_containers"]) == ["ablage-backend-1", "ablage-worker-1"]


def test_started_fails_when_a_container_does_not_stay_up(run_module: t.Any, docker: FakeDocker) -> None:
    docker.containers(backend="exited", worker="exited")
    docker.set(crashing=["worker"])
    result = run(run_module, docker, "started")
    assert result.failed
    assert "ablage-worker-1 is not running right after its start" in result["msg"]
    assert "docker logs ablage-worker-1" in result["msg"]
    assert by_name(result)["ablage-backend-1"]["state"] == "running"


def test_stopped_stops_without_creating_anything(run_module: t.Any, docker: FakeDocker) -> None:
    docker.containers(backend="running", worker="running")
    docker.set(wanted="1.1.0")  # the release pointer already moved: nothing may be recreated
    result = run(run_module, docker, "stopped")
    assert result["changed"] is True and not result.failed
    assert not [c for c in docker.commands() if " up " in f" {c} "]
    assert docker.read()["stopped_order"] == ["worker", "backend"]
    assert {c["state"] for c in result["containers"]} == {"exited"}
    assert {c["created"] for c in result["containers"]} == {False}
    assert docker.read()["containers"]["backend"]["config"] == "1.0.0"


def test_stopped_is_idempotent(run_module: t.Any, docker: FakeDocker) -> None:
    docker.containers(backend="exited", worker="exited")
    result = run(run_module, docker, "stopped")
    assert result["changed"] is False
    assert not [c for c in docker.commands() if c.startswith("compose") and " stop " in f" {c} "]


def test_stopped_check_mode_stops_nothing(run_module: t.Any, docker: FakeDocker) -> None:
    docker.containers(backend="running", worker="running")
    result = run(run_module, docker, "stopped", check_mode=True)
    assert result["changed"] is True
    assert docker.read()["stopped_order"] == []
    assert {c["state"] for c in result["containers"]} == {"exited"}


def test_a_failing_docker_command_names_itself(run_module: t.Any, docker: FakeDocker, tmp_path: Path) -> None:
    broken = tmp_path / "broken-docker"
    broken.write_text("#!/bin/sh\necho 'no such service: backend' >&2\nexit 1\n")
    broken.chmod(0o755)
    result = run(run_module, docker, "started", docker_cli=str(broken))
    assert result.failed
    assert "docker compose up --no-start failed" in result["msg"] and "no such service: backend" in result["msg"]


@pytest.mark.parametrize(
    ("stderr", "names"),
    [
        (" Container ablage-backend-1  Recreate\n Container ablage-backend-1  Recreated\n", {"ablage-backend-1"}),
        (" Container ablage-worker-1  Creating\n Container ablage-worker-1  Created\n", {"ablage-worker-1"}),
        (" Container ablage-redis-1  Running\n", set()),
        (" DRY-RUN MODE -  Container 0123456789ab_ablage-backend-1  Recreated\n", {"ablage-backend-1"}),
        ("", set()),
    ],
)
def test_created_names(stderr: str, names: set[str]) -> None:
    assert compose_services.created_names(stderr) == names


def test_parse_ps_reads_both_formats() -> None:
    line = '{"Service": "backend", "Name": "ablage-backend-1", "State": "running"}'
    expected = [{"service": "backend", "name": "ablage-backend-1", "state": "running"}]
    assert compose_services.parse_ps(line + "\n") == expected
    assert compose_services.parse_ps(f"[{line}]") == expected
    assert compose_services.parse_ps("  \n") == []
