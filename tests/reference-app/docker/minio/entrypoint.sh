#!/bin/sh
# Credentials: MINIO_ACCESS_KEY/MINIO_SECRET_KEY (or MinIO's MINIO_ROOT_USER/MINIO_ROOT_PASSWORD).
set -eu
AWS_ACCESS_KEY_ID="${MINIO_ACCESS_KEY:-${MINIO_ROOT_USER:-}}"
AWS_SECRET_ACCESS_KEY="${MINIO_SECRET_KEY:-${MINIO_ROOT_PASSWORD:-}}"
if [ -z "$AWS_ACCESS_KEY_ID" ] || [ -z "$AWS_SECRET_ACCESS_KEY" ]; then
  echo "minio-entrypoint: MINIO_ACCESS_KEY and MINIO_SECRET_KEY must be set" >&2
  exit 2
fi
export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
exec weed mini -dir=/data -ip=127.0.0.1 -ip.bind=127.0.0.1 \
  -s3.port="${MINIO_PORT:-9000}" -master.port=9333 -volume.port=9340 -filer.port=8888 \
  -admin.ui=false -webdav=false -s3.port.iceberg=0 -s3.port.lance=0 "$@"
