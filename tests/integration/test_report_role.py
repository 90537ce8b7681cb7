"""roles/report through real ansible-playbook on localhost: files, AWX artefacts, webhook, history table.

No reference stack is needed: the evidence is what the roles would have registered, given as
variables; the deploy state is a temporary directory; the webhook is a real loopback HTTP
server that captures the request.
"""

from __future__ import annotations

import http.server
import json
import subprocess
import sys
import textwrap
import threading
import typing as t
from pathlib import Path

import pytest
from reference_stack import ansible_env

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
SECRET = "Sup3r-Secret-Admin-Token-4711"
DB_PASSWORD = "db-Passw0rd-not-for-reports"


class _Capture(http.server.BaseHTTPRequestHandler):
    requests: t.ClassVar[list[dict[str, t.Any]]] = []
    status = 200

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        _Capture.requests.append({"path": self.path, "content_type": self.headers.get("Content-Type"), "body": body})
        self.send_response(_Capture.status)
        self.end_headers()

    def log_message(self, *_args: t.Any) -> None:
        pass


@pytest.fixture
def webhook() -> t.Iterator[str]:
    _Capture.requests.clear()
    _Capture.status = 200
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Capture)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks/ablage"
    server.shutdown()
    server.server_close()


def run(
    tmp_path: Path, playbook: str, extra: dict[str, t.Any]
) -> tuple[subprocess.CompletedProcess[str], dict[str, t.Any]]:
    play = tmp_path / "play.yml"
    play.write_text(textwrap.dedent(playbook), encoding="utf-8")
    varsfile = tmp_path / "vars.json"
    varsfile.write_text(json.dumps(extra), encoding="utf-8")
    cmd = [str(VENV_BIN / "ansible-playbook"), "-i", "ablage-test,", "-c", "local", "-e", f"@{varsfile}", str(play)]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, env=ansible_env(ANSIBLE_SHOW_CUSTOM_STATS="1"), timeout=300, check=False
    )
    try:
        output = json.loads(proc.stdout)
    except ValueError:
        output = {}
    return proc, output


FAILED_DEPLOY = """\
- hosts: all
  gather_facts: false
  tasks:
    - name: The report of a deploy that failed at the backend start and rolled back
      ansible.builtin.include_role:
        name: ablage.ops.report
      vars:
        report_playbook: deploy
        report_failure: >-
          "Deploy | Start the backend and wait until healthy": container unhealthy (token {{ ablage_admin_token }})
        report_result: rolled_back
"""


def failed_deploy_vars(tmp_path: Path, webhook_url: str) -> dict[str, t.Any]:
    state_dir = tmp_path / "state"
    state_dir.mkdir(mode=0o700)
    (state_dir / "state.json").write_text(
        json.dumps(
            {
                "run_id": "run-42",
                "previous_version": "1.0.0",
                "target_version": "1.2.0",
                "current_version": "1.0.0",
                "phase": "rolled_back",
                "maintenance_on_at": "2026-01-27T10:00:00Z",
            }
        ),
        encoding="utf-8",
    )
    return {
        "ablage_state_dir": str(state_dir),
        "ablage_report_dir": str(tmp_path / "reports"),
        "ablage_version": "1.2.0",
        "ablage_admin_token": SECRET,
        "ablage_db_password": DB_PASSWORD,
        "ablage_notify_webhook_url": webhook_url,
        "ablage_escalation_contacts": [
            {"role": "DevOps Lead", "name": "Alice", "phone": "+49 1", "availability": "24/7"}
        ],
        "deploy_holder": "alice",
        # The roles' published results, as a deploy that failed at the migration and rolled back leaves them.
        "deploy_run": {"run_id": "run-42", "lock_taken": True, "from_version": "1.0.0"},
        "deploy_result": {
            "steps": {
                "pg_backup": {
                    "backup_path": "/b/pre.dump",
                    "size": 10,
                    "checksum": "ab" * 32,
                    "verification": {"level": "restore", "restore": {"equal": True}},
                    "invocation": {"module_args": {"password": DB_PASSWORD}},
                },
                "migration": {
                    "current_before": "0001",
                    "current_after": "0003",
                    "head": "0003",
                    "pending": ["0002", "0003"],
                },
            }
        },
        "rollback_database_result": {
            "restore": {"backup_path": "/b/pre.dump", "comparison": {"equal": True, "actual_revision": "0001"}}
        },
        "rollback_start_result": {
            "health": {"results": [{"url": "/api/v1/health/complete", "status": 200, "ok": True, "latency_ms": 5}]}
        },
    }


def test_failed_deploy_report_files_artefacts_webhook_and_changelog(tmp_path: Path, webhook: str) -> None:
    extra = failed_deploy_vars(tmp_path, webhook)
    proc, output = run(tmp_path, FAILED_DEPLOY, extra)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    base = tmp_path / "reports" / "run-42-ablage-test"
    report = json.loads(base.with_suffix(".json").read_text())
    markdown = base.with_suffix(".md").read_text()
    assert report["result"] == "rolled_back" and report["who"] == "alice"
    assert report["versions"] == {"from": "1.0.0", "to": "1.2.0", "running": "1.0.0"}
    assert report["escalation_contacts"][0]["name"] == "Alice" and "| DevOps Lead | Alice +49 1 | 24/7 |" in markdown
    items = {(i["section"], i["id"]): i for i in report["items"]}
    assert items[("deployment", "deploy")]["status"] == "not_checked"
    assert items[("rollback", "rollback_database")]["status"] == "checked"
    assert items[("post_deployment", "team_informed")]["status"] == "checked"
    assert items[("post_deployment", "release_notes")]["status"] == "checked"
    for text in (base.with_suffix(".json").read_text(), markdown):
        assert SECRET not in text and DB_PASSWORD not in text and webhook not in text

    # AWX: the report as job artefacts (set_stats, not per host).
    stats = output["global_custom_stats"]["ablage_report"]["ablage-test"]
    assert stats["run_id"] == "run-42" and stats["result"] == "rolled_back"

    # The team: one JSON POST with the summary, without secrets.
    (request,) = _Capture.requests
    assert request["path"] == "/hooks/ablage" and request["content_type"] == "application/json"
    sent = json.loads(request["body"])
    assert sent["summary"]["result"] == "rolled_back" and sent["summary"]["versions"]["to"] == "1.2.0"
    assert sent["summary"]["escalation_contacts"][0]["name"] == "Alice" and "ROLLED_BACK" in sent["text"]
    assert SECRET.encode() not in request["body"] and DB_PASSWORD.encode() not in request["body"]
    assert webhook not in proc.stdout

    # Release notes next to the report, the entry in the host's CHANGELOG.md.
    notes = Path(str(base) + ".release-notes.md").read_text()
    assert "1.0.0 → 1.2.0" in notes and "Result: rolled_back" in notes and "Deployer: alice" in notes
    changelog = tmp_path / "state" / "CHANGELOG.md"
    assert "deploy run run-42" in changelog.read_text() and changelog.stat().st_mode & 0o777 == 0o600

    # Again (same run id): the CHANGELOG entry is replaced, not doubled.
    _Capture.requests.clear()
    proc, _output = run(tmp_path, FAILED_DEPLOY, extra)
    assert proc.returncode == 0
    assert changelog.read_text().count("BEGIN deploy run run-42") == 1


def test_a_failing_webhook_is_reported_not_raised(tmp_path: Path, webhook: str) -> None:
    _Capture.status = 500
    extra = failed_deploy_vars(tmp_path, webhook)
    proc, _output = run(tmp_path, FAILED_DEPLOY, extra)
    assert proc.returncode == 0, proc.stdout[-3000:]
    report = json.loads((tmp_path / "reports" / "run-42-ablage-test.json").read_text())
    team = next(i for i in report["items"] if i["id"] == "team_informed")
    assert team["status"] == "not_checked" and "500" in team["evidence"]


HISTORY = """\
- name: History
  ansible.builtin.import_playbook: {repo}/playbooks/history.yml
"""


def test_history_is_the_versions_tracking_table(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    state_dir.mkdir(mode=0o700)
    records = [
        {
            "action": "deploy",
            "version": "1.1.0",
            "from_version": "1.0.0",
            "started_at": "2026-01-27T10:00:00Z",
            "deployer": "alice",
            "notes": "Feature X",
            "result": "success",
            "downtime_s": 12.5,
            "run_id": "r1",
        },
        {
            "action": "deploy",
            "version": "1.2.0",
            "from_version": "1.1.0",
            "started_at": "2026-01-28T09:30:00Z",
            "deployer": "bob",
            "notes": "",
            "result": "rolled_back",
            "failure": '"Deploy | Start": unhealthy',
            "run_id": "r2",
        },
        {
            "action": "rollback",
            "version": "1.1.0",
            "from_version": "1.2.0",
            "recorded_at": "2026-01-28T09:31:00+00:00",
            "reason": "unhealthy",
            "database": "restore",
            "result": "success",
            "run_id": "r2",
        },
    ]
    (state_dir / "history.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    (tmp_path / "inv.yml").write_text("ablage_app:\n  hosts:\n    h1: {ansible_connection: local}\n", encoding="utf-8")
    play = tmp_path / "play.yml"
    play.write_text(HISTORY.format(repo=REPO), encoding="utf-8")
    cmd = [
        str(VENV_BIN / "ansible-playbook"),
        "-i",
        str(tmp_path / "inv.yml"),
        "--tags",
        "history",
        str(play),
        "-e",
        f"ablage_state_dir={state_dir}",
        "-e",
        f"ablage_report_dir={tmp_path / 'reports'}",
    ]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, env=ansible_env(ANSIBLE_SHOW_CUSTOM_STATS="1"), timeout=300, check=False
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    table = (tmp_path / "reports" / "versions-tracking-h1.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| v")]
    assert rows == [
        (
            "| v1.1.0 | 2026-01-28 09:31 | - | Rollback von 1.2.0 (unhealthy; Datenbank restore) "
            "| rollback: success | - | r2 |"
        ),
        (
            '| v1.2.0 (von 1.1.0) | 2026-01-28 09:30 | bob | "Deploy \\| Start": unhealthy '
            "| deploy: rolled_back | - | r2 |"
        ),
        "| v1.1.0 (von 1.0.0) | 2026-01-27 10:00 | alice | Feature X | deploy: success | 12.5 s | r1 |",
    ]
    assert "| Version | Datum | Deployer | Notizen |" in table
    # The downtime of the last deploys as a picture, linked from the table (issue 16).
    picture = (tmp_path / "reports" / "downtime-h1.svg").read_text()
    assert 'class="downtime"' in picture and "users saw 12.5 s" in picture
    assert "](downtime-h1.svg)" in table
