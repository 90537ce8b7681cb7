# Copyright (c) ablage.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""HTTP API client shared by ablage.ops modules.

PRIVATE: this file is an implementation detail of the ablage.ops collection.
It is not a public API and may change or disappear in any release.

Built on ``ansible.module_utils.urls.open_url`` instead of ``requests`` so the
modules need nothing on the managed host beyond Python and ansible-core, and so
TLS handling (``ca_path``, client certificates, proxies from the environment)
behaves exactly like ``ansible.builtin.uri``. The only sleep of the collection's
HTTP modules lives in ``retry_until``; callers never sleep on their own.
"""

from __future__ import annotations

import http.client
import json
import ssl
import time
import typing as t
import urllib.error
import urllib.parse

from ansible.module_utils.common.text.converters import to_text
from ansible.module_utils.urls import ConnectionError as AnsibleUrlsConnectionError
from ansible.module_utils.urls import Request, SSLValidationError, make_context

T = t.TypeVar("T")

_UNSET: t.Any = object()

USER_AGENT = "ablage.ops"

REDIRECT_CODES = (301, 302, 303, 307, 308)
MAX_REDIRECTS = 10  # urllib's own limit, which follow_redirects=safe used

# Shared argument_spec fragment for TLS and request timeout; documented in the
# ablage.ops.tls doc fragment. Copied (not shared by reference) by each module.
TLS_ARGUMENT_SPEC: dict[str, dict[str, t.Any]] = {
    "validate_certs": {"type": "bool", "default": True},
    "ca_path": {"type": "path"},
    "client_cert": {"type": "path"},
    "client_key": {"type": "path"},
    "timeout": {"type": "float", "default": 10.0},
}


def tls_argument_spec() -> dict[str, dict[str, t.Any]]:
    """Return a fresh copy of the TLS/timeout argument_spec entries."""
    return {name: dict(spec) for name, spec in TLS_ARGUMENT_SPEC.items()}


class HttpConnectionError(Exception):
    """The request got no HTTP response at all (refused, DNS, timeout, TLS)."""

    def __init__(self, method: str, url: str, reason: str, tls: bool = False) -> None:
        self.method = method
        self.url = url
        self.reason = reason
        self.tls = tls
        super().__init__(f"{method} {url} failed: {reason}")

    @property
    def hint(self) -> str:
        """What a person can do about it."""
        if self.tls:
            return (
                "TLS verification failed: set ca_path to the CA bundle that signed the server certificate "
                "(validate_certs=false only for throw-away test systems)"
            )
        return "check that the service is running and that the URL (host, port, scheme) is right"


class HttpResponse:
    """A complete HTTP response: status, headers, body and how long it took."""

    def __init__(
        self, method: str, url: str, status: int, headers: dict[str, str], body: bytes, latency_ms: float
    ) -> None:
        self.method = method
        self.url = url
        self.status = status
        self.headers = headers
        self.body = body
        self.latency_ms = latency_ms

    @property
    def text(self) -> str:
        return str(to_text(self.body, errors="surrogate_or_replace"))

    def json(self) -> t.Any:
        """Decoded JSON body; raises ValueError when the body is not JSON."""
        if not self.body:
            raise ValueError("empty body")
        return json.loads(self.text)

    def json_or_none(self) -> tuple[bool, t.Any]:
        """(True, value) when the body is JSON, else (False, None)."""
        try:
            return True, self.json()
        except ValueError:
            return False, None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def _is_tls_error(exc: BaseException) -> bool:
    reason = getattr(exc, "reason", None)
    return isinstance(exc, (ssl.SSLError, SSLValidationError)) or isinstance(reason, ssl.SSLError)


def origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) with the default port filled in: what a credential is bound to."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:  # malformed ("http://[::1/x"): an origin of its own, the request then fails
        return "", url, None
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port or {"http": 80, "https": 443}.get(scheme)


def join_url(base_url: str | None, path_or_url: str) -> str:
    """Absolute URLs pass through; relative paths are appended to base_url.

    Unlike urljoin, the base URL's own path is kept: ``http://h/app`` + ``/api`` is
    ``http://h/app/api``.
    """
    if "://" in path_or_url or not base_url:
        return path_or_url
    return base_url.rstrip("/") + "/" + path_or_url.lstrip("/")


def admin_token_rejected(response: HttpResponse) -> str | None:
    """The failure message when the API refused the admin token (401/403), naming the fix; None otherwise."""
    if response.status not in (401, 403):
        return None
    return (
        f"{response.method} {response.url} answered {response.status}: admin_token was rejected; pass the bearer "
        "token of an admin user (ablage_admin_token in the roles; POST /api/v1/auth/login with the admin credentials)"
    )


class HttpClient:
    """Small JSON-over-HTTP client: base URL, bearer token, TLS options, timeouts, latency."""

    def __init__(
        self,
        base_url: str | None = None,
        bearer_token: str | None = None,
        headers: dict[str, str] | None = None,
        validate_certs: bool = True,
        ca_path: str | None = None,
        client_cert: str | None = None,
        client_key: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.base_url = base_url
        self.bearer_token = bearer_token
        self.headers = dict(headers or {})
        self.validate_certs = validate_certs
        self.ca_path = ca_path
        self.client_cert = client_cert
        self.client_key = client_key
        self.timeout = timeout
        self._context: ssl.SSLContext | None = None

    def tls_context(self) -> ssl.SSLContext:
        """One TLS context per client: building it loads the CA bundle (tens of ms), which must
        neither repeat on every request nor count as the server's latency."""
        if self._context is None:
            self._context = make_context(
                cafile=self.ca_path,
                validate_certs=self.validate_certs,
                client_cert=self.client_cert,
                client_key=self.client_key,
            )
        return self._context

    @classmethod
    def from_params(
        cls,
        params: t.Mapping[str, t.Any],
        base_url: str | None = None,
        bearer_token: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> HttpClient:
        """Build a client from a module's params (the TLS_ARGUMENT_SPEC keys)."""
        return cls(
            base_url=base_url,
            bearer_token=bearer_token,
            headers=headers,
            validate_certs=params["validate_certs"],
            ca_path=params["ca_path"],
            client_cert=params["client_cert"],
            client_key=params["client_key"],
            timeout=params["timeout"],
        )

    def url_for(self, path_or_url: str) -> str:
        return join_url(self.base_url, path_or_url)

    def request(
        self,
        method: str,
        path_or_url: str,
        json_body: t.Any = _UNSET,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
        data: bytes | None = None,
    ) -> HttpResponse:
        """Send one request and read the whole response.

        ``data`` is a raw body (form, multipart) for callers that set its Content-Type in ``headers``;
        an ``Authorization`` in ``headers`` replaces the bearer token and, like it, stays with the origin.
        Any HTTP status is returned as a response; only "no response at all" raises HttpConnectionError.
        """
        url = self.url_for(path_or_url)
        method = method.upper()
        send_headers = {"Accept": "application/json"}
        send_headers.update(self.headers)
        if self.bearer_token:
            send_headers["Authorization"] = f"Bearer {self.bearer_token}"
        if headers:
            send_headers.update(headers)
        if json_body is not _UNSET:
            data = json.dumps(json_body).encode("utf-8")
            send_headers.setdefault("Content-Type", "application/json")
        elif data is None and method in ("POST", "PUT", "PATCH"):
            data = b""
        effective_timeout = self.timeout if timeout is None else timeout
        try:
            self.tls_context()
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError: unreadable CA file or client key
            raise HttpConnectionError(method, url, f"cannot set up TLS: {exc}", tls=True) from exc

        # Redirects are followed here, not by urllib: urllib would send Authorization to any host a
        # redirect names. Like follow_redirects=safe, only GET and HEAD follow; others get the 3xx back.
        own_origin = origin(url)
        current = url
        started = time.monotonic()
        for hop in range(MAX_REDIRECTS + 1):
            if origin(current) != own_origin:
                send_headers = {k: v for k, v in send_headers.items() if k.lower() != "authorization"}
            status, resp_headers, body = self._open_once(method, current, data, send_headers, effective_timeout)
            location = resp_headers.get("location")
            if status not in REDIRECT_CODES or not location or method not in ("GET", "HEAD") or hop == MAX_REDIRECTS:
                break
            try:
                current = urllib.parse.urljoin(current, location)
            except ValueError as exc:
                raise HttpConnectionError(method, current, f"invalid redirect to {location!r}: {exc}") from exc
        latency_ms = round((time.monotonic() - started) * 1000.0, 1)
        return HttpResponse(method, url, status, resp_headers, body, latency_ms)

    def _open_once(
        self, method: str, url: str, data: bytes | None, headers: dict[str, str], timeout: float
    ) -> tuple[int, dict[str, str], bytes]:
        """One request, no redirect followed: (status, headers, body); HttpConnectionError if no answer."""
        try:
            resp = Request().open(
                method,
                url,
                data=data,
                headers=headers,
                timeout=timeout,
                validate_certs=self.validate_certs,
                ca_path=self.ca_path,
                client_cert=self.client_cert,
                client_key=self.client_key,
                http_agent=USER_AGENT,
                follow_redirects="none",
                use_netrc=False,
                context=self.tls_context(),
            )
            try:
                body = resp.read()
            finally:
                resp.close()
            return int(resp.status), {k.lower(): v for k, v in resp.headers.items()}, body
        except urllib.error.HTTPError as exc:
            # A non-2xx status (a redirect too) is still a response: keep status, headers and body.
            try:
                body = exc.read() or b""
            except (OSError, http.client.HTTPException):
                body = b""
            return int(exc.code), {k.lower(): v for k, v in (exc.headers or {}).items()}, body
        except (urllib.error.URLError, OSError, http.client.HTTPException, AnsibleUrlsConnectionError) as exc:
            reason = getattr(exc, "reason", None) or exc
            if isinstance(exc, TimeoutError) or isinstance(reason, TimeoutError):
                text = f"timed out after {timeout:g} s"
            else:
                text = to_text(reason, errors="surrogate_or_replace") or type(exc).__name__
            raise HttpConnectionError(method, url, text, tls=_is_tls_error(exc)) from exc
        except ValueError as exc:
            # e.g. a malformed URL ("unknown url type")
            raise HttpConnectionError(method, url, f"invalid request: {exc}") from exc

    def get(self, path_or_url: str, **kwargs: t.Any) -> HttpResponse:
        return self.request("GET", path_or_url, **kwargs)

    def post(self, path_or_url: str, **kwargs: t.Any) -> HttpResponse:
        return self.request("POST", path_or_url, **kwargs)


class RetryOutcome(t.Generic[T]):
    """What retry_until ended with: the last value, whether it was good, and the effort."""

    def __init__(self, value: T, ok: bool, attempts: int, elapsed_s: float) -> None:
        self.value = value
        self.ok = ok
        self.attempts = attempts
        self.elapsed_s = elapsed_s


def retry_until(
    attempt: t.Callable[[int, float], tuple[T, bool]],
    attempts: int | None,
    delay: float,
    timeout: float,
    clock: t.Callable[[], float] = time.monotonic,
    sleep: t.Callable[[float], None] = time.sleep,
) -> RetryOutcome[T]:
    """Call attempt(number, seconds_left) until it reports success.

    Stops after ``attempts`` tries, or when the next try could not start before
    ``timeout`` seconds have passed. ``attempts=None`` sets no limit on the
    tries: then only the deadline ends them. ``attempt`` should cap its own
    request timeout at ``seconds_left`` so the deadline holds.
    """
    if attempts is not None:
        attempts = max(1, attempts)
    start = clock()
    deadline = start + max(0.0, timeout)
    number = 0
    while True:
        number += 1
        seconds_left = max(deadline - clock(), 0.001)
        value, ok = attempt(number, seconds_left)
        if ok or (attempts is not None and number >= attempts):
            break
        if clock() + delay >= deadline:
            break
        sleep(delay)
    return RetryOutcome(value, ok, number, round(clock() - start, 3))


def _short(value: t.Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def json_subset_mismatch(expected: t.Any, actual: t.Any, path: str = "$") -> str | None:
    """Explain the first place where ``expected`` is not contained in ``actual``.

    Dicts match when every expected key is present and its value matches
    recursively (extra keys are fine). Lists match when every expected item
    matches some item of the actual list (order and extra items do not matter).
    Scalars must be equal, and booleans are not numbers. Returns None on match.
    """
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return f"{path}: expected an object, got {_short(actual)}"
        for key, value in expected.items():
            if key not in actual:
                return f"{path}.{key}: missing (expected {_short(value)})"
            problem = json_subset_mismatch(value, actual[key], f"{path}.{key}")
            if problem:
                return problem
        return None
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return f"{path}: expected a list, got {_short(actual)}"
        for index, item in enumerate(expected):
            if not any(json_subset_mismatch(item, candidate) is None for candidate in actual):
                return f"{path}[{index}]: no item matches {_short(item)}"
        return None
    if isinstance(expected, bool) or isinstance(actual, bool):
        same = isinstance(expected, bool) and isinstance(actual, bool) and expected == actual
    else:
        same = bool(expected == actual)
    if not same:
        return f"{path}: expected {_short(expected)}, got {_short(actual)}"
    return None


def json_at(path: str, document: t.Any) -> tuple[bool, t.Any]:
    """The value at ``path`` of ``document``: (found, value).

    ``path`` is dotted: object keys, and list indexes as integers (``data.alerts``, ``items.0.state``);
    ``""`` or ``$`` is the document itself, and a leading ``$.`` is allowed.
    """
    value = document
    inner = path.strip().lstrip("$").lstrip(".")
    for part in inner.split(".") if inner else []:
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.lstrip("-").isdigit() and -len(value) <= int(part) < len(value):
            value = value[int(part)]
        else:
            return False, None
    return True, value


def json_forbidden_items(path: str, match: t.Any, document: t.Any) -> str | None:
    """Explain which items of the list at ``path`` of ``document`` ``match`` selects; None when none does.

    An item is selected when ``match`` is contained in it as in :func:`json_subset_mismatch`, so
    ``{}`` selects every item (the list must be empty). A path that does not lead to a list is a problem too.
    """
    inner = path.strip().lstrip("$").lstrip(".")
    shown = f"$.{inner}" if inner else "$"
    found, items = json_at(path, document)
    if not found:
        return f"{shown}: missing (expected a list)"
    if not isinstance(items, list):
        return f"{shown}: expected a list, got {_short(items)}"
    hits = [index for index, item in enumerate(items) if json_subset_mismatch(match, item) is None]
    if not hits:
        return None
    where = ", ".join(f"{shown}[{index}]" for index in hits[:5]) + (", ..." if len(hits) > 5 else "")
    return f"{len(hits)} forbidden item(s) matching {_short(match)} at {where}; first: {_short(items[hits[0]])}"
