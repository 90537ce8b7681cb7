#!/usr/bin/env bash
# The fair floor of a deploy for benchmarks/bench_deploy.py (issue 17): the same safety work as
# playbooks/deploy.yml, as plain shell commands, each waited for by a real condition polled at the
# collection's rate, and nothing else (no lock, no state records, no report, no smoke test):
#   pull (before the downtime); maintenance on, verified as a user sees it (0.25 s);
#   OCR queue drained (1 s); the application's backup started and waited for (0.5 s);
#   worker, then backend stopped; pg_dump -Fc, its checksum, pg_restore --list and a test restore
#   into a scratch database with the row counts compared (deploy_backup_verify: restore);
#   Alembic upgrade; backend and worker started, waited for by their healthchecks;
#   /api/v1/health/complete healthy (1 s); maintenance off, verified as a user sees it (0.25 s).
# The difference between deploy.yml and this is the collection's own overhead; the difference
# between this and lower_bound_deploy.sh is the price of the safety work.
#
#   ADMIN_TOKEN=... USER_TOKEN=... benchmarks/fair_floor_deploy.sh 1.1.0
set -euo pipefail
VERSION="${1:?usage: fair_floor_deploy.sh VERSION}"
: "${ADMIN_TOKEN:?ADMIN_TOKEN is required}" "${USER_TOKEN:?USER_TOKEN is required}"
API="${ABLAGE_API_URL:-http://127.0.0.1:8000}"
PROJECT_DIR="${ABLAGE_PROJECT_DIR:-/srv/ablage}"
cd "$PROJECT_DIR"
export ABLAGE_VERSION="$VERSION" # compose reads it before .env
# The database's owner and name from the project's secrets, as the inventory takes them.
PGUSER="$(sed -n 's/^POSTGRES_USER=//p' .env.production)"
PGPASSWORD="$(sed -n 's/^POSTGRES_PASSWORD=//p' .env.production)"
DB="$(sed -n 's/^POSTGRES_DB=//p' .env.production)"
export PGHOST=127.0.0.1 PGPORT="${ABLAGE_DB_PORT:-5432}" PGUSER PGPASSWORD
SCRATCH="fairfloor_verify_$$"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"; dropdb --if-exists "$SCRATCH" 2>/dev/null || true' EXIT
mark() { printf 'FLOOR %s %s\n' "$(date +%s.%N)" "$*"; }

# until_ok TIMEOUT INTERVAL COMMAND...: the command polled until it succeeds, bounded.
until_ok() {
  local timeout="$1" interval="$2"
  shift 2
  local deadline=$((SECONDS + timeout))
  until "$@"; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "fair_floor: timed out after ${timeout} s waiting for: $*" >&2
      return 1
    fi
    sleep "$interval"
  done
}
# As maintenance_toggle verifies: a user's request answers 503 in maintenance, anything else after it.
user_status() { curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $USER_TOKEN" "$API/api/v1/documents/"; }
locked_out() { [ "$(user_status)" = 503 ]; }
let_in() { [ "$(user_status)" != 503 ]; }
queue_idle() { curl -s "$API/api/v1/health/pipeline" | jq -e '.queue.pending == 0 and .queue.processing == 0' >/dev/null; }
backup_done() {
  local status
  status="$(curl -s -H "Authorization: Bearer $ADMIN_TOKEN" "$API/api/v1/backup/status" | jq -r .status)"
  [ "$status" = failed ] && { echo "fair_floor: the application's backup failed" >&2; exit 1; }
  [ "$status" = completed ]
}
healthy() { curl -s "$API/api/v1/health/complete" | jq -e '.status == "healthy"' >/dev/null; }
row_counts() {
  local db="$1" table
  for table in $(psql -d "$db" -tAc "SELECT quote_ident(table_name) FROM information_schema.tables
                                    WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1"); do
    printf '%s %s\n' "$table" "$(psql -d "$db" -tAc "SELECT count(*) FROM $table")"
  done
}

mark pull
docker compose pull -q backend worker

mark maintenance-enable
curl -fsS -o /dev/null -X POST "$API/api/v1/admin/maintenance/enable" -H "Authorization: Bearer $ADMIN_TOKEN"
until_ok 30 0.25 locked_out

mark drain
until_ok 600 1 queue_idle

mark api-backup
curl -fsS -o /dev/null -X POST "$API/api/v1/backup/full" -H "Authorization: Bearer $ADMIN_TOKEN"
until_ok 600 0.5 backup_done

mark stop
docker compose stop worker
docker compose stop backend

mark pg-backup
pg_dump -Fc -d "$DB" -f "$WORK/db.dump"
sha256sum "$WORK/db.dump" >"$WORK/db.dump.sha256"
pg_restore --list "$WORK/db.dump" >/dev/null
createdb "$SCRATCH"
pg_restore --no-owner -d "$SCRATCH" "$WORK/db.dump"
[ "$(row_counts "$DB")" = "$(row_counts "$SCRATCH")" ] || { echo "fair_floor: row counts differ after the test restore" >&2; exit 1; }
dropdb "$SCRATCH"

mark migrate
sed -i "s/^ABLAGE_VERSION=.*/ABLAGE_VERSION=$VERSION/" .env
docker compose run --rm -T --no-deps backend alembic upgrade head

mark start
docker compose up -d --wait --no-deps backend worker
until_ok 180 1 healthy

mark maintenance-disable
curl -fsS -o /dev/null -X POST "$API/api/v1/admin/maintenance/disable" -H "Authorization: Bearer $ADMIN_TOKEN"
until_ok 30 0.25 let_in
mark finished
