"""FastAPI backend of the Ablage reference app (the API that ablage.ops deploys and verifies)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, FastAPI, File, HTTPException, Query, Request, UploadFile
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from app import gpu, health
from app.auth import Principal, UserStore, bearer_token
from app.backup import BackupManager
from app.config import Settings, load_settings
from app.metrics import LATENCY, MAINTENANCE_REJECTED, REGISTRY, REQUESTS, StateCollector
from app.release import Release, load_release
from app.services import MAINTENANCE_KEY, QUEUE_KEY, Services, make_services
from app.shape import export_json

log = logging.getLogger("ablage.backend")
API = "/api/v1"
MAINTENANCE_EXEMPT_PREFIXES = (f"{API}/health",)
MAINTENANCE_EXEMPT_PATHS = {"/metrics", f"{API}/auth/login"}
OCR_BACKENDS = {"auto", "cpu", "gpu"}
MAX_SIMULATE_SECONDS = 60.0


@dataclass
class AppState:
    settings: Settings
    release: Release
    services: Services
    users: UserStore
    backups: BackupManager


class _Runtime:
    """The running app's state, set by the lifespan (one app per process)."""

    state: AppState | None = None


def state() -> AppState:
    if _Runtime.state is None:
        raise HTTPException(status_code=503, detail="backend is starting")
    return _Runtime.state


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class _AccessLogFilter(logging.Filter):
    """Keep the container healthcheck (GET /api/v1/health, 200, every 2 s) out of the access log."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 5:
            return not (args[2] == f"{API}/health" and args[4] == 200)
        return True


def _configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("uvicorn.access").addFilter(_AccessLogFilter())


@asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
    _configure_logging()
    settings = load_settings()
    release = load_release()
    services = make_services(settings)
    users = UserStore(settings)
    backups = BackupManager(services)
    for attempt in range(20):
        try:
            await asyncio.to_thread(services.ensure_bucket)
            break
        except Exception as exc:  # object store still starting; the health check reports it if it stays down
            if attempt == 19:
                log.warning("bucket %s not ready: %s", settings.minio_bucket, exc)
            await asyncio.sleep(1)
    try:
        await asyncio.to_thread(backups.mark_interrupted)
    except Exception as exc:  # Redis down at startup: health reports it
        log.warning("could not check for interrupted backups: %s", exc)
    REGISTRY.register(StateCollector(services, release))
    _Runtime.state = AppState(settings, release, services, users, backups)
    log.info("Ablage backend %s started (alembic head %s)", release.version, release.head)
    try:
        yield
    finally:
        _Runtime.state = None
        services.engine.dispose()


# --------------------------------------------------------------------------- middleware

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def _maintenance_exempt(path: str) -> bool:
    return path in MAINTENANCE_EXEMPT_PATHS or path.startswith(MAINTENANCE_EXEMPT_PREFIXES)


def read_maintenance(services: Services) -> dict[str, Any]:
    raw = services.redis.get(MAINTENANCE_KEY)
    if not raw:
        return {"enabled": False}
    data = json.loads(raw)
    data["enabled"] = bool(data.get("enabled"))
    return data


class OpsMiddleware:
    """Request metrics for every call, and the maintenance gate (503 for non-admins)."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = {"code": 500}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        route_label = None
        try:
            if _Runtime.state is not None and not _maintenance_exempt(scope["path"]):
                rejection = await self._maintenance_rejection(scope)
                if rejection is not None:
                    route_label = "(maintenance)"
                    MAINTENANCE_REJECTED.inc()
                    await rejection(scope, receive, send_wrapper)
                    return
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            label = route_label or getattr(route, "path", None) or "(unmatched)"
            REQUESTS.labels(scope["method"], label, str(status["code"])).inc()
            LATENCY.labels(scope["method"], label).observe(time.perf_counter() - start)

    async def _maintenance_rejection(self, scope: Scope) -> Response | None:
        st = state()
        try:
            info = await asyncio.to_thread(read_maintenance, st.services)
        except Exception as exc:  # Redis down: fail open, the health checks report Redis
            log.warning("maintenance flag unreadable, treating as off: %s", exc)
            return None
        if not info["enabled"]:
            return None
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        token = bearer_token(headers.get("authorization"))
        principal = st.users.verify(token) if token else None
        if principal is not None and principal.is_admin:
            return None
        return JSONResponse(
            status_code=503,
            content={
                "detail": "Ablage-System is in maintenance mode",
                "reason": info.get("reason") or "maintenance",
                "maintenance": True,
                "since": info.get("since"),
            },
            headers={"Retry-After": "60"},
        )


# --------------------------------------------------------------------------- auth


def current_user(request: Request) -> Principal:
    token = bearer_token(request.headers.get("authorization"))
    principal = state().users.verify(token) if token else None
    if principal is None:
        raise HTTPException(
            status_code=401,
            detail="missing or invalid bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return principal


def admin_user(principal: Principal = Depends(current_user)) -> Principal:
    if not principal.is_admin:
        raise HTTPException(status_code=403, detail="admin role required")
    return principal


async def _json_or_form(request: Request) -> dict[str, Any]:
    """Accept JSON whatever the Content-Type (the runbook's `curl -d '{...}'` sends form type)."""
    body = await request.body()
    if not body:
        return {}
    try:
        data = json.loads(body)
    except ValueError:
        form = parse_qs(body.decode("utf-8", "replace"))
        return {k: v[-1] for k, v in form.items()}
    if not isinstance(data, dict):
        raise HTTPException(status_code=422, detail="request body must be a JSON object")
    return data


router = APIRouter(prefix=API)


@router.post("/auth/login")
async def login(request: Request) -> dict[str, Any]:
    data = await _json_or_form(request)
    username, password = data.get("username"), data.get("password")
    if not isinstance(username, str) or not isinstance(password, str):
        raise HTTPException(status_code=422, detail="username and password are required")
    st = state()
    user = await asyncio.to_thread(st.users.authenticate, username, password)
    if user is None:
        raise HTTPException(status_code=401, detail="invalid username or password")
    token, ttl = st.users.issue_token(user)
    return {"access_token": token, "token_type": "bearer", "expires_in": ttl, "role": user.role}


# --------------------------------------------------------------------------- health


def _health_response(body: dict[str, Any]) -> JSONResponse:
    return JSONResponse(status_code=503 if body["status"] == gpu.UNHEALTHY else 200, content=body)


async def _gather(**checks: Callable[[], dict[str, Any]]) -> dict[str, dict[str, Any]]:
    results = await asyncio.gather(*(asyncio.to_thread(fn) for fn in checks.values()))
    return dict(zip(checks.keys(), results, strict=True))


@router.get("/health")
async def health_basic() -> JSONResponse:
    st = state()
    comps = await _gather(
        database=lambda: health.check_database(st.services, st.release),
        redis=lambda: health.check_redis(st.services),
    )
    status = gpu.worst([c["status"] for c in comps.values()])
    body: dict[str, Any] = {"status": status, "version": st.release.version}
    failed = {k: c.get("error") for k, c in comps.items() if c["status"] != gpu.HEALTHY}
    if failed:
        body["errors"] = failed
    return _health_response(body)


def _core_checks(st: AppState) -> dict[str, Callable[[], dict[str, Any]]]:
    return {
        "database": lambda: health.check_database(st.services, st.release),
        "redis": lambda: health.check_redis(st.services),
        "object_store": lambda: health.check_object_store(st.services),
    }


@router.get("/health/detailed")
async def health_detailed() -> JSONResponse:
    st = state()
    comps = await _gather(**_core_checks(st))
    db = comps["database"]
    return _health_response(
        {
            "status": gpu.worst([c["status"] for c in comps.values()]),
            "version": st.release.version,
            "alembic_revision": db.get("alembic_revision"),
            "alembic_head": st.release.head,
            "schema": db.get("schema"),
            "components": comps,
            "checked_at": _now(),
        }
    )


@router.get("/health/pipeline")
async def health_pipeline() -> JSONResponse:
    st = state()
    result = await asyncio.to_thread(health.check_pipeline, st.services)
    return _health_response({**result, "version": st.release.version, "checked_at": _now()})


@router.get("/health/gpu-memory")
async def health_gpu() -> JSONResponse:
    st = state()
    result = await asyncio.to_thread(gpu.check_gpu, st.settings.gpu_memory_limit_gb)
    return _health_response({**result, "checked_at": _now()})


@router.get("/health/complete")
async def health_complete() -> JSONResponse:
    st = state()
    start = time.perf_counter()
    checks = _core_checks(st)
    checks["pipeline"] = lambda: health.check_pipeline(st.services)
    checks["gpu"] = lambda: gpu.check_gpu(st.settings.gpu_memory_limit_gb)
    comps = await _gather(**checks)
    db = comps["database"]
    return _health_response(
        {
            "status": gpu.worst([c["status"] for c in comps.values()]),
            "version": st.release.version,
            "alembic_revision": db.get("alembic_revision"),
            "alembic_head": st.release.head,
            "schema": db.get("schema"),
            "components": comps,
            "checked_at": _now(),
            "duration_ms": round((time.perf_counter() - start) * 1000, 2),
        }
    )


# --------------------------------------------------------------------------- maintenance


@router.get("/admin/maintenance")
def maintenance_get(_admin: Principal = Depends(admin_user)) -> dict[str, Any]:
    return read_maintenance(state().services)


def _set_maintenance(enabled: bool, principal: Principal, reason: str | None) -> dict[str, Any]:
    services = state().services
    before = read_maintenance(services)
    changed = before["enabled"] != enabled
    if enabled and changed:
        info = {"enabled": True, "since": _now(), "by": principal.username, "reason": reason or "maintenance"}
        services.redis.set(MAINTENANCE_KEY, json.dumps(info))
        log.info("maintenance mode enabled by %s", principal.username)
    elif not enabled and changed:
        services.redis.delete(MAINTENANCE_KEY)
        log.info("maintenance mode disabled by %s", principal.username)
    return {**read_maintenance(services), "changed": changed}


@router.post("/admin/maintenance/enable")
async def maintenance_enable(request: Request, principal: Principal = Depends(admin_user)) -> dict[str, Any]:
    data = await _json_or_form(request)
    reason = data.get("reason") if isinstance(data.get("reason"), str) else None
    return await asyncio.to_thread(_set_maintenance, True, principal, reason)


@router.post("/admin/maintenance/disable")
def maintenance_disable(principal: Principal = Depends(admin_user)) -> dict[str, Any]:
    return _set_maintenance(False, principal, None)


# --------------------------------------------------------------------------- backup


@router.post("/backup/full", status_code=202)
def backup_full(principal: Principal = Depends(admin_user)) -> JSONResponse:
    backup, started = state().backups.start(principal.username)
    if not started:
        return JSONResponse(
            status_code=409,
            content={"detail": "a backup is already running", **backup},
        )
    return JSONResponse(status_code=202, content=backup)


@router.get("/backup/status")
def backup_status(
    backup_id: str | None = Query(default=None), _admin: Principal = Depends(admin_user)
) -> dict[str, Any]:
    backup = state().backups.get(backup_id)
    if backup is None:
        raise HTTPException(status_code=404, detail="no such backup" if backup_id else "no backup yet")
    return backup


# --------------------------------------------------------------------------- documents and OCR

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def _document_json(row: Any, release: Release) -> dict[str, Any]:
    doc = {
        "id": row.id,
        "filename": row.filename,
        "content_type": row.content_type,
        "size_bytes": row.size_bytes,
        "sha256": row.sha256,
        "owner": row.owner,
        "status": row.status,
        "text": row.ocr_text,
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
    }
    if release.has("page_count"):
        doc["page_count"] = row.page_count
    return doc


def _load_document(document_id: str, principal: Principal) -> Any:
    st = state()
    with st.services.engine.connect() as conn:
        row = conn.execute(text("SELECT * FROM documents WHERE id = :id"), {"id": document_id}).first()
    if row is None or (row.owner != principal.username and not principal.is_admin):
        raise HTTPException(status_code=404, detail="document not found")
    return row


def _store_document(principal: Principal, filename: str, content_type: str, data: bytes) -> dict[str, Any]:
    st = state()
    document_id = str(uuid.uuid4())
    safe = _SAFE_NAME.sub("_", filename)[:200] or "document"
    key = f"documents/{document_id}/{safe}"
    st.services.put_object(key, data, content_type)
    digest = hashlib.sha256(data).hexdigest()
    with st.services.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO documents (id, filename, content_type, size_bytes, sha256, object_key, owner, status)"
                " VALUES (:id, :filename, :ct, :size, :sha, :key, :owner, 'uploaded')"
            ),
            {
                "id": document_id,
                "filename": filename[:255],
                "ct": content_type[:127],
                "size": len(data),
                "sha": digest,
                "key": key,
                "owner": principal.username,
            },
        )
    return {
        "id": document_id,
        "status": "uploaded",
        "filename": filename,
        "content_type": content_type,
        "size_bytes": len(data),
        "sha256": digest,
    }


@router.post("/documents/", status_code=201, responses={200: {"description": "uploaded (API_UPLOAD_STATUS=200)"}})
@router.post("/documents", status_code=201, include_in_schema=False)
async def upload_document(file: UploadFile = File(...), principal: Principal = Depends(current_user)) -> JSONResponse:
    st = state()
    data = await file.read(st.settings.max_upload_bytes + 1)
    if len(data) > st.settings.max_upload_bytes:
        raise HTTPException(status_code=413, detail="file too large")
    if not data:
        raise HTTPException(status_code=422, detail="empty file")
    filename = file.filename or "document"
    content_type = file.content_type or "application/octet-stream"
    body = await asyncio.to_thread(_store_document, principal, filename, content_type, data)
    return JSONResponse(status_code=st.settings.upload_status_code, content=body)


@router.get("/documents/{document_id}")
def get_document(document_id: str, principal: Principal = Depends(current_user)) -> dict[str, Any]:
    return _document_json(_load_document(document_id, principal), state().release)


@router.get("/documents/{document_id}/export")
def export_document(
    document_id: str,
    format: str = Query(default="json", pattern="^(json|txt)$"),
    principal: Principal = Depends(current_user),
) -> Response:
    offered = state().settings.export_formats
    if format not in offered:
        detail = f"export format {format} is not offered (formats: {', '.join(offered)})"
        raise HTTPException(status_code=400, detail=detail)
    row = _load_document(document_id, principal)
    if row.status != "processed" or row.ocr_text is None:
        raise HTTPException(status_code=409, detail=f"document is {row.status}, not processed yet")
    stem = row.filename.rsplit(".", 1)[0] or "document"
    if format == "txt":
        return PlainTextResponse(
            row.ocr_text,
            headers={"Content-Disposition": f'attachment; filename="{_SAFE_NAME.sub("_", stem)}.txt"'},
        )
    body = export_json(_document_json(row, state().release), state().settings.export_json_style, _now())
    return JSONResponse(body)


def _enqueue(document_id: str, backend: str, simulate: float | None, principal: Principal) -> dict[str, Any]:
    _load_document(document_id, principal)
    st = state()
    job_id = str(uuid.uuid4())
    with st.services.engine.begin() as conn:
        conn.execute(
            text("INSERT INTO ocr_jobs (id, document_id, backend, status) VALUES (:id, :doc, :backend, 'queued')"),
            {"id": job_id, "doc": document_id, "backend": backend},
        )
        conn.execute(
            text("UPDATE documents SET status = 'queued', updated_at = now() WHERE id = :id"), {"id": document_id}
        )
    payload: dict[str, Any] = {"job_id": job_id, "document_id": document_id, "backend": backend}
    if simulate is not None:
        payload["simulate_seconds"] = simulate
    try:
        st.services.redis.lpush(QUEUE_KEY, json.dumps(payload))
    except Exception as exc:
        with st.services.engine.begin() as conn:
            conn.execute(
                text("UPDATE ocr_jobs SET status = 'failed', error = :e, finished_at = now() WHERE id = :id"),
                {"id": job_id, "e": f"could not queue: {exc}"},
            )
        raise HTTPException(status_code=503, detail="job queue unavailable") from exc
    return {"job_id": job_id, "document_id": document_id, "backend": backend, "status": "queued"}


@router.post("/ocr/process", status_code=202)
async def ocr_process(request: Request, principal: Principal = Depends(current_user)) -> dict[str, Any]:
    data = await _json_or_form(request)
    document_id = data.get("document_id")
    backend = data.get("backend", "auto")
    if not isinstance(document_id, str) or not document_id:
        raise HTTPException(status_code=422, detail="document_id is required")
    if backend not in OCR_BACKENDS:
        raise HTTPException(status_code=422, detail=f"backend must be one of {sorted(OCR_BACKENDS)}")
    simulate = data.get("simulate_seconds")
    if simulate is not None:
        try:
            simulate = min(max(float(simulate), 0.0), MAX_SIMULATE_SECONDS)
        except (TypeError, ValueError) as exc:
            raise HTTPException(status_code=422, detail="simulate_seconds must be a number") from exc
    return await asyncio.to_thread(_enqueue, document_id, backend, simulate, principal)


@router.get("/ocr/jobs/{job_id}")
def ocr_job(job_id: str, principal: Principal = Depends(current_user)) -> dict[str, Any]:
    st = state()
    with st.services.engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT j.*, d.owner, d.ocr_text FROM ocr_jobs j JOIN documents d ON d.id = j.document_id"
                " WHERE j.id = :id"
            ),
            {"id": job_id},
        ).first()
    if row is None or (row.owner != principal.username and not principal.is_admin):
        raise HTTPException(status_code=404, detail="job not found")

    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "job_id": row.id,
        "document_id": row.document_id,
        "backend": row.backend,
        "status": row.status,
        "error": row.error,
        "worker": row.worker,
        "created_at": iso(row.created_at),
        "started_at": iso(row.started_at),
        "finished_at": iso(row.finished_at),
        "text": row.ocr_text if row.status == "completed" else None,
    }


# --------------------------------------------------------------------------- app

ADMIN_PAGE = """<!doctype html>
<html lang="de"><head><meta charset="utf-8"><title>Ablage-System Admin</title></head>
<body>
<h1>Ablage-System &mdash; Admin</h1>
<p>Version <strong id="version">{version}</strong>, Alembic head <code>{head}</code></p>
<ul>
<li><a href="/api/v1/health/complete">Health (complete)</a></li>
<li><a href="/api/v1/health/pipeline">OCR pipeline</a></li>
<li><a href="/metrics">Metrics</a></li>
<li><a href="/docs">API docs</a></li>
</ul>
</body></html>
"""

app = FastAPI(title="Ablage-System (reference)", lifespan=lifespan)
app.include_router(router)


@app.get("/admin", response_class=HTMLResponse)
def admin_panel() -> HTMLResponse:
    st = state()
    return HTMLResponse(ADMIN_PAGE.format(version=st.release.version, head=st.release.head))


@app.get("/metrics")
def metrics() -> Response:
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


def _cors_origins() -> list[str]:
    import os

    return [o.strip() for o in os.environ.get("CORS_ORIGINS", "").split(",") if o.strip()]


app.add_middleware(
    CORSMiddleware,
    allow_origins=_cors_origins(),
    allow_methods=["*"],
    allow_headers=["Authorization", "Content-Type"],
)
app.add_middleware(OpsMiddleware)
