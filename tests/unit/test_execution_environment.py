"""execution-environment.yml builds an EE that holds what the roles and modules need.

``ansible-builder create`` writes the build context (Containerfile, _build/requirements.txt,
_build/bindep.txt, _build/requirements.yml, the collection's own files) without any container
runtime; the tests read what it wrote. What the EE must hold is derived from the code, not
listed by hand: the third-party imports of plugins/, the tools the pre-flight runs on the
controller (detect-secrets, the inventories' quality commands), the collections of
requirements.yml and galaxy.yml at the versions CI tests with, and this collection itself.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import typing as t
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

REPO = Path(__file__).resolve().parents[2]
EE_FILE = REPO / "execution-environment.yml"
VENV_BIN = Path(sys.executable).parent
SITE_PACKAGES = Path(yaml.__file__).resolve().parents[1]
BUNDLED = SITE_PACKAGES / "ansible_collections"
COLLECTION_DIRS = ("meta", "plugins", "roles", "playbooks")

# Import name -> distribution on PyPI, for the optional module dependencies of plugins/.
# A new third-party import in plugins/ fails test_module_dependencies_are_in_the_ee until it is mapped here.
DISTRIBUTION_OF_IMPORT = {
    "docker": "docker",
    "requests": "requests",
    "psycopg2": "psycopg2-binary",
    "pynvml": "nvidia-ml-py",
    "pglast": "pglast",
    "yaml": "pyyaml",
}
# Executable -> distribution, for the pre-flight's quality commands (run on the controller).
DISTRIBUTION_OF_TOOL = {
    "pytest": "pytest",
    "mypy": "mypy",
    "ruff": "ruff",
    "bandit": "bandit",
    "pip-audit": "pip-audit",
}
PUBLIC_REGISTRIES = ("docker.io", "quay.io", "registry.redhat.io", "ghcr.io", "gcr.io", "registry.access.redhat.com")


# --------------------------------------------------------------------------- helpers


def load_yaml(path: Path) -> t.Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def builder_create(ee_file: Path, context: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(VENV_BIN / "ansible-builder"),
            "create",
            "--file",
            str(ee_file),
            "--context",
            str(context),
            "--output-filename",
            "Containerfile",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def parse_pip_requirements(text: str) -> dict[str, Requirement]:
    requirements = {}
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            requirement = Requirement(line)
            requirements[requirement.name.lower()] = requirement
    return requirements


def pinned_version(requirement: Requirement) -> str | None:
    specs = list(requirement.specifier)
    if len(specs) == 1 and specs[0].operator == "==":
        return specs[0].version
    return None


def repo_pins() -> dict[str, str]:
    pins = {}
    for name, requirement in parse_pip_requirements((REPO / "requirements.txt").read_text(encoding="utf-8")).items():
        version = pinned_version(requirement)
        assert version, f"requirements.txt: {name} is not pinned with =="
        pins[name] = version
    return pins


def third_party_imports() -> dict[str, list[str]]:
    """Top-level names imported by plugins/ that are neither stdlib, Ansible nor this collection."""
    found: dict[str, list[str]] = {}
    for path in sorted((REPO / "plugins").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top in ("ansible", "ansible_collections", "__future__"):
                    continue
                found.setdefault(top, []).append(str(path.relative_to(REPO)))
    return found


def quality_tools() -> set[str]:
    """Distributions the quality commands of the production and staging inventories need."""
    needed = set()
    for inventory in ("production", "staging"):
        variables = load_yaml(REPO / "inventories" / inventory / "group_vars" / "ablage_app" / "vars.yml")
        for command in variables.get("preflight_quality_commands", []):
            tool = Path(str(command["argv"][0])).name
            assert tool in DISTRIBUTION_OF_TOOL, (
                f"inventories/{inventory}: map the quality tool {tool!r} to its package"
            )
            needed.add(DISTRIBUTION_OF_TOOL[tool])
            if any(str(arg).startswith("--cov") for arg in command["argv"]):
                needed.add("pytest-cov")
    return needed


def bundled_collection(fqcn: str) -> dict[str, t.Any]:
    namespace, name = fqcn.split(".")
    manifest = json.loads((BUNDLED / namespace / name / "MANIFEST.json").read_text(encoding="utf-8"))
    return dict(manifest["collection_info"])


def needed_collections() -> dict[str, SpecifierSet]:
    """Collections of requirements.yml and galaxy.yml, with their dependencies, and their ranges."""
    ranges: dict[str, SpecifierSet] = {}
    for entry in load_yaml(REPO / "requirements.yml")["collections"]:
        ranges[entry["name"]] = SpecifierSet(entry.get("version", ">=0"))
    for fqcn, version in (load_yaml(REPO / "galaxy.yml").get("dependencies") or {}).items():
        ranges[fqcn] = ranges.get(fqcn, SpecifierSet()) & SpecifierSet(version)
    pending = list(ranges)
    while pending:
        for fqcn, version in (bundled_collection(pending.pop()).get("dependencies") or {}).items():
            if fqcn not in ranges:
                ranges[fqcn] = SpecifierSet(version if version != "*" else ">=0")
                pending.append(fqcn)
    return ranges


def bindep_packages(text: str) -> dict[str, set[str]]:
    """Package name -> platforms it is listed for (``all`` without a selector)."""
    packages: dict[str, set[str]] = {}
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name, dummy, selector = line.partition(" ")
        platforms = set(re.findall(r"platform:(\w+)", selector)) or {"all"}
        packages.setdefault(name, set()).update(platforms)
    return packages


# --------------------------------------------------------------------------- the build context


@pytest.fixture(scope="module")
def context(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ctx = tmp_path_factory.mktemp("ee") / "context"
    proc = builder_create(EE_FILE, ctx)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "No matches for" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    return ctx


def test_definition_is_v3_with_the_base_image_as_build_argument(context: Path) -> None:
    definition = load_yaml(EE_FILE)
    assert definition["version"] == 3
    base = definition["images"]["base_image"]["name"]
    assert not base.startswith(PUBLIC_REGISTRIES), f"{base}: the base image must come from the internal registry"
    assert base.split("/")[0].endswith(".internal"), f"{base}: expected a host of the internal registry"
    containerfile = (context / "Containerfile").read_text(encoding="utf-8")
    assert f'ARG EE_BASE_IMAGE="{base}"' in containerfile
    assert "FROM $EE_BASE_IMAGE AS base" in containerfile


def test_ansible_core_and_runner_are_the_pinned_ones(context: Path) -> None:
    pins = repo_pins()
    containerfile = (context / "Containerfile").read_text(encoding="utf-8")
    refs = re.search(r'^ARG ANSIBLE_INSTALL_REFS="([^"]*)"', containerfile, re.MULTILINE)
    assert refs, "ansible-core and ansible-runner must be installed by the EE"
    assert set(refs.group(1).split()) == {
        f"ansible-core=={pins['ansible-core']}",
        f"ansible-runner=={pins['ansible-runner']}",
    }
    assert "RUN /output/scripts/check_ansible $PYCMD" in containerfile


def test_python_requirements_are_pinned_like_ci(context: Path) -> None:
    pins = repo_pins()
    ee = parse_pip_requirements((context / "_build" / "requirements.txt").read_text(encoding="utf-8"))
    assert ee, "the EE has no Python requirements"
    for name, requirement in ee.items():
        assert pinned_version(requirement), f"{name}: pin it with == (the EE must be reproducible)"
        assert name in pins, f"{name}: not in requirements.txt, so CI never tests with it"
        assert pinned_version(requirement) == pins[name], (
            f"{name}: EE {requirement} but requirements.txt =={pins[name]}"
        )
    assert "ansible-runner" not in ee
    assert "ansible-core" not in ee


def test_module_dependencies_are_in_the_ee(context: Path) -> None:
    ee = parse_pip_requirements((context / "_build" / "requirements.txt").read_text(encoding="utf-8"))
    imports = third_party_imports()
    assert {"docker", "psycopg2", "pynvml", "pglast"} <= set(imports), imports
    for name, where in imports.items():
        assert name in DISTRIBUTION_OF_IMPORT, f"plugins/ imports {name} ({where[0]}): map it to its package"
        assert DISTRIBUTION_OF_IMPORT[name] in ee, f"{DISTRIBUTION_OF_IMPORT[name]} (for {where[0]}) is not in the EE"


def test_controller_side_preflight_tools_are_in_the_ee(context: Path) -> None:
    ee = parse_pip_requirements((context / "_build" / "requirements.txt").read_text(encoding="utf-8"))
    config = (REPO / "roles" / "preflight" / "tasks" / "config.yml").read_text(encoding="utf-8")
    assert "detect_secrets" in config  # the secret scan runs `python -m detect_secrets` on the controller
    needed = {"detect-secrets"} | quality_tools()
    assert {"pip-audit", "pytest-cov"} <= needed
    assert sorted(needed - set(ee)) == []


def test_the_build_fails_early_without_the_module_dependencies(context: Path) -> None:
    containerfile = (context / "Containerfile").read_text(encoding="utf-8")
    smoke = next(line for line in containerfile.splitlines() if "import docker" in line)
    imported = set(re.findall(r"\w+", smoke.split("-c", 1)[1]))
    assert set(third_party_imports()) - {"requests"} <= imported
    assert "ansible-doc -t module ablage.ops." in smoke


def test_system_packages(context: Path) -> None:
    packages = bindep_packages((context / "_build" / "bindep.txt").read_text(encoding="utf-8"))
    assert {"rpm", "dpkg"} <= packages["git"]
    assert "rpm" in packages["openssh-clients"]
    assert "dpkg" in packages["openssh-client"]
    # pg_dump / pg_restore / psql
    assert "rpm" in packages["postgresql"]
    assert "dpkg" in packages["postgresql-client"]
    assert not {"docker", "docker-ce", "docker.io", "moby-engine"} & set(packages), (
        "compose runs on the host, not in the EE"
    )
    containerfile = (context / "Containerfile").read_text(encoding="utf-8")
    # The server is PostgreSQL 15 (tests/reference-app/compose.yml); EL 9's default stream is older.
    server = re.search(r"ablage/postgres:(\d+)", (REPO / "tests" / "reference-app" / "compose.yml").read_text())
    assert server
    assert f"module enable -y postgresql:{server.group(1)}" in containerfile
    assert containerfile.index("module enable") < containerfile.index("install-from-bindep")


def test_collections_are_the_ones_ci_tests_with(context: Path) -> None:
    ee = {entry["name"]: entry for entry in load_yaml(context / "_build" / "requirements.yml")["collections"]}
    for fqcn, allowed in needed_collections().items():
        assert fqcn in ee, f"{fqcn} is missing from the EE's collections"
        version = ee[fqcn]["version"].removeprefix("==")
        assert ee[fqcn]["version"] == f"=={version}", f"{fqcn}: pin it with =="
        assert version == bundled_collection(fqcn)["version"], f"{fqcn}: EE {version}, CI tests with the bundled one"
        assert version in allowed, f"{fqcn} {version} is outside {allowed} (requirements.yml / galaxy.yml)"


def test_this_collection_is_in_the_build_context(context: Path) -> None:
    build = context / "_build"
    (entry,) = [e for e in load_yaml(build / "requirements.yml")["collections"] if e.get("type") == "dir"]
    source = build / entry["name"]
    galaxy = load_yaml(source / "galaxy.yml")
    assert (galaxy["namespace"], galaxy["name"]) == ("ablage", "ops")
    assert galaxy["version"] == load_yaml(REPO / "galaxy.yml")["version"]
    for top in COLLECTION_DIRS:
        for path in (REPO / top).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                relative = path.relative_to(REPO)
                assert (source / relative).read_bytes() == path.read_bytes(), f"{relative} missing or different"


def test_the_dir_requirement_installs_as_ablage_ops(context: Path, tmp_path: Path) -> None:
    """What the galaxy stage does with it (cwd /build = _build), offline and without dependencies."""
    build = context / "_build"
    requirements = tmp_path / "requirements.yml"
    (entry,) = [e for e in load_yaml(build / "requirements.yml")["collections"] if e.get("type") == "dir"]
    requirements.write_text(yaml.safe_dump({"collections": [entry]}), encoding="utf-8")
    target = tmp_path / "collections"
    # Only the target path: with the checkout on the collections path (as under `make`),
    # ansible-galaxy would find ablage.ops "already installed" and install nothing.
    env = dict(os.environ, ANSIBLE_GALAXY_DISABLE_GPG_VERIFY="1", ANSIBLE_COLLECTIONS_PATH=str(target))
    install = subprocess.run(
        [
            str(VENV_BIN / "ansible-galaxy"),
            *("collection", "install", "--no-deps", "--offline"),
            *("-r", str(requirements), "-p", str(target)),
        ],
        cwd=build,
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    listed = subprocess.run(
        [str(VENV_BIN / "ansible-doc"), "-t", "module", "--list", "--json", "ablage.ops"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )
    assert listed.returncode == 0, listed.stdout + listed.stderr
    modules = {name.removeprefix("ablage.ops.") for name in json.loads(listed.stdout)}
    assert modules == {p.stem for p in (REPO / "plugins" / "modules").glob("*.py") if p.stem != "__init__"}
    installed = target / "ansible_collections" / "ablage" / "ops"
    assert (installed / "roles" / "preflight" / "meta" / "argument_specs.yml").is_file()
    assert not list(installed.rglob("__pycache__"))


# --------------------------------------------------------------------------- negative


def test_a_broken_definition_is_refused(tmp_path: Path) -> None:
    broken = tmp_path / "execution-environment.yml"
    definition = load_yaml(EE_FILE)
    definition["dependencies"]["python_interpreter"]["python_pth"] = "/usr/bin/python3.11"  # a typo
    broken.write_text(yaml.safe_dump(definition), encoding="utf-8")
    proc = builder_create(broken, tmp_path / "context")
    assert proc.returncode != 0
    assert "python_pth" in proc.stdout + proc.stderr


def test_missing_dependencies_are_caught(tmp_path: Path) -> None:
    ee_dir = tmp_path / "ee"
    shutil.copytree(REPO / "awx" / "ee", ee_dir)
    requirements = ee_dir / "requirements.txt"
    requirements.write_text(
        "\n".join(
            line for line in requirements.read_text().splitlines() if not line.startswith(("psycopg2", "pytest"))
        ),
        encoding="utf-8",
    )
    ee = parse_pip_requirements(requirements.read_text(encoding="utf-8"))
    assert DISTRIBUTION_OF_IMPORT["psycopg2"] not in ee
    assert sorted(({"detect-secrets"} | quality_tools()) - set(ee)) == ["pytest", "pytest-cov"]
    drifted = parse_pip_requirements("docker==7.0.0\n")
    assert pinned_version(drifted["docker"]) != repo_pins()["docker"]
