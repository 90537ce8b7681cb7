#!/usr/bin/env bash
# Prints the path of a kubectl, installing Debian's kubernetes-client when none is on PATH.
#
# Used by tests/integration/test_maintenance_toggle_ingress.py to talk to the Kubernetes
# stand-in with a real Kubernetes client, as the checklist's `kubectl annotate` does.
# Idempotent: a machine that has kubectl (any version >= 1.19) only answers its path.
# Only kubectl: no package of Debian 12 or 13 (nor PyPI or npm) ships a kube-apiserver.
set -euo pipefail

LOG_DIR=${ABLAGE_INFRA_LOGS:-/var/log/ablage-ops}

if ! command -v kubectl >/dev/null 2>&1; then
  mkdir -p "$LOG_DIR"
  [ "$(id -u)" -eq 0 ] || { echo "kubectl.sh: no kubectl on PATH; run as root to install kubernetes-client" >&2; exit 1; }
  {
    apt-get -o DPkg::Lock::Timeout=120 update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=120 install -y -qq --no-install-recommends kubernetes-client
  } >"$LOG_DIR/kubectl-install.log" 2>&1 || {
    echo "kubectl.sh: installing kubernetes-client failed, see $LOG_DIR/kubectl-install.log" >&2
    exit 1
  }
fi
command -v kubectl
