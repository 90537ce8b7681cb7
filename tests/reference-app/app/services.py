"""Clients of the external systems (PostgreSQL, Redis, the S3 object store) and shared key names."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import redis
import urllib3
from minio import Minio
from sqlalchemy import Engine, create_engine, text

from app.config import Settings

# Redis keys: the contract between backend and worker (and what ops tooling may read).
QUEUE_KEY = "ablage:ocr:queue"  # LIST of job ids waiting (LPUSH by backend)
PROCESSING_KEY = "ablage:ocr:processing"  # LIST of job ids a worker has taken (BLMOVE)
HEARTBEAT_PREFIX = "ablage:worker:heartbeat:"  # STRING JSON per worker, with TTL
MAINTENANCE_KEY = "ablage:maintenance"  # STRING JSON {"enabled": true, ...}; absent = off
BACKUP_PREFIX = "ablage:backup:"  # STRING JSON per backup id
BACKUP_LATEST_KEY = "ablage:backup:latest"  # STRING: id of the newest backup


@dataclass
class Services:
    settings: Settings
    engine: Engine
    redis: redis.Redis
    minio: Minio

    def ensure_bucket(self) -> None:
        if not self.minio.bucket_exists(self.settings.minio_bucket):
            self.minio.make_bucket(self.settings.minio_bucket)

    def put_object(self, key: str, data: bytes, content_type: str) -> None:
        self.minio.put_object(self.settings.minio_bucket, key, io.BytesIO(data), len(data), content_type=content_type)

    def get_object(self, key: str) -> bytes:
        response = self.minio.get_object(self.settings.minio_bucket, key)
        try:
            return bytes(response.read())
        finally:
            response.close()
            response.release_conn()

    def alembic_revision(self) -> str | None:
        with self.engine.connect() as conn:
            exists = conn.execute(text("SELECT to_regclass('alembic_version')")).scalar()
            if exists is None:
                return None
            rev: Any = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
            return str(rev) if rev is not None else None


def make_services(settings: Settings) -> Services:
    engine = create_engine(
        settings.database_url,
        pool_pre_ping=True,
        pool_size=5,
        max_overflow=5,
        pool_timeout=5,
        connect_args={"connect_timeout": 3, "options": "-c statement_timeout=10000"},
    )
    redis_client = redis.Redis.from_url(
        settings.redis_url,
        socket_timeout=3,
        socket_connect_timeout=3,
        health_check_interval=30,
        decode_responses=True,
    )
    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=3, read=10),
        retries=urllib3.Retry(total=1, backoff_factor=0.1),
        maxsize=10,
    )
    minio_client = Minio(
        settings.minio_endpoint,
        access_key=settings.minio_access_key,
        secret_key=settings.minio_secret_key,
        secure=settings.minio_secure,
        http_client=http,
    )
    return Services(settings=settings, engine=engine, redis=redis_client, minio=minio_client)
