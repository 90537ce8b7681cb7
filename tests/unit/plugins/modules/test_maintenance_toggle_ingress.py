"""maintenance_toggle method=ingress: annotation logic, connection resolution, error texts, argument checks.

The module against an API server is tested in tests/integration/test_maintenance_toggle_ingress.py.
"""

from __future__ import annotations

import base64
import json
import os
import stat
import typing as t
from pathlib import Path

import pytest

from ansible_collections.ablage.ops.plugins.module_utils._http import HttpResponse
from ansible_collections.ablage.ops.plugins.module_utils._kubernetes import (
    IngressClient,
    KubeConfigError,
    KubeConnection,
    annotations_patch,
    maintenance_on,
    resolve_connection,
    status_message,
    wanted_annotations,
)
from ansible_collections.ablage.ops.plugins.modules import maintenance_toggle

Run = t.Callable[..., t.Any]
KEY = "nginx.ingress.kubernetes.io/custom-http-errors"
MANAGED = {KEY: "503"}
NO_ENV: dict[str, str] = {}


# --------------------------------------------------------------------------- annotations


def test_enable_sets_only_the_managed_annotation() -> None:
    before = {"team": "ocr"}
    after = wanted_annotations(before, MANAGED, enabled=True)
    assert after == {"team": "ocr", KEY: "503"}
    assert annotations_patch(before, after) == {KEY: "503"}
    assert before == {"team": "ocr"}  # not modified in place


def test_enable_overwrites_another_value() -> None:
    before = {KEY: "404"}
    assert annotations_patch(before, wanted_annotations(before, MANAGED, True)) == {KEY: "503"}
    assert maintenance_on(before, MANAGED) is False


def test_disable_removes_whatever_value_with_null() -> None:
    before = {KEY: "404,503", "team": "ocr"}
    after = wanted_annotations(before, MANAGED, enabled=False)
    assert after == {"team": "ocr"}
    assert annotations_patch(before, after) == {KEY: None}


@pytest.mark.parametrize(
    ("before", "enabled"),
    [({KEY: "503", "x": "y"}, True), ({"x": "y"}, False), ({}, False)],
)
def test_nothing_to_patch_when_already_there(before: dict[str, str], enabled: bool) -> None:
    assert annotations_patch(before, wanted_annotations(before, MANAGED, enabled)) == {}
    assert maintenance_on(before, MANAGED) is enabled


def test_on_needs_every_managed_annotation() -> None:
    managed = {KEY: "503", "nginx.ingress.kubernetes.io/default-backend": "maintenance"}
    assert maintenance_on({KEY: "503"}, managed) is False
    assert maintenance_on({**managed, "other": "1"}, managed) is True


# --------------------------------------------------------------------------- connection


def write_kubeconfig(path: Path, **overrides: t.Any) -> Path:
    config: dict[str, t.Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c1", "cluster": {"server": "https://10.0.0.1:6443", "certificate-authority": "ca.crt"}}],
        "users": [{"name": "u1", "user": {"client-certificate": "certs/u1.crt", "client-key": "/abs/u1.key"}}],
        "contexts": [
            {"name": "one", "context": {"cluster": "c1", "user": "u1", "namespace": "ablage"}},
            {"name": "two", "context": {"cluster": "c1", "user": "u1"}},
        ],
        "current-context": "one",
    }
    config.update(overrides)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config))
    return path


def test_parameters_win_and_read_no_kubeconfig(tmp_path: Path) -> None:
    write_kubeconfig(tmp_path / "config")
    params = {"kube_api_url": "https://k8s:6443", "kube_token": "t0k", "ca_path": "/ca.pem", "kubeconfig": None}
    conn = resolve_connection(params, env={"KUBECONFIG": str(tmp_path / "config")})
    assert (conn.source, conn.api_url, conn.token, conn.ca_path, conn.namespace) == (
        "parameters (kube_api_url)",
        "https://k8s:6443",
        "t0k",
        "/ca.pem",
        "default",
    )


def test_kubeconfig_relative_paths_context_and_overrides(tmp_path: Path) -> None:
    path = write_kubeconfig(tmp_path / "kube" / "config")
    conn = resolve_connection({"kubeconfig": str(path)}, env=NO_ENV)
    assert conn.source == f"kubeconfig {path}, context one"
    assert conn.api_url == "https://10.0.0.1:6443"
    assert conn.ca_path == str(tmp_path / "kube" / "ca.crt")
    assert conn.client_cert == str(tmp_path / "kube" / "certs" / "u1.crt")
    assert conn.client_key == "/abs/u1.key"
    assert (conn.namespace, conn.token, conn.validate_certs) == ("ablage", None, True)

    other = resolve_connection(
        {
            "kubeconfig": str(path),
            "kube_context": "two",
            "kube_token": "tok",
            "namespace": "prod",
            "validate_certs": False,
        },
        env=NO_ENV,
    )
    assert other.source.endswith("context two")
    assert (other.namespace, other.token, other.validate_certs) == ("prod", "tok", False)


def test_kubeconfig_inline_data_lives_in_private_files_until_close(tmp_path: Path) -> None:
    ca = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    path = write_kubeconfig(
        tmp_path / "config",
        clusters=[
            {
                "name": "c1",
                "cluster": {"server": "https://k", "certificate-authority-data": base64.b64encode(ca).decode()},
            }
        ],
        users=[{"name": "u1", "user": {"token": "abc"}}],
    )
    conn = resolve_connection({"kubeconfig": str(path)}, env=NO_ENV)
    assert conn.ca_path is not None
    assert Path(conn.ca_path).read_bytes() == ca
    assert stat.S_IMODE(os.stat(conn.ca_path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(conn.ca_path)).st_mode) == 0o700
    assert conn.token == "abc"
    conn.close()
    assert not os.path.exists(conn.ca_path)


def test_kubeconfig_token_file_and_insecure(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("file-token\n")
    path = write_kubeconfig(
        tmp_path / "config",
        clusters=[{"name": "c1", "cluster": {"server": "https://k", "insecure-skip-tls-verify": True}}],
        users=[{"name": "u1", "user": {"tokenFile": "token"}}],
    )
    conn = resolve_connection({"kubeconfig": str(path)}, env=NO_ENV)
    assert (conn.token, conn.validate_certs, conn.ca_path) == ("file-token", False, None)


def test_kubeconfig_list_merges_first_wins(tmp_path: Path) -> None:
    first = write_kubeconfig(
        tmp_path / "a",
        clusters=[{"name": "c1", "cluster": {"server": "https://first"}}],
        users=[],
        contexts=[],
        **{"current-context": "two"},
    )
    second = write_kubeconfig(tmp_path / "b", clusters=[{"name": "c1", "cluster": {"server": "https://second"}}])
    env = {"KUBECONFIG": os.pathsep.join([str(first), str(tmp_path / "missing"), str(second)])}
    conn = resolve_connection({}, env=env)
    assert conn.api_url == "https://first"
    assert conn.source == f"kubeconfig {first}:{second}, context two"
    assert conn.namespace == "default"


def test_default_kubeconfig_in_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    write_kubeconfig(tmp_path / ".kube" / "config")
    assert resolve_connection({}, env=NO_ENV).source.startswith(f"kubeconfig {tmp_path}/.kube/config")


@pytest.mark.parametrize(
    ("overrides", "params", "message"),
    [
        ({"current-context": ""}, {}, "has no current-context; set kube_context"),
        ({}, {"kube_context": "nope"}, "context 'nope' is not in kubeconfig"),
        (
            {"users": [{"name": "u1", "user": {"exec": {"command": "aws", "args": ["eks", "get-token"]}}}]},
            {},
            "authenticates through an exec plugin, which this module does not run; pass kube_token",
        ),
        ({"clusters": [{"name": "c1", "cluster": {}}]}, {}, "names cluster 'c1', which has no server"),
    ],
)
def test_kubeconfig_problems_name_the_fix(
    tmp_path: Path, overrides: dict[str, t.Any], params: dict[str, t.Any], message: str
) -> None:
    path = write_kubeconfig(tmp_path / "config", **overrides)
    with pytest.raises(KubeConfigError) as exc:
        resolve_connection({"kubeconfig": str(path), **params}, env=NO_ENV)
    assert message in str(exc.value)


def test_unreadable_and_invalid_kubeconfig(tmp_path: Path) -> None:
    with pytest.raises(KubeConfigError, match="cannot read kubeconfig"):
        resolve_connection({"kubeconfig": str(tmp_path / "absent")}, env=NO_ENV)
    (tmp_path / "bad").write_text("clusters: [unclosed\n")
    with pytest.raises(KubeConfigError, match="is not valid YAML"):
        resolve_connection({"kubeconfig": str(tmp_path / "bad")}, env=NO_ENV)
    (tmp_path / "list").write_text("- a\n")
    with pytest.raises(KubeConfigError, match="is not a kubeconfig"):
        resolve_connection({"kubeconfig": str(tmp_path / "list")}, env=NO_ENV)


def test_in_cluster_service_account(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.kube/config
    (tmp_path / "token").write_text("sa-token\n")
    (tmp_path / "namespace").write_text("ablage")
    env = {"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"}
    conn = resolve_connection({}, env=env, serviceaccount_dir=str(tmp_path))
    assert (conn.source, conn.api_url, conn.token, conn.namespace) == (
        "in-cluster service account",
        "https://[fd00::1]:443",
        "sa-token",
        "ablage",
    )
    assert conn.ca_path == str(tmp_path / "ca.crt")


def test_no_connection_at_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(KubeConfigError, match="no Kubernetes connection: set kubeconfig"):
        resolve_connection({}, env=NO_ENV)


# --------------------------------------------------------------------------- error texts


def response(status: int, body: t.Any) -> HttpResponse:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return HttpResponse("GET", "https://k/apis/x", status, {}, raw, 1.0)


def kube_status(code: int, reason: str, message: str) -> dict[str, t.Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "code": code,
        "reason": reason,
        "message": message,
    }


def client() -> IngressClient:
    conn = KubeConnection("parameters (kube_api_url)", "https://k", namespace="ablage")
    return IngressClient(conn, "ablage-ingress")


def test_status_message_reads_status_objects_only() -> None:
    assert status_message(response(404, kube_status(404, "NotFound", "gone"))) == ("NotFound", "gone")
    assert status_message(response(404, b"404 page not found\n")) == (None, "404 page not found\n")


def test_401_names_the_token() -> None:
    error = client()._error("reading", response(401, kube_status(401, "Unauthorized", "Unauthorized")))
    assert error.status == 401
    assert "rejected the credentials (401 Unauthorized) from parameters (kube_api_url)" in str(error)
    assert "pass a valid kube_token" in str(error)


def test_403_names_role_and_binding() -> None:
    message = 'ingresses.networking.k8s.io "ablage-ingress" is forbidden: User "x" cannot patch resource "ingresses"'
    error = client()._error("patching", response(403, kube_status(403, "Forbidden", message)))
    assert str(error).startswith("patching of ingress 'ablage-ingress' in namespace 'ablage' is forbidden (403): ")
    assert message in str(error)
    assert "Role and RoleBinding" in str(error)


def test_404_without_status_is_not_an_api_server() -> None:
    error = client()._error("reading", response(404, b"404 page not found\n"))
    assert "404 without a Kubernetes Status" in str(error)
    assert "points at the Kubernetes API server" in str(error)


def test_other_errors_keep_reason_and_message() -> None:
    error = client()._error(
        "patching", response(422, kube_status(422, "Invalid", "metadata.annotations: Invalid value"))
    )
    assert str(error) == (
        "patching of ingress 'ablage-ingress' in namespace 'ablage' failed with HTTP 422 (Invalid): "
        "metadata.annotations: Invalid value"
    )


# --------------------------------------------------------------------------- arguments


def test_ingress_needs_no_api_url_but_a_connection(
    run_module: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    result = run_module(maintenance_toggle.main, {"state": "enabled", "method": "ingress"})
    assert result.rc == 1
    assert result["msg"].startswith("no Kubernetes connection: set kubeconfig")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"ingress_annotations": {KEY: True}}, f"the value of '{KEY}' must be a string; quote it"),
        ({"ingress_annotations": {}}, "ingress_annotations is empty"),
        (
            {"kubeconfig": "/k", "kube_api_url": "https://k"},
            "parameters are mutually exclusive: kube_api_url|kubeconfig",
        ),
    ],
)
def test_argument_errors(run_module: Run, extra: dict[str, t.Any], message: str) -> None:
    result = run_module(maintenance_toggle.main, {"state": "enabled", "method": "ingress", **extra})
    assert result.rc == 1
    assert message in result["msg"]


def test_kube_token_is_never_printed(run_module: Run) -> None:
    # an unreachable API server: the failure output must not carry the token
    token = "very-secret-kube-token-123"
    args = {
        "state": "enabled",
        "method": "ingress",
        "kube_api_url": "http://127.0.0.1:9",
        "kube_token": token,
        "timeout": 2.0,
    }
    result = run_module(maintenance_toggle.main, args)
    assert result.rc == 1
    assert "cannot reach the Kubernetes API (parameters (kube_api_url))" in result["msg"]
    assert token not in result["_raw"]
