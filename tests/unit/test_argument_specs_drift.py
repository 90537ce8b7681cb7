"""Every role's public defaults and its meta/argument_specs.yml (entry point main) agree.

The idea of prometheus-community/ansible's ``lint_arguments_spec.sh``, one step
stricter: besides the same names on both sides, each documented default must be
the value ``defaults/main.yml`` really sets.

Rules, per role under ``roles/``:

* every public variable in ``defaults/main.yml`` (name not starting with ``_``;
  ``_<role>_*`` and ``__<role>_*`` are internal) is an option of the ``main``
  entry point, and the option's ``default`` equals the value in defaults;
* every option of ``main`` is set in defaults, unless it is ``required: true``
  (a required option cannot have a default).
"""

from __future__ import annotations

import textwrap
import typing as t
from pathlib import Path

import pytest
import yaml

ROLES_DIR = Path(__file__).resolve().parents[2] / "roles"
ENTRY_POINT = "main"
_MISSING = object()


class _AnsibleYamlLoader(yaml.SafeLoader):
    """SafeLoader that reads Ansible's own tags (!unsafe, !vault) as plain values."""


def _construct_tagged(loader: yaml.SafeLoader, _tag_suffix: str, node: yaml.Node) -> t.Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_mapping(t.cast(yaml.MappingNode, node), deep=True)


_AnsibleYamlLoader.add_multi_constructor("!", _construct_tagged)


def _load_yaml(path: Path) -> t.Any:
    # yaml.load with a SafeLoader subclass: only safe constructors plus the tag fallback above.
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_AnsibleYamlLoader)  # noqa: S506


def _first_existing(*candidates: Path) -> Path | None:
    return next((path for path in candidates if path.exists()), None)


def _load_defaults(role: Path) -> dict[str, t.Any] | None:
    """Variables of defaults/main.yml (or .yaml, or every file of a defaults/main/ directory)."""
    defaults_dir = role / "defaults"
    source = _first_existing(defaults_dir / "main.yml", defaults_dir / "main.yaml", defaults_dir / "main")
    if source is None:
        return None
    files = sorted(p for p in source.rglob("*") if p.suffix in {".yml", ".yaml"}) if source.is_dir() else [source]
    variables: dict[str, t.Any] = {}
    for path in files:
        data = _load_yaml(path) or {}
        if not isinstance(data, dict):
            raise TypeError(f"{path} must hold a mapping of variables, not {type(data).__name__}")
        variables.update(data)
    return variables


def _load_options(role: Path) -> dict[str, dict[str, t.Any]] | None:
    """Options of the main entry point, from meta/argument_specs.yml or meta/main.yml."""
    specs_file = _first_existing(role / "meta" / "argument_specs.yml", role / "meta" / "argument_specs.yaml")
    if specs_file is not None:
        specs = (_load_yaml(specs_file) or {}).get("argument_specs")
    else:
        meta_main = _first_existing(role / "meta" / "main.yml", role / "meta" / "main.yaml")
        specs = (_load_yaml(meta_main) or {}).get("argument_specs") if meta_main else None
    if specs is None:
        return None
    entry_point = specs.get(ENTRY_POINT) or {}
    return dict(entry_point.get("options") or {})


def find_drift(role: Path) -> list[str]:
    """Return one sentence per disagreement between the role's defaults and its argument specs."""
    name = role.name
    defaults = _load_defaults(role)
    options = _load_options(role)
    public = {var: value for var, value in (defaults or {}).items() if not str(var).startswith("_")}

    if options is None:
        if public:
            return [
                (
                    f"{name}: defaults/main.yml sets {', '.join(sorted(public))} but there is no "
                    f"meta/argument_specs.yml with an entry point '{ENTRY_POINT}'"
                )
            ]
        return []

    problems: list[str] = []
    for var, value in sorted(public.items()):
        if var not in options:
            problems.append(
                f"{name}: {var} is set in defaults/main.yml but not documented in "
                f"meta/argument_specs.yml ({ENTRY_POINT}.options)"
            )
            continue
        spec = options[var] or {}
        documented = spec.get("default", _MISSING)
        if documented is _MISSING:
            if value is not None:
                problems.append(
                    f"{name}: {var} defaults to {value!r} in defaults/main.yml but its argument spec has no default"
                )
        elif documented != value or type(documented) is not type(value):
            problems.append(
                f"{name}: {var} defaults to {value!r} in defaults/main.yml but to "
                f"{documented!r} in meta/argument_specs.yml"
            )

    for var, spec in sorted(options.items()):
        if var in public or (spec or {}).get("required", False):
            continue
        problems.append(
            f"{name}: {var} is documented in meta/argument_specs.yml but not set in "
            f"defaults/main.yml (set it there, or mark it required: true)"
        )
    return problems


def _roles(roles_dir: Path) -> list[Path]:
    if not roles_dir.is_dir():
        return []
    return sorted(path for path in roles_dir.iterdir() if path.is_dir() and not path.name.startswith("."))


def test_roles_defaults_match_argument_specs() -> None:
    # Passes trivially while roles/ is empty; one line per problem otherwise.
    problems = [problem for role in _roles(ROLES_DIR) for problem in find_drift(role)]
    assert not problems, "argument specs drifted from defaults:\n" + "\n".join(problems)


# The checker itself, on throwaway roles.


def _make_role(root: Path, defaults: str | None, specs: str | None, name: str = "demo") -> Path:
    role = root / "roles" / name
    if defaults is not None:
        (role / "defaults").mkdir(parents=True)
        (role / "defaults" / "main.yml").write_text(textwrap.dedent(defaults), encoding="utf-8")
    if specs is not None:
        (role / "meta").mkdir(parents=True)
        (role / "meta" / "argument_specs.yml").write_text(textwrap.dedent(specs), encoding="utf-8")
    role.mkdir(parents=True, exist_ok=True)
    return role


MATCHING_DEFAULTS = """\
    ---
    demo_port: 8080
    demo_url: "http://127.0.0.1:{{ demo_port }}"
    demo_tags: [a, b]
    demo_token: !unsafe "{{ not templated }}"
    demo_optional: null
    _demo_internal: 1
    __demo_registered: 2
"""

MATCHING_SPECS = """\
    ---
    argument_specs:
      main:
        short_description: Demo.
        options:
          demo_port: {type: int, default: 8080, description: Port.}
          demo_url: {type: str, default: "http://127.0.0.1:{{ demo_port }}", description: URL.}
          demo_tags: {type: list, elements: str, default: [a, b], description: Tags.}
          demo_token: {type: str, default: "{{ not templated }}", description: Token.}
          demo_optional: {type: str, description: Unset unless given.}
          demo_required: {type: str, required: true, description: Must be given.}
"""


def test_checker_accepts_matching_role(tmp_path: Path) -> None:
    role = _make_role(tmp_path, MATCHING_DEFAULTS, MATCHING_SPECS)
    assert find_drift(role) == []
    assert [problem for r in _roles(tmp_path / "roles") for problem in find_drift(r)] == []


def test_checker_reports_changed_default(tmp_path: Path) -> None:
    role = _make_role(tmp_path, MATCHING_DEFAULTS.replace("8080", "9090"), MATCHING_SPECS)
    assert find_drift(role) == [
        "demo: demo_port defaults to 9090 in defaults/main.yml but to 8080 in meta/argument_specs.yml"
    ]


def test_checker_reports_type_change(tmp_path: Path) -> None:
    role = _make_role(tmp_path, MATCHING_DEFAULTS.replace("8080", '"8080"'), MATCHING_SPECS)
    assert find_drift(role) == [
        "demo: demo_port defaults to '8080' in defaults/main.yml but to 8080 in meta/argument_specs.yml"
    ]


def test_checker_reports_undocumented_variable(tmp_path: Path) -> None:
    role = _make_role(tmp_path, MATCHING_DEFAULTS + "    demo_new_knob: true\n", MATCHING_SPECS)
    assert find_drift(role) == [
        "demo: demo_new_knob is set in defaults/main.yml but not documented in meta/argument_specs.yml (main.options)"
    ]


def test_checker_reports_documented_but_unset_option(tmp_path: Path) -> None:
    defaults = MATCHING_DEFAULTS.replace("    demo_tags: [a, b]\n", "")
    role = _make_role(tmp_path, defaults, MATCHING_SPECS)
    assert find_drift(role) == [
        (
            "demo: demo_tags is documented in meta/argument_specs.yml but not set in defaults/main.yml "
            "(set it there, or mark it required: true)"
        )
    ]


def test_checker_reports_missing_spec_default(tmp_path: Path) -> None:
    specs = MATCHING_SPECS.replace("type: int, default: 8080,", "type: int,")
    role = _make_role(tmp_path, MATCHING_DEFAULTS, specs)
    assert find_drift(role) == [
        "demo: demo_port defaults to 8080 in defaults/main.yml but its argument spec has no default"
    ]


def test_checker_reports_role_without_specs(tmp_path: Path) -> None:
    role = _make_role(tmp_path, MATCHING_DEFAULTS, None)
    problems = find_drift(role)
    assert len(problems) == 1
    assert "no meta/argument_specs.yml" in problems[0]


@pytest.mark.parametrize(
    ("defaults", "specs"),
    [
        (None, None),
        ("---\n_demo_internal_only: 1\n", None),
        (None, "---\nargument_specs:\n  main:\n    options:\n      demo_x: {type: str, required: true}\n"),
    ],
    ids=["bare-role", "internal-only", "required-only"],
)
def test_checker_accepts_roles_without_public_defaults(tmp_path: Path, defaults: str | None, specs: str | None) -> None:
    assert find_drift(_make_role(tmp_path, defaults, specs)) == []


def test_checker_reads_defaults_directory(tmp_path: Path) -> None:
    role = _make_role(tmp_path, None, MATCHING_SPECS)
    (role / "defaults" / "main").mkdir(parents=True)
    head, tail = MATCHING_DEFAULTS.split("    demo_tags: [a, b]\n")
    (role / "defaults" / "main" / "a.yml").write_text(textwrap.dedent(head), encoding="utf-8")
    (role / "defaults" / "main" / "b.yml").write_text("demo_tags: [a, b]\n" + textwrap.dedent(tail), encoding="utf-8")
    assert find_drift(role) == []
