"""Shared fixtures of the unit tests.

- The checkout must be importable as ``ansible_collections.ablage.ops``: pyproject
  puts ``.collections`` on sys.path; the symlink is created here if missing.
- ``run_module`` runs a module's real ``main()`` with patched arguments and
  returns the JSON it printed (so no_log masking is part of what is tested).
- ``backend`` is a real HTTP server on 127.0.0.1 (random port) that implements
  the maintenance API and health endpoints of docs/contract.md, with switches for
  slow, flaky, wrong-JSON and 503 behaviour.
- ``tls_backend`` is the same server behind TLS with a private CA that also
  accepts client certificates.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import socket
import ssl
import sys
import threading
import time
import typing as t
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

REPO = Path(__file__).resolve().parents[2]


HEALTH_PATHS = {
    "/api/v1/health",
    "/api/v1/health/detailed",
    "/api/v1/health/pipeline",
    "/api/v1/health/gpu-memory",
    "/api/v1/health/complete",
}
ADMIN_TOKEN = "admin-token-0123456789"
USER_TOKEN = "user-token-9876543210"


# --------------------------------------------------------------------------- module runner


# --------------------------------------------------------------------------- fake backend


@dataclass
class Reply:
    status: int = 200
    body: t.Any = None  # dict/list -> JSON, str/bytes -> as is
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    truncate: bool = False  # announce more body than is sent, then hang up


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class BackendState:
    """What the fake backend does; tests flip these switches."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.maintenance = False
        # enable/disable answer 200 but do not change the flag
        self.toggle_ignored = False
        # maintenance on, but non-admin requests still pass
        self.middleware_off = False
        # non-admin requests answer 503 for this many requests after maintenance is switched off
        self.stale_503_after_disable = 0
        self.scripts: dict[tuple[str, str], list[Reply]] = {}
        self.requests: list[Recorded] = []

    def script(self, method: str, path: str, *replies: Reply) -> None:
        """Answer method+path with these replies in turn; the last one repeats."""
        self.scripts[(method, path)] = list(replies)

    def count(self, method: str, path: str) -> int:
        return sum(1 for r in self.requests if r.method == method and r.path == path)


def _make_handler(state: BackendState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: t.Any) -> None:
            pass

        def _send(self, reply: Reply) -> None:
            if reply.delay:
                time.sleep(reply.delay)
            if isinstance(reply.body, (dict, list)):
                data = json.dumps(reply.body).encode()
                ctype = "application/json"
            elif isinstance(reply.body, bytes):
                data, ctype = reply.body, "application/octet-stream"
            elif reply.body is None:
                data, ctype = b"", "text/plain"
            else:
                data, ctype = str(reply.body).encode(), "text/html"
            self.send_response(reply.status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data) + (100 if reply.truncate else 0)))
            for key, value in reply.headers.items():
                self.send_header(key, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
            if reply.truncate:
                self.close_connection = True

        def _token(self) -> str | None:
            auth = self.headers.get("Authorization", "")
            return auth[len("Bearer ") :] if auth.startswith("Bearer ") else None

        def _route(self) -> Reply:
            path = self.path.split("?", 1)[0]
            with state.lock:
                replies = state.scripts.get((self.command, path))
                if replies:
                    return replies.pop(0) if len(replies) > 1 else replies[0]
            token = self._token()
            if path.startswith("/api/v1/admin/"):
                if token is None:
                    return Reply(401, {"detail": "Not authenticated"})
                if token != ADMIN_TOKEN:
                    return Reply(403, {"detail": "Admin privileges required"})
                if path == "/api/v1/admin/maintenance" and self.command == "GET":
                    return Reply(200, {"enabled": state.maintenance})
                if path in ("/api/v1/admin/maintenance/enable", "/api/v1/admin/maintenance/disable"):
                    if self.command != "POST":
                        return Reply(405, {"detail": "Method Not Allowed"})
                    with state.lock:
                        if not state.toggle_ignored:
                            state.maintenance = path.endswith("/enable")
                    return Reply(200, {"enabled": state.maintenance})
                return Reply(404, {"detail": "Not Found"})
            if path in HEALTH_PATHS:
                # health stays reachable during maintenance, like the real backend
                name = path[len("/api/v1/health") :].strip("/") or "health"
                return Reply(200, {"status": "healthy", "check": name, "components": {"db": {"status": "healthy"}}})
            if path.startswith("/api/v1/"):
                with state.lock:
                    stale = state.stale_503_after_disable > 0 and not state.maintenance
                    if stale:
                        state.stale_503_after_disable -= 1
                if stale or (state.maintenance and not state.middleware_off and token != ADMIN_TOKEN):
                    return Reply(503, {"detail": "Ablage-System is in maintenance mode", "maintenance": True})
                if path not in ("/api/v1/documents/", "/api/v1/documents"):
                    return Reply(404, {"detail": "Not Found"})
                if token is None:
                    return Reply(401, {"detail": "Not authenticated"})
                return Reply(200, [])
            if path == "/tls/whoami":
                cert = self.connection.getpeercert() if hasattr(self.connection, "getpeercert") else None
                subject = dict(x[0] for x in cert["subject"]) if cert else None
                return Reply(200, {"client_cn": subject.get("commonName") if subject else None})
            return Reply(404, {"detail": "Not Found"})

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            with state.lock:
                state.requests.append(Recorded(self.command, self.path, dict(self.headers.items()), body))
            self._send(self._route())

        do_GET = do_POST = do_HEAD = do_PUT = _handle

    return Handler


class Backend:
    """A running fake backend: its URL, its switches (BackendState) and the tokens it accepts."""

    Reply = Reply
    admin_token = ADMIN_TOKEN
    user_token = USER_TOKEN

    def __init__(self, server: ThreadingHTTPServer, state: BackendState, scheme: str) -> None:
        self.server = server
        self.state = state
        port = server.server_address[1]
        self.url = f"{scheme}://127.0.0.1:{port}"

    def __getattr__(self, name: str) -> t.Any:
        return getattr(self.state, name)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: t.Any, client_address: t.Any) -> None:
        # Clients that time out on purpose (slow replies) close the connection early.
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError, ssl.SSLError)):
            super().handle_error(request, client_address)


def _serve(context: ssl.SSLContext | None = None) -> t.Iterator[Backend]:
    state = BackendState()
    server = _QuietServer(("127.0.0.1", 0), _make_handler(state))
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield Backend(server, state, "https" if context else "http")
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def backend() -> t.Iterator[Backend]:
    yield from _serve()


@pytest.fixture
def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --------------------------------------------------------------------------- TLS


@dataclass
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    client_combined: Path


def _make_pki(directory: Path) -> Pki:
    now = datetime.datetime.now(datetime.UTC)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def key() -> ec.EllipticCurvePrivateKey:
        return ec.generate_private_key(ec.SECP256R1())

    def pem_key(k: ec.EllipticCurvePrivateKey) -> bytes:
        return k.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    ca_key = key()
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("ablage test CA"))
        .issuer_name(name("ablage test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    def leaf(cn: str, usage: x509.ObjectIdentifier, san: bool) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        k = key()
        builder = (
            x509.CertificateBuilder()
            .subject_name(name(cn))
            .issuer_name(ca.subject)
            .public_key(k.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        )
        if san:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
            )
        return builder.sign(ca_key, hashes.SHA256()), k

    server, server_key = leaf("127.0.0.1", ExtendedKeyUsageOID.SERVER_AUTH, san=True)
    client, client_key = leaf("ablage-deployer", ExtendedKeyUsageOID.CLIENT_AUTH, san=False)
    pem = serialization.Encoding.PEM
    files = {
        "ca.pem": ca.public_bytes(pem),
        "server.pem": server.public_bytes(pem),
        "server.key": pem_key(server_key),
        "client.pem": client.public_bytes(pem),
        "client.key": pem_key(client_key),
        "client-combined.pem": client.public_bytes(pem) + pem_key(client_key),
    }
    for filename, data in files.items():
        (directory / filename).write_bytes(data)
        os.chmod(directory / filename, 0o600)
    return Pki(
        ca=directory / "ca.pem",
        server_cert=directory / "server.pem",
        server_key=directory / "server.key",
        client_cert=directory / "client.pem",
        client_key=directory / "client.key",
        client_combined=directory / "client-combined.pem",
    )


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return _make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def tls_backend(pki: Pki) -> t.Iterator[Backend]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(pki.server_cert), str(pki.server_key))
    context.load_verify_locations(str(pki.ca))
    context.verify_mode = ssl.CERT_OPTIONAL
    yield from _serve(context)
