"""The pure parts of benchmarks/bench_growth.py: recap parsing, pgbench scale, inventory, cases, the table."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import bench_growth as bg

RECAP = """\
PLAY RECAP *********************************************************************
ablage-local               : ok=120  changed=20   unreachable=0    failed=0    skipped=40   rescued=0    ignored=0

TASKS RECAP ********************************************************************
Saturday 05 December 2026  10:00:44 +0000 (0:00:00.101)       0:01:40.001 *****
===============================================================================
ablage.ops.deploy : Deploy | Render and check the migration before the window, applying nothing - 1.1.1 -- 2.10s
ablage.ops.deploy : Deploy | The application's full backup (POST /api/v1/backup/full, waited for) - 8.50s
ablage.ops.deploy : Deploy | Verified pg_dump backup before anything changes  1234.56s
ablage.ops.deploy : Deploy | Alembic upgrade head (refuses destructive SQL unless allowed) ---- 0.90s
ablage.ops.deploy : Deploy | Start infrastructure, backend and worker at once (created as compose up would) -- 1.20s
Deploy | Wait until the started release answers on every health endpoint (polled every 0.25 s, bounded) -- 3.30s
Ablage-System | Obtain API tokens ---------------------------------------- 0.05s
"""


def test_parse_task_times_reads_the_recap_lines_in_order() -> None:
    tasks = bg.parse_task_times("TASK [something] ***\nok: [ablage-local] 9.99s\n" + RECAP)
    assert [seconds for _task, seconds in tasks] == [2.10, 8.50, 1234.56, 0.90, 1.20, 3.30, 0.05]
    assert tasks[0][0].endswith("applying nothing - 1.1.1")
    assert tasks[-1] == ("Ablage-System | Obtain API tokens", 0.05)


def test_parse_task_times_without_a_recap_reads_every_line_and_skips_the_rest() -> None:
    assert bg.parse_task_times("short ------------------------------------- 0.01s\nno time here\n") == [("short", 0.01)]
    assert bg.parse_task_times("") == []


def test_parse_task_times_of_the_real_callback(capsys: pytest.CaptureFixture[str]) -> None:
    loader = pytest.importorskip("ansible.plugins.loader")
    loader.init_plugin_loader()
    callback = loader.callback_loader.get("ansible.posix.profile_tasks")
    if callback is None:
        pytest.skip("ansible.posix is not installed")
    callback.set_options(direct={"sort_order": "none", "output_limit": "all"})
    names = {
        "ablage.ops.deploy : Deploy | Verified pg_dump backup before anything changes": 12.345,
        "ablage.ops.deploy : Deploy | The application's full backup (POST /api/v1/backup/full, waited for)": 1234.5,
        "short": 0.01,
    }
    for number, (name, elapsed) in enumerate(names.items()):
        callback.stats[str(number)] = {"started": 0.0, "elapsed": elapsed, "name": name}
    callback.v2_playbook_on_stats(None)
    tasks = bg.parse_task_times(capsys.readouterr().out)
    assert tasks == [(name, round(elapsed, 2)) for name, elapsed in names.items()]


def test_step_seconds_sums_matching_tasks_and_leaves_missing_steps_none() -> None:
    steps = bg.step_seconds(bg.parse_task_times(RECAP))
    assert steps == {
        "pg_dump_s": 1234.56,
        "api_backup_s": 8.5,
        "migration_review_s": 2.1,
        "migration_s": 0.9,
        "base_backup_s": None,
        "restore_point_s": None,
        "start_s": 4.5,
    }
    assert bg.step_seconds([("Proxy | Wait until the surge slot answers on every endpoint", 2.0)])["start_s"] == 2.0
    assert set(bg.step_seconds([]).values()) == {None}


def test_slowest_tasks_first() -> None:
    slowest = bg.slowest_tasks(bg.parse_task_times(RECAP), count=2)
    assert [row["s"] for row in slowest] == [1234.56, 8.5]


@pytest.mark.parametrize(("size_gb", "scale"), [(1, 68), (10, 680), (0.5, 34), (0.001, 1)])
def test_scale_for_size(size_gb: float, scale: int) -> None:
    assert bg.scale_for_size(size_gb) == scale


def test_sizes_and_hosts_are_parsed_sorted_and_checked() -> None:
    assert bg.parse_sizes("10,1") == [1.0, 10.0]
    assert bg.parse_sizes("") == []
    assert bg.parse_hosts("4, 1,2") == [1, 2, 4]
    with pytest.raises(ValueError, match="positive"):
        bg.parse_sizes("0")
    with pytest.raises(ValueError, match="1 to 4"):
        bg.parse_hosts("5")


def test_case_names_and_log_slugs() -> None:
    assert bg.db_case(1.0, "window") == "1 GB, window"
    assert bg.db_case(10.0, "zero_downtime") == "10 GB, zero downtime"
    assert bg.hosts_case(1) == "1 host, serial 1"
    assert bg.hosts_case(4) == "4 hosts, serial 1"
    assert bg.slug("0.5 GB, zero downtime") == "0.5-gb-zero-downtime"
    assert bg.slug("2 hosts, serial 1") == "2-hosts-serial-1"
    assert bg.unit_cases("db:10") == ["10 GB, window", "10 GB, zero downtime", "10 GB, window, pitr"]
    assert bg.unit_cases("hosts:2") == ["2 hosts, serial 1"]


def test_inventory_primary_first_then_nodes_with_their_own_dir_port_and_state() -> None:
    hosts = bg.inventory(4)["ablage_app"]["hosts"]
    assert list(hosts) == ["ablage-local", "ablage-node2", "ablage-node3", "ablage-node4"]
    assert hosts["ablage-local"] == {
        "ansible_connection": "local",
        "ansible_python_interpreter": "{{ ansible_playbook_python }}",
    }
    ports = {name: values["ablage_api_url"] for name, values in hosts.items() if name != "ablage-local"}
    assert ports == {
        "ablage-node2": "http://127.0.0.1:8001",
        "ablage-node3": "http://127.0.0.1:8003",
        "ablage-node4": "http://127.0.0.1:8004",
    }
    node3 = hosts["ablage-node3"]
    assert node3["ablage_project_dir"] == "/srv/ablage-node3"
    assert node3["ablage_state_dir"] == "/var/lib/ablage-deploy-node3"
    assert node3["deploy_infra_services"] == []
    assert node3["preflight_db_enabled"] is False
    assert node3["ansible_connection"] == "local"
    assert list(bg.inventory(1)["ablage_app"]["hosts"]) == ["ablage-local"]
    with pytest.raises(ValueError):
        bg.inventory(5)


def test_nodes_never_take_the_proxy_surge_port_and_tell_stack_sh_their_place() -> None:
    assert all(node.port not in (8000, 8002, 8080) for node in bg.NODES)
    assert len({node.port for node in bg.NODES}) == len(bg.NODES)
    assert bg.NODES[0].stack_env == {
        "ABLAGE_NODE_DIR": "/srv/ablage-node2",
        "ABLAGE_NODE_PORT": "8001",
        "ABLAGE_NODE_PROJECT": "ablage-node2",
    }


def test_write_inventory_links_the_local_group_vars(tmp_path: Path) -> None:
    bg.write_inventory(tmp_path, 2)
    assert json.loads((tmp_path / "hosts.yml").read_text(encoding="utf-8")) == bg.inventory(2)
    assert (tmp_path / "group_vars").resolve() == (bg.INVENTORY / "group_vars").resolve()
    assert (tmp_path / "group_vars" / "ablage_app.yml").is_file()


def test_growth_pairs_against_the_smallest_size_and_host_count() -> None:
    assert bg.growth_pairs([1.0, 10.0], [1, 2, 4]) == [
        ("10 GB, window", "1 GB, window"),
        ("10 GB, zero downtime", "1 GB, zero downtime"),
        ("10 GB, window, pitr", "1 GB, window, pitr"),
        ("2 hosts, serial 1", "1 host, serial 1"),
        ("4 hosts, serial 1", "1 host, serial 1"),
    ]
    assert bg.growth_pairs([], []) == []


def test_markdown_table_one_row_per_case() -> None:
    runs = [
        {
            "case": "1 GB, window",
            "ok": True,
            "database_gb": 1.071,
            "wall_s": 80.123,
            "maintenance_s": 40.0,
            "user_outage_s": 40.05,
            "pg_dump_s": 23.4,
            "api_backup_s": 8.0,
            "migration_s": 0.9,
            "start_s": 4.5,
        },
        bg.failed_run("10 GB, zero downtime", "boom"),
        {
            "case": "1 GB, window, pitr",
            "ok": True,
            "database_gb": 1.071,
            "wall_s": 52.8,
            "maintenance_s": 0.02,
            "user_outage_s": 0.0,
            "pg_dump_s": 0.02,
            "base_backup_s": 3.61,
            "restore_point_s": 1.7,
            "api_backup_s": 4.1,
            "migration_s": 0.15,
            "start_s": 2.0,
        },
    ]
    lines = bg.markdown_table(runs).splitlines()
    assert lines[0] == (
        "| case | database GB | wall s | maintenance window s | user outage s | pg_dump s | base backup s "
        "| restore point s | API backup s | migration s | start s |"
    )
    assert lines[1] == "|---|---|---|---|---|---|---|---|---|---|---|"
    assert lines[2] == "| 1 GB, window | 1.07 | 80.1 | 40.0 | 40.0 | 23.4 | n/a | n/a | 8.0 | 0.9 | 4.5 |"
    assert lines[3] == "| 10 GB, zero downtime (failed) | n/a | n/a | n/a | n/a | n/a | n/a | n/a | n/a | n/a | n/a |"
    # Skipped steps (under 0.2 s in profile_tasks) read "-"; the window and outage are measured, not steps.
    assert lines[4] == "| 1 GB, window, pitr | 1.07 | 52.8 | 0.0 | 0.0 | - | 3.6 | 1.7 | 4.1 | - | 2.0 |"


def test_failed_run_keeps_the_tail_of_the_error() -> None:
    run = bg.failed_run("2 hosts, serial 1", "x" * 5000, hosts=2)
    assert run["ok"] is False and run["contestant"] == run["case"] == "2 hosts, serial 1"
    assert len(run["error"]) == 2000 and run["hosts"] == 2


def test_run_bounded_stops_a_command_past_its_timeout(tmp_path: Path) -> None:
    log = tmp_path / "out.log"
    elapsed, status, output = bg.run_bounded(["sh", "-c", "echo started; sleep 30"], timeout=0.5, grace=5, log_file=log)
    assert status == 124 and elapsed < 10
    assert "started" in output and "stopped after" in output
    assert log.read_text(encoding="utf-8") == output
    assert bg.run_bounded(["sh", "-c", "exit 3"], timeout=5)[1] == 3


def test_strategies_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert bg.strategies() == ["window", "zero_downtime", "window_pitr"]
    monkeypatch.setenv("BENCH_GROWTH_STRATEGIES", "window, window_pitr")
    assert bg.unit_cases("db:1") == ["1 GB, window", "1 GB, window, pitr"]
    monkeypatch.setenv("BENCH_GROWTH_STRATEGIES", "window,blue_green")
    with pytest.raises(ValueError, match="blue_green; known: window, zero_downtime, window_pitr"):
        bg.strategies()
