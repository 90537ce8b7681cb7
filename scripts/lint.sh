#!/usr/bin/env bash
# Every lint gate of ablage.ops, in order; each runs even if an earlier one
# failed, then a one-line PASS/FAIL/SKIP summary per gate is printed and the
# exit status is non-zero if any gate failed.
#
#   scripts/lint.sh                  # all gates
#   scripts/lint.sh ruff mypy        # only the named gates
#   LINT_SKIP=sanity scripts/lint.sh # all but the named gates (shown as SKIP)
#
# Gates: yamllint ansible-lint ruff ruff-format mypy bandit changelog sanity
# Settings: .yamllint, .ansible-lint, pyproject.toml ([tool.ruff], [tool.mypy],
# [tool.bandit]), tests/sanity/ignore-2.19.txt.
# Environment: VENV (default <repo>/.venv); see scripts/sanity.sh for its own.
set -uo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
venv="${VENV:-$repo/.venv}"
cd "$repo" || exit 1

all_gates=(yamllint ansible-lint ruff ruff-format mypy bandit changelog sanity)
if (($# > 0)); then
    gates=("$@")
    for gate in "${gates[@]}"; do
        if [[ " ${all_gates[*]} " != *" $gate "* ]]; then
            echo "lint: unknown gate '$gate' (known: ${all_gates[*]})" >&2
            exit 2
        fi
    done
else
    gates=("${all_gates[@]}")
fi
lint_skip="${LINT_SKIP:-}"
skip=" ${lint_skip//,/ } "

if [[ ! -x "$venv/bin/python" ]]; then
    echo "lint: no venv at $venv (create it from requirements.txt first)" >&2
    exit 2
fi
# No colour codes in logs (ansible-lint and rich emit them even into files).
if [[ ! -t 1 ]]; then
    export NO_COLOR=1
fi
# The venv's tools first: ansible-lint looks its helpers up on PATH.
export PATH="$venv/bin:$PATH"
if ! collections_export="$(bash "$repo/scripts/collection-path.sh")"; then
    echo "lint: scripts/collection-path.sh failed" >&2
    exit 2
fi
eval "$collections_export"
export ANSIBLE_COLLECTIONS_PATH

collection_name="$(python - "$repo/galaxy.yml" <<'EOF'
import sys

import yaml

with open(sys.argv[1], encoding="utf-8") as handle:
    galaxy = yaml.safe_load(handle)
print(f"{galaxy['namespace']}.{galaxy['name']}")
EOF
)" || exit 2

# True when plugins/ holds Python files (a fresh checkout may have none yet).
have_plugin_python() {
    [[ -d plugins ]] && [[ -n "$(find plugins -name '*.py' -print -quit)" ]]
}

# Runs one gate; returns 0 (pass), 3 (nothing to check, shown as SKIP) or
# anything else (fail).
run_gate() {
    case "$1" in
        yamllint) yamllint --strict . ;;
        ansible-lint) ansible-lint ;;
        ruff) ruff check . ;;
        ruff-format) ruff format --check --diff . ;;
        mypy)
            if ! have_plugin_python; then
                echo "no Python files under plugins/"
                return 3
            fi
            # As the import name, through .collections (see [tool.mypy] in pyproject.toml).
            mypy -p "ansible_collections.${collection_name}.plugins"
            ;;
        bandit)
            if ! have_plugin_python; then
                echo "no Python files under plugins/"
                return 3
            fi
            bandit -c pyproject.toml -r plugins/ -q
            ;;
        # Fragments valid (CHANGELOG.rst: antsibull-changelog release --version X [--update-existing]).
        # antsibull-changelog exits 3 on findings, which means SKIP here: any failure is 1.
        changelog)
            antsibull-changelog lint && antsibull-changelog lint-changelog-yaml changelogs/changelog.yaml || return 1
            ;;
        sanity) bash "$repo/scripts/sanity.sh" ;;
    esac
}

declare -a summary=()
failed=0
for gate in "${gates[@]}"; do
    if [[ "$skip" == *" $gate "* ]]; then
        summary+=("SKIP  $gate (LINT_SKIP)")
        continue
    fi
    printf '\n==> %s\n' "$gate"
    start=$SECONDS
    run_gate "$gate"
    rc=$?
    elapsed=$((SECONDS - start))
    case "$rc" in
        0) summary+=("PASS  $gate (${elapsed}s)") ;;
        3) summary+=("SKIP  $gate (nothing to check)") ;;
        *)
            summary+=("FAIL  $gate (exit $rc, ${elapsed}s)")
            failed=1
            ;;
    esac
done

printf '\n==> lint summary\n'
printf '%s\n' "${summary[@]}"
exit "$failed"
