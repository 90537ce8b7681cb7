"""ablage.ops.compose_release against real registries and a real compose project.

A second ``docker-registry`` runs for this module only: HTTPS with a self-signed certificate for
127.0.0.1 (trusted by the engine through /etc/docker/certs.d/<host:port>/ca.crt) and htpasswd
(bcrypt) authentication, storage in a temporary directory. ``docker login`` writes to a temporary
DOCKER_CONFIG (never ~/.docker); backend 1.1.0 of the local registry 127.0.0.1:5000 is pushed to it,
and an OCI image index that references that manifest (with a platform) is uploaded under another tag.

The compose project names its images in that registry with a version variable of another name
(APP_RELEASE), one image for two services, and a third service pinned by digest. The module runs
with DOCKER_CONFIG pointing at the logged-in config (it inherits the environment), in-process and
through a real ``ansible`` run.

The engine treats 127.0.0.0/8 as insecure (no certificate check, HTTP fallback), so the module adds
``--insecure`` there. The last test serves the same storage on the machine's own non-loopback
address too, where the engine and the CLI check the certificate: no ``--insecure``, and the
certificate in certs.d is what makes the image found.

Everything is removed afterwards: the registry processes, the certs.d entries, the pushed tag in
the engine and the temporary directories.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import ctypes.util
import dataclasses
import hashlib
import json
import os
import secrets
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import typing as t
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from ansible_collections.ablage.ops.plugins.modules import compose_release

pytestmark = pytest.mark.stack

SOURCE_IMAGE = os.environ.get("ABLAGE_RELEASE_SOURCE_IMAGE", "127.0.0.1:5000/ablage/backend:1.1.0")
REGISTRY_BIN = shutil.which("docker-registry") or "/usr/bin/docker-registry"
CERTS_D = Path("/etc/docker/certs.d")
USER = "ablage-release"
DOCKER_V2 = "application/vnd.docker.distribution.manifest.v2+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
INDEX_TAG = "1.1.0-multi"
SERVICES = ["api", "worker", "proxy"]


def _free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _bcrypt(password: str) -> str:
    """A bcrypt hash ($2b$), the only scheme distribution's htpasswd accepts, from libxcrypt."""
    name = ctypes.util.find_library("crypt")
    if not name:
        pytest.fail("no libcrypt on this machine to make a bcrypt htpasswd entry")
    lib = ctypes.CDLL(name)
    lib.crypt_gensalt.restype = ctypes.c_char_p
    lib.crypt_gensalt.argtypes = [ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p, ctypes.c_int]
    lib.crypt.restype = ctypes.c_char_p
    lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    setting = lib.crypt_gensalt(b"$2b$", 10, None, 0)
    hashed = lib.crypt(password.encode(), setting) if setting else None
    if not hashed or not hashed.startswith(b"$2b$"):
        pytest.fail("libcrypt cannot make bcrypt hashes ($2b$)")
    return str(hashed.decode())


def _docker(*args: str, config: Path | None = None, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if config is not None:
        env["DOCKER_CONFIG"] = str(config)
    return subprocess.run(
        ["docker", *args], input=stdin, capture_output=True, text=True, env=env, check=False, timeout=300
    )


def _check(proc: subprocess.CompletedProcess[str], what: str) -> str:
    if proc.returncode != 0:
        pytest.fail(f"{what} failed (rc {proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}")
    return str(proc.stdout)


@dataclasses.dataclass
class Registry:
    """The HTTPS registry with authentication, as the tests reach it."""

    root: Path
    host: str
    password: str
    cert: Path
    key: Path
    htpasswd: Path
    storage: Path
    config: Path  # DOCKER_CONFIG with a login for host
    anonymous: Path  # DOCKER_CONFIG without any login
    manifest_digest: str = ""
    config_digest: str = ""

    def url(self, path: str) -> str:
        return f"https://{self.host}{path}"

    def request(self, method: str, path: str, body: bytes | None = None, **headers: str) -> tuple[int, t.Any, bytes]:
        token = base64.b64encode(f"{USER}:{self.password}".encode()).decode()
        req = urllib.request.Request(self.url(path), data=body, method=method)  # noqa: S310 (https)
        req.add_header("Authorization", f"Basic {token}")
        for name, value in headers.items():
            req.add_header(name.replace("_", "-"), value)
        context = ssl.create_default_context(cafile=str(self.cert))
        try:
            with urllib.request.urlopen(req, context=context, timeout=30) as resp:  # noqa: S310
                return resp.status, resp.headers, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers, exc.read()


def _serve(registry: Registry, addr: str, log: Path) -> subprocess.Popen[bytes]:
    """One docker-registry process for ``addr`` over the registry's storage; ready when /v2/ asks for a login."""
    config = registry.root / f"config-{addr.replace(':', '_')}.yml"
    config.write_text(
        json.dumps(  # YAML is a superset of JSON
            {
                "version": 0.1,
                "log": {"level": "warn"},
                "storage": {"filesystem": {"rootdirectory": str(registry.storage)}},
                "http": {"addr": addr, "tls": {"certificate": str(registry.cert), "key": str(registry.key)}},
                "auth": {"htpasswd": {"realm": "ablage-test", "path": str(registry.htpasswd)}},
            }
        ),
        encoding="utf-8",
    )
    handle = log.open("ab")
    proc = subprocess.Popen([REGISTRY_BIN, "serve", str(config)], stdout=handle, stderr=subprocess.STDOUT)
    handle.close()
    context = ssl.create_default_context(cafile=str(registry.cert))
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"https://{addr}/v2/", context=context, timeout=2)
            status = 200
        except urllib.error.HTTPError as exc:
            status = exc.code
        except OSError:
            status = 0
        if status == 401:
            return proc
        if proc.poll() is not None or time.monotonic() > deadline:
            _stop(proc)
            pytest.fail(
                f"docker-registry on {addr} not ready (HTTP {status}):\n{log.read_text(errors='replace')[-2000:]}"
            )
        time.sleep(0.1)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@contextlib.contextmanager
def _trusted(host: str, cert: Path) -> t.Iterator[Path]:
    """The engine and the CLI trust ``cert`` for ``host`` (read per registry, no restart); removed afterwards."""
    directory = CERTS_D / host
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except PermissionError:
        pytest.fail(f"cannot write {directory}: the stack tests run as root (make test)")
    try:
        shutil.copyfile(cert, directory / "ca.crt")
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def registry() -> t.Iterator[Registry]:
    if not os.path.exists(REGISTRY_BIN):
        pytest.fail(f"{REGISTRY_BIN} is missing (Debian package docker-registry); install it with `make infra`")
    root = Path(tempfile.mkdtemp(prefix="ablage-registry-"))
    stack = contextlib.ExitStack()
    try:
        host = f"127.0.0.1:{_free_port()}"
        reg = Registry(
            root=root,
            host=host,
            password=secrets.token_urlsafe(12),
            cert=root / "cert.pem",
            key=root / "key.pem",
            htpasswd=root / "htpasswd",
            storage=root / "storage",
            config=root / "docker-config",
            anonymous=root / "docker-anonymous",
        )
        reg.config.mkdir(mode=0o700)
        reg.anonymous.mkdir(mode=0o700)
        # The non-loopback address of the last test is in the certificate too (see its docstring).
        sans = ",".join(f"IP:{ip}" for ip in ["127.0.0.1", *_global_ipv4()[:1]])
        openssl = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"]
        subprocess.run(
            [
                *openssl,
                "-subj",
                "/CN=127.0.0.1",
                "-addext",
                f"subjectAltName={sans}",
                "-keyout",
                str(reg.key),
                "-out",
                str(reg.cert),
            ],
            check=True,
            capture_output=True,
        )
        reg.htpasswd.write_text(f"{USER}:{_bcrypt(reg.password)}\n", encoding="utf-8")
        proc = _serve(reg, host, root / "registry.log")
        stack.callback(_stop, proc)
        stack.enter_context(_trusted(host, reg.cert))

        _check(_docker("login", "-u", USER, "--password-stdin", host, config=reg.config, stdin=reg.password), "login")
        if _docker("image", "inspect", SOURCE_IMAGE).returncode != 0:
            _check(_docker("pull", "-q", SOURCE_IMAGE), f"docker pull {SOURCE_IMAGE} (run `make stack`)")
        target = f"{host}/ablage/backend:1.1.0"
        _check(_docker("tag", SOURCE_IMAGE, target), "docker tag")
        stack.callback(_docker, "rmi", target)
        _check(_docker("push", "-q", target, config=reg.config), f"docker push {target}")

        # The pushed manifest, by digest, in an OCI image index under another tag.
        status, headers, body = reg.request("GET", "/v2/ablage/backend/manifests/1.1.0", Accept=DOCKER_V2)
        assert status == 200, body
        reg.manifest_digest = "sha256:" + hashlib.sha256(body).hexdigest()
        assert headers["Docker-Content-Digest"] == reg.manifest_digest
        reg.config_digest = json.loads(body)["config"]["digest"]
        index = {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {
                    "mediaType": DOCKER_V2,
                    "digest": reg.manifest_digest,
                    "size": len(body),
                    "platform": {"os": "linux", "architecture": "amd64"},
                }
            ],
        }
        status, _headers, answer = reg.request(
            "PUT",
            f"/v2/ablage/backend/manifests/{INDEX_TAG}",
            json.dumps(index).encode(),
            Content_Type=OCI_INDEX,
        )
        assert status == 201, answer
        status, headers, _body = reg.request("HEAD", f"/v2/ablage/backend/manifests/{INDEX_TAG}", Accept=OCI_INDEX)
        assert status == 200 and headers["Content-Type"] == OCI_INDEX
        yield reg
    finally:
        stack.close()
        shutil.rmtree(root, ignore_errors=True)


def _global_ipv4() -> list[str]:
    """This machine's non-loopback IPv4 addresses (``ip -4 addr show scope global``)."""
    ip = shutil.which("ip")
    if not ip:
        return []
    out = subprocess.run(
        [ip, "-4", "-o", "addr", "show", "scope", "global"], check=False, capture_output=True, text=True
    ).stdout
    return [field.split("/")[0] for line in out.splitlines() for field in line.split()[3:4]]


COMPOSE = """\
services:
  api:
    image: ${REGISTRY}/ablage/backend:${APP_RELEASE}
    network_mode: host
  worker:
    image: ${REGISTRY}/ablage/backend:${APP_RELEASE}
    command: ["worker"]
    network_mode: host
  proxy:
    image: ${REGISTRY}/ablage/backend@${PROXY_DIGEST}
    network_mode: host
"""


@pytest.fixture
def project(tmp_path: Path, registry: Registry) -> Path:
    directory = tmp_path / "ocrdesk"
    directory.mkdir()
    (directory / "compose.yml").write_text(COMPOSE, encoding="utf-8")
    env = directory / ".env"
    env.write_text(
        "# ocrdesk release\n"
        f"REGISTRY={registry.host}\n"
        f"PROXY_DIGEST={registry.manifest_digest}\n"
        "APP_RELEASE=1.0.0\n"
        "OTHER='kept as it is' # note\n",
        encoding="utf-8",
    )
    env.chmod(0o600)
    return directory


@pytest.fixture
def logged_in(monkeypatch: pytest.MonkeyPatch, registry: Registry) -> Registry:
    """The module (in this process) sees the DOCKER_CONFIG with the login."""
    monkeypatch.setenv("DOCKER_CONFIG", str(registry.config))
    return registry


def _args(project: Path, **extra: t.Any) -> dict[str, t.Any]:
    return {"project_dir": str(project), "variable": "APP_RELEASE", "services": SERVICES, **extra}


def test_images_per_service_and_their_registry(
    run_module: t.Callable[..., t.Any], project: Path, logged_in: Registry
) -> None:
    result = run_module(compose_release.main, _args(project, version="1.1.0", check_registry=True))
    assert result.rc == 0, result
    host, pinned = logged_in.host, f"{logged_in.host}/ablage/backend@{logged_in.manifest_digest}"
    assert result["current_version"] == "1.0.0" and result["version"] == "1.1.0"
    assert result["images"] == {
        "api": f"{host}/ablage/backend:1.1.0",
        "worker": f"{host}/ablage/backend:1.1.0",
        "proxy": pinned,
    }
    assert result["current_images"] == {
        "api": f"{host}/ablage/backend:1.0.0",
        "worker": f"{host}/ablage/backend:1.0.0",
        "proxy": pinned,
    }
    assert result["static_services"] == ["proxy"]
    # One check per image, not per service.
    assert sorted(result["registry"]) == sorted({f"{host}/ablage/backend:1.1.0", pinned})
    for image in result["registry"].values():
        assert image["exists"] is True, result["registry"]
        assert image["manifest"] == f"manifest {DOCKER_V2}, config {logged_in.config_digest}"
    assert result["changed"] is False


def test_oci_index_is_found_with_its_platform(
    run_module: t.Callable[..., t.Any], project: Path, logged_in: Registry
) -> None:
    result = run_module(compose_release.main, _args(project, version=INDEX_TAG, check_registry=True, services=["api"]))
    assert result.rc == 0, result
    found = result["registry"][f"{logged_in.host}/ablage/backend:{INDEX_TAG}"]
    assert found["exists"] is True, found
    # The CLI prints an OCI index as a manifest list; what matters is that it is an index, and for which platform.
    assert found["manifest"].startswith("index (") and found["manifest"].endswith(" with linux/amd64"), found


def test_a_missing_tag_is_reported_with_the_registrys_answer(
    run_module: t.Callable[..., t.Any], project: Path, logged_in: Registry
) -> None:
    result = run_module(compose_release.main, _args(project, version="9.9.9", check_registry=True))
    assert result.rc == 0, result
    missing = result["registry"][f"{logged_in.host}/ablage/backend:9.9.9"]
    assert missing["exists"] is False
    assert "manifest" in missing["error"] and "9.9.9" in missing["error"], missing
    pinned = f"{logged_in.host}/ablage/backend@{logged_in.manifest_digest}"
    assert result["registry"][pinned]["exists"] is True


def test_without_a_login_the_registry_refuses(
    run_module: t.Callable[..., t.Any], project: Path, registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(registry.anonymous))
    result = run_module(compose_release.main, _args(project, version="1.1.0", check_registry=True))
    assert result.rc == 0, result
    for image, answer in result["registry"].items():
        assert answer["exists"] is False, image
        assert "auth" in answer["error"].lower(), answer


def test_present_rewrites_only_the_version_line(
    run_module: t.Callable[..., t.Any], project: Path, logged_in: Registry
) -> None:
    env = project / ".env"
    before = env.read_text(encoding="utf-8")
    result = run_module(compose_release.main, _args(project, version="1.1.0", state="present"))
    assert result.rc == 0 and result["changed"] is True, result
    assert env.read_text(encoding="utf-8") == before.replace("APP_RELEASE=1.0.0\n", "APP_RELEASE=1.1.0\n")
    assert env.stat().st_mode & 0o7777 == 0o600
    assert not list(project.glob("*.ablage-tmp"))
    again = run_module(compose_release.main, _args(project, version="1.1.0", state="present"))
    assert again["changed"] is False and again["current_version"] == "1.1.0"
    assert again["images"] == again["current_images"]


def test_check_mode_with_diff_changes_nothing(
    run_module: t.Callable[..., t.Any], project: Path, logged_in: Registry
) -> None:
    env = project / ".env"
    before, stat = env.read_bytes(), env.stat()
    result = run_module(
        compose_release.main, _args(project, version="1.1.0", state="present"), check_mode=True, diff=True
    )
    assert result.rc == 0 and result["changed"] is True, result
    assert result["diff"]["before"] == "APP_RELEASE=1.0.0\n" and result["diff"]["after"] == "APP_RELEASE=1.1.0\n"
    assert env.read_bytes() == before
    after = env.stat()
    assert (after.st_mode, after.st_mtime_ns, after.st_ino) == (stat.st_mode, stat.st_mtime_ns, stat.st_ino)


def test_through_ansible_the_module_inherits_docker_config(
    ansible_cli: t.Callable[..., t.Any], project: Path, registry: Registry
) -> None:
    args = _args(project, version="1.1.0", state="present", check_registry=True)
    env_file = project / ".env"
    before = env_file.read_bytes()
    run = ansible_cli("compose_release", args, "--check", "--diff", env={"DOCKER_CONFIG": str(registry.config)})
    assert run.rc == 0, run.stdout + run.stderr
    assert run.result["changed"] is True
    assert all(answer["exists"] for answer in run.result["registry"].values()), run.result["registry"]
    assert env_file.read_bytes() == before
    anonymous = ansible_cli("compose_release", args, "--check", env={"DOCKER_CONFIG": str(registry.anonymous)})
    assert not any(answer["exists"] for answer in anonymous.result["registry"].values()), anonymous.result


def test_a_registry_the_engine_checks_needs_its_certificate_trusted(
    run_module: t.Callable[..., t.Any], project: Path, logged_in: Registry
) -> None:
    """On a non-loopback address the engine and the CLI verify TLS: no --insecure, certs.d is what counts."""
    addresses = _global_ipv4()
    if not addresses:
        pytest.skip("this machine has no non-loopback IPv4 address to serve a registry the engine verifies")
    host = f"{addresses[0]}:{_free_port(addresses[0])}"
    proc = _serve(logged_in, host, logged_in.root / "registry-secure.log")
    try:
        env = project / ".env"
        env.write_text(env.read_text(encoding="utf-8").replace(logged_in.host, host), encoding="utf-8")
        args = _args(project, version="1.1.0", check_registry=True, services=["api"])
        image = f"{host}/ablage/backend:1.1.0"
        untrusted = run_module(compose_release.main, args)
        assert untrusted["registry"][image]["exists"] is False
        assert "certificate" in untrusted["registry"][image]["error"], untrusted["registry"]
        with _trusted(host, logged_in.cert):
            _check(
                _docker(
                    "login", "-u", USER, "--password-stdin", host, config=logged_in.config, stdin=logged_in.password
                ),
                "login",
            )
            trusted = run_module(compose_release.main, args)
        found = trusted["registry"][image]
        assert found["exists"] is True, found
        assert found["manifest"] == f"manifest {DOCKER_V2}, config {logged_in.config_digest}", found
    finally:
        _stop(proc)
