"""Settings from the environment (.env.production through compose's env_file)."""

from __future__ import annotations

import os
from dataclasses import dataclass


def _env(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if value is None or value == "":
        raise SystemExit(f"missing required environment variable {name}")
    return value


def _bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    database_url: str
    redis_url: str
    minio_endpoint: str
    minio_access_key: str
    minio_secret_key: str
    minio_bucket: str
    minio_secure: bool
    secret_key: str
    jwt_secret_key: str
    jwt_expire_minutes: int
    cors_origins: tuple[str, ...]
    gpu_memory_limit_gb: float
    admin_username: str
    admin_password: str
    smoke_username: str
    smoke_password: str
    backup_dir: str
    ocr_simulated_delay_seconds: float
    worker_heartbeat_interval: float
    worker_heartbeat_ttl: int
    max_upload_bytes: int
    # The API's shape (what differs between builds of Ablage-System; the defaults are the
    # reference shape, the "ocrdesk" build sets them in its compose file): see README.md.
    upload_status_code: int = 201
    export_formats: tuple[str, ...] = ("json", "txt")
    export_json_style: str = "document"
    queue_fields: tuple[str, str, str] = ("queue", "pending", "processing")


MIN_SECRET_LENGTH = 32
UPLOAD_STATUS_CODES = (200, 201)
EXPORT_FORMATS = ("json", "txt")
EXPORT_JSON_STYLES = ("document", "text")


def _shape_settings() -> dict[str, object]:
    """API_UPLOAD_STATUS, API_EXPORT_FORMATS, API_EXPORT_JSON_STYLE, API_QUEUE_FIELDS (object,pending,processing)."""
    status = int(_env("API_UPLOAD_STATUS", "201"))
    if status not in UPLOAD_STATUS_CODES:
        raise SystemExit(f"API_UPLOAD_STATUS must be one of {UPLOAD_STATUS_CODES}, not {status}")
    formats = tuple(f.strip() for f in _env("API_EXPORT_FORMATS", "json,txt").split(",") if f.strip())
    if not formats or any(f not in EXPORT_FORMATS for f in formats):
        raise SystemExit(f"API_EXPORT_FORMATS must list some of {EXPORT_FORMATS}, not {formats}")
    style = _env("API_EXPORT_JSON_STYLE", "document")
    if style not in EXPORT_JSON_STYLES:
        raise SystemExit(f"API_EXPORT_JSON_STYLE must be one of {EXPORT_JSON_STYLES}, not {style}")
    fields = tuple(f.strip() for f in _env("API_QUEUE_FIELDS", "queue,pending,processing").split(","))
    if len(fields) != 3 or not all(fields) or len(set(fields)) != 3:
        raise SystemExit(f"API_QUEUE_FIELDS must be three distinct names (object,pending,processing), not {fields}")
    return {
        "upload_status_code": status,
        "export_formats": formats,
        "export_json_style": style,
        "queue_fields": fields,
    }


def load_settings() -> Settings:
    settings = Settings(
        database_url=_env("DATABASE_URL"),
        redis_url=_env("REDIS_URL"),
        minio_endpoint=_env("MINIO_ENDPOINT"),
        minio_access_key=_env("MINIO_ACCESS_KEY"),
        minio_secret_key=_env("MINIO_SECRET_KEY"),
        minio_bucket=_env("MINIO_BUCKET", "ablage-documents"),
        minio_secure=_bool("MINIO_SECURE", False),
        secret_key=_env("SECRET_KEY"),
        jwt_secret_key=_env("JWT_SECRET_KEY"),
        jwt_expire_minutes=int(_env("JWT_EXPIRE_MINUTES", "60")),
        cors_origins=tuple(o.strip() for o in _env("CORS_ORIGINS").split(",") if o.strip()),
        gpu_memory_limit_gb=float(_env("GPU_MEMORY_LIMIT_GB", "13.6")),
        admin_username=_env("ADMIN_USERNAME"),
        admin_password=_env("ADMIN_PASSWORD"),
        smoke_username=_env("SMOKE_USERNAME"),
        smoke_password=_env("SMOKE_PASSWORD"),
        backup_dir=_env("BACKUP_DIR", "/backups"),
        ocr_simulated_delay_seconds=float(_env("OCR_SIMULATED_DELAY_SECONDS", "0.2")),
        worker_heartbeat_interval=float(_env("WORKER_HEARTBEAT_INTERVAL", "2")),
        worker_heartbeat_ttl=int(_env("WORKER_HEARTBEAT_TTL", "15")),
        max_upload_bytes=int(_env("MAX_UPLOAD_BYTES", str(50 * 1024 * 1024))),
        **_shape_settings(),  # type: ignore[arg-type]
    )
    for name in ("secret_key", "jwt_secret_key"):
        if len(getattr(settings, name)) < MIN_SECRET_LENGTH:
            raise SystemExit(f"{name.upper()} must be at least {MIN_SECRET_LENGTH} characters")
    return settings
