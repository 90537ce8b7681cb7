#!/usr/bin/env bash
# The checklist's "Deployment-Prozess" (shared seed: Production-Deployment-Checklist.md), transcribed
# command by command with its fixed sleeps, for benchmarks/bench_deploy.py. Adapted only where the
# reference stack needs it (each adaptation is marked "adapted:"):
#   docker compose (v2) instead of docker-compose, run in the project directory (/srv/ablage);
#   the release is chosen by ABLAGE_VERSION in the project's .env (the checklist pulls :latest);
#   `run -T` (no terminal here); GET /backup/status needs the admin token on the reference API;
#   the OCR request takes the document id from the upload's answer (the checklist writes <doc_id>).
# No `set -e`: the checklist is typed into a terminal, and a failing curl does not stop the person.
# The exit code is that of a final health check, so the benchmark knows whether the deploy worked.
#
#   ADMIN_TOKEN=... USER_TOKEN=... benchmarks/checklist_deploy.sh 1.1.0
set -u -o pipefail
VERSION="${1:?usage: checklist_deploy.sh VERSION}"
: "${ADMIN_TOKEN:?ADMIN_TOKEN is required}" "${USER_TOKEN:?USER_TOKEN is required}"
API="${ABLAGE_API_URL:-http://127.0.0.1:8000}"
PROJECT_DIR="${ABLAGE_PROJECT_DIR:-/srv/ablage}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TEST_DOCUMENT="${CHECKLIST_TEST_DOCUMENT:-$ROOT/tests/reference-app/fixtures/test_document.pdf}"
cd "$PROJECT_DIR" || exit 1
mark() { printf 'CHECKLIST %s %s\n' "$(date +%s.%N)" "$*"; }

# ### 1. Maintenance Mode aktivieren
mark maintenance-enable
curl -X POST "$API/api/v1/admin/maintenance/enable" \
  -H "Authorization: Bearer $ADMIN_TOKEN"
echo

# ### 2. Backup erstellen
mark backup
curl -X POST "$API/api/v1/backup/full" \
  -H "Authorization: Bearer $ADMIN_TOKEN"
echo
# adapted: the reference API wants the admin token for the status as well
curl "$API/api/v1/backup/status" -H "Authorization: Bearer $ADMIN_TOKEN"
echo

# ### 3. Services stoppen
mark stop
docker compose stop worker # Zuerst Worker
sleep 30                   # Jobs abarbeiten lassen
docker compose stop backend
docker compose stop

# ### 4. Deployment durchführen
mark deploy
# adapted: the release to deploy (the checklist's compose file pulls :latest)
sed -i "s/^ABLAGE_VERSION=.*/ABLAGE_VERSION=$VERSION/" .env
docker compose pull
docker compose run --rm -T backend alembic upgrade head
docker compose up -d postgres redis minio
sleep 10 # Services hochfahren lassen
docker compose up -d backend
sleep 5
docker compose up -d worker

# ### 5. Health Checks
mark health
curl "$API/api/v1/health"
echo
curl "$API/api/v1/health/detailed" | jq
curl "$API/api/v1/health/pipeline" | jq
curl "$API/api/v1/health/gpu-memory" | jq

# ### 6. Maintenance Mode deaktivieren
mark maintenance-disable
curl -X POST "$API/api/v1/admin/maintenance/disable" \
  -H "Authorization: Bearer $ADMIN_TOKEN"
echo
mark maintenance-disabled

# ### 7. Smoke Tests
upload="$(curl -X POST "$API/api/v1/documents/" \
  -H "Authorization: Bearer $USER_TOKEN" \
  -F "file=@$TEST_DOCUMENT")"
echo "$upload"
doc_id="$(jq -r .id <<<"$upload")" # adapted: the checklist writes <doc_id>
curl -X POST "$API/api/v1/ocr/process" \
  -H "Authorization: Bearer $USER_TOKEN" \
  -d "{\"document_id\": \"$doc_id\", \"backend\": \"auto\"}"
echo
mark finished
curl -fsS -o /dev/null "$API/api/v1/health"
