#!/usr/bin/env bash
# Prepare, on a machine with package access, the few wheels that run_gpu_check.sh
# needs on a GPU machine that reaches nothing outside: ansible-core and
# nvidia-ml-py with their dependencies, for CPython 3.11, 3.12 and 3.13 on
# x86_64 Linux (ansible-core 2.19 needs Python >= 3.11 on the controller).
#
#   tests/gpu/prepare_wheels.sh            # -> .cache/gpu-wheels (git-ignored, about 10 MB)
#
# Then carry .cache/gpu-wheels to the GPU machine next to the checkout.
# Uses the venv's pip with the machine's own pip configuration (index, CA bundle).
# Environment: VENV (default <repo>/.venv), WHEELS (default <repo>/.cache/gpu-wheels).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
venv="${VENV:-$repo/.venv}"
wheels="${WHEELS:-$repo/.cache/gpu-wheels}"

# The versions pinned in requirements.txt, so the GPU run tests what CI tests.
pin() { grep -E "^$1==" "$repo/requirements.txt" | head -n1; }
packages=("$(pin ansible-core)" "$(pin nvidia-ml-py)")

mkdir -p "$wheels"
for version in 3.11 3.12 3.13; do
    "$venv/bin/python" -m pip download --quiet --disable-pip-version-check \
        --dest "$wheels" --only-binary=:all: \
        --implementation cp --python-version "$version" --abi "cp${version/./}" --abi abi3 --abi none \
        --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
        "${packages[@]}"
done
echo "prepare_wheels: $(find "$wheels" -name '*.whl' | wc -l) wheels in $wheels ($(du -sh "$wheels" | cut -f1))"
