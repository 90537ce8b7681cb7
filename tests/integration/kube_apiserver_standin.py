"""A STAND-IN for the Kubernetes API server: the few ingress endpoints maintenance_toggle uses.

Not the real thing. No kube-apiserver binary can be installed on these machines (see
tests/integration/test_maintenance_toggle_ingress.py for what was tried), so this loopback
HTTPS server implements, with the API server's documented semantics:

- ``GET/PATCH .../apis/networking.k8s.io/v1/namespaces/NS/ingresses/NAME``, ``GET`` (list) and
  ``POST`` (create) on ``.../namespaces/NS/ingresses``, ``GET /api/v1/namespaces/NS``, and the legacy
  discovery documents (``/version``, ``/api``, ``/apis``, ...) that a real kubectl needs to talk to it;
- bearer-token authentication: no or an unknown token answers 401 ``Unauthorized`` (as with
  ``--anonymous-auth=false``); RBAC per token and verb: 403 ``Forbidden`` with the API server's message;
- errors as ``Status`` objects (``kind: Status``, ``reason``, ``code``, ``details``): 404 ``NotFound``
  for a missing ingress (also in a missing namespace, as the real server answers a GET there),
  409 ``AlreadyExists`` on create, 409 ``Conflict`` when a patch carries a stale
  ``metadata.resourceVersion``, 415 for a patch type it does not know, 400 for a non-string
  annotation value; a path outside the API answers plain ``404 page not found``;
- JSON merge patch (RFC 7386; ``application/merge-patch+json`` and, for maps such as annotations,
  the same result for ``application/strategic-merge-patch+json``): null deletes a key, an emptied
  annotations map disappears (omitempty);
- one global, increasing ``resourceVersion`` (etcd's revision), bumped only when an object really
  changes (a no-op patch keeps it); ``generation`` only when ``spec`` changes;
- ``?dryRun=All``: authorised and validated, answered as if applied, nothing stored.

Hooks for tests: ``on_patch`` runs before a patch is applied (a concurrent writer), ``mutate``
while it is applied (a mutating admission webhook), ``after_patch`` once it was answered (a GitOps
controller reverting it); ``requests`` records every request.
"""

from __future__ import annotations

import copy
import datetime
import ipaddress
import json
import ssl
import threading
import typing as t
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from serving import Serving

GROUP = "networking.k8s.io"
PREFIX = f"/apis/{GROUP}/v1/namespaces/"
ALL_VERBS = frozenset({"get", "list", "create", "patch"})


# Legacy (v1) discovery documents, enough for kubectl to map "ingress" to networking.k8s.io/v1 ingresses.
DISCOVERY: dict[str, dict[str, t.Any]] = {
    "/version": {"major": "1", "minor": "32", "gitVersion": "v1.32.0-standin", "platform": "linux/amd64"},
    "/api": {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []},
    "/api/v1": {"kind": "APIResourceList", "groupVersion": "v1", "resources": []},
    "/apis": {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [
            {
                "name": GROUP,
                "versions": [{"groupVersion": f"{GROUP}/v1", "version": "v1"}],
                "preferredVersion": {"groupVersion": f"{GROUP}/v1", "version": "v1"},
            }
        ],
    },
    f"/apis/{GROUP}/v1": {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{GROUP}/v1",
        "resources": [
            {
                "name": "ingresses",
                "singularName": "ingress",
                "namespaced": True,
                "kind": "Ingress",
                "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
                "shortNames": ["ing"],
            }
        ],
    },
}


def merge_patch(target: t.Any, patch: t.Any) -> t.Any:
    """RFC 7386 MergePatch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def status(code: int, reason: str, message: str, details: dict[str, t.Any] | None = None) -> dict[str, t.Any]:
    body: dict[str, t.Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details is not None:
        body["details"] = details
    return body


@dataclass
class Identity:
    user: str
    verbs: frozenset[str] = ALL_VERBS


@dataclass
class Recorded:
    method: str
    path: str
    query: str
    content_type: str | None
    body: t.Any
    status: int


@dataclass
class KubeState:
    tokens: dict[str, Identity] = field(default_factory=dict)
    namespaces: set[str] = field(default_factory=lambda: {"default", "kube-system"})
    objects: dict[tuple[str, str], dict[str, t.Any]] = field(default_factory=dict)
    revision: int = 1000
    requests: list[Recorded] = field(default_factory=list)
    on_patch: t.Callable[[KubeState, str, str], None] | None = None
    mutate: t.Callable[[dict[str, t.Any]], None] | None = None
    after_patch: t.Callable[[KubeState, str, str], None] | None = None
    lock: threading.RLock = field(default_factory=threading.RLock)

    def next_revision(self) -> str:
        self.revision += 1
        return str(self.revision)

    def create(self, namespace: str, obj: dict[str, t.Any]) -> dict[str, t.Any]:
        with self.lock:
            stored = copy.deepcopy(obj)
            meta = stored.setdefault("metadata", {})
            meta.update(
                namespace=namespace,
                uid=str(uuid.uuid4()),
                resourceVersion=self.next_revision(),
                generation=1,
                creationTimestamp=datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            )
            if not meta.get("annotations"):
                meta.pop("annotations", None)
            stored.setdefault("status", {"loadBalancer": {}})
            self.objects[(namespace, meta["name"])] = stored
            return copy.deepcopy(stored)

    def annotate(self, namespace: str, name: str, annotations: dict[str, str | None]) -> None:
        """A change by someone else (kubectl annotate --overwrite): new resourceVersion."""
        with self.lock:
            obj = self.objects[(namespace, name)]
            meta = obj["metadata"]
            meta["annotations"] = merge_patch(meta.get("annotations") or {}, annotations)
            if not meta["annotations"]:
                del meta["annotations"]
            meta["resourceVersion"] = self.next_revision()

    def count(self, method: str) -> int:
        return sum(1 for r in self.requests if r.method == method)


class Handler(BaseHTTPRequestHandler):
    server: StandinServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: t.Any) -> None:
        pass

    # ------------------------------------------------------------------ plumbing

    def _send(self, code: int, body: t.Any, content_type: str = "application/json") -> None:
        raw = (json.dumps(body) if content_type == "application/json" else str(body)).encode()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)
        self._status = code

    def _handle(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        self._status = 0
        try:
            body: t.Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        state = self.server.state
        with state.lock:
            try:
                self._route(method, body)
            finally:
                parts = urlsplit(self.path)
                state.requests.append(
                    Recorded(method, parts.path, parts.query, self.headers.get("Content-Type"), body, self._status)
                )

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    # ------------------------------------------------------------------ API

    def _identity(self) -> Identity | None:
        header = self.headers.get("Authorization") or ""
        if not header.startswith("Bearer "):
            return None
        return self.server.state.tokens.get(header[len("Bearer ") :])

    def _route(self, method: str, body: t.Any) -> None:
        state = self.server.state
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        identity = self._identity()
        if identity is None:
            self._send(401, status(401, "Unauthorized", "Unauthorized"))
            return
        if parts.path in DISCOVERY and method == "GET":
            self._send(200, DISCOVERY[parts.path])
            return
        if parts.path.startswith("/api/v1/namespaces/") and method == "GET":
            self._namespace(parts.path.rsplit("/", 1)[-1])
            return
        if not parts.path.startswith(PREFIX):
            self._send(404, "404 page not found\n", "text/plain; charset=utf-8")
            return
        segments = parts.path[len(PREFIX) :].split("/")
        if len(segments) not in (2, 3) or segments[1] != "ingresses" or not all(segments):
            self._send(404, status(404, "NotFound", "the server could not find the requested resource"))
            return
        namespace, name = segments[0], (segments[2] if len(segments) == 3 else None)
        verb = {"GET": "get" if name else "list", "POST": "create", "PATCH": "patch"}[method]
        if (name is None) != (verb in ("list", "create")):
            self._send(
                405, status(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
            )
            return
        if verb not in identity.verbs:
            what = f'ingresses.{GROUP} "{name}"' if name else f"ingresses.{GROUP}"
            message = (
                f'{what} is forbidden: User "{identity.user}" cannot {verb} resource "ingresses" in API group '
                f'"{GROUP}" in the namespace "{namespace}"'
            )
            self._send(
                403, status(403, "Forbidden", message, {"name": name or "", "group": GROUP, "kind": "ingresses"})
            )
            return
        dry_run = query.get("dryRun") == ["All"]
        if verb == "list":
            items = [copy.deepcopy(obj) for key, obj in sorted(state.objects.items()) if key[0] == namespace]
            self._send(
                200,
                {
                    "kind": "IngressList",
                    "apiVersion": f"{GROUP}/v1",
                    "metadata": {"resourceVersion": str(state.revision)},
                    "items": items,
                },
            )
            return
        if verb == "create":
            self._create(namespace, body, dry_run)
            return
        key = (namespace, t.cast(str, name))
        if key not in state.objects:
            message = f'ingresses.{GROUP} "{name}" not found'
            self._send(404, status(404, "NotFound", message, {"name": name, "group": GROUP, "kind": "ingresses"}))
            return
        if verb == "get":
            self._send(200, copy.deepcopy(state.objects[key]))
            return
        self._patch(key, body, dry_run)

    def _namespace(self, name: str) -> None:
        """GET /api/v1/namespaces/NAME (kubectl asks after a 404, to say which of the two is missing)."""
        if name in self.server.state.namespaces:
            self._send(
                200,
                {"kind": "Namespace", "apiVersion": "v1", "metadata": {"name": name}, "status": {"phase": "Active"}},
            )
        else:
            self._send(
                404, status(404, "NotFound", f'namespaces "{name}" not found', {"name": name, "kind": "namespaces"})
            )

    def _create(self, namespace: str, body: t.Any, dry_run: bool) -> None:
        state = self.server.state
        if namespace not in state.namespaces:
            details = {"name": namespace, "kind": "namespaces"}
            self._send(404, status(404, "NotFound", f'namespaces "{namespace}" not found', details))
            return
        name = (body or {}).get("metadata", {}).get("name")
        if (namespace, name) in state.objects:
            message = f'ingresses.{GROUP} "{name}" already exists'
            details = {"name": name, "group": GROUP, "kind": "ingresses"}
            self._send(409, status(409, "AlreadyExists", message, details))
            return
        obj = copy.deepcopy(body) if dry_run else state.create(namespace, body)
        self._send(201, obj)

    def _patch(self, key: tuple[str, str], body: t.Any, dry_run: bool) -> None:
        state = self.server.state
        namespace, name = key
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        if content_type not in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
            message = (
                "the body of the request was in an unknown format - accepted media types include: "
                "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
            )
            self._send(415, status(415, "UnsupportedMediaType", message))
            return
        if not isinstance(body, dict):
            self._send(400, status(400, "BadRequest", "error decoding patch: not a JSON object"))
            return
        if state.on_patch is not None:
            hook, state.on_patch = state.on_patch, None  # once: the concurrent writer wins one race
            hook(state, namespace, name)
        current = state.objects[key]
        wanted_rv = (body.get("metadata") or {}).get("resourceVersion")
        if wanted_rv is not None and wanted_rv != current["metadata"]["resourceVersion"]:
            message = (
                f'Operation cannot be fulfilled on ingresses.{GROUP} "{name}": the object has been modified; '
                "please apply your changes to the latest version and try again"
            )
            self._send(409, status(409, "Conflict", message, {"name": name, "group": GROUP, "kind": "ingresses"}))
            return
        patched = merge_patch(current, body)
        meta = patched.setdefault("metadata", {})
        annotations = meta.get("annotations") or {}
        bad = [k for k, v in annotations.items() if not isinstance(v, str)]
        if bad:
            message = (
                f"json: cannot unmarshal {type(annotations[bad[0]]).__name__} into Go struct field "
                "ObjectMeta.metadata.annotations of type string"
            )
            self._send(400, status(400, "BadRequest", message))
            return
        if not annotations:
            meta.pop("annotations", None)
        meta["resourceVersion"] = current["metadata"]["resourceVersion"]
        if state.mutate is not None:
            state.mutate(patched)
        if patched != current and not dry_run:
            meta["resourceVersion"] = state.next_revision()
            if patched.get("spec") != current.get("spec"):
                meta["generation"] = int(current["metadata"].get("generation", 1)) + 1
            state.objects[key] = patched
        self._send(200, copy.deepcopy(patched))
        if state.after_patch is not None:
            # still under the state lock: the client's next request sees what this hook did
            hook, state.after_patch = state.after_patch, None
            hook(state, namespace, name)


class StandinServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: KubeState, context: ssl.SSLContext | None) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.state = state
        if context is not None:
            self.socket = context.wrap_socket(self.socket, server_side=True)


def make_ca_and_server_cert(directory: Path) -> tuple[Path, Path, Path]:
    """A private CA and a server certificate for 127.0.0.1, as PEM files (ca, cert, key)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubernetes stand-in CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = (directory / "ca.crt", directory / "apiserver.crt", directory / "apiserver.key")
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return paths


class KubeStandin(Serving):
    """A running stand-in over HTTPS on 127.0.0.1 (random port)."""

    def __init__(self, directory: Path) -> None:
        self.ca_path, cert, key = make_ca_and_server_cert(directory)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.state = KubeState()
        super().__init__(StandinServer(self.state, context), "https")
