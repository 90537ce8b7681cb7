#!/usr/bin/python
# Copyright (c) ablage.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: maintenance_toggle
short_description: Switch the maintenance mode of Ablage-System on or off, idempotently, and prove it took effect
version_added: 0.1.0
description:
  - Two methods, as in step 1 of the deployment checklist (Maintenance Mode aktivieren). O(method=api) switches
    the backend's maintenance flag through its admin API. O(method=ingress) sets or removes an annotation on the
    Kubernetes ingress in front of the backend (by default C(nginx.ingress.kubernetes.io/custom-http-errors=503),
    the checklist's C(kubectl annotate ingress ablage-ingress ...)).
  - >-
    B(method=api): reads the maintenance flag through the admin API (C(GET /api/v1/admin/maintenance) answering
    C({"enabled": true|false})), and only when it differs from O(state) calls C(POST .../enable) or
    C(POST .../disable). A repeated run reports no change.
  - Then verifies the effect as a non-admin client would see it. With O(state=enabled), a request to
    O(verify_path) (without a token, or with O(verify_token)) must answer HTTP 503; with O(state=disabled), it must
    answer anything but 503. The verification is retried until O(verify_timeout), since several backend replicas
    may take a moment to agree.
  - Implements steps 1 and 6 of the deployment checklist (maintenance on before the deploy, off after it).
  - >-
    B(method=ingress): reads the ingress O(ingress_name) in O(namespace) through the Kubernetes API
    (C(GET /apis/networking.k8s.io/v1/namespaces/NS/ingresses/NAME)). Only when an annotation of
    O(ingress_annotations) differs from what O(state) asks for, it sends one JSON merge patch
    (C(application/merge-patch+json)) that sets them (V(enabled)) or removes them (V(disabled)), carrying the
    C(resourceVersion) it read, so a concurrent change is detected (HTTP 409) and the read is repeated (three tries).
    Other annotations are never touched. Then it reads the ingress again to verify the result.
  - >-
    What the annotation does to traffic is up to the ingress controller (ingress-nginx serves its custom error
    page for the listed codes); with this method the module verifies the ingress object, not HTTP answers.
requirements:
  - PyYAML, only for O(method=ingress) with a kubeconfig (ansible-core brings it on the controller).
author:
  - ablage.ops maintainers (@ablage-system)
extends_documentation_fragment:
  - ablage.ops._attributes
  - ablage.ops._http
attributes:
  check_mode:
    support: full
    details:
      - Reads the current state and reports whether it would change it; sends no enable or disable request.
      - O(method=ingress) sends the patch as a server-side dry run (C(dryRun=All)), so RBAC and admission are
        checked while nothing is stored.
      - The effect is verified in check mode only when nothing would change.
  diff_mode:
    support: full
    details:
      - 'O(method=api): the diff is C({"enabled": before}) against C({"enabled": after}).'
      - 'O(method=ingress): the diff is C({"annotations": ...}), all annotations of the ingress before and after.'
  idempotent:
    support: full
options:
  state:
    description:
      - V(enabled) puts the system into maintenance mode, V(disabled) takes it out.
    type: str
    required: true
    choices: [enabled, disabled]
  method:
    description:
      - V(api) switches the backend's flag through its admin API (needs O(api_url) and O(admin_token)).
      - V(ingress) sets or removes O(ingress_annotations) on a Kubernetes ingress (the O(kubeconfig), O(kube_api_url)
        and related options, O(namespace), O(ingress_name)).
    type: str
    default: api
    choices: [api, ingress]
  api_url:
    description:
      - Base URL of the backend, for example V(http://127.0.0.1:8000). The paths below are appended to it.
      - Required with O(method=api).
    type: str
  admin_token:
    description:
      - Bearer token of an admin user (from C(POST /api/v1/auth/login)). Sent to the three admin paths only.
      - Required with O(method=api).
    type: str
  status_path:
    description:
      - 'Path that answers C(GET) with C({"enabled": true|false}).'
    type: str
    default: /api/v1/admin/maintenance
  enable_path:
    description:
      - Path that a C(POST) switches maintenance on with.
    type: str
    default: /api/v1/admin/maintenance/enable
  disable_path:
    description:
      - Path that a C(POST) switches maintenance off with.
    type: str
    default: /api/v1/admin/maintenance/disable
  reason:
    description:
      - >-
        Why maintenance is switched on, sent as C({"reason": ...}) in the body of the enable request, so the
        backend can show and log it (for example the release being deployed). Not sent when unset.
    type: str
  verify:
    description:
      - Check the effect after switching (or when nothing had to change).
      - O(method=api) sends a non-admin request to O(verify_path); O(method=ingress) reads the ingress again and
        compares its annotations.
    type: bool
    default: true
  verify_path:
    description:
      - Non-admin API path that maintenance mode blocks with HTTP 503.
    type: str
    default: /api/v1/documents/
  verify_token:
    description:
      - Bearer token of a normal user for the verification request. Without it the request is anonymous, which
        outside maintenance answers 401; that counts as "not 503", so it is enough to verify either state.
    type: str
  verify_timeout:
    description:
      - Seconds to keep retrying the verification until the expected answer comes.
    type: float
    default: 30.0
  verify_delay:
    description:
      - Seconds between two verification requests. Short, because inside a maintenance window every wait is outage.
    type: float
    default: 0.25
  kubeconfig:
    description:
      - O(method=ingress). Path of a kubeconfig file. Without it, C($KUBECONFIG) (a list of files, merged as kubectl
        does) or C(~/.kube/config) is used when present, and otherwise the pod's service account (in-cluster,
        C($KUBERNETES_SERVICE_HOST) and C(/var/run/secrets/kubernetes.io/serviceaccount)).
      - Users with a token, a token file or a client certificate work; C(exec) and C(auth-provider) plugins are not
        run (pass O(kube_token) instead).
      - O(kube_token), O(ca_path), O(client_cert), O(client_key) and O(validate_certs=false) override the
        kubeconfig's or the pod's settings.
    type: path
  kube_context:
    description:
      - O(method=ingress). Context of the kubeconfig to use instead of its C(current-context).
    type: str
  kube_api_url:
    description:
      - O(method=ingress). URL of the Kubernetes API server, for example V(https://10.0.0.1:6443). When set, no
        kubeconfig is read; authenticate with O(kube_token) (or O(client_cert)) and trust the server with O(ca_path).
    type: str
  kube_token:
    description:
      - O(method=ingress). Bearer token for the Kubernetes API, for example of a service account bound to a Role
        with the verbs C(get) and C(patch) (and optionally C(list)) on C(ingresses) of API group
        C(networking.k8s.io).
    type: str
  namespace:
    description:
      - O(method=ingress). Namespace of the ingress. Default the kubeconfig context's namespace, in a pod the
        service account's, else V(default).
    type: str
  ingress_name:
    description:
      - O(method=ingress). Name of the ingress.
    type: str
    default: ablage-ingress
  ingress_annotations:
    description:
      - O(method=ingress). The annotations that mean "maintenance on", name to value (values are strings).
        V(enabled) sets each to its value; V(disabled) removes each of them, whatever its value.
    type: dict
    default:
      nginx.ingress.kubernetes.io/custom-http-errors: "503"
notes:
  - The admin token is never logged; the verification token and O(kube_token) neither.
  - With O(method=ingress) the TLS options (O(validate_certs), O(ca_path), O(client_cert), O(client_key), O(timeout))
    apply to the Kubernetes API server.
seealso:
  - module: ablage.ops.health_probe
"""

EXAMPLES = r"""
- name: "Checklist 1. Maintenance Mode aktivieren (kubectl annotate ingress ablage-ingress ...)"
  ablage.ops.maintenance_toggle:
    state: enabled
    method: ingress
    kubeconfig: /etc/ablage/kubeconfig
    namespace: ablage
  delegate_to: localhost

- name: Maintenance off on the ingress, with a service account token and the cluster CA
  ablage.ops.maintenance_toggle:
    state: disabled
    method: ingress
    kube_api_url: https://k8s-api.example.com:6443
    kube_token: "{{ vault_ablage_kube_token }}"
    ca_path: /etc/ablage/k8s-ca.pem
    namespace: ablage
    ingress_name: ablage-ingress
    ingress_annotations:
      nginx.ingress.kubernetes.io/custom-http-errors: "503"
  delegate_to: localhost

- name: "Checklist 1. Maintenance Mode aktivieren"
  ablage.ops.maintenance_toggle:
    state: enabled
    api_url: http://127.0.0.1:8000
    admin_token: "{{ __deploy_admin_token }}"
    reason: "deploy of {{ ablage_version }}"
  register: __deploy_maintenance

- name: "Checklist 6. Maintenance Mode deaktivieren (verified with a user token)"
  ablage.ops.maintenance_toggle:
    state: disabled
    api_url: https://ablage.example.com
    admin_token: "{{ __deploy_admin_token }}"
    verify_token: "{{ __deploy_user_token }}"
    ca_path: /etc/ssl/certs/ablage-ca.pem

- name: Only report whether maintenance is on (check mode, with diff)
  ablage.ops.maintenance_toggle:
    state: disabled
    api_url: http://127.0.0.1:8000
    admin_token: "{{ admin_token }}"
  check_mode: true
  diff: true
"""

RETURN = r"""
enabled_before:
  description:
    - Whether maintenance was on before the module ran (as the API reported it).
    - O(method=ingress) - whether every annotation of O(ingress_annotations) carried its value.
  returned: always
  type: bool
  sample: false
enabled_after:
  description:
    - Whether maintenance is on after the module ran, read back from the API or the ingress.
    - In check mode, the state it would have.
  returned: always
  type: bool
  sample: true
ingress:
  description: The ingress and the annotations before and after (O(method=ingress)).
  returned: when O(method=ingress) and the ingress was read
  type: dict
  contains:
    name:
      description: Name of the ingress.
      type: str
      sample: ablage-ingress
    namespace:
      description: Its namespace.
      type: str
      sample: ablage
    api_url:
      description: The Kubernetes API server.
      type: str
      sample: https://10.0.0.1:6443
    connection:
      description: Where the connection settings came from (parameters, kubeconfig and context, in-cluster).
      type: str
      sample: kubeconfig /etc/ablage/kubeconfig, context prod
    annotations_before:
      description: All annotations of the ingress as read first.
      type: dict
      sample: {}
    annotations_after:
      description: All annotations after the patch as the API server returned them (in check mode, as they would be).
      type: dict
      sample: {"nginx.ingress.kubernetes.io/custom-http-errors": "503"}
    resource_version_before:
      description: C(metadata.resourceVersion) as read first.
      type: str
      sample: "4711"
    resource_version_after:
      description: C(metadata.resourceVersion) after the patch (unchanged when nothing was patched).
      type: str
      sample: "4712"
    patch_attempts:
      description:
        - Merge patches sent (more than one after a 409 conflict with a concurrent change).
        - In check mode they are server-side dry runs (C(dryRun=All)), which check RBAC and admission but store nothing.
      type: int
      sample: 1
verification:
  description: Evidence that the state took effect (for non-admin clients, or on the ingress object).
  returned: always
  type: dict
  contains:
    performed:
      description: Whether the verification request was sent (not with O(verify=false), nor in check mode with a change).
      type: bool
      sample: true
    annotations:
      description: O(method=ingress) - the managed annotations as read back (absent ones are missing).
      type: dict
      sample: {"nginx.ingress.kubernetes.io/custom-http-errors": "503"}
    resource_version:
      description: O(method=ingress) - C(metadata.resourceVersion) of the ingress read back.
      type: str
      sample: "4712"
    url:
      description: The URL requested (the ingress's URL with O(method=ingress)).
      type: str
      sample: http://127.0.0.1:8000/api/v1/documents/
    status:
      description: HTTP status of the last verification request; V(null) when none answered.
      type: int
      sample: 503
    expected:
      description: What counts as success, V(503) or V(not 503) (O(method=api)).
      type: str
      sample: "503"
    ok:
      description: Whether the last answer was the expected one.
      type: bool
      sample: true
    attempts:
      description: Requests sent.
      type: int
      sample: 1
    latency_ms:
      description: Latency of the last request in milliseconds.
      type: float
      sample: 3.1
"""

import typing as t

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ablage.ops.plugins.module_utils._http import (
    HttpClient,
    HttpConnectionError,
    HttpResponse,
    admin_token_rejected,
    retry_until,
    tls_argument_spec,
)
from ansible_collections.ablage.ops.plugins.module_utils._kubernetes import (
    IngressClient,
    KubeApiError,
    KubeConfigError,
    annotations_of,
    annotations_patch,
    maintenance_on,
    resolve_connection,
    wanted_annotations,
)

DEFAULT_ANNOTATIONS = {"nginx.ingress.kubernetes.io/custom-http-errors": "503"}
PATCH_TRIES = 3


class MaintenanceManager:
    """Reads the maintenance flag, switches it when needed, and verifies the effect."""

    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.params = module.params
        self.check_mode = module.check_mode
        self.desired = self.params["state"] == "enabled"
        self.admin = HttpClient.from_params(
            self.params, base_url=self.params["api_url"], bearer_token=self.params["admin_token"]
        )
        self.probe = HttpClient.from_params(
            self.params, base_url=self.params["api_url"], bearer_token=self.params["verify_token"]
        )
        self.result: dict[str, t.Any] = {"changed": False}

    def fail(self, msg: str, **kwargs: t.Any) -> t.NoReturn:
        self.module.fail_json(msg=msg, **self.result, **kwargs)
        raise AssertionError("unreachable")  # pragma: no cover - fail_json exits

    def _call_admin(self, method: str, path: str, json_body: t.Any = None) -> HttpResponse:
        kwargs: dict[str, t.Any] = {} if json_body is None else {"json_body": json_body}
        try:
            response = self.admin.request(method, path, **kwargs)
        except HttpConnectionError as exc:
            self.fail(f"cannot reach the admin API: {exc}; {exc.hint} (api_url={self.params['api_url']!r})")
        rejected = admin_token_rejected(response)
        if rejected:
            self.fail(rejected, status=response.status)
        if response.status == 404:
            self.fail(
                f"{method} {response.url} answered 404: the maintenance API is not at this path; "
                "check api_url and status_path/enable_path/disable_path",
                status=response.status,
            )
        if not response.ok:
            self.fail(
                f"{method} {response.url} answered {response.status}: {response.text[:300]}",
                status=response.status,
            )
        return response

    def read_enabled(self) -> bool:
        response = self._call_admin("GET", self.params["status_path"])
        is_json, body = response.json_or_none()
        if not is_json or not isinstance(body, dict) or not isinstance(body.get("enabled"), bool):
            self.fail(
                f'GET {response.url} did not answer {{"enabled": true|false}} but {response.text[:300]!r}; '
                "check that status_path points at the maintenance status endpoint",
            )
        return bool(body["enabled"])

    def verify(self, enabled: bool) -> dict[str, t.Any]:
        url = self.probe.url_for(self.params["verify_path"])
        evidence: dict[str, t.Any] = {
            "performed": True,
            "url": url,
            "expected": "503" if enabled else "not 503",
            "status": None,
            "latency_ms": None,
        }
        request_timeout = self.params["timeout"]

        def attempt(number: int, seconds_left: float) -> tuple[str | None, bool]:
            try:
                response = self.probe.get(self.params["verify_path"], timeout=min(request_timeout, seconds_left))
            except HttpConnectionError as exc:
                evidence["status"] = None
                evidence["latency_ms"] = None
                return f"{exc.reason} ({exc.hint})", False
            evidence["status"] = response.status
            evidence["latency_ms"] = response.latency_ms
            return None, (response.status == 503) == enabled

        outcome = retry_until(attempt, 1_000_000, self.params["verify_delay"], self.params["verify_timeout"])
        evidence["attempts"] = outcome.attempts
        evidence["ok"] = outcome.ok
        if outcome.value is not None:
            evidence["error"] = outcome.value
        return evidence

    def run(self) -> None:
        before = self.read_enabled()
        self.result["enabled_before"] = before
        changed = before != self.desired
        self.result["changed"] = changed
        after = before
        if changed and not self.check_mode:
            if self.desired:
                reason = self.params["reason"]
                self._call_admin("POST", self.params["enable_path"], None if reason is None else {"reason": reason})
            else:
                self._call_admin("POST", self.params["disable_path"])
            after = self.read_enabled()
            if after != self.desired:
                self.result["enabled_after"] = after
                self.fail(
                    f"the API accepted the {'enable' if self.desired else 'disable'} request, but {self.params['status_path']} "
                    f"still reports enabled={after}; check the backend's logs",
                )
        elif changed:
            after = self.desired
        self.result["enabled_after"] = after
        if self.module._diff:
            self.result["diff"] = {"before": {"enabled": before}, "after": {"enabled": after}}

        if self.params["verify"] and not (self.check_mode and changed):
            evidence = self.verify(after)
            self.result["verification"] = evidence
            if not evidence["ok"]:
                seen = evidence.get("error") or f"HTTP {evidence['status']}"
                if after:
                    cause = "the maintenance middleware does not block non-admin requests"
                else:
                    cause = "non-admin requests are still blocked (another replica still in maintenance?)"
                self.fail(
                    f"maintenance is {'on' if after else 'off'} according to the API, but GET {evidence['url']} "
                    f"answered {seen} (expected {evidence['expected']}) after {evidence['attempts']} attempts: "
                    f"{cause}; check verify_path, or raise verify_timeout",
                )
        else:
            self.result["verification"] = {"performed": False}

        verb = "would be" if self.check_mode else "is"
        state = "on" if after else "off"
        self.result["msg"] = f"maintenance {verb} {state}" + (" (changed)" if changed else " (unchanged)")
        self.module.exit_json(**self.result)


class IngressMaintenanceManager:
    """Sets or removes the maintenance annotations of one ingress through the Kubernetes API."""

    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.params = module.params
        self.desired = self.params["state"] == "enabled"
        self.result: dict[str, t.Any] = {"changed": False}
        self.managed: dict[str, str] = {}
        for key, value in (self.params["ingress_annotations"] or {}).items():
            if isinstance(value, bool) or not isinstance(value, (str, int)):
                self.fail(f'ingress_annotations: the value of {key!r} must be a string; quote it, as in {key}: "503"')
            self.managed[key] = str(value)
        if not self.managed:
            self.fail("ingress_annotations is empty: name at least one annotation that means maintenance")

    def fail(self, msg: str, **kwargs: t.Any) -> t.NoReturn:
        self.module.fail_json(msg=msg, **self.result, **kwargs)
        raise AssertionError("unreachable")  # pragma: no cover - fail_json exits

    def run(self) -> None:
        try:
            conn = resolve_connection(self.params)
        except KubeConfigError as exc:
            self.fail(str(exc))
        try:
            self._run(IngressClient(conn, self.params["ingress_name"], timeout=self.params["timeout"]))
        except HttpConnectionError as exc:
            self.fail(f"cannot reach the Kubernetes API ({conn.source}): {exc}; {exc.hint}")
        except KubeApiError as exc:
            self.fail(str(exc), status=exc.status)
        finally:
            conn.close()

    def _run(self, client: IngressClient) -> None:
        info: dict[str, t.Any] = {
            "name": client.name,
            "namespace": client.namespace,
            "api_url": client.conn.api_url,
            "connection": client.conn.source,
            "patch_attempts": 0,
        }
        check_mode = self.module.check_mode
        for attempt in range(1, PATCH_TRIES + 1):
            current = client.get()
            before = annotations_of(current)
            after = wanted_annotations(before, self.managed, self.desired)
            patch = annotations_patch(before, after)
            resource_version = current["metadata"].get("resourceVersion")
            info.update(annotations_before=before, resource_version_before=resource_version)
            self.result.update(ingress=info, enabled_before=maintenance_on(before, self.managed), changed=bool(patch))
            if not patch:
                break
            info["patch_attempts"] = attempt
            # resourceVersion makes the patch conditional: a change since the read answers 409, and we read again.
            # In check mode the patch is a server-side dry run: RBAC and admission are checked, nothing is stored.
            body = {"metadata": {"resourceVersion": resource_version, "annotations": patch}}
            try:
                patched = client.merge_patch(body, dry_run=check_mode)
            except KubeApiError as exc:
                if exc.status == 409 and attempt < PATCH_TRIES:
                    continue
                raise
            after = annotations_of(patched)
            if not check_mode:
                current = patched
            break
        info.update(annotations_after=after, resource_version_after=current["metadata"].get("resourceVersion"))
        enabled_after = maintenance_on(after, self.managed)
        self.result["enabled_after"] = enabled_after
        if self.module._diff and self.result["changed"]:
            self.result["diff"] = {"before": {"annotations": before}, "after": {"annotations": after}}
        wanted = {key: value if self.desired else None for key, value in self.managed.items()}
        if any(after.get(key) != value for key, value in wanted.items()):
            self.fail(
                f"the API server {'would store' if check_mode else 'stored'} the annotations of ingress "
                f"{client.name!r} as {after} after the patch, not with {wanted}: a mutating admission webhook "
                "changes them; exempt the ingress from it or set the annotation where that webhook expects it"
            )

        if self.params["verify"] and not (check_mode and self.result["changed"]):
            read_back = client.get() if self.result["changed"] else current
            seen = annotations_of(read_back)
            ok = all(seen.get(key) == value for key, value in wanted.items())
            self.result["verification"] = {
                "performed": True,
                "url": client.http.url_for(client.path),
                "ok": ok,
                "annotations": {key: seen[key] for key in self.managed if key in seen},
                "resource_version": read_back["metadata"].get("resourceVersion"),
            }
            if not ok:
                self.fail(
                    f"ingress {client.name!r} was patched, but reading it back shows "
                    f"{self.result['verification']['annotations']} for the maintenance annotations, not {wanted}; "
                    "something (a GitOps controller such as Argo CD or Flux, an operator) reverts them; "
                    "pause its sync for the deploy or manage the annotation there"
                )
        else:
            self.result["verification"] = {"performed": False}

        verb = "would be" if self.module.check_mode else "is"
        state = "on" if enabled_after else "off"
        where = f"ingress {client.namespace}/{client.name}"
        changed = " (changed)" if self.result["changed"] else " (unchanged)"
        self.result["msg"] = f"maintenance {verb} {state} on {where}{changed}"
        self.module.exit_json(**self.result)


def main() -> None:
    argument_spec: dict[str, t.Any] = {
        "state": {"type": "str", "required": True, "choices": ["enabled", "disabled"]},
        "method": {"type": "str", "default": "api", "choices": ["api", "ingress"]},
        "api_url": {"type": "str"},
        "admin_token": {"type": "str", "no_log": True},
        "status_path": {"type": "str", "default": "/api/v1/admin/maintenance"},
        "enable_path": {"type": "str", "default": "/api/v1/admin/maintenance/enable"},
        "disable_path": {"type": "str", "default": "/api/v1/admin/maintenance/disable"},
        "reason": {"type": "str"},
        "verify": {"type": "bool", "default": True},
        "verify_path": {"type": "str", "default": "/api/v1/documents/"},
        "verify_token": {"type": "str", "no_log": True},
        "verify_timeout": {"type": "float", "default": 30.0},
        "verify_delay": {"type": "float", "default": 0.25},
        "kubeconfig": {"type": "path"},
        "kube_context": {"type": "str"},
        "kube_api_url": {"type": "str"},
        "kube_token": {"type": "str", "no_log": True},
        "namespace": {"type": "str"},
        "ingress_name": {"type": "str", "default": "ablage-ingress"},
        "ingress_annotations": {"type": "dict", "default": dict(DEFAULT_ANNOTATIONS)},
    }
    argument_spec.update(tls_argument_spec())
    module = AnsibleModule(
        argument_spec=argument_spec,
        required_by={"client_key": "client_cert"},
        required_if=[("method", "api", ("api_url", "admin_token"))],
        mutually_exclusive=[("kube_api_url", "kubeconfig"), ("kube_api_url", "kube_context")],
        supports_check_mode=True,
    )
    if module.params["method"] == "ingress":
        IngressMaintenanceManager(module).run()
    else:
        MaintenanceManager(module).run()


if __name__ == "__main__":
    main()
