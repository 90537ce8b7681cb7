#!/usr/bin/env bash
# The checks of playbooks/preflight.yml (inventories/local) as plain commands, one after the other,
# without Ansible: the same tools on the same inputs, for benchmarks/bench_preflight.py to tell the
# checks' own time from Ansible's overhead. Exit codes of the gates are ignored (the benchmark times
# them; the playbook judges them).
#
#   benchmarks/preflight_checks.sh 1.1.0
set -u -o pipefail
VERSION="${1:?usage: preflight_checks.sh VERSION}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="$ROOT/.venv/bin"
PROJECT_DIR="${ABLAGE_PROJECT_DIR:-/srv/ablage}"
REGISTRY="${ABLAGE_REGISTRY:-127.0.0.1:5000}"
SOURCE="$ROOT/tests/reference-app"

# 1. Code quality (inventories/local: preflight_quality_commands)
(
  cd "$SOURCE" || exit 1
  "$BIN/ruff" check app migrations
  "$BIN/ruff" format --check app migrations
  "$BIN/bandit" -q -ll -r app
  "$BIN/pip-audit" --strict --no-deps --disable-pip -r requirements.txt
) >/dev/null 2>&1

# 2. Database: what alembic_migrate runs for the preview (history and current at once, then the offline SQL)
(
  cd "$PROJECT_DIR" || exit 1
  export ABLAGE_VERSION="$VERSION"
  alembic=(docker compose run --rm -T backend alembic)
  "${alembic[@]}" history --verbose >/dev/null 2>&1 &
  current="$("${alembic[@]}" current 2>/dev/null | awk '{print $1}' | tail -n 1)"
  wait
  "${alembic[@]}" upgrade "${current:-base}:head" --sql >/dev/null 2>&1
)

# 3. Configuration: variables present, secret scan, TLS certificate > 30 days
for var in DATABASE_URL REDIS_URL MINIO_ENDPOINT SECRET_KEY JWT_SECRET_KEY CORS_ORIGINS GPU_MEMORY_LIMIT_GB; do
  grep -q "^$var=" "$PROJECT_DIR/.env.production" || echo "missing $var"
done
"$BIN/python" -m detect_secrets scan --all-files "$SOURCE" >/dev/null
openssl x509 -in "$PROJECT_DIR/tls/ablage.crt" -noout -checkend $((30 * 86400)) >/dev/null

# 4. Infrastructure: images in the registry, GPU, disk, memory
for image in backend worker; do
  curl -fsS -o /dev/null -I -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    "http://$REGISTRY/v2/ablage/$image/manifests/$VERSION"
done
command -v nvidia-smi >/dev/null && nvidia-smi >/dev/null
df --output=avail --block-size=1 /var/lib/docker >/dev/null
free -b >/dev/null
exit 0
