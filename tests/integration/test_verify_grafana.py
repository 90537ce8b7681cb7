"""The verify role's Grafana check through real ansible-playbook (playbooks/verify.yml --tags grafana).

Grafana does not install here: tests/integration/grafana_standin.py answers its API on loopback.
No reference stack is needed: the API tokens are given (so no login), and ``--tags grafana`` runs
only the Grafana check of the verify role, then the report (tagged always), whose JSON is read back.
"""

from __future__ import annotations

import json
import subprocess
import sys
import typing as t
from pathlib import Path

import pytest
import yaml
from grafana_standin import GrafanaStandin
from reference_stack import ansible_env

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
TOKEN = "glsa_StandinServiceAccount4711_0a1b2c3d"
WRONG_TOKEN = "glsa_RevokedServiceAccount0815_deadbeef"
ADMIN_TOKEN = "admin-token-not-used-here-0815"
FAILED_TASK = "Verify | Grafana | System Overview grün, OCR Pipeline aktiv, keine Alerts"


@pytest.fixture
def grafana() -> t.Iterator[GrafanaStandin]:
    standin = GrafanaStandin(TOKEN)
    standin.state.add_dashboard("system-overview", "System Overview")
    standin.state.add_dashboard("ocr-pipeline", "OCR Pipeline")
    yield standin
    standin.close()


class Run(t.NamedTuple):
    rc: int
    text: str  # stdout and stderr
    output: dict[str, t.Any]
    report: dict[str, t.Any]
    report_text: str

    def failed_msg(self) -> str:
        """The message of the Grafana check's failing task."""
        for play in self.output.get("plays", []):
            for task in play["tasks"]:
                if task["task"]["name"].endswith(FAILED_TASK):
                    return str(task["hosts"]["ablage-test"].get("msg", ""))
        return ""

    def grafana_item(self) -> dict[str, t.Any]:
        return next(i for i in self.report["items"] if i["id"] == "grafana")


def verify(tmp_path: Path, **extra: t.Any) -> Run:
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        yaml.safe_dump(
            {
                "ablage_app": {
                    "hosts": {
                        "ablage-test": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
                    }
                }
            }
        )
    )
    variables = {
        "ablage_project_dir": str(tmp_path),
        "ablage_api_url": "http://127.0.0.1:9",  # not contacted: only the Grafana check runs
        "ablage_admin_token": ADMIN_TOKEN,
        "ablage_user_token": ADMIN_TOKEN + "-user",
        "ablage_state_dir": str(tmp_path / "state"),
        "ablage_report_dir": str(tmp_path / "reports"),
        "report_run_id": "grafana-run",
        "verify_grafana_timeout": 2,
        **extra,
    }
    varsfile = tmp_path / "vars.json"
    varsfile.write_text(json.dumps(variables))
    cmd = [
        str(VENV_BIN / "ansible-playbook"),
        "-i",
        str(inventory),
        "-e",
        f"@{varsfile}",
        "--tags",
        "grafana",
        str(REPO / "playbooks" / "verify.yml"),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ansible_env(), timeout=300, check=False)
    try:
        output = json.loads(proc.stdout)
    except ValueError:
        output = {}
    report_file = tmp_path / "reports" / "grafana-run-ablage-test.json"
    report_text = report_file.read_text() if report_file.exists() else ""
    markdown = report_file.with_suffix(".md")
    report_text += markdown.read_text() if markdown.exists() else ""
    report = json.loads(report_file.read_text()) if report_file.exists() else {"items": []}
    return Run(proc.returncode, proc.stdout + proc.stderr, output, report, report_text)


def assert_no_token(run: Run) -> None:
    for secret in (TOKEN, WRONG_TOKEN):
        assert secret not in run.text, "the Grafana token leaked into the output"
        assert secret not in run.report_text, "the Grafana token leaked into the report"


def test_all_green_passes_with_evidence_in_the_report(tmp_path: Path, grafana: GrafanaStandin) -> None:
    grafana.state.fire("OldNoise", "system-overview", silenced=True)  # silenced: accepted by a person
    run = verify(tmp_path, verify_grafana_url=grafana.url + "/", verify_grafana_token=TOKEN)
    assert run.rc == 0, run.text[-4000:]
    item = run.grafana_item()
    assert item["status"] == "checked"
    assert item["evidence"] == (
        "Grafana 11.3.0, database ok; dashboard System Overview (system-overview) found; "
        "dashboard OCR Pipeline (ocr-pipeline) found; 0 firing alert(s)"
    )
    assert item["details"]["dashboards"]["ocr-pipeline"] == {"found": True, "title": "OCR Pipeline"}
    # One probe: each URL once, with the token, and the Alertmanager asked for unsilenced active alerts only.
    paths = sorted(r.path for r in grafana.state.requests)
    assert paths == sorted(
        [
            "/api/health",
            "/api/dashboards/uid/system-overview",
            "/api/dashboards/uid/ocr-pipeline",
            "/api/alertmanager/grafana/api/v2/alerts",
        ]
    )
    assert all(r.authorized for r in grafana.state.requests)
    alerts_query = next(r.query for r in grafana.state.requests if r.path.endswith("/alerts"))
    assert alerts_query == "active=true&silenced=false&inhibited=false"
    assert_no_token(run)


def test_missing_dashboard_fails_naming_it(tmp_path: Path, grafana: GrafanaStandin) -> None:
    grafana.state.remove_dashboard("ocr-pipeline")
    run = verify(tmp_path, verify_grafana_url=grafana.url, verify_grafana_token=TOKEN)
    assert run.rc != 0
    assert run.failed_msg() == (
        "Grafana is not green: dashboard OCR Pipeline (uid ocr-pipeline) not found (404): "
        "provision it or correct verify_grafana_dashboards"
    )
    assert run.report["result"] == "failed"
    assert run.report["failure"].startswith(f'"{FAILED_TASK}": Grafana is not green: dashboard OCR Pipeline')
    item = run.grafana_item()
    assert item["status"] == "not_checked"
    assert item["evidence"].startswith("FAILED here: ")
    assert "dashboard OCR Pipeline (ocr-pipeline) NOT FOUND (404)" in item["evidence"]
    assert "dashboard System Overview (system-overview) found" in item["evidence"]
    assert_no_token(run)


@pytest.mark.parametrize("scope", ["all", "dashboards"])
def test_firing_alert_on_system_overview_fails_naming_the_alert(
    tmp_path: Path, grafana: GrafanaStandin, scope: str
) -> None:
    grafana.state.fire("HighGPUMemory", "system-overview", summary="GPU memory above 85 %")
    run = verify(
        tmp_path, verify_grafana_url=grafana.url, verify_grafana_token=TOKEN, verify_grafana_alerts_scope=scope
    )
    assert run.rc != 0
    msg = run.failed_msg()
    assert msg.startswith("Grafana is not green: 1 firing alert(s): HighGPUMemory on dashboard System Overview ("), msg
    item = run.grafana_item()
    assert item["status"] == "not_checked"
    assert "1 firing alert(s): HighGPUMemory (dashboard System Overview)" in item["evidence"]
    assert_no_token(run)


def test_alert_elsewhere_counts_only_with_scope_all(tmp_path: Path, grafana: GrafanaStandin) -> None:
    grafana.state.fire("DiskAlmostFull")  # no dashboard linked
    run = verify(
        tmp_path, verify_grafana_url=grafana.url, verify_grafana_token=TOKEN, verify_grafana_alerts_scope="dashboards"
    )
    assert run.rc == 0, run.text[-4000:]
    # The report still shows it: the evidence is what Grafana listed.
    assert "1 firing alert(s): DiskAlmostFull" in run.grafana_item()["evidence"]
    run = verify(tmp_path, verify_grafana_url=grafana.url, verify_grafana_token=TOKEN)
    assert run.rc != 0
    assert run.failed_msg().startswith("Grafana is not green: 1 firing alert(s): DiskAlmostFull (")


def test_wrong_token_fails_naming_the_variable_and_never_shows_a_token(tmp_path: Path, grafana: GrafanaStandin) -> None:
    run = verify(tmp_path, verify_grafana_url=grafana.url, verify_grafana_token=WRONG_TOKEN)
    assert run.rc != 0
    msg = run.failed_msg()
    assert msg.startswith("Grafana is not green: Grafana refused the token (HTTP 401 for "), msg
    assert "set verify_grafana_token to a valid service account token with the Viewer role" in msg
    assert "Grafana refused the token: check verify_grafana_token" in run.grafana_item()["evidence"]
    assert any(not r.authorized and r.path.startswith("/api/dashboards/") for r in grafana.state.requests)
    assert_no_token(run)


def test_no_grafana_configured_is_reported_as_not_run(tmp_path: Path) -> None:
    run = verify(tmp_path)
    assert run.rc == 0, run.text[-4000:]
    item = run.grafana_item()
    assert item["status"] == "not_run"
    assert item["evidence"] == "not run: no Grafana is configured for this host (verify_grafana_url is empty)"
