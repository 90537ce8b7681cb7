"""A STAND-IN for Grafana: the few HTTP API endpoints the verify role's Grafana check reads.

Not the real thing. Grafana does not install on these machines (no package in the configured apt
sources, no image can be pulled), so this loopback HTTP server answers, with Grafana's documented
response shapes:

- ``GET /api/health``: ``{"commit", "database", "version"}``; 200 with ``database: ok``, 503 with
  ``database: failing`` (Grafana answers so when its database is down). No authentication, as in Grafana.
- ``GET /api/dashboards/uid/<uid>``: ``{"dashboard": {..., "uid", "title"}, "meta": {...}}``, or 404
  ``{"message": "Dashboard not found"}``.
- ``GET /api/alertmanager/grafana/api/v2/alerts``: Grafana's built-in Alertmanager, Alertmanager API v2
  (a JSON list of ``gettableAlert``: ``labels``, ``annotations``, ``status {state, silencedBy,
  inhibitedBy}``, ``fingerprint``, ``startsAt``, ``endsAt``, ``updatedAt``, ``receivers``,
  ``generatorURL``), filtered by the query parameters ``active``, ``silenced`` and ``inhibited`` (each
  defaulting to true, as in Alertmanager). Only firing alerts reach an Alertmanager; an alert rule linked
  to a dashboard panel carries ``__dashboardUid__`` and ``__panelId__`` in its annotations.
- Authentication as with a service account token: every endpoint but ``/api/health`` needs
  ``Authorization: Bearer <token>``; none answers 401 ``{"message": "Unauthorized"}``, an unknown one
  401 ``{"message": "Invalid API key", ...}``.

Tests set the state: ``add_dashboard``/``remove_dashboard``, ``fire`` (optionally silenced), ``database``;
``requests`` records what was asked (path, query, whether a known token came with it).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import re
import threading
import typing as t
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

from serving import Serving

VERSION = "11.3.0"
COMMIT = "d9455ff7db"
ALERTS_PATH = "/api/alertmanager/grafana/api/v2/alerts"


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class Recorded:
    method: str
    path: str
    query: str
    authorized: bool
    status: int


@dataclass
class GrafanaState:
    tokens: set[str] = field(default_factory=set)
    database: str = "ok"
    dashboards: dict[str, dict[str, t.Any]] = field(default_factory=dict)
    alerts: list[dict[str, t.Any]] = field(default_factory=list)
    requests: list[Recorded] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock)

    def add_dashboard(self, uid: str, title: str) -> None:
        with self.lock:
            self.dashboards[uid] = {
                "id": len(self.dashboards) + 1,
                "uid": uid,
                "title": title,
                "tags": ["ablage"],
                "timezone": "browser",
                "schemaVersion": 39,
                "version": 1,
                "panels": [{"id": 4, "type": "timeseries", "title": "GPU memory"}],
            }

    def remove_dashboard(self, uid: str) -> None:
        with self.lock:
            self.dashboards.pop(uid, None)

    def fire(
        self, alertname: str, dashboard_uid: str | None = None, *, silenced: bool = False, summary: str = ""
    ) -> None:
        """An alert rule goes to Alerting and Grafana's Alertmanager receives the alert."""
        labels = {"alertname": alertname, "grafana_folder": "Ablage-System", "severity": "critical"}
        annotations: dict[str, str] = {"summary": summary or f"{alertname} is firing"}
        if dashboard_uid:
            annotations.update(__dashboardUid__=dashboard_uid, __panelId__="4")
        fingerprint = hashlib.sha256(json.dumps(labels, sort_keys=True).encode()).hexdigest()[:16]
        now = _now()
        with self.lock:
            self.alerts.append(
                {
                    "annotations": annotations,
                    "endsAt": "2099-01-01T00:00:00.000Z",
                    "fingerprint": fingerprint,
                    "receivers": [{"name": "grafana-default-email"}],
                    "startsAt": now,
                    "status": {
                        "inhibitedBy": [],
                        "silencedBy": ["6f6b1e0c-standin-silence"] if silenced else [],
                        "state": "suppressed" if silenced else "active",
                    },
                    "updatedAt": now,
                    "generatorURL": f"http://127.0.0.1:3000/alerting/grafana/{fingerprint}/view?orgId=1",
                    "labels": labels,
                }
            )


def _flag(query: dict[str, list[str]], name: str) -> bool:
    values = query.get(name)
    return True if not values else values[-1].lower() in ("true", "1")


class Handler(BaseHTTPRequestHandler):
    server: StandinServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: t.Any) -> None:
        pass

    def _send(self, code: int, body: t.Any) -> None:
        raw = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)
        self._status = code

    def do_GET(self) -> None:
        state = self.server.state
        parts = urlsplit(self.path)
        header = self.headers.get("Authorization") or ""
        token = header[len("Bearer ") :] if header.startswith("Bearer ") else None
        authorized = token is not None and token in state.tokens
        self._status = 0
        with state.lock:
            try:
                self._route(parts.path, parse_qs(parts.query), token, authorized)
            finally:
                state.requests.append(Recorded("GET", parts.path, parts.query, authorized, self._status))

    def _route(self, path: str, query: dict[str, list[str]], token: str | None, authorized: bool) -> None:
        state = self.server.state
        if path == "/api/health":
            body = {"commit": COMMIT, "database": state.database, "version": VERSION}
            self._send(200 if state.database == "ok" else 503, body)
            return
        if token is None:
            self._send(401, {"message": "Unauthorized"})
            return
        if not authorized:
            self._send(
                401,
                {
                    "extra": None,
                    "message": "Invalid API key",
                    "messageId": "api-key.invalid",
                    "statusCode": 401,
                    "traceID": "",
                },
            )
            return
        found = re.fullmatch(r"/api/dashboards/uid/([^/]+)", path)
        if found:
            uid = unquote(found.group(1))
            dashboard = state.dashboards.get(uid)
            if dashboard is None:
                self._send(404, {"message": "Dashboard not found"})
                return
            slug = re.sub(r"[^a-z0-9]+", "-", dashboard["title"].lower()).strip("-")
            meta = {
                "type": "db",
                "canSave": False,
                "canEdit": False,
                "canAdmin": False,
                "canStar": True,
                "canDelete": False,
                "slug": slug,
                "url": f"/d/{uid}/{slug}",
                "expires": "0001-01-01T00:00:00Z",
                "created": "2026-01-01T10:00:00Z",
                "updated": "2026-01-01T10:00:00Z",
                "updatedBy": "admin",
                "createdBy": "admin",
                "version": dashboard["version"],
                "hasAcl": False,
                "isFolder": False,
                "folderId": 0,
                "folderUid": "",
                "folderTitle": "General",
                "folderUrl": "",
                "provisioned": True,
                "provisionedExternalId": f"{uid}.json",
            }
            self._send(200, {"dashboard": dashboard, "meta": meta})
            return
        if path == ALERTS_PATH:
            active, silenced, inhibited = (_flag(query, name) for name in ("active", "silenced", "inhibited"))
            out = []
            for alert in state.alerts:
                status = alert["status"]
                if status["silencedBy"]:
                    keep = silenced
                elif status["inhibitedBy"]:
                    keep = inhibited
                else:
                    keep = active
                if keep:
                    out.append(alert)
            self._send(200, out)
            return
        self._send(404, {"message": "Not found"})


class StandinServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: GrafanaState) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.state = state


class GrafanaStandin(Serving):
    """A running stand-in over HTTP on 127.0.0.1 (random port) that accepts ``token``."""

    def __init__(self, token: str) -> None:
        self.state = GrafanaState(tokens={token})
        super().__init__(StandinServer(self.state), "http")
