#!/usr/bin/env bash
# Run `ansible-test sanity` over this collection for real, without Docker.
#
#   scripts/sanity.sh                      # every sanity test, Python 3.11
#   scripts/sanity.sh --test pep8 -v       # extra arguments go to ansible-test
#
# Why --venv and not --local: each sanity test needs its own pinned tools
# (pylint/astroid, pycodestyle, voluptuous, yamllint, antsibull-changelog, ...)
# that clash with this project's pins; --venv builds one cached virtualenv per
# test under ~/.ansible/test/venv, so the project's .venv stays untouched and a
# warm run reuses them (the cold run, ~3 min, is mostly those installs).
#
# Why a copy and not a symlink: ansible-test takes os.getcwd(), which resolves
# symlinks, and insists on .../ansible_collections/<ns>/<name>/. So the files git
# sees (tracked + untracked-not-ignored) are mirrored with rsync into
# .cache/sanity/ansible_collections/<ns>/<name> (an empty git repository of its
# own, see below); the dependency collections from the venv's `ansible` bundle
# are symlinked next to it. Results are copied back to tests/output/
# (git-ignored). Runs in one checkout take turns (flock on .cache/sanity/.lock).
#
# The sanity test for shell scripts needs the `shellcheck` program (Debian
# package of the same name); without it ansible-test only warns and skips it.
#
# Why the get-pip stand-in: ansible-test bootstraps pip in each venv with a
# script it downloads from a host that is out of reach here. We write a
# stand-in at the path it caches that script under; the stand-in uses ensurepip,
# which sets PIP_CONFIG_FILE=/dev/null, so the CA bundle is passed explicitly.
#
# Sanity exceptions: tests/sanity/ignore-2.19.txt, one line each in the form
#   plugins/modules/x.py validate-modules:some-code  # why it cannot be fixed
# (ansible-test rejects lines that hold only a comment).
#
# Environment: VENV (default <repo>/.venv), SANITY_PYTHON (default 3.11),
# SANITY_CA_BUNDLE (default: $PIP_CERT, $SSL_CERT_FILE or the Debian bundle).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
venv="${VENV:-$repo/.venv}"
python_version="${SANITY_PYTHON:-3.11}"
ca_bundle="${SANITY_CA_BUNDLE:-${PIP_CERT:-${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}}}"

log() { printf 'sanity: %s\n' "$*" >&2; }

if [[ ! -x "$venv/bin/ansible-test" ]]; then
    log "no ansible-test at $venv/bin/ansible-test (create the venv from requirements.txt first)"
    exit 1
fi
if ! git -C "$repo" rev-parse --git-dir >/dev/null 2>&1; then
    log "$repo is not a git checkout; the file list for the sanity copy comes from git"
    exit 1
fi

# Namespace, name and dependency namespaces come from galaxy.yml; the pip
# version comes from ansible-test's own source, so an ansible-core upgrade that
# moves the pin keeps working.
{
    read -r namespace name
    read -r pip_version
    read -r -a dependency_namespaces
} < <(
    "$venv/bin/python" - "$repo/galaxy.yml" <<'EOF'
import pathlib
import re
import sys

import ansible_test
import yaml

galaxy = yaml.safe_load(pathlib.Path(sys.argv[1]).read_text(encoding="utf-8"))
print(galaxy["namespace"], galaxy["name"])
source = pathlib.Path(ansible_test.__file__).parent / "_internal" / "python_requirements.py"
match = re.search(r"\bpip=['\"]([0-9.]+)['\"]", source.read_text(encoding="utf-8"))
if match is None:
    sys.exit(f"cannot find the pip version ansible-test bootstraps in {source}")
print(match.group(1))
print(" ".join(sorted({dep.split(".")[0] for dep in galaxy.get("dependencies") or {}})))
EOF
)

# 1. get-pip stand-in (same name ansible-test caches the downloaded script under).
cache_dir="$HOME/.ansible/test/cache"
get_pip="$cache_dir/get_pip_${pip_version//./_}.py"
marker="# ablage.ops get-pip stand-in, written by scripts/sanity.sh"
cert_args=""
if [[ -f "$ca_bundle" ]]; then
    cert_args="\"--cert\", \"$ca_bundle\", "
fi
stand_in="$(
    cat <<EOF
$marker
"""Bootstrap pip without the download host: ensurepip, then pip installs the pinned pip."""
import ensurepip
import subprocess
import sys

args = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
ensurepip.bootstrap(upgrade=True)
# ensurepip has set PIP_CONFIG_FILE=/dev/null in this process, so /etc/pip.conf is not read.
subprocess.check_call([sys.executable, "-m", "pip", "install", ${cert_args}*args])
EOF
)"
mkdir -p "$cache_dir"
if [[ ! -e "$get_pip" ]] || { head -n1 "$get_pip" | grep -qxF "$marker" && [[ "$(cat "$get_pip")" != "$stand_in" ]]; }; then
    printf '%s\n' "$stand_in" >"$get_pip"
    log "wrote pip $pip_version bootstrap stand-in: $get_pip"
elif ! head -n1 "$get_pip" | grep -qxF "$marker"; then
    log "keeping existing pip bootstrap script (not ours): $get_pip"
fi

# 2. Mirror the files git sees into <root>/ansible_collections/<ns>/<name>.
root="$repo/.cache/sanity"
dest="$root/ansible_collections/$namespace/$name"
mkdir -p "$dest"
exec 9>"$root/.lock"
if ! flock -n 9; then
    log "another sanity run holds $root/.lock; waiting"
    flock 9
fi
excludes="$(mktemp)"
trap 'rm -f "$excludes"' EXIT
{
    # Never mirror these, whatever .gitignore says; tests/output is ansible-test's own.
    printf '%s\n' /.git/ /.cache/ /.collections/ /.venv/ /tests/output/
    # Everything git ignores, anchored at the root; wildcard characters escaped.
    git -C "$repo" ls-files --others --ignored --exclude-standard --directory -z |
        tr '\0' '\n' | sed -e 's/[][*?\\]/\\&/g' -e 's|^|/|'
} >"$excludes"
rsync -a --delete --exclude-from="$excludes" "$repo/" "$dest/"
# ansible-test lists content with git when it finds a .git at or above the
# collection; above is this repo, which ignores .cache/ and so would list
# nothing. An empty repository in the copy makes it list the copy's files
# (untracked, minus the copied .gitignore), the same set git sees here.
if [[ ! -d "$dest/.git" ]]; then
    git init -q "$dest"
fi

# 3. Dependency collections (galaxy.yml dependencies) from the venv's bundle.
site_packages="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
for dep_ns in "${dependency_namespaces[@]}"; do
    [[ "$dep_ns" == "$namespace" ]] && continue
    src="$site_packages/ansible_collections/$dep_ns"
    if [[ ! -d "$src" ]]; then
        log "dependency namespace $dep_ns is not in $site_packages/ansible_collections"
        exit 1
    fi
    ln -sfnT "$src" "$root/ansible_collections/$dep_ns"
done

# 4. Run. PATH first names the venv so ansible-test builds its venvs from it.
log "ansible-test sanity --venv --python $python_version in $dest"
status=0
(
    cd "$dest"
    PATH="$venv/bin:$PATH" ansible-test sanity --venv --python "$python_version" "$@"
) || status=$?

# Reports back where people look for them; .tmp holds ansible-test's own venvs.
if [[ -d "$dest/tests/output" ]]; then
    mkdir -p "$repo/tests/output"
    rsync -a --exclude=/.tmp/ "$dest/tests/output/" "$repo/tests/output/"
fi
exit "$status"
