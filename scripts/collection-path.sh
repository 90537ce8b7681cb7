#!/usr/bin/env bash
# Make this checkout loadable as the collection named in galaxy.yml (ablage.ops)
# without copying it: .collections/ansible_collections/<namespace>/<name> is a
# relative symlink to the repository root. Idempotent.
#
# stdout (nothing else goes there), so callers can do either of:
#   eval "$(scripts/collection-path.sh)"                  # export ANSIBLE_COLLECTIONS_PATH=...
#   ANSIBLE_COLLECTIONS_PATH="$(scripts/collection-path.sh --value)" make-something
#
# The path is <repo>/.collections followed by the venv's site-packages, whose
# ansible_collections/ holds community.docker, community.postgresql,
# community.crypto from the pinned `ansible` bundle (Galaxy is out of reach).
#
# Environment: VENV (default <repo>/.venv).
set -euo pipefail

usage() {
    echo "usage: $0 [--export|--value]" >&2
    exit 2
}

mode="export"
case "${1:-}" in
    "" | --export) mode="export" ;;
    --value) mode="value" ;;
    -h | --help) usage ;;
    *) usage ;;
esac

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
venv="${VENV:-$repo/.venv}"

if [[ ! -x "$venv/bin/python" ]]; then
    echo "collection-path: no Python at $venv/bin/python (create the venv from requirements.txt first)" >&2
    exit 1
fi

# Namespace and name come from galaxy.yml so this keeps working if either changes.
read -r namespace name < <(
    "$venv/bin/python" - "$repo/galaxy.yml" <<'EOF'
import sys

import yaml

with open(sys.argv[1], encoding="utf-8") as handle:
    galaxy = yaml.safe_load(handle)
print(galaxy["namespace"], galaxy["name"])
EOF
)

site_packages="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"

ns_dir="$repo/.collections/ansible_collections/$namespace"
link="$ns_dir/$name"
# Relative, so the link survives moving or bind-mounting the checkout.
target="../../.."

mkdir -p "$ns_dir"
if [[ -L "$link" ]]; then
    if [[ "$(readlink "$link")" != "$target" ]]; then
        ln -sfn "$target" "$link"
    fi
elif [[ -e "$link" ]]; then
    echo "collection-path: $link exists and is not a symlink; remove it and rerun" >&2
    exit 1
else
    ln -s "$target" "$link"
fi

if [[ ! -f "$link/galaxy.yml" ]]; then
    echo "collection-path: $link does not resolve to the checkout" >&2
    exit 1
fi

value="$repo/.collections:$site_packages"
if [[ "$mode" == value ]]; then
    printf '%s\n' "$value"
else
    printf 'export ANSIBLE_COLLECTIONS_PATH=%q\n' "$value"
fi
