# Copyright (c) ablage.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Kubernetes API access shared by ablage.ops modules: connection, ingress GET and merge-patch.

PRIVATE: this file is an implementation detail of the ablage.ops collection.
It is not a public API and may change or disappear in any release.

Plain REST over ``_http.HttpClient`` instead of the ``kubernetes`` Python client:
the modules need two calls (GET and a JSON merge patch of one object), which the
client would bring in with a dozen packages (google-auth, websocket-client,
oauthlib, ...) on every host that runs the module. What the client would add
beyond that, kubeconfig reading, is done here for the common cases (token,
token file, client certificates, CA file or data, contexts, a KUBECONFIG list);
exec and auth-provider plugins are refused with the way around them.
"""

from __future__ import annotations

import base64
import os
import shutil
import tempfile
import typing as t

from ansible_collections.ablage.ops.plugins.module_utils._http import HttpClient, HttpConnectionError, HttpResponse

try:
    import yaml  # type: ignore[import-untyped]

    HAS_YAML = True
    YAML_IMPORT_ERROR: str | None = None
except ImportError:  # pragma: no cover - PyYAML comes with ansible-core on the controller
    HAS_YAML = False
    YAML_IMPORT_ERROR = "PyYAML is not installed"

SERVICEACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
INGRESS_API = "/apis/networking.k8s.io/v1"
MERGE_PATCH = "application/merge-patch+json"


class KubeConfigError(Exception):
    """No usable connection could be built from the parameters, kubeconfig or pod."""


class KubeApiError(Exception):
    """The API server answered with an error; ``msg`` says what to do about it."""

    def __init__(self, msg: str, status: int, reason: str | None = None) -> None:
        super().__init__(msg)
        self.status = status
        self.reason = reason


class KubeConnection:
    """Where and how to reach the API server. Files it wrote for inline data go with close()."""

    def __init__(self, source: str, api_url: str, namespace: str = "default") -> None:
        self.source = source
        self.api_url = api_url
        self.namespace = namespace
        self.token: str | None = None
        self.validate_certs = True
        self.ca_path: str | None = None
        self.client_cert: str | None = None
        self.client_key: str | None = None
        self._tmpdir: str | None = None

    def write_private(self, name: str, data: bytes) -> str:
        """Store inline kubeconfig data (CA, client certificate or key) in a 0700 temporary directory."""
        if self._tmpdir is None:
            self._tmpdir = tempfile.mkdtemp(prefix="ablage-kube-")
        path = os.path.join(self._tmpdir, name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        return path

    def close(self) -> None:
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None


def _read_text(path: str, what: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip()
    except OSError as exc:
        raise KubeConfigError(f"cannot read {what} {path}: {exc.strerror}") from exc


def _named(config: dict[str, t.Any], section: str) -> dict[str, dict[str, t.Any]]:
    entries = config.get(section) or []
    if not isinstance(entries, list):
        return {}
    return {e["name"]: e for e in entries if isinstance(e, dict) and isinstance(e.get("name"), str)}


def load_kubeconfig(paths: list[str]) -> dict[str, t.Any]:
    """Merge kubeconfig files the way kubectl does for KUBECONFIG lists: the first file to define a name wins."""
    if not HAS_YAML:
        raise KubeConfigError("reading a kubeconfig needs PyYAML: " + str(YAML_IMPORT_ERROR))
    merged: dict[str, t.Any] = {"clusters": {}, "users": {}, "contexts": {}, "current-context": None}
    for path in paths:
        try:
            with open(path, encoding="utf-8") as handle:
                data = yaml.safe_load(handle)
        except OSError as exc:
            raise KubeConfigError(f"cannot read kubeconfig {path}: {exc.strerror}") from exc
        except yaml.YAMLError as exc:
            raise KubeConfigError(f"kubeconfig {path} is not valid YAML: {exc}") from exc
        if not isinstance(data, dict):
            raise KubeConfigError(f"kubeconfig {path} is not a kubeconfig (no mapping at its top)")
        base = os.path.dirname(os.path.abspath(path))
        for section, key in (("clusters", "cluster"), ("users", "user"), ("contexts", "context")):
            for name, entry in _named(data, section).items():
                body = entry.get(key) or {}
                if name not in merged[section] and isinstance(body, dict):
                    merged[section][name] = dict(body, _base=base)
        if not merged["current-context"] and data.get("current-context"):
            merged["current-context"] = data["current-context"]
    return merged


def _file_or_data(conn: KubeConnection, entry: dict[str, t.Any], key: str, name: str) -> str | None:
    """A kubeconfig path field (relative to the file) or its ``-data`` twin (base64)."""
    data = entry.get(f"{key}-data")
    if data:
        try:
            raw = base64.b64decode(data, validate=True)
        except (ValueError, TypeError) as exc:
            raise KubeConfigError(f"{key}-data in the kubeconfig is not base64") from exc
        return conn.write_private(name, raw)
    path = entry.get(key)
    if path:
        return str(path) if os.path.isabs(path) else os.path.join(entry["_base"], path)
    return None


def _from_kubeconfig(paths: list[str], context_name: str | None) -> KubeConnection:
    config = load_kubeconfig(paths)
    where = ":".join(paths)
    name = context_name or config["current-context"]
    if not name:
        raise KubeConfigError(f"kubeconfig {where} has no current-context; set kube_context")
    context = config["contexts"].get(name)
    if context is None:
        known = ", ".join(sorted(config["contexts"])) or "none"
        raise KubeConfigError(f"context {name!r} is not in kubeconfig {where} (contexts: {known}); check kube_context")
    cluster = config["clusters"].get(context.get("cluster"))
    if cluster is None or not cluster.get("server"):
        raise KubeConfigError(
            f"context {name!r} in {where} names cluster {context.get('cluster')!r}, which has no server"
        )
    user = config["users"].get(context.get("user")) or {}
    for plugin in ("exec", "auth-provider"):
        if user.get(plugin):
            raise KubeConfigError(
                f"the kubeconfig user {context.get('user')!r} of context {name!r} authenticates through an {plugin} "
                "plugin, which this module does not run; pass kube_token (for example from "
                "`kubectl create token <serviceaccount>`) or use a kubeconfig with a token or client certificate"
            )
    conn = KubeConnection(
        f"kubeconfig {where}, context {name}", str(cluster["server"]), context.get("namespace") or "default"
    )
    try:
        conn.validate_certs = not cluster.get("insecure-skip-tls-verify", False)
        conn.ca_path = _file_or_data(conn, cluster, "certificate-authority", "ca.crt")
        conn.client_cert = _file_or_data(conn, user, "client-certificate", "client.crt")
        conn.client_key = _file_or_data(conn, user, "client-key", "client.key")
        if user.get("token"):
            conn.token = str(user["token"])
        elif user.get("tokenFile"):
            token_file = user["tokenFile"]
            conn.token = _read_text(
                token_file if os.path.isabs(token_file) else os.path.join(user["_base"], token_file), "token file"
            )
    except KubeConfigError:
        conn.close()
        raise
    return conn


def resolve_connection(
    params: t.Mapping[str, t.Any],
    env: t.Mapping[str, str] | None = None,
    serviceaccount_dir: str = SERVICEACCOUNT_DIR,
) -> KubeConnection:
    """The connection the parameters ask for, in this order:

    1. ``kube_api_url`` set: that URL with ``kube_token`` and the TLS options; nothing else is read.
    2. a kubeconfig: ``kubeconfig``, else ``$KUBECONFIG``, else ``~/.kube/config`` when it exists.
    3. in a pod: ``$KUBERNETES_SERVICE_HOST``/``_PORT`` and the service account's token, CA and namespace.

    ``kube_token``, ``ca_path``, ``client_cert`` and ``client_key`` override what a kubeconfig or the pod
    provides, ``validate_certs=false`` switches verification off, and ``namespace`` wins over the context's.
    """
    env = os.environ if env is None else env
    conn: KubeConnection
    if params.get("kube_api_url"):
        conn = KubeConnection("parameters (kube_api_url)", params["kube_api_url"])
    else:
        paths: list[str] = []
        if params.get("kubeconfig"):
            paths = [params["kubeconfig"]]
        elif env.get("KUBECONFIG"):
            paths = [p for p in env["KUBECONFIG"].split(os.pathsep) if p and os.path.exists(p)]
        else:
            default = os.path.join(os.path.expanduser("~"), ".kube", "config")
            paths = [default] if os.path.exists(default) else []
        if paths:
            conn = _from_kubeconfig(paths, params.get("kube_context"))
        elif env.get("KUBERNETES_SERVICE_HOST"):
            host = env["KUBERNETES_SERVICE_HOST"]
            host = f"[{host}]" if ":" in host else host
            conn = KubeConnection(
                "in-cluster service account", f"https://{host}:{env.get('KUBERNETES_SERVICE_PORT', '443')}"
            )
            conn.token = _read_text(os.path.join(serviceaccount_dir, "token"), "service account token")
            conn.ca_path = os.path.join(serviceaccount_dir, "ca.crt")
            ns_file = os.path.join(serviceaccount_dir, "namespace")
            if os.path.exists(ns_file):
                conn.namespace = _read_text(ns_file, "service account namespace") or "default"
        else:
            raise KubeConfigError(
                "no Kubernetes connection: set kubeconfig (or KUBECONFIG, or create ~/.kube/config), or "
                "kube_api_url with kube_token, or run the module in a pod with a service account"
            )
    if params.get("kube_token"):
        conn.token = params["kube_token"]
    for key in ("ca_path", "client_cert", "client_key"):
        if params.get(key):
            setattr(conn, key, params[key])
    if params.get("validate_certs") is False:
        conn.validate_certs = False
    if params.get("namespace"):
        conn.namespace = params["namespace"]
    return conn


def status_message(response: HttpResponse) -> tuple[str | None, str]:
    """(reason, message) of a Kubernetes ``Status`` body, or (None, the first bytes of the body)."""
    is_json, body = response.json_or_none()
    if is_json and isinstance(body, dict) and body.get("kind") == "Status":
        return body.get("reason"), str(body.get("message") or "")
    return None, response.text[:200]


class IngressClient:
    """GET and merge-patch one networking.k8s.io/v1 Ingress; every error says what to fix."""

    def __init__(self, conn: KubeConnection, name: str, timeout: float = 10.0) -> None:
        self.conn = conn
        self.name = name
        self.namespace = conn.namespace
        self.http = HttpClient(
            base_url=conn.api_url,
            bearer_token=conn.token,
            validate_certs=conn.validate_certs,
            ca_path=conn.ca_path,
            client_cert=conn.client_cert,
            client_key=conn.client_key,
            timeout=timeout,
        )

    @property
    def collection_path(self) -> str:
        return f"{INGRESS_API}/namespaces/{self.namespace}/ingresses"

    @property
    def path(self) -> str:
        return f"{self.collection_path}/{self.name}"

    def _error(self, verb: str, response: HttpResponse) -> KubeApiError:
        reason, message = status_message(response)
        where = f"ingress {self.name!r} in namespace {self.namespace!r}"
        status = response.status
        if status == 401:
            text = (
                f"the Kubernetes API at {self.conn.api_url} rejected the credentials (401 Unauthorized) from "
                f"{self.conn.source}: the token is missing, wrong or expired; pass a valid kube_token or fix the "
                "kubeconfig user"
            )
        elif status == 403:
            text = (
                f"{verb} of {where} is forbidden (403): {message}; grant this identity the verbs get and patch "
                "on ingresses (apiGroups: [networking.k8s.io]) in that namespace with a Role and RoleBinding "
                f"(check with: kubectl auth can-i patch ingresses.networking.k8s.io -n {self.namespace})"
            )
        elif status == 404 and reason == "NotFound":
            text = f"{where} does not exist (404 NotFound); {self._not_found_hint()}"
        elif status == 404:
            text = (
                f"{verb} {response.url} answered 404 without a Kubernetes Status: {message!r}; check that "
                "kube_api_url (or the kubeconfig's server) points at the Kubernetes API server and that it serves "
                "networking.k8s.io/v1 (Kubernetes 1.19 or newer)"
            )
        elif status == 409:
            text = (
                f"{verb} of {where} conflicted with another change (409 Conflict): {message}; another client "
                "changed the ingress between each read and patch, run the task again"
            )
        else:
            text = f"{verb} of {where} failed with HTTP {status} ({reason or 'no Status'}): {message}"
        return KubeApiError(text, status, reason)

    def _not_found_hint(self) -> str:
        """Name the ingresses the namespace has, when the identity may list them."""
        try:
            response = self.http.get(self.collection_path)
        except HttpConnectionError:
            response = None
        if response is None or not response.ok:
            return "check ingress_name and namespace (kubectl get ingress -A lists them all)"
        is_json, body = response.json_or_none()
        items = body.get("items") if is_json and isinstance(body, dict) else None
        names = sorted(i["metadata"]["name"] for i in items or [] if isinstance(i, dict) and "metadata" in i)
        if names:
            return f"namespace {self.namespace!r} has the ingresses {', '.join(names)}; check ingress_name"
        return f"namespace {self.namespace!r} has no ingresses at all; check namespace (kubectl get ingress -A)"

    def _call(self, verb: str, method: str, query: str = "", **kwargs: t.Any) -> dict[str, t.Any]:
        response = self.http.request(method, self.path + query, **kwargs)
        if not response.ok:
            raise self._error(verb, response)
        is_json, body = response.json_or_none()
        if not is_json or not isinstance(body, dict) or body.get("kind") != "Ingress":
            raise KubeApiError(
                f"{method} {response.url} did not answer with an Ingress object but {response.text[:200]!r}; "
                "check that kube_api_url points at the Kubernetes API server",
                response.status,
            )
        return body

    def get(self) -> dict[str, t.Any]:
        return self._call("reading", "GET")

    def merge_patch(self, patch: dict[str, t.Any], dry_run: bool = False) -> dict[str, t.Any]:
        """JSON merge patch (RFC 7386); with dry_run the server validates and authorizes it, storing nothing."""
        query = "?dryRun=All" if dry_run else ""
        return self._call("patching", "PATCH", query, json_body=patch, headers={"Content-Type": MERGE_PATCH})


def annotations_of(obj: t.Mapping[str, t.Any]) -> dict[str, str]:
    metadata = obj.get("metadata") or {}
    return dict(metadata.get("annotations") or {})


def wanted_annotations(current: t.Mapping[str, str], managed: t.Mapping[str, str], enabled: bool) -> dict[str, str]:
    """All annotations as they should be: the managed ones set (enabled) or removed (disabled), the rest untouched."""
    after = dict(current)
    for key, value in managed.items():
        if enabled:
            after[key] = value
        else:
            after.pop(key, None)
    return after


def annotations_patch(before: t.Mapping[str, str], after: t.Mapping[str, str]) -> dict[str, str | None]:
    """JSON merge patch (RFC 7386) of the annotations map: changed keys with their value, removed keys as null."""
    patch: dict[str, str | None] = {k: v for k, v in after.items() if before.get(k) != v}
    patch.update({k: None for k in before if k not in after})
    return patch


def maintenance_on(annotations: t.Mapping[str, str], managed: t.Mapping[str, str]) -> bool:
    """Maintenance counts as on when every managed annotation carries its value."""
    return all(annotations.get(key) == value for key, value in managed.items())
