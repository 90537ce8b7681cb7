#!/usr/bin/env bash
# Brings up the host infrastructure the reference stack runs on: Debian's Docker
# engine, the Compose v2 CLI plugin, a registry on 127.0.0.1:5000, the PostgreSQL
# client tools and a Debian base image built without pulling anything.
# Idempotent and cached: a warm run only checks. Nothing here reaches outside the
# machine's own configured Debian mirror (read from apt's sources, never written down).
set -euo pipefail

CACHE_DIR=${ABLAGE_INFRA_CACHE:-/var/cache/ablage-ops}
LOG_DIR=${ABLAGE_INFRA_LOGS:-/var/log/ablage-ops}
REGISTRY_ADDR=127.0.0.1:5000
BASE_IMAGE=ablage/debian-base:bookworm
BASE_PACKAGES=ca-certificates,python3,python3-venv,python3-pip,postgresql-client-15,curl
COMPOSE_MIN=2.18.0

step() { STEP=$1; printf '==> %s\n' "$1"; }
on_exit() {
  local rc=$?
  [ "$rc" -eq 0 ] || printf 'infra.sh: FAILED at step: %s (exit %s). Logs: %s\n' "${STEP:-start}" "$rc" "$LOG_DIR" >&2
}
trap on_exit EXIT

mkdir -p "$CACHE_DIR" "$LOG_DIR"

# The Debian mirror this machine is configured with (deb822 or one-line format).
debian_mirror() {
  local m
  m=$(awk '/^URIs:/ && !done {print $2; done=1}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  [ -n "$m" ] || m=$(awk '$1=="deb" && $0 ~ / bookworm / {for(i=2;i<=NF;i++) if ($i ~ /^https?:/) {print $i; exit}}' /etc/apt/sources.list 2>/dev/null || true)
  [ -n "$m" ] || { echo "no Debian mirror found in /etc/apt/sources.list{,.d}" >&2; return 1; }
  printf '%s\n' "${m%/}"
}

apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "    installing: ${missing[*]}"
  apt-get update -qq >"$LOG_DIR/apt-update.log" 2>&1
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$LOG_DIR/apt-install.log" 2>&1
}

wait_until() { # wait_until SECONDS DESCRIPTION COMMAND...: poll a real condition, bounded
  local deadline=$((SECONDS + $1)) what=$2; shift 2
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || { echo "timed out waiting for $what" >&2; return 1; }
    sleep 0.5
  done
}

step "Debian packages (docker.io, docker-registry, mmdebstrap, PostgreSQL 15 binaries, rsync, shellcheck)"
# postgresql-15 gives pg_dump/pg_restore and a server for throwaway test clusters; no
# cluster of its own, so nothing but the stack's container ever listens on 5432.
mkdir -p /etc/postgresql-common/createcluster.d
echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.d/ablage-no-main.conf
# docker.io's postinst tries to start systemd units; there is no systemd here, which is fine.
apt_install docker.io docker-registry mmdebstrap postgresql-client postgresql-15 rsync shellcheck

step "Docker engine (dockerd --iptables=false, host networking only)"
if ! docker info >/dev/null 2>&1; then
  # No bridge: every container of the stack uses network_mode host on loopback ports.
  nohup dockerd --iptables=false --ip-masq=false --bridge=none >>"$LOG_DIR/dockerd.log" 2>&1 &
  wait_until 60 "dockerd (see $LOG_DIR/dockerd.log)" docker info
fi
echo "    engine $(docker version --format '{{.Server.Version}}')"

step "Compose v2 CLI plugin (>= $COMPOSE_MIN, from Debian's next release)"
compose_ok() {
  local v
  v=$(docker compose version --short 2>/dev/null | sed 's/^v//; s/-.*//') || return 1
  [ -n "$v" ] && [ "$(printf '%s\n%s\n' "$COMPOSE_MIN" "$v" | sort -V | head -1)" = "$COMPOSE_MIN" ]
}
if ! compose_ok; then
  apt_state="$CACHE_DIR/apt-trixie"
  mkdir -p "$apt_state/lists/partial" "$apt_state/archives/partial"
  # A separate apt state: the system's own package lists stay Debian 12 only.
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $(debian_mirror) trixie main" >"$apt_state/sources.list"
  apt_opts=(-o "Dir::Etc::SourceList=$apt_state/sources.list" -o Dir::Etc::SourceParts=/dev/null
    -o "Dir::State::Lists=$apt_state/lists" -o "Dir::Cache=$apt_state" -o APT::Sandbox::User=root)
  deb=$(find "$apt_state" -maxdepth 1 -name 'docker-compose_2.*.deb' | sort -V | tail -1)
  if [ -z "$deb" ]; then
    apt-get "${apt_opts[@]}" update -qq >"$LOG_DIR/apt-trixie.log" 2>&1
    (cd "$apt_state" && apt-get "${apt_opts[@]}" download docker-compose >>"$LOG_DIR/apt-trixie.log" 2>&1)
    deb=$(find "$apt_state" -maxdepth 1 -name 'docker-compose_2.*.deb' | sort -V | tail -1)
  fi
  rm -rf "$apt_state/x" && dpkg-deb -x "$deb" "$apt_state/x"
  install -D -m 0755 "$apt_state/x/usr/libexec/docker/cli-plugins/docker-compose" /usr/local/lib/docker/cli-plugins/docker-compose
  install -D -m 0755 "$apt_state/x/usr/libexec/docker/cli-plugins/docker-compose" /usr/libexec/docker/cli-plugins/docker-compose
  compose_ok || { echo "docker compose still older than $COMPOSE_MIN" >&2; exit 1; }
fi
echo "    $(docker compose version)"

step "Registry on $REGISTRY_ADDR"
if ! curl -fsS "http://$REGISTRY_ADDR/v2/" >/dev/null 2>&1; then
  cat >"$CACHE_DIR/registry.yml" <<EOF
version: 0.1
storage:
  filesystem:
    rootdirectory: /var/lib/docker-registry
  delete:
    enabled: true
http:
  addr: $REGISTRY_ADDR
EOF
  nohup docker-registry serve "$CACHE_DIR/registry.yml" >>"$LOG_DIR/registry.log" 2>&1 &
  wait_until 30 "the registry (see $LOG_DIR/registry.log)" curl -fsS "http://$REGISTRY_ADDR/v2/"
fi

step "Base image $BASE_IMAGE (mmdebstrap | docker import, no pull)"
if ! docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  mirror=$(debian_mirror)
  mmdebstrap --variant=minbase --include="$BASE_PACKAGES" bookworm - \
    "deb $mirror bookworm main" "deb $mirror bookworm-updates main" 2>"$LOG_DIR/mmdebstrap.log" |
    docker import -c 'CMD ["/bin/bash"]' - "$BASE_IMAGE" >/dev/null
fi
echo "    $(docker image inspect -f '{{.Id}}' "$BASE_IMAGE" | cut -c1-19)"

echo "infra ready: docker, compose, registry $REGISTRY_ADDR, $BASE_IMAGE"
