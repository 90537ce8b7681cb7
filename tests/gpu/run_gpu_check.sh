#!/usr/bin/env bash
# Run ablage.ops.gpu_check on a real NVIDIA GPU through ansible and print its JSON.
#
#   tests/gpu/run_gpu_check.sh                                   # default checks
#   tests/gpu/run_gpu_check.sh '{"expected_model": "H100|H200"}' # module args as JSON
#
# Three ad-hoc runs of `ansible localhost -m ablage.ops.gpu_check`:
#   1. the given args (default {}): must pass on a healthy GPU host;
#   2. an impossible model name: must fail AND still return every measurement;
#   3. only with GPU_CHECK_IMAGE set: the container check (docker run --gpus all
#      IMAGE nvidia-smi through the Docker API), needs the NVIDIA Container Toolkit.
# Then the module's numbers are compared with nvidia-smi's own. Exit code 0 only
# when run 1 passed, run 2 failed with data, (run 3 passed) and the numbers agree.
#
# Ansible: $ANSIBLE_BIN_DIR, else <repo>/.venv/bin, else `ansible` on PATH, else a
# throw-away venv installed offline from <repo>/.cache/gpu-wheels (made by
# tests/gpu/prepare_wheels.sh; a GPU machine without network gets it carried).
# --bootstrap forces that last way.
#
# Environment: OUT (results directory, default <repo>/.cache/gpu-check),
# GPU_CHECK_IMAGE, ANSIBLE_BIN_DIR, WHEELS.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
out="${OUT:-$repo/.cache/gpu-check}"
wheels="${WHEELS:-$repo/.cache/gpu-wheels}"
bootstrap=0
if [[ "${1:-}" == "--bootstrap" ]]; then
    bootstrap=1
    shift
fi
default_args='{}'
args="${1:-$default_args}"
mkdir -p "$out"
work="$(mktemp -d "${TMPDIR:-/tmp}/ablage-gpu-check.XXXXXX")"
trap 'rm -rf "$work"' EXIT

log() { printf 'run_gpu_check: %s\n' "$*" >&2; }

# --------------------------------------------------------------------------- ansible
bin_dir=""
if [[ "$bootstrap" == 0 ]]; then
    for candidate in "${ANSIBLE_BIN_DIR:-}" "$repo/.venv/bin" "$(dirname "$(command -v ansible 2>/dev/null || echo /nonexistent/x)")"; do
        if [[ -n "$candidate" && -x "$candidate/ansible" && -x "$candidate/python" ]] \
            && "$candidate/python" -c 'import pynvml' 2>/dev/null; then
            bin_dir="$candidate"
            break
        fi
    done
fi
if [[ -z "$bin_dir" ]]; then
    if [[ ! -d "$wheels" ]]; then
        log "no ansible with pynvml found and no wheelhouse at $wheels;"
        log "run tests/gpu/prepare_wheels.sh where packages can be installed and bring .cache/gpu-wheels along"
        exit 2
    fi
    python=""
    for candidate in python3.13 python3.12 python3.11 python3; do
        if command -v "$candidate" >/dev/null \
            && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            python="$(command -v "$candidate")"
            break
        fi
    done
    if [[ -z "$python" ]]; then
        log "ansible-core 2.19 needs Python >= 3.11 on the controller; none found on this machine"
        exit 2
    fi
    log "installing ansible-core and nvidia-ml-py offline from $wheels with $python"
    "$python" -m venv "$work/venv"
    "$work/venv/bin/python" -m pip install --quiet --no-index --find-links "$wheels" ansible-core nvidia-ml-py
    bin_dir="$work/venv/bin"
fi
log "ansible: $bin_dir/ansible ($("$bin_dir/ansible" --version | head -n1))"

# The checkout as the collection ablage.ops (the same link scripts/collection-path.sh makes).
mkdir -p "$repo/.collections/ansible_collections/ablage"
[[ -e "$repo/.collections/ansible_collections/ablage/ops" ]] \
    || ln -s ../../.. "$repo/.collections/ansible_collections/ablage/ops"

export ANSIBLE_COLLECTIONS_PATH="$repo/.collections"
export ANSIBLE_HOME="$work/ansible-home"
export ANSIBLE_LOCAL_TEMP="$work/ansible-tmp"
# The tree callback (part of ansible-core; the json one lives in ansible.posix, which a bare
# ansible-core lacks) writes each host's result as JSON into a directory. It is deprecated
# for ansible-core 2.23; requirements.txt pins 2.19.
export ANSIBLE_DEPRECATION_WARNINGS=False
export ANSIBLE_LOAD_CALLBACK_PLUGINS=1
export ANSIBLE_CALLBACKS_ENABLED=ansible.builtin.tree
export ANSIBLE_PYTHON_INTERPRETER="$bin_dir/python"
export ANSIBLE_LOCALHOST_WARNING=0
export ANSIBLE_INVENTORY_UNPARSED_WARNING=0

# Run the module once; write its result (not ansible's wrapper) to $out/$1.json.
gpu_check() {
    local name="$1" module_args="$2" rc=0
    ANSIBLE_CALLBACK_TREE_DIR="$work/tree-$name" \
        "$bin_dir/ansible" localhost -i localhost, -c local -m ablage.ops.gpu_check -a "$module_args" \
        >"$work/$name.stdout" 2>"$work/$name.stderr" || rc=$?
    "$bin_dir/python" - "$work/tree-$name/localhost" "$work/$name.stdout" "$out/$name.json" <<'EOF'
import json, pathlib, sys
tree, stdout, target = (pathlib.Path(p) for p in sys.argv[1:])
try:
    result = json.loads(tree.read_text(encoding="utf-8"))
except (OSError, ValueError):
    text = stdout.read_text(encoding="utf-8", errors="replace") if stdout.exists() else ""
    result = {"failed": True, "msg": "no module result from ansible", "stdout": text[-4000:]}
target.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n", encoding="utf-8")
EOF
    echo "===== gpu_check $name (ansible rc=$rc): $module_args"
    cat "$out/$name.json"
    echo
    if [[ -s "$work/$name.stderr" ]]; then
        sed 's/^/  stderr: /' "$work/$name.stderr" | tail -n 20
    fi
    return "$rc"
}

status=0
if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=index,name,memory.total,memory.used,driver_version --format=csv,noheader,nounits \
        >"$out/nvidia-smi.csv" 2>&1 || true
    echo "===== nvidia-smi"
    cat "$out/nvidia-smi.csv"
else
    log "nvidia-smi not found; the numbers cannot be cross-checked"
    : >"$out/nvidia-smi.csv"
fi

gpu_check pass "$args" || { log "run 1 (given args) failed"; status=1; }
if gpu_check fail '{"expected_model": "^no-such-gpu-model$"}'; then
    log "run 2 (impossible model) did not fail"
    status=1
fi
if [[ -n "${GPU_CHECK_IMAGE:-}" ]]; then
    gpu_check container "{\"container\": {\"image\": \"$GPU_CHECK_IMAGE\"}}" \
        || { log "run 3 (container check) failed"; status=1; }
fi

# Cross-check: the module and nvidia-smi must see the same GPUs; run 2 must carry the data.
"$bin_dir/python" - "$out" <<'EOF' || status=1
import csv, json, pathlib, sys

out = pathlib.Path(sys.argv[1])
passed = json.loads((out / "pass.json").read_text())
failed = json.loads((out / "fail.json").read_text())
problems = []
rows = [r for r in csv.reader((out / "nvidia-smi.csv").read_text().splitlines()) if len(r) >= 5]
if rows:
    if passed.get("device_count") != len(rows):
        problems.append(f"device_count {passed.get('device_count')} != nvidia-smi's {len(rows)}")
    for row, dev in zip(rows, passed.get("devices", [])):
        smi_name, smi_total_mib = row[1].strip(), int(row[2])
        if dev.get("name") != smi_name:
            problems.append(f"GPU {dev.get('index')}: name {dev.get('name')!r} != {smi_name!r}")
        total_mib = (dev.get("memory_total_bytes") or 0) // 2**20
        if abs(total_mib - smi_total_mib) > 1:
            problems.append(f"GPU {dev.get('index')}: {total_mib} MiB total != nvidia-smi's {smi_total_mib} MiB")
    if passed.get("driver_version") != rows[0][4].strip():
        problems.append(f"driver {passed.get('driver_version')} != nvidia-smi's {rows[0][4].strip()}")
if not failed.get("failed") or not failed.get("devices") or not failed.get("failed_checks"):
    problems.append("the failing run did not return its measurements")
summary = {
    "gpu_present": passed.get("gpu_present"),
    "device_count": passed.get("device_count"),
    "names": [d.get("name") for d in passed.get("devices", [])],
    "driver_version": passed.get("driver_version"),
    "cuda_version": passed.get("cuda_version"),
    "failed_checks_of_run_2": failed.get("failed_checks"),
    "cross_check_problems": problems,
}
print("===== summary")
print(json.dumps(summary, indent=2))
sys.exit(1 if problems else 0)
EOF
log "results in $out (exit $status)"
exit "$status"
