#!/usr/bin/env bash
# The lower bound of a deploy for benchmarks/bench_deploy.py: only the operations that must
# happen, each waited for by a real condition and nothing else (no backup, no checks, no records):
# pull (before the downtime), maintenance on, stop worker then backend, migrate, start backend and
# worker waiting for their healthchecks, maintenance off.
#
#   ADMIN_TOKEN=... benchmarks/lower_bound_deploy.sh 1.1.0
set -euo pipefail
VERSION="${1:?usage: lower_bound_deploy.sh VERSION}"
: "${ADMIN_TOKEN:?ADMIN_TOKEN is required}"
API="${ABLAGE_API_URL:-http://127.0.0.1:8000}"
PROJECT_DIR="${ABLAGE_PROJECT_DIR:-/srv/ablage}"
cd "$PROJECT_DIR"
export ABLAGE_VERSION="$VERSION" # compose reads it before .env
mark() { printf 'LOWER %s %s\n' "$(date +%s.%N)" "$*"; }

mark pull
docker compose pull -q backend worker
mark maintenance-enable
curl -fsS -o /dev/null -X POST "$API/api/v1/admin/maintenance/enable" -H "Authorization: Bearer $ADMIN_TOKEN"
docker compose stop worker
docker compose stop backend
sed -i "s/^ABLAGE_VERSION=.*/ABLAGE_VERSION=$VERSION/" .env
docker compose run --rm -T --no-deps backend alembic upgrade head
docker compose up -d --wait --no-deps backend worker
mark maintenance-disable
curl -fsS -o /dev/null -X POST "$API/api/v1/admin/maintenance/disable" -H "Authorization: Bearer $ADMIN_TOKEN"
mark finished
