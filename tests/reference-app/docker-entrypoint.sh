#!/bin/sh
# Start (or health-check) the process of this image's role: backend (uvicorn) or worker.
set -eu
role="${ABLAGE_ROLE:-backend}"
if [ "${1:-}" = "healthcheck" ]; then
  case "$role" in
    backend) exec curl -fsS -m 3 -o /dev/null "http://127.0.0.1:${BACKEND_PORT:-8000}/api/v1/health" ;;
    worker)  test -n "$(find "${WORKER_HEARTBEAT_FILE:-/tmp/worker-heartbeat}" -newermt '-15 seconds' 2>/dev/null)" ;;
  esac
  exit $?
fi
case "$role" in
  backend)
    exec uvicorn app.main:app --host "${BACKEND_HOST:-127.0.0.1}" --port "${BACKEND_PORT:-8000}" \
      --proxy-headers --timeout-graceful-shutdown 20 ;;
  worker)
    exec python -m app.worker ;;
  *)
    echo "unknown ABLAGE_ROLE: $role" >&2; exit 2 ;;
esac
