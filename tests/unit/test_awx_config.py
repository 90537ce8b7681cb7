"""The AWX configuration as code (awx/) is what AWX accepts and what the playbooks need.

* Survey specs (awx/surveys/*.json) pass the checks AWX makes when a survey is saved
  (``JobTemplateSurveySpec._validate_spec_data`` in awx/api/views/__init__.py) and when a job
  is launched (``SurveyJobTemplateMixin._survey_element_validation`` in
  awx/main/models/mixins.py, which AWX also applies to each default: a default that fails it is
  silently dropped, so here it is an error).
* Every survey variable is an option of a role the template's playbook runs (or a variable the
  playbook itself reads that a role of this collection declares), with a question type, choices
  and default that fit its argument spec; free-text notes variables are the only exception.
* Every required role option that neither the inventory nor the playbook provides is asked.
* awx/configure.yml passes ``ansible-playbook --syntax-check``, uses only options the awx.awx
  modules document, keeps secrets out of the log, and every job template's playbook exists.
* awx/configure.yml really runs: against a fake of AWX's REST API on 127.0.0.1 (the endpoints
  the awx.awx modules call, surveys validated on save as AWX does) it creates every object with
  the right fields and links, a second run changes nothing, and a survey AWX refuses stops it.

Negative tests feed broken specs to the same checks, so they are known to fail.
"""

from __future__ import annotations

import ast
import copy
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import typing as t
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from ansible.module_utils.parsing.convert_bool import boolean

REPO = Path(__file__).resolve().parents[2]
AWX_DIR = REPO / "awx"
SURVEYS = AWX_DIR / "surveys"
CONFIGURE = AWX_DIR / "configure.yml"
CONTROLLER_VARS = AWX_DIR / "vars" / "controller.yml"
VENV_BIN = Path(sys.executable).parent
SITE_PACKAGES = Path(yaml.__file__).resolve().parents[1]
AWX_COLLECTION = SITE_PACKAGES / "ansible_collections" / "awx" / "awx"

# awx.main.constants.SURVEY_TYPE_MAPPING (AWX 24): the question types and the Python type of their defaults.
SURVEY_TYPE_MAPPING: dict[str, type | tuple[type, ...]] = {
    "text": str,
    "textarea": str,
    "password": str,
    "multiplechoice": str,
    "multiselect": str,
    "integer": int,
    "float": (float, int),
}
TEMPLATE_NAMES = {"Ablage deploy", "Ablage preflight", "Ablage verify", "Ablage rollback"}
# Free-text variables: named *_note / *_notes so nobody mistakes them for settings.
NOTES_VARIABLE = re.compile(r"^[a-z][a-z0-9_]*_notes?$")
# Notes no playbook reads yet: the answer stays in the AWX job's extra vars (the job record).
NOTES_NOT_READ_BY_A_PLAYBOOK = {"deploy_notes"}
# Set by the playbooks themselves (playbooks/tasks/api_login.yml logs in), so never asked.
# The API tokens come from playbooks/tasks/api_login.yml; hooks_point is set by each call of the hooks role.
PROVIDED_BY_PLAYBOOKS = {"ablage_admin_token", "ablage_user_token", "hooks_point"}
# Variables of configure.yml that hold secrets (controller_* reach the modules through module_defaults,
# whose awx.awx options are no_log themselves).
SECRET_VARIABLE = re.compile(
    r"\b(ablage_awx_vault_password|ablage_awx_ssh_private_key|ablage_awx_ssh_key_unlock"
    r"|controller_password|controller_oauthtoken)\b"
)


# --------------------------------------------------------------------------- loading


def load_yaml(path: Path) -> t.Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def controller_vars() -> dict[str, t.Any]:
    data = load_yaml(CONTROLLER_VARS)
    assert isinstance(data, dict)
    return data


def job_templates() -> list[dict[str, t.Any]]:
    return list(controller_vars()["ablage_awx_job_templates"])


def load_survey(name: str) -> dict[str, t.Any]:
    data = json.loads((SURVEYS / name).read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def role_specs() -> dict[str, dict[str, dict[str, t.Any]]]:
    """Options of the ``main`` entry point of every role, by role name."""
    specs = {}
    for path in sorted((REPO / "roles").glob("*/meta/argument_specs.yml")):
        specs[path.parts[-3]] = load_yaml(path)["argument_specs"]["main"]["options"]
    return specs


def _role_name(value: t.Any) -> str | None:
    name = value.get("name") or value.get("role") if isinstance(value, dict) else value
    if not isinstance(name, str):
        return None
    return name.removeprefix("ablage.ops.")


def _walk_tasks(tasks: list[t.Any] | None, found: set[str]) -> None:
    for task in tasks or []:
        if not isinstance(task, dict):
            continue
        for key in ("ansible.builtin.import_role", "ansible.builtin.include_role", "import_role", "include_role"):
            if key in task and (name := _role_name(task[key])):
                found.add(name)
        for key in ("block", "rescue", "always"):
            _walk_tasks(task.get(key), found)


def playbook_roles(playbook: Path) -> set[str]:
    """Roles a playbook runs: play roles, import/include_role at any block depth, imported playbooks."""
    found: set[str] = set()
    for play in load_yaml(playbook) or []:
        for key in ("ansible.builtin.import_playbook", "import_playbook"):
            if key in play:
                found |= playbook_roles(playbook.parent / play[key])
        for role in play.get("roles") or []:
            if name := _role_name(role):
                found.add(name)
        for key in ("pre_tasks", "tasks", "post_tasks", "handlers"):
            _walk_tasks(play.get(key), found)
    return found


def playbook_text(playbook: Path) -> str:
    """The playbook with the playbooks it imports and the task files it imports."""
    text = playbook.read_text(encoding="utf-8")
    for play in load_yaml(playbook) or []:
        for key in ("ansible.builtin.import_playbook", "import_playbook"):
            if key in play:
                text += playbook_text(playbook.parent / play[key])
    for tasks_file in re.findall(r"import_tasks:\s*(\S+\.ya?ml)", text):
        path = playbook.parent / tasks_file
        if path.exists():
            text += path.read_text(encoding="utf-8")
    return text


class _VaultLoader(yaml.SafeLoader):
    """Reads inline-encrypted values (!vault) as opaque strings: only the names matter here."""


_VaultLoader.add_constructor("!vault", lambda loader, node: loader.construct_scalar(node))


def inventory_vars(inventory: str) -> set[str]:
    names: set[str] = set()
    for path in (REPO / "inventories" / inventory / "group_vars").rglob("*.yml"):
        names |= set(yaml.load(path.read_text(encoding="utf-8"), Loader=_VaultLoader) or {})  # noqa: S506
    return names


# --------------------------------------------------------------------------- AWX's survey rules


def awx_spec_errors(spec: t.Any) -> list[str]:
    """What AWX answers a POST of this survey spec with (400 errors), plus defaults AWX would drop.

    Mirrors JobTemplateSurveySpec._validate_spec_data: AWX stops at the first error of a
    question; this returns every error so that one run shows them all.
    """
    errors: list[str] = []
    if not isinstance(spec, dict):
        return ["survey spec is not a JSON object"]
    for field, expected, label in (("name", str, "string"), ("description", str, "string"), ("spec", list, "list")):
        if field not in spec:
            errors.append(f"Field '{field}' is missing from survey spec.")
        elif not isinstance(spec[field], expected):
            errors.append(f"Expected {label} for field '{field}', received {type(spec[field]).__name__} type.")
    if isinstance(spec.get("spec"), list) and not spec["spec"]:
        errors.append("'spec' doesn't contain any items.")
    if errors:
        return errors
    variables: set[str] = set()
    for idx, item in enumerate(spec["spec"]):
        if not isinstance(item, dict):
            errors.append(f"Survey question {idx} is not a json object.")
            continue
        errors.extend(_awx_question_errors(idx, item, variables))
    return errors


def _awx_question_errors(idx: int, item: dict[str, t.Any], variables: set[str]) -> list[str]:
    for field in ("type", "question_name", "variable", "required"):
        if field not in item:
            return [f"'{field}' missing from survey question {idx}"]
        expected: type = bool if field == "required" else str
        if not isinstance(item[field], expected):
            return [f"'{field}' in survey question {idx} expected to be {expected.__name__}."]
    if item["variable"] in variables:
        return [f"'variable' '{item['variable']}' duplicated in survey question {idx}."]
    variables.add(item["variable"])
    qtype = item["type"]
    if qtype not in SURVEY_TYPE_MAPPING:
        return [f"'{qtype}' in survey question {idx} is not one of '{', '.join(SURVEY_TYPE_MAPPING)}'."]
    default = item.get("default")
    if "default" in item and default != "" and not isinstance(default, SURVEY_TYPE_MAPPING[qtype]):
        return [f"Default value {default!r} in survey question {idx} expected to be {qtype}."]
    for key in ("min", "max"):
        # bool is an int to Python; AWX's JSON parser would never give one here, so refuse it too.
        if item.get(key) is not None and (not isinstance(item[key], int) or isinstance(item[key], bool)):
            return [f"The {key} limit in survey question {idx} expected to be integer."]
    errors: list[str] = []
    if qtype in ("multiplechoice", "multiselect"):
        errors.extend(_awx_choice_errors(idx, item))
    if "default" in item and default not in ("", None):
        # What AWX does with the default at launch; a failing default is dropped without a word.
        errors.extend(f"default of question {idx}: {e}" for e in awx_answer_errors(item, {item["variable"]: default}))
    return errors


def _choice_list(item: dict[str, t.Any]) -> list[str]:
    choices = item.get("choices", [])
    if isinstance(choices, str):
        return [c for c in choices.splitlines() if c.strip()]
    return list(choices)


def _awx_choice_errors(idx: int, item: dict[str, t.Any]) -> list[str]:
    if "choices" not in item:
        return [f"Survey question {idx} of type {item['type']} must specify choices."]
    if not isinstance(item["choices"], (str, list)):
        return [f"choices of survey question {idx} must be a list or a newline-separated string."]
    choices = _choice_list(item)
    errors = []
    if not choices or not all(isinstance(c, str) and c.strip() for c in choices):
        errors.append(f"Survey question {idx}: choices must be non-empty strings.")
    if len(set(choices)) != len(choices):
        errors.append(f"Survey question {idx}: duplicate choices {choices}.")
    if "default" in item and item["default"] not in ("", None):
        default = item["default"]
        defaults = [d for d in default.splitlines() if d.strip()] if isinstance(default, str) else list(default)
        if item["type"] == "multiplechoice" and len(defaults) > 1:
            errors.append("Multiple Choice (Single Select) can only have one default value.")
        if any(d not in choices for d in defaults):
            errors.append("Default choice must be answered from the choices listed.")
    return errors


def awx_answer_errors(item: dict[str, t.Any], data: dict[str, t.Any]) -> list[str]:
    """SurveyJobTemplateMixin._survey_element_validation: the check of one answer at launch."""
    var = item["variable"]
    if var not in data:
        return [f"'{var}' value missing"] if item["required"] else []
    value = data[var]
    qtype = item["type"]
    if qtype in ("text", "textarea", "password"):
        if not isinstance(value, str):
            return [f"Value {value!r} for '{var}' expected to be a string."]
        errors = []
        if item.get("min") not in ("", None) and len(value) < int(item["min"]):
            errors.append(f"'{var}' value {value!r} is too small (length must be at least {item['min']}).")
        if item.get("max") not in ("", None) and len(value) > int(item["max"]):
            errors.append(f"'{var}' value {value!r} is too large (must be no more than {item['max']}).")
        return errors
    if qtype in ("integer", "float"):
        numeric = (int,) if qtype == "integer" else (int, float)
        if not isinstance(value, numeric) or isinstance(value, bool):
            return [f"Value {value!r} for '{var}' expected to be {qtype}."]
        errors = []
        if item.get("min") not in ("", None) and value < item["min"]:
            errors.append(f"'{var}' value {value} is too small (must be at least {item['min']}).")
        if item.get("max") not in ("", None) and value > item["max"]:
            errors.append(f"'{var}' value {value} is too large (must be no more than {item['max']}).")
        return errors
    choices = _choice_list(item)
    if qtype == "multiselect":
        if not isinstance(value, list):
            return [f"'{var}' value is expected to be a list."]
        return [f"Value {v!r} for '{var}' expected to be one of {choices}." for v in value if v not in choices]
    if value not in choices:
        return [f"Value {value!r} for '{var}' expected to be one of {choices}."]
    return []


def house_rule_errors(spec: dict[str, t.Any]) -> list[str]:
    """Our own rules on top of AWX's: descriptions, sane names and limits."""
    errors = []
    if not spec.get("name") or not spec.get("description"):
        errors.append("the survey needs a name and a description")
    for item in spec.get("spec", []):
        var = item.get("variable", "?")
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", var):
            errors.append(f"{var}: not a valid Ansible variable name")
        if not item.get("question_description"):
            errors.append(f"{var}: question_description is empty")
        if item.get("type") == "password":
            errors.append(f"{var}: secrets belong in AWX credentials, not in surveys")
        lo, hi = item.get("min"), item.get("max")
        if isinstance(lo, int) and isinstance(hi, int) and lo > hi:
            errors.append(f"{var}: min {lo} > max {hi}")
        if item.get("type") in ("text", "textarea") and hi is None:
            errors.append(f"{var}: free text needs a max length")
    return errors


# --------------------------------------------------------------------------- survey vs. roles


def _bool_choice_errors(var: str, item: dict[str, t.Any], option: dict[str, t.Any]) -> list[str]:
    if item["type"] != "multiplechoice":
        return [f"{var}: a bool option needs a multiplechoice question, not {item['type']}"]
    errors = []
    values = []
    for choice in _choice_list(item):
        try:
            values.append(boolean(choice, strict=True))
        except TypeError:
            errors.append(f"{var}: choice {choice!r} is not a boolean Ansible understands")
    if sorted(set(values)) != [False, True]:
        errors.append(f"{var}: choices must offer both true and false, got {_choice_list(item)}")
    if (
        "default" in item
        and "default" in option
        and not errors
        and boolean(item["default"], strict=True) != bool(option["default"])
    ):
        errors.append(f"{var}: default {item['default']!r} differs from the role's default {option['default']!r}")
    return errors


def option_fit_errors(var: str, item: dict[str, t.Any], option: dict[str, t.Any]) -> list[str]:
    """Does the question fit the argument spec of the option it sets?"""
    kind = option.get("type", "str")
    qtype = item["type"]
    if kind == "bool":
        return _bool_choice_errors(var, item, option)
    errors = []
    allowed = {"str": {"text", "textarea", "multiplechoice"}, "path": {"text"}, "int": {"integer"}}
    allowed["float"] = {"float", "integer"}
    allowed["list"] = {"multiselect"}
    if qtype not in allowed.get(kind, set()):
        errors.append(f"{var}: question type {qtype} does not fit option type {kind}")
    if "choices" in option:
        if qtype != "multiplechoice":
            errors.append(f"{var}: the option has choices {option['choices']}; ask it as multiplechoice")
        elif sorted(_choice_list(item)) != sorted(str(c) for c in option["choices"]):
            errors.append(f"{var}: choices {_choice_list(item)} differ from the argument spec's {option['choices']}")
    if "default" in item and "default" in option and item["default"] != option["default"]:
        errors.append(f"{var}: default {item['default']!r} differs from the role's default {option['default']!r}")
    if option.get("required") and not item["required"]:
        errors.append(f"{var}: required by the role, so the question must be required")
    return errors


def survey_variable_errors(playbook: Path, survey: dict[str, t.Any]) -> list[str]:
    specs = role_specs()
    runs = playbook_roles(playbook)
    text = playbook_text(playbook)
    errors = []
    for item in survey["spec"]:
        var = item["variable"]
        if NOTES_VARIABLE.match(var):
            if item["type"] not in ("text", "textarea"):
                errors.append(f"{var}: a notes variable must be free text (text or textarea)")
            if var not in text and var not in NOTES_NOT_READ_BY_A_PLAYBOOK:
                errors.append(f"{var}: no playbook reads it; list it in NOTES_NOT_READ_BY_A_PLAYBOOK or use it")
            continue
        declared_by_run = [role for role in sorted(runs) if var in specs.get(role, {})]
        declared_anywhere = [role for role in sorted(specs) if var in specs[role]]
        if declared_by_run:
            roles = declared_by_run
        elif declared_anywhere and re.search(rf"\b{re.escape(var)}\b", text):
            roles = declared_anywhere  # read by the playbook itself, e.g. deploy_lock_break in rollback.yml
        else:
            errors.append(
                f"{var}: not an option of the roles {sorted(runs)} that {playbook.name} runs, "
                "nor read by the playbook (and declared by a role)"
            )
            continue
        for role in roles:
            errors.extend(f"[{role}] {e}" for e in option_fit_errors(var, item, specs[role][var]))
    return errors


def missing_required_errors(playbook: Path, survey: dict[str, t.Any] | None, inventory: str) -> list[str]:
    """Required options of the roles the playbook runs that nothing but the survey can give."""
    specs = role_specs()
    asked = {item["variable"]: item for item in (survey or {}).get("spec", [])}
    have = inventory_vars(inventory) | PROVIDED_BY_PLAYBOOKS
    errors = []
    for role in sorted(playbook_roles(playbook)):
        for name, option in specs.get(role, {}).items():
            if option.get("required") and name not in have:
                if name not in asked:
                    errors.append(
                        f"{playbook.name}: {name} (required by role {role}) is neither in the inventory nor asked"
                    )
                elif not asked[name]["required"]:
                    errors.append(f"{playbook.name}: {name} (required by role {role}) is asked, but as optional")
    return errors


# --------------------------------------------------------------------------- tests: surveys


SURVEY_FILES = sorted(p.name for p in SURVEYS.glob("*.json"))


def test_every_template_has_its_survey_file_and_no_file_is_orphaned() -> None:
    used = {tpl["survey"] for tpl in job_templates() if tpl["survey"]}
    assert {tpl["name"] for tpl in job_templates()} == TEMPLATE_NAMES
    assert used == set(SURVEY_FILES), f"surveys in use {sorted(used)}, files {SURVEY_FILES}"


@pytest.mark.parametrize("name", SURVEY_FILES)
def test_survey_passes_awx_validation(name: str) -> None:
    spec = load_survey(name)
    assert awx_spec_errors(spec) == []
    assert house_rule_errors(spec) == []


@pytest.mark.parametrize("template", [tpl for tpl in job_templates() if tpl["survey"]], ids=lambda tpl: tpl["name"])
def test_survey_variables_are_role_options_that_fit(template: dict[str, t.Any]) -> None:
    errors = survey_variable_errors(REPO / template["playbook"], load_survey(template["survey"]))
    assert errors == []


@pytest.mark.parametrize("inventory", ["production", "staging"])
@pytest.mark.parametrize("template", job_templates(), ids=lambda tpl: tpl["name"])
def test_survey_asks_what_only_the_launcher_can_give(template: dict[str, t.Any], inventory: str) -> None:
    survey = load_survey(template["survey"]) if template["survey"] else None
    assert missing_required_errors(REPO / template["playbook"], survey, inventory) == []


def test_the_version_hint_matches_real_release_tags() -> None:
    for name in ("deploy.json", "preflight.json"):
        question = next(q for q in load_survey(name)["spec"] if q["variable"] == "ablage_version")
        found = re.search(r"(\^\S+\$)", question["question_description"])
        assert found, f"{name}: the description of ablage_version carries no ^...$ pattern"
        pattern = re.compile(found.group(1))
        for good in ("1.0.0", "1.1.0", "1.2.0-broken", "1.2.0-rc1", "10.20.30"):
            assert pattern.match(good), good
            assert awx_answer_errors(question, {"ablage_version": good}) == [], good
        for bad in ("1.1", "latest", "v1.1.0", "1.1.0 "):
            assert not pattern.match(bad), bad
        assert awx_answer_errors(question, {}) == ["'ablage_version' value missing"]


def test_every_answer_awx_accepts_is_one_the_roles_accept() -> None:
    """Each choice of every multiplechoice question passes AWX and the option's type and choices."""
    specs = role_specs()
    for name in SURVEY_FILES:
        for item in load_survey(name)["spec"]:
            if item["type"] != "multiplechoice":
                continue
            options = [spec[item["variable"]] for spec in specs.values() if item["variable"] in spec]
            assert options, item["variable"]
            for choice in _choice_list(item):
                assert awx_answer_errors(item, {item["variable"]: choice}) == []
                for option in options:
                    if option.get("type") == "bool":
                        boolean(choice, strict=True)
                    elif "choices" in option:
                        assert choice in option["choices"]


# --------------------------------------------------------------------------- tests: negative


def _deploy_survey() -> dict[str, t.Any]:
    return copy.deepcopy(load_survey("deploy.json"))


def _question(spec: dict[str, t.Any], variable: str) -> dict[str, t.Any]:
    return next(q for q in spec["spec"] if q["variable"] == variable)


BROKEN_SPECS: list[tuple[str, t.Callable[[dict[str, t.Any]], None], str]] = [
    ("no description", lambda s: s.pop("description"), "Field 'description' is missing"),
    ("empty spec", lambda s: s.update(spec=[]), "doesn't contain any items"),
    ("spec not a list", lambda s: s.update(spec={}), "Expected list for field 'spec'"),
    ("no required", lambda s: s["spec"][0].pop("required"), "'required' missing from survey question 0"),
    ("required as string", lambda s: s["spec"][0].update(required="true"), "'required' in survey question 0"),
    ("unknown type", lambda s: s["spec"][0].update(type="checkbox"), "'checkbox' in survey question 0 is not one of"),
    ("duplicate variable", lambda s: s["spec"].append(copy.deepcopy(s["spec"][0])), "duplicated in survey question"),
    ("min as string", lambda s: s["spec"][0].update(min="5"), "min limit in survey question 0 expected to be integer"),
    ("default too long", lambda s: s["spec"][0].update(default="1.1.0" * 20), "too large"),
    ("default too short", lambda s: s["spec"][0].update(default="1.1"), "too small"),
    (
        "default of wrong type",
        lambda s: _question(s, "deploy_lock_break").update(default=False),
        "expected to be multiplechoice",
    ),
    (
        "choices missing",
        lambda s: _question(s, "deploy_lock_break").pop("choices"),
        "must specify choices",
    ),
    (
        "default not a choice",
        lambda s: _question(s, "deploy_lock_break").update(default="maybe"),
        "Default choice must be answered from the choices listed",
    ),
    (
        "two defaults for a single choice",
        lambda s: _question(s, "deploy_lock_break").update(default="no\nyes"),
        "can only have one default value",
    ),
]


@pytest.mark.parametrize(("mutate", "expected"), [pytest.param(m, e, id=n) for n, m, e in BROKEN_SPECS])
def test_a_broken_spec_is_refused(mutate: t.Callable[[dict[str, t.Any]], None], expected: str) -> None:
    spec = _deploy_survey()
    mutate(spec)
    errors = awx_spec_errors(spec)
    assert any(expected in error for error in errors), errors


BROKEN_VARIABLES: list[tuple[str, t.Callable[[dict[str, t.Any]], None], str]] = [
    (
        "typo in a variable",
        lambda s: _question(s, "deploy_lock_break").update(variable="deploy_lock_brake"),
        "not an option",
    ),
    (
        "choice that is no boolean",
        lambda s: _question(s, "deploy_lock_break").update(choices=["no", "maybe"]),
        "'maybe' is not a boolean",
    ),
    (
        "only one boolean value",
        lambda s: _question(s, "deploy_lock_break").update(choices=["no", "false"], default="no"),
        "must offer both true and false",
    ),
    (
        "default that the role does not have",
        lambda s: _question(s, "deploy_allow_destructive_migration").update(default="yes"),
        "differs from the role's default",
    ),
    (
        "bool as text",
        lambda s: _question(s, "deploy_lock_break").update(type="text"),
        "needs a multiplechoice question",
    ),
    ("notes as a choice", lambda s: _question(s, "deploy_notes").update(type="multiplechoice"), "must be free text"),
    ("version optional", lambda s: _question(s, "ablage_version").update(required=False), "must be required"),
]


@pytest.mark.parametrize(("mutate", "expected"), [pytest.param(m, e, id=n) for n, m, e in BROKEN_VARIABLES])
def test_a_survey_that_does_not_fit_the_roles_is_refused(
    mutate: t.Callable[[dict[str, t.Any]], None], expected: str
) -> None:
    spec = _deploy_survey()
    mutate(spec)
    errors = survey_variable_errors(REPO / "playbooks" / "deploy.yml", spec)
    assert any(expected in error for error in errors), errors


def test_rollback_choices_must_match_the_argument_spec() -> None:
    spec = copy.deepcopy(load_survey("rollback.json"))
    _question(spec, "rollback_database_method").update(choices=["auto", "restore", "downgrade", "rebuild"])
    errors = survey_variable_errors(REPO / "playbooks" / "rollback.yml", spec)
    assert any("differ from the argument spec" in e for e in errors), errors


def test_a_survey_without_the_version_is_caught() -> None:
    spec = _deploy_survey()
    spec["spec"] = [q for q in spec["spec"] if q["variable"] != "ablage_version"]
    errors = missing_required_errors(REPO / "playbooks" / "deploy.yml", spec, "production")
    assert errors == [
        f"deploy.yml: ablage_version (required by role {role}) is neither in the inventory nor asked"
        for role in ("deploy", "preflight")
    ]


# --------------------------------------------------------------------------- tests: configure.yml


def _ansible_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        ANSIBLE_COLLECTIONS_PATH=f"{REPO / '.collections'}{os.pathsep}{SITE_PACKAGES}",
        ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
        PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
    )
    return env


def test_configure_playbook_passes_syntax_check() -> None:
    proc = subprocess.run(
        [str(VENV_BIN / "ansible-playbook"), "--syntax-check", str(CONFIGURE)],
        capture_output=True,
        text=True,
        env=_ansible_env(),
        check=False,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_broken_configure_playbook_fails_the_syntax_check(tmp_path: Path) -> None:
    broken = tmp_path / "configure.yml"
    broken.write_text(CONFIGURE.read_text(encoding="utf-8").replace("  tasks:\n", "  taks:\n", 1), encoding="utf-8")
    (tmp_path / "vars").mkdir()
    (tmp_path / "vars" / "controller.yml").write_text(CONTROLLER_VARS.read_text(encoding="utf-8"), encoding="utf-8")
    proc = subprocess.run(
        [str(VENV_BIN / "ansible-playbook"), "--syntax-check", str(broken)],
        capture_output=True,
        text=True,
        env=_ansible_env(),
        check=False,
        timeout=120,
    )
    assert proc.returncode != 0
    assert "taks" in proc.stdout + proc.stderr


def configure_tasks() -> list[dict[str, t.Any]]:
    plays = load_yaml(CONFIGURE)
    tasks: list[dict[str, t.Any]] = []

    def walk(items: list[dict[str, t.Any]]) -> None:
        for task in items:
            tasks.append(task)
            for key in ("block", "rescue", "always"):
                walk(task.get(key) or [])

    for play in plays:
        walk(play.get("tasks") or [])
    return tasks


def _module_doc_options(module: str) -> set[str]:
    """Options and aliases of an awx.awx module, read from its DOCUMENTATION and the auth fragment."""
    source = (AWX_COLLECTION / "plugins" / "modules" / f"{module}.py").read_text(encoding="utf-8")
    fragment = (AWX_COLLECTION / "plugins" / "doc_fragments" / "auth.py").read_text(encoding="utf-8")
    names: set[str] = set()
    for text in (source, fragment):
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Assign) and any(getattr(tg, "id", "") == "DOCUMENTATION" for tg in node.targets):
                doc = yaml.safe_load(ast.literal_eval(node.value))
                for name, option in (doc.get("options") or {}).items():
                    names.add(name)
                    names.update(option.get("aliases") or [])
    return names


def test_awx_collection_is_installed() -> None:
    assert (AWX_COLLECTION / "MANIFEST.json").exists(), "awx.awx missing: it comes with the pinned `ansible` package"


def test_configure_uses_only_documented_module_options() -> None:
    seen = set()
    for task in configure_tasks():
        for key, args in task.items():
            if key.startswith("awx.awx."):
                module = key.removeprefix("awx.awx.")
                seen.add(module)
                unknown = sorted(set(args) - _module_doc_options(module))
                assert not unknown, f"task {task['name']!r}: {module} has no option(s) {unknown}"
    assert {"organization", "project", "inventory", "inventory_source", "credential", "job_template"} <= seen


def test_secrets_are_never_logged() -> None:
    handled = 0
    for task in configure_tasks():
        body = json.dumps({k: v for k, v in task.items() if k not in ("name", "no_log")})
        if SECRET_VARIABLE.search(body):
            handled += 1
            assert task.get("no_log") is True, f"task {task['name']!r} handles a secret without no_log: true"
    assert handled >= 3  # the input check, the vault credential, the machine credential
    play = load_yaml(CONFIGURE)[0]
    defaults = play["module_defaults"]["group/awx.awx.controller"]
    assert {"controller_host", "controller_oauthtoken", "controller_username", "controller_password"} <= set(defaults)


def test_job_templates_are_complete_and_safe() -> None:
    (task,) = [task for task in configure_tasks() if "awx.awx.job_template" in task]
    args = task["awx.awx.job_template"]
    assert args["allow_simultaneous"] is False
    assert args["ask_inventory_on_launch"] is True
    assert args["ask_limit_on_launch"] is True
    assert args["execution_environment"] == "{{ ablage_awx_ee_name }}"
    assert args["credentials"] == "{{ _awx_credentials }}"
    assert "ablage_awx_vault_credential_name" in load_yaml(CONFIGURE)[0]["vars"]["_awx_credentials"]
    assert "survey_spec" in args and "surveys/" in args["survey_spec"]
    assert task["loop"] == "{{ ablage_awx_job_templates }}"
    by_name = {tpl["name"]: tpl for tpl in job_templates()}
    assert by_name["Ablage deploy"]["playbook"] == "playbooks/deploy.yml"
    assert by_name["Ablage preflight"]["playbook"] == "playbooks/preflight.yml"
    assert by_name["Ablage preflight"]["job_tags"] == "preflight"
    assert by_name["Ablage verify"]["playbook"] == "playbooks/verify.yml"
    assert by_name["Ablage rollback"]["playbook"] == "playbooks/rollback.yml"
    # AWX must never kill a deploy or rollback half-way (maintenance on, lock held).
    assert by_name["Ablage deploy"]["timeout"] == 0
    assert by_name["Ablage rollback"]["timeout"] == 0


@pytest.mark.parametrize("template", job_templates(), ids=lambda tpl: tpl["name"])
def test_job_template_playbook_exists_and_its_tags_are_real(template: dict[str, t.Any]) -> None:
    playbook = REPO / template["playbook"]
    assert playbook.is_file(), f"{template['name']}: {template['playbook']} does not exist"
    assert load_yaml(playbook), f"{template['playbook']} is empty"
    tags_text = playbook_text(playbook) + "".join(
        p.read_text(encoding="utf-8")
        for role in playbook_roles(playbook)
        for p in (REPO / "roles" / role).rglob("*.yml")
    )
    for tag in filter(None, (s.strip() for s in template["job_tags"].split(","))):
        assert re.search(rf"tags:.*\b{re.escape(tag)}\b", tags_text), f"{template['name']}: no task has tag {tag}"


def test_inventory_sources_point_at_the_project_inventories() -> None:
    names = set()
    for inventory in controller_vars()["ablage_awx_inventories"]:
        names.add(inventory["name"])
        assert (REPO / inventory["source_path"] / "hosts.yml").is_file(), inventory["source_path"]
    assert names == {"ablage-production", "ablage-staging"}
    assert controller_vars()["ablage_awx_default_inventory"] == "ablage-staging"


# --------------------------------------------------------------------------- configure.yml against a fake AWX API

FAKE_TOKEN = "fake-awx-token-5f0c1d"
SECRETS = {
    "ablage_awx_vault_password": "vault-secret-8e2a41",
    "ablage_awx_ssh_private_key": "fake-ssh-private-key-93b7",
}
ASSOCIATIONS = {
    "credentials": "credentials",
    "instance_groups": "instance_groups",
    "labels": "labels",
    "notification_templates_started": "notification_templates",
    "notification_templates_success": "notification_templates",
    "notification_templates_error": "notification_templates",
}
SECRET_INPUTS = {"vault_password", "ssh_key_data", "ssh_key_unlock", "password", "become_password"}


class FakeAwx:
    """The part of AWX's REST API (v2) that the awx.awx modules of configure.yml use.

    Collections with name lookups (``?name=``, ``or__id``/``or__name``), create (201), detail
    GET/PATCH, association sub-lists (POST ``{"id"}`` / ``{"id", "disassociate"}``, 204), survey_spec
    (validated with awx_spec_errors, as AWX does on save), project and inventory updates that finish
    at once, secret credential inputs shown as ``$encrypted$``, and the Bearer token checked.
    """

    def __init__(self) -> None:
        self.objects: dict[str, dict[int, dict[str, t.Any]]] = {}
        self.secrets: dict[int, dict[str, t.Any]] = {}
        self.surveys: dict[int, dict[str, t.Any]] = {}
        self.associated: dict[tuple[str, int, str], list[int]] = {}
        self.writes: list[tuple[str, str]] = []
        self.next_id = 100
        for pk, name, kind in ((1, "Machine", "ssh"), (3, "Vault", "vault"), (2, "Source Control", "scm")):
            self.objects.setdefault("credential_types", {})[pk] = {"id": pk, "name": name, "kind": kind}

    def named(self, collection: str, name: str) -> dict[str, t.Any]:
        (found,) = [o for o in self.objects.get(collection, {}).values() if o.get("name") == name]
        return found

    def public(self, collection: str, obj: dict[str, t.Any]) -> dict[str, t.Any]:
        shown = copy.deepcopy(obj)
        if collection == "credentials":
            shown["inputs"] = {k: ("$encrypted$" if k in SECRET_INPUTS and v else v) for k, v in obj["inputs"].items()}
        return shown

    def create(self, collection: str, data: dict[str, t.Any]) -> dict[str, t.Any]:
        self.next_id += 1
        pk = self.next_id
        url = f"/api/v2/{collection}/{pk}/"
        obj = dict(data, id=pk, url=url, type=collection.rstrip("s"), summary_fields={})
        obj["related"] = {sub: f"{url}{sub}/" for sub in ("survey_spec", "update", "copy", *ASSOCIATIONS)}
        if collection == "credentials":
            self.secrets[pk] = dict(data.get("inputs", {}))
        if collection == "projects":
            obj["scm_revision"] = ""
            update = self.create("project_updates", {"status": "successful"})
            obj["summary_fields"]["current_update"] = {"id": update["id"]}
        if collection in ("project_updates", "inventory_updates"):
            obj.update(failed=False, finished="2026-01-01T00:00:00Z", event_processing_finished=True)
        self.objects.setdefault(collection, {})[pk] = obj
        return obj

    def handle(self, method: str, path: str, query: dict[str, list[str]], body: t.Any) -> tuple[int, t.Any]:
        parts = [p for p in path.split("/") if p]
        if parts[:2] != ["api", "v2"] or len(parts) < 3:
            return 404, {"detail": "Not found."}
        collection, rest = parts[2], parts[3:]
        items = self.objects.setdefault(collection, {})
        if method != "GET":
            self.writes.append((method, path))
        if not rest:
            if method == "GET":
                return 200, self.listing(items.values(), query)
            if method == "POST":
                return 201, self.public(collection, self.create(collection, body))
        pk = int(rest[0]) if rest and rest[0].isdigit() else None
        if pk is None or pk not in items:
            return 404, {"detail": "Not found."}
        obj = items[pk]
        if len(rest) == 1:
            if method == "GET":
                return 200, self.public(collection, obj)
            if method == "PATCH":
                if collection == "credentials":
                    self.secrets[pk] = dict(body.get("inputs", {}))
                obj.update(body)
                return 200, self.public(collection, obj)
        sub = rest[1] if len(rest) > 1 else ""
        if sub == "survey_spec":
            return self.survey(method, pk, body)
        if sub in ASSOCIATIONS:
            ids = self.associated.setdefault((collection, pk, sub), [])
            if method == "GET":
                target = self.objects.get(ASSOCIATIONS[sub], {})
                return 200, self.listing([target[i] for i in ids], {})
            if body.get("disassociate"):
                ids.remove(int(body["id"]))
            else:
                ids.append(int(body["id"]))
            return 204, None
        if sub == "update" and method == "POST":
            kind = "inventory_updates" if collection == "inventory_sources" else "project_updates"
            return 202, self.create(kind, {"status": "successful", collection.rstrip("s"): pk})
        return 405, {"detail": f"{method} not allowed on {path}"}

    def survey(self, method: str, pk: int, body: t.Any) -> tuple[int, t.Any]:
        if method == "GET":
            return 200, copy.deepcopy(self.surveys.get(pk, {}))
        if method == "DELETE":
            self.surveys.pop(pk, None)
            return 200, {}
        errors = awx_spec_errors(body)
        if errors:
            return 400, {"error": errors[0]}
        self.surveys[pk] = copy.deepcopy(body)
        return 200, {}

    @staticmethod
    def listing(objects: t.Iterable[dict[str, t.Any]], query: dict[str, list[str]]) -> dict[str, t.Any]:
        wanted = {k: v[0] for k, v in query.items() if k not in ("page", "page_size", "order_by")}
        any_of = {k.removeprefix("or__"): v for k, v in wanted.items() if k.startswith("or__")}
        all_of = {k: v for k, v in wanted.items() if not k.startswith("or__")}

        def matches(obj: dict[str, t.Any]) -> bool:
            if any(str(obj.get(k)) != v for k, v in all_of.items()):
                return False
            return not any_of or any(str(obj.get(k)) == v for k, v in any_of.items())

        results = [copy.deepcopy(o) for o in objects if matches(o)]
        return {"count": len(results), "next": None, "previous": None, "results": results}


@pytest.fixture
def fake_awx() -> t.Iterator[tuple[FakeAwx, str]]:
    api = FakeAwx()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: t.Any) -> None:
            pass

        def serve(self) -> None:
            if self.headers.get("Authorization") != f"Bearer {FAKE_TOKEN}":
                status, payload = 401, {"detail": "Authentication credentials were not provided."}
            else:
                url = urllib.parse.urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}") if length else {}
                with lock:
                    try:
                        status, payload = api.handle(self.command, url.path, urllib.parse.parse_qs(url.query), body)
                    except Exception as exc:  # the fake answers 500 with the reason, as a server would
                        status, payload = 500, {"detail": f"fake AWX: {exc!r}"}
            data = b"" if payload is None else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("X-API-Product-Name", "AWX")
            self.send_header("X-API-Product-Version", "24.6.1")
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = do_DELETE = serve

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield api, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def run_configure(
    tmp_path: Path, host: str, *args: str, playbook: Path = CONFIGURE, **extra: t.Any
) -> tuple[subprocess.CompletedProcess[str], dict[str, t.Any]]:
    variables = {
        "controller_host": host,
        "controller_oauthtoken": FAKE_TOKEN,
        "controller_validate_certs": False,
        "ablage_awx_project_url": "https://git.ablage.internal/ops/ablage.ops.git",
        **SECRETS,
        **extra,
    }
    extra_vars = tmp_path / "awx-inputs.json"
    extra_vars.write_text(json.dumps(variables), encoding="utf-8")
    env = _ansible_env()
    env.update(ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json", ANSIBLE_PYTHON_INTERPRETER=sys.executable)
    proc = subprocess.run(
        [str(VENV_BIN / "ansible-playbook"), str(playbook), "-e", f"@{extra_vars}", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=300,
    )
    try:
        stats = json.loads(proc.stdout)["stats"]["localhost"]
    except (ValueError, KeyError):
        stats = {}
    return proc, stats


def test_configure_builds_the_whole_setup_in_awx(fake_awx: tuple[FakeAwx, str], tmp_path: Path) -> None:
    api, host = fake_awx
    proc, stats = run_configure(tmp_path, host)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert stats["failures"] == 0
    for secret in (*SECRETS.values(), FAKE_TOKEN):
        assert secret not in proc.stdout + proc.stderr, "a secret reached the output"

    org = api.named("organizations", "Ablage")
    ee = api.named("execution_environments", "Ablage EE")
    assert ee["image"] == controller_vars()["ablage_awx_ee_image"]
    project = api.named("projects", "ablage.ops")
    assert (project["scm_type"], project["scm_url"]) == ("git", "https://git.ablage.internal/ops/ablage.ops.git")
    assert (project["organization"], project["default_environment"]) == (org["id"], ee["id"])

    vault = api.named("credentials", "Ablage vault")
    assert vault["credential_type"] == 3
    assert api.secrets[vault["id"]]["vault_password"] == SECRETS["ablage_awx_vault_password"]
    machine = api.named("credentials", "Ablage deploy SSH")
    assert api.secrets[machine["id"]]["ssh_key_data"] == SECRETS["ablage_awx_ssh_private_key"]

    for inventory in controller_vars()["ablage_awx_inventories"]:
        inv = api.named("inventories", inventory["name"])
        source = api.named("inventory_sources", f"{inventory['name']} from ablage.ops")
        assert (source["inventory"], source["source"], source["source_project"]) == (inv["id"], "scm", project["id"])
        assert source["source_path"] == inventory["source_path"]
    assert len(api.objects["inventory_updates"]) == 2  # each synced once

    staging = api.named("inventories", "ablage-staging")
    templates = {o["name"]: o for o in api.objects["job_templates"].values()}
    assert set(templates) == TEMPLATE_NAMES
    for spec in job_templates():
        jt = templates[spec["name"]]
        assert (jt["playbook"], jt["project"], jt["inventory"]) == (spec["playbook"], project["id"], staging["id"])
        assert jt["allow_simultaneous"] is False
        assert jt["ask_inventory_on_launch"] is True
        assert jt["execution_environment"] == ee["id"]
        assert jt["job_tags"] == spec["job_tags"]
        assert sorted(api.associated[("job_templates", jt["id"], "credentials")]) == sorted(
            [vault["id"], machine["id"]]
        )
        if spec["survey"]:
            assert jt["survey_enabled"] is True
            assert api.surveys[jt["id"]] == load_survey(spec["survey"])
        else:
            assert jt["survey_enabled"] is False
            assert jt["id"] not in api.surveys

    # A second run with the secrets left alone (and no sync, which always starts a job) changes nothing.
    writes = len(api.writes)
    proc, stats = run_configure(tmp_path, host, ablage_awx_update_secrets=False, ablage_awx_sync_inventories=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert stats["changed"] == 0, stats
    assert api.writes[writes:] == []

    # AWX refuses a broken survey on save, and the playbook stops there (only the job templates rerun).
    copy_dir = tmp_path / "awx"
    shutil.copytree(AWX_DIR, copy_dir)
    broken = json.loads((copy_dir / "surveys" / "rollback.json").read_text(encoding="utf-8"))
    broken["spec"][0]["default"] = "rebuild"  # not one of the choices
    (copy_dir / "surveys" / "rollback.json").write_text(json.dumps(broken), encoding="utf-8")
    proc, stats = run_configure(
        tmp_path, host, "--start-at-task", "AWX | Job templates", playbook=copy_dir / "configure.yml"
    )
    assert proc.returncode != 0
    assert stats["failures"] == 1
    assert "Default choice must be answered from the choices listed" in proc.stdout
    assert api.surveys[templates["Ablage rollback"]["id"]] == load_survey("rollback.json"), "the stored survey stays"
