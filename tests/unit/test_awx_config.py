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
* Every playbook of playbooks/ has a job template; AWX would list each template's playbook; the
  timeouts never kill a run that changes the system half-way.
* The deploy workflow runs pre-flight, an approval (with a timeout), then the deploy, and a failed
  deploy goes to a node that notifies and does nothing else; its survey asks what its nodes' job
  templates need, by the same rules (AWX does not check the nodes' own surveys in a workflow).
* The notification templates and the backup schedules are what AWX accepts
  (``NotificationTemplateSerializer.validate``, ``SchedulePreviewSerializer.validate_rrule``); the
  backup runs daily at night, outside the hour a DST change skips.
* awx/configure.yml passes ``ansible-playbook --syntax-check``, uses only options the awx.awx
  modules document, keeps secrets out of the log, and every job template's playbook exists.
* awx/configure.yml really runs: against a fake of AWX's REST API on 127.0.0.1 (the endpoints
  the awx.awx modules call, surveys, notification configurations and schedules validated on save
  as AWX does) it creates every object with the right fields and links, the workflow's nodes and
  edges and its approval template, a second run changes nothing, and a survey AWX refuses stops it.

Negative tests feed broken specs to the same checks, so they are known to fail.
"""

from __future__ import annotations

import ast
import copy
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import typing as t
import urllib.parse
import zoneinfo
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
TEMPLATE_NAMES = {
    "Ablage deploy",
    "Ablage preflight",
    "Ablage verify",
    "Ablage rollback",
    "Ablage backup",
    "Ablage restore",
    "Ablage maintenance",
    "Ablage restart",
    "Ablage logs",
    "Ablage status",
    "Ablage history",
    "Ablage deploy lock",
    "Ablage host setup",
    "Ablage reverse proxy",
    "Ablage deploy failed",
}
WORKFLOW_NAME = "Ablage deploy workflow"
# The failure path of the workflow: shows the deploy's report and ends failed (the workflow notifies).
NOTICE_PLAYBOOK = "awx/deploy_failed.yml"
# Playbooks that change the running system and must never be killed half-way by an AWX timeout.
NEVER_KILLED = {
    "playbooks/deploy.yml",
    "playbooks/rollback.yml",
    "playbooks/backup.yml",
    "playbooks/restore.yml",
    "playbooks/restart.yml",
}
# Free-text variables: named *_note / *_notes so nobody mistakes them for settings.
NOTES_VARIABLE = re.compile(r"^[a-z][a-z0-9_]*_notes?$")
# Notes no playbook reads yet: the answer stays in the AWX job's extra vars (the job record). Empty: deploy_notes
# goes into history.jsonl (roles/deploy/tasks/finish.yml, deploy.yml's failure record), as docs/awx.md says.
NOTES_NOT_READ_BY_A_PLAYBOOK: set[str] = set()
# Set by the playbooks themselves (playbooks/tasks/api_login.yml logs in), so never asked.
# The API tokens come from playbooks/tasks/api_login.yml; hooks_point is set by each call of the hooks role.
PROVIDED_BY_PLAYBOOKS = {"ablage_admin_token", "ablage_user_token", "hooks_point"}
# Variables of configure.yml that hold secrets (controller_* reach the modules through module_defaults,
# whose awx.awx options are no_log themselves).
SECRET_VARIABLE = re.compile(
    r"\b(ablage_awx_vault_password|ablage_awx_ssh_private_key|ablage_awx_ssh_key_unlock"
    r"|ablage_awx_notify_webhook_url|ablage_awx_notify_webhook_headers|ablage_awx_notify_email_password"
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


def workflow_nodes() -> list[dict[str, t.Any]]:
    return list(controller_vars()["ablage_awx_workflow_nodes"])


def workflow_template() -> dict[str, t.Any]:
    """The workflow as a survey owner: its answers reach every node; deploy.yml (importing preflight.yml) reads them."""
    by_name = {tpl["name"]: tpl for tpl in job_templates()}
    playbooks = {by_name[n["job_template"]]["playbook"] for n in workflow_nodes() if n.get("job_template")}
    assert "playbooks/deploy.yml" in playbooks, playbooks
    return {
        "name": controller_vars()["ablage_awx_workflow_name"],
        "playbook": "playbooks/deploy.yml",
        "survey": controller_vars()["ablage_awx_workflow_survey"],
    }


def survey_owners() -> list[dict[str, t.Any]]:
    """Every template with a survey: the job templates that have one, and the workflow."""
    return [tpl for tpl in job_templates() if tpl["survey"]] + [workflow_template()]


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


def roles_text(roles: t.Iterable[str]) -> str:
    """The task files (and defaults) of these roles: what a role reads beyond its argument spec."""
    return "".join(
        path.read_text(encoding="utf-8")
        for role in sorted(roles)
        for sub in ("tasks", "defaults", "vars")
        for path in sorted((REPO / "roles" / role / sub).glob("*.yml"))
    )


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


# --------------------------------------------------------------------------- AWX: schedules, notifications

# NotificationBackend.init_parameters of AWX 24 (awx/main/notifications/*_backend.py): field -> (type, default);
# no default means required. The types as NotificationTemplateSerializer.type_map checks them.
NOTIFICATION_INIT_PARAMETERS: dict[str, dict[str, tuple[str, t.Any]]] = {
    "webhook": {
        "url": ("string", None),
        "http_method": ("string", "POST"),
        "disable_ssl_verification": ("bool", False),
        "username": ("string", ""),
        "password": ("password", ""),
        "headers": ("object", None),
    },
    "email": {
        "host": ("string", None),
        "port": ("int", None),
        "username": ("string", None),
        "password": ("password", None),
        "use_tls": ("bool", None),
        "use_ssl": ("bool", None),
        "sender": ("string", None),
        "recipients": ("list", None),
        "timeout": ("int", 30),
    },
}
NOTIFICATION_TYPE_MAP: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "int": (int,),
    "bool": (bool,),
    "list": (list,),
    "object": (dict,),
    "password": (str,),
}


def awx_notification_errors(kind: str, config: dict[str, t.Any]) -> tuple[dict[str, t.Any], list[str]]:
    """NotificationTemplateSerializer.validate: the configuration with AWX's defaults filled in, and the errors."""
    if kind not in NOTIFICATION_INIT_PARAMETERS:
        return config, [f"notification_type {kind!r} is not one this fake knows"]
    config = dict(config)
    missing, errors = [], []
    for field, (ftype, default) in NOTIFICATION_INIT_PARAMETERS[kind].items():
        if field not in config:
            if default is None:
                missing.append(field)
                continue
            config[field] = copy.deepcopy(default)
        value = config[field]
        if type(value) not in NOTIFICATION_TYPE_MAP[ftype]:
            errors.append(f"Configuration field '{field}' incorrect type, expected {ftype}.")
        elif ftype == "list" and len(value) < 1:
            errors.append(f"No values specified for field '{field}'")
        elif field == "http_method" and value.lower() not in ("put", "post"):
            errors.append("HTTP method must be either 'POST' or 'PUT'.")
    if missing:
        errors.insert(0, f"Missing required fields for Notification Configuration: {missing}.")
    return config, errors


def awx_rrule_errors(rrule: str) -> list[str]:
    """SchedulePreviewSerializer.validate_rrule (AWX 24), with the parse of Schedule.rrulestr reduced to
    what matters here: a DTSTART date that exists and a TZID that the time zone database knows."""
    errors = []
    dtstarts = re.findall(r".*?(DTSTART(;[^:]+)?\:[0-9]+T[0-9]+Z?)", rrule)
    rules = re.findall(r".*?(RULE\:[^\s]*)", rrule)
    if not dtstarts:
        errors.append("Valid DTSTART required in rrule. Value should start with: DTSTART:YYYYMMDDTHHMMSSZ")
    if re.findall(r".*?(DTSTART:[0-9]+T[0-9]+) ", rrule):
        errors.append("DTSTART cannot be a naive datetime.  Specify ;TZINFO= or YYYYMMDDTHHMMSSZZ.")
    if len(dtstarts) > 1:
        errors.append("Multiple DTSTART is not supported.")
    if "rrule:" not in rrule.lower():
        errors.append("One or more rule required in rrule.")
    for word in ("exdate:", "rdate:"):
        if word in rrule.lower():
            errors.append(f"{word[:-1].upper()} not allowed in rrule.")
    for rule in rules:
        if "interval" not in rule.lower():
            errors.append(f"INTERVAL required in rrule: {rule}")
        elif "secondly" in rule.lower():
            errors.append(f"SECONDLY is not supported: {rule}")
        if re.match(r".*?BYDAY[\:\=][0-9]+[a-zA-Z]{2}", rule):
            errors.append(f"BYDAY with numeric prefix not supported: {rule}")
        if "COUNT" in rule and "UNTIL" in rule:
            errors.append(f"RRULE may not contain both COUNT and UNTIL: {rule}")
        count = re.match(r".*?COUNT=([0-9]+)", rule)
        if count and int(count.group(1)) > 999:
            errors.append(f"COUNT > 999 is unsupported: {rule}")
    if dtstarts and not errors:
        try:
            rrule_facts(rrule)  # a TZID the time zone database knows, a DTSTART that exists
        except (ValueError, KeyError, zoneinfo.ZoneInfoNotFoundError) as exc:
            errors.append(f"rrule parsing failed validation: {exc}")
    return errors


def rrule_facts(rrule: str) -> dict[str, t.Any]:
    """DTSTART (time zone and local start) and the RRULE's parts of an AWX schedule rule."""
    found = re.search(r"DTSTART(?:;TZID=([^:]+))?:([0-9]{8}T[0-9]{6})(Z?)", rrule)
    if not found:
        raise ValueError(f"no DTSTART in {rrule!r}")
    tzid = found.group(1) or ("UTC" if found.group(3) else "")
    zone = zoneinfo.ZoneInfo(tzid) if tzid else datetime.UTC
    start = datetime.datetime.strptime(found.group(2), "%Y%m%dT%H%M%S").replace(tzinfo=zone)
    rule = re.search(r"RRULE:(\S+)", rrule)
    parts = dict(p.split("=", 1) for p in rule.group(1).split(";") if "=" in p) if rule else {}
    return {"tzid": tzid, "start": start, "rule": parts}


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
        # AWX offers no empty choice; an option's "" (= not set) may be left out only when the question is required.
        expected = sorted(str(c) for c in option["choices"] if not (c == "" and item["required"]))
        if qtype != "multiplechoice":
            errors.append(f"{var}: the option has choices {option['choices']}; ask it as multiplechoice")
        elif sorted(_choice_list(item)) != expected:
            errors.append(f"{var}: choices {_choice_list(item)} differ from the argument spec's {option['choices']}")
    if qtype == "multiselect" and "default" in item:
        # AWX keeps a multiselect default as a newline-separated string and drops it at launch (not a list).
        errors.append(f"{var}: a multiselect default never reaches the job; leave it out")
    elif "default" in item and "default" in option and item["default"] != option["default"]:
        errors.append(f"{var}: default {item['default']!r} differs from the role's default {option['default']!r}")
    if option.get("required") and not item["required"]:
        errors.append(f"{var}: required by the role, so the question must be required")
    return errors


def survey_variable_errors(playbook: Path, survey: dict[str, t.Any]) -> list[str]:
    specs = role_specs()
    runs = playbook_roles(playbook)
    # What the playbook and the roles it runs read (deploy_lock_break is read by operate's restore tasks).
    text = playbook_text(playbook) + roles_text(runs)
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
            roles = (
                declared_anywhere  # read by the playbook or its roles' tasks, e.g. deploy_lock_break in rollback.yml
            )
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
    used = [tpl["survey"] for tpl in survey_owners()]
    assert {tpl["name"] for tpl in job_templates()} == TEMPLATE_NAMES
    assert controller_vars()["ablage_awx_workflow_name"] == WORKFLOW_NAME
    assert set(used) == set(SURVEY_FILES), f"surveys in use {sorted(used)}, files {SURVEY_FILES}"
    assert len(used) == len(set(used)), "each template has its own survey file"


@pytest.mark.parametrize("name", SURVEY_FILES)
def test_survey_passes_awx_validation(name: str) -> None:
    spec = load_survey(name)
    assert awx_spec_errors(spec) == []
    assert house_rule_errors(spec) == []


@pytest.mark.parametrize("template", survey_owners(), ids=lambda tpl: tpl["name"])
def test_survey_variables_are_role_options_that_fit(template: dict[str, t.Any]) -> None:
    errors = survey_variable_errors(REPO / template["playbook"], load_survey(template["survey"]))
    assert errors == []


@pytest.mark.parametrize("inventory", ["production", "staging"])
@pytest.mark.parametrize("template", [*job_templates(), workflow_template()], ids=lambda tpl: tpl["name"])
def test_survey_asks_what_only_the_launcher_can_give(template: dict[str, t.Any], inventory: str) -> None:
    survey = load_survey(template["survey"]) if template["survey"] else None
    assert missing_required_errors(REPO / template["playbook"], survey, inventory) == []


def test_the_version_hint_matches_real_release_tags() -> None:
    for name in ("deploy.json", "preflight.json", "deploy_workflow.json"):
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


# --------------------------------------------------------------------------- tests: day-2 templates


# Playbooks of playbooks/ that deliberately have no job template, with the reason.
WITHOUT_TEMPLATE: dict[str, str] = {}


def test_every_playbook_has_a_job_template() -> None:
    templated = {tpl["playbook"] for tpl in job_templates()}
    playbooks = sorted(f"playbooks/{p.name}" for p in (REPO / "playbooks").glob("*.yml"))
    assert [pb for pb in playbooks if pb not in templated and pb not in WITHOUT_TEMPLATE] == []
    assert not templated & set(WITHOUT_TEMPLATE)
    for name in ("backup", "restore", "maintenance", "restart", "logs", "status", "history", "lock"):
        assert f"playbooks/{name}.yml" in templated, f"the day-2 playbook {name}.yml has no job template"


# What AWX's project scan offers as playbooks (awx/main/utils/ansible.py: skip_directory, could_be_playbook).
AWX_PLAYBOOK_LINE = re.compile(r"^\s*?-?\s*?(?:hosts|include|import_playbook):\s*?.*?$")


def awx_lists_playbook(relative: str) -> bool:
    path = Path(relative)
    if path.suffix not in (".yml", ".yaml") or not (REPO / path).is_file():
        return False
    for part in path.parts[:-1]:
        if part in ("roles", "tasks", "group_vars", "host_vars") or part.startswith("."):
            return False
    lines = (REPO / path).read_text(encoding="utf-8").splitlines()
    return any(AWX_PLAYBOOK_LINE.match(line) for line in lines)


@pytest.mark.parametrize("template", job_templates(), ids=lambda tpl: tpl["name"])
def test_awx_offers_the_playbook_of_every_template(template: dict[str, t.Any]) -> None:
    assert awx_lists_playbook(template["playbook"]), f"AWX would not list {template['playbook']} in the project"


def test_awx_does_not_offer_task_files_or_vars() -> None:
    assert not awx_lists_playbook("playbooks/tasks/api_login.yml")
    assert not awx_lists_playbook("awx/vars/controller.yml")
    assert not awx_lists_playbook("playbooks/missing.yml")


def test_timeouts_never_kill_a_change_half_way() -> None:
    by_playbook = {tpl["playbook"]: tpl for tpl in job_templates()}
    assert set(by_playbook) >= NEVER_KILLED
    for playbook, tpl in by_playbook.items():
        if playbook in NEVER_KILLED:
            assert tpl["timeout"] == 0, (
                f"{tpl['name']}: AWX would kill it half-way (maintenance on, lock held, app stopped)"
            )
        else:
            assert 0 < tpl["timeout"] <= 3600, f"{tpl['name']}: a read-only or quick job gets a bounded timeout"


def test_every_template_follows_the_same_pattern() -> None:
    fields = {"name", "description", "playbook", "job_tags", "survey", "timeout", "notify_on"}
    fields |= {"ask_tags_on_launch", "ask_job_type_on_launch", "ask_diff_mode_on_launch"}
    for tpl in job_templates():
        assert set(tpl) == fields, f"{tpl['name']}: fields {sorted(set(tpl) ^ fields)}"
        assert set(tpl["notify_on"]) <= {"error", "success"}, tpl["name"]
        assert tpl["description"].strip(), tpl["name"]
    by_name = {tpl["name"]: tpl for tpl in job_templates()}
    assert set(by_name["Ablage deploy"]["notify_on"]) == {"error", "success"}
    for name in ("Ablage rollback", "Ablage backup", "Ablage restore"):
        assert by_name[name]["notify_on"] == ["error"], name
    # The failure node notifies through the workflow (it ends failed), not twice by itself.
    assert by_name["Ablage deploy failed"]["notify_on"] == []


def _survey_of(playbook: str) -> dict[str, dict[str, t.Any]]:
    (tpl,) = [tpl for tpl in job_templates() if tpl["playbook"] == playbook]
    return {q["variable"]: q for q in load_survey(tpl["survey"])["spec"]}


def test_day2_surveys_ask_the_choice_each_playbook_needs() -> None:
    restore = _survey_of("playbooks/restore.yml")["operate_restore_confirm"]
    # A deliberate answer: no default, so a launch never overwrites the database by a click-through.
    assert (restore["type"], restore["required"], "default" in restore) == ("multiplechoice", True, False)
    state = _survey_of("playbooks/maintenance.yml")["operate_maintenance_state"]
    assert (state["type"], state["required"], "default" in state) == ("multiplechoice", True, False)
    assert sorted(_choice_list(state)) == ["disabled", "enabled"]
    service = _survey_of("playbooks/restart.yml")["operate_restart_service"]
    assert (service["required"], service["default"]) == (True, "all")
    limit = _survey_of("playbooks/history.yml")["report_history_limit"]
    assert limit["type"] == "integer"
    lock = _survey_of("playbooks/restore.yml")["deploy_lock_break"]
    assert lock["default"] == "no", "breaking a lock is never the default"


def test_service_names_of_the_surveys_fit_the_awx_inventories() -> None:
    """The logs survey offers the operate role's default services; the AWX inventories must not rename them."""
    defaults = role_specs()["operate"]["operate_services"]["default"]
    assert _choice_list(_survey_of("playbooks/logs.yml")["operate_logs_services"]) == defaults
    service = _survey_of("playbooks/restart.yml")["operate_restart_service"]
    assert all(name in service["question_description"] for name in defaults)
    for inventory in controller_vars()["ablage_awx_inventories"]:
        names = inventory_vars(Path(inventory["source_path"]).name)
        assert "operate_services" not in names, f"{inventory['source_path']} renames the services: fix the surveys"


def test_a_multiselect_default_is_refused() -> None:
    spec = copy.deepcopy(load_survey("logs.json"))
    _question(spec, "operate_logs_services")["default"] = "backend\nworker"
    errors = survey_variable_errors(REPO / "playbooks" / "logs.yml", spec)
    assert any("multiselect default never reaches the job" in e for e in errors), errors


def test_an_optional_question_must_offer_the_empty_choice_it_leaves_out() -> None:
    spec = copy.deepcopy(load_survey("maintenance.json"))
    _question(spec, "operate_maintenance_state")["required"] = False
    errors = survey_variable_errors(REPO / "playbooks" / "maintenance.yml", spec)
    assert any("differ from the argument spec" in e for e in errors), errors


# --------------------------------------------------------------------------- tests: the deploy workflow

EDGE_KINDS = ("success_nodes", "failure_nodes", "always_nodes")


def workflow_errors(
    nodes: list[dict[str, t.Any]], templates: list[dict[str, t.Any]], approval_timeout: int
) -> list[str]:
    """Pre-flight -> approval -> deploy, each on success only; a failed deploy goes to the notification node alone."""
    playbook_of = {tpl["name"]: tpl["playbook"] for tpl in templates}
    by_id = {n["identifier"]: n for n in nodes}
    errors = []
    if len(by_id) != len(nodes):
        errors.append("node identifiers must be unique")
    parents: dict[str, list[tuple[str, str]]] = {i: [] for i in by_id}
    for node in nodes:
        if bool(node.get("job_template")) == bool(node.get("approval")):
            errors.append(f"{node['identifier']}: a node runs one job template or is an approval")
        elif node.get("job_template") and node["job_template"] not in playbook_of:
            errors.append(f"{node['identifier']}: no job template {node['job_template']!r}")
        for kind in EDGE_KINDS:
            for target in node.get(kind, []):
                if target in parents:
                    parents[target].append((node["identifier"], kind))
                else:
                    errors.append(f"{node['identifier']}: {kind} names no node {target!r}")
    if errors:
        return errors

    def runs(identifier: str) -> str:
        node = by_id[identifier]
        return "approval" if node.get("approval") else str(playbook_of[node["job_template"]])

    roots = [i for i in by_id if not parents[i]]
    if [runs(i) for i in roots] != ["playbooks/preflight.yml"]:
        errors.append(f"the workflow must start with the pre-flight alone, it starts with {roots}")
    deploys = [i for i in by_id if runs(i) == "playbooks/deploy.yml"]
    if len(deploys) != 1:
        return [*errors, f"one deploy node expected, found {deploys}"]
    deploy = by_id[deploys[0]]
    before_deploy = parents[deploys[0]]
    if len(before_deploy) != 1 or before_deploy[0][1] != "success_nodes" or runs(before_deploy[0][0]) != "approval":
        errors.append(f"the deploy runs only after an approval succeeded; it follows {before_deploy}")
    else:
        before_approval = parents[before_deploy[0][0]]
        if [(runs(i), kind) for i, kind in before_approval] != [("playbooks/preflight.yml", "success_nodes")]:
            errors.append(f"the approval comes only after a successful pre-flight; it follows {before_approval}")
    if approval_timeout <= 0:
        errors.append("the approval needs a timeout (0 waits for ever)")
    if not deploy.get("failure_nodes"):
        errors.append("a failed deploy needs a failure edge to the notification node")
    if deploy.get("success_nodes") or deploy.get("always_nodes"):
        errors.append("nothing else runs automatically after the deploy (deploy.yml rolls back by itself)")
    for target in deploy.get("failure_nodes", []):
        if runs(target) != NOTICE_PLAYBOOK:
            errors.append(f"the failure path runs {runs(target)}, not the notification {NOTICE_PLAYBOOK}")
        if any(by_id[target].get(kind) for kind in EDGE_KINDS):
            errors.append(f"{target}: nothing runs after the notification")
    if any(runs(i) == "playbooks/rollback.yml" for i in by_id):
        errors.append("no rollback node: deploy.yml rolls back by itself")
    return errors


def test_workflow_runs_preflight_then_an_approval_then_the_deploy() -> None:
    data = controller_vars()
    assert workflow_errors(workflow_nodes(), job_templates(), data["ablage_awx_approval_timeout"]) == []
    assert 0 < data["ablage_awx_approval_timeout"] <= 86400


def _node(nodes: list[dict[str, t.Any]], identifier: str) -> dict[str, t.Any]:
    return next(n for n in nodes if n["identifier"] == identifier)


def _skip_approval(nodes: list[dict[str, t.Any]]) -> None:
    _node(nodes, "preflight")["success_nodes"] = ["deploy"]
    nodes.remove(_node(nodes, "approve"))


def _roll_back_after_a_failure(nodes: list[dict[str, t.Any]]) -> None:
    nodes.append({"identifier": "rollback", "job_template": "Ablage rollback"})
    _node(nodes, "deploy")["always_nodes"] = ["rollback"]


BROKEN_WORKFLOWS: list[tuple[str, t.Callable[[list[dict[str, t.Any]]], None], str]] = [
    ("no approval", _skip_approval, "only after an approval"),
    ("deploy after a failed pre-flight", lambda n: _node(n, "preflight").update(failure_nodes=["deploy"]), "approval"),
    ("no failure path", lambda n: _node(n, "deploy").pop("failure_nodes"), "needs a failure edge"),
    ("a rollback node", _roll_back_after_a_failure, "nothing else runs automatically"),
    (
        "the failure path deploys again",
        lambda n: _node(n, "deploy_failed").update(job_template="Ablage verify"),
        "not the notification",
    ),
    ("the notification goes on", lambda n: _node(n, "deploy_failed").update(success_nodes=["preflight"]), "start"),
    (
        "approval on a failure",
        lambda n: _node(n, "preflight").update(failure_nodes=["approve"]),
        "successful pre-flight",
    ),
    ("unknown template", lambda n: _node(n, "deploy").update(job_template="Ablage deploi"), "no job template"),
    ("dangling edge", lambda n: _node(n, "approve").update(success_nodes=["deploi"]), "names no node"),
]


@pytest.mark.parametrize(("mutate", "expected"), [pytest.param(m, e, id=n) for n, m, e in BROKEN_WORKFLOWS])
def test_a_broken_workflow_is_refused(mutate: t.Callable[[list[dict[str, t.Any]]], None], expected: str) -> None:
    nodes = copy.deepcopy(workflow_nodes())
    mutate(nodes)
    errors = workflow_errors(nodes, job_templates(), controller_vars()["ablage_awx_approval_timeout"])
    assert any(expected in e for e in errors), errors


def test_an_approval_without_timeout_is_refused() -> None:
    errors = workflow_errors(workflow_nodes(), job_templates(), 0)
    assert errors == ["the approval needs a timeout (0 waits for ever)"]


# AWX hands the workflow's answers to every node without checking them against the nodes' surveys, and shows
# no node survey: the workflow's survey must ask each of them with the same rules.
SURVEY_RULES = ("type", "choices", "min", "max", "default")


def workflow_survey_errors(survey: dict[str, t.Any], nodes: list[dict[str, t.Any]]) -> list[str]:
    by_name = {tpl["name"]: tpl for tpl in job_templates()}
    asked = {q["variable"]: q for q in survey["spec"]}
    errors = []
    for node in nodes:
        tpl = by_name.get(node.get("job_template") or "")
        if not tpl or not tpl["survey"]:
            continue
        for question in load_survey(tpl["survey"])["spec"]:
            var = question["variable"]
            mine = asked.get(var)
            if mine is None:
                errors.append(f"{var}: asked by {tpl['name']} but not by the workflow")
                continue
            for field in SURVEY_RULES:
                ours, theirs = (
                    (_choice_list(mine), _choice_list(question))
                    if field == "choices"
                    else (mine.get(field), question.get(field))
                )
                if ours != theirs:
                    errors.append(f"{var}: {field} {ours!r} in the workflow, {theirs!r} in {tpl['name']}")
            if question["required"] and not mine["required"]:
                errors.append(f"{var}: required by {tpl['name']}, optional in the workflow")
    return errors


def test_workflow_survey_asks_what_its_nodes_ask_by_the_same_rules() -> None:
    survey = load_survey(controller_vars()["ablage_awx_workflow_survey"])
    assert workflow_survey_errors(survey, workflow_nodes()) == []


def test_a_workflow_survey_that_misses_a_node_question_is_refused() -> None:
    survey = copy.deepcopy(load_survey(controller_vars()["ablage_awx_workflow_survey"]))
    survey["spec"] = [q for q in survey["spec"] if q["variable"] != "ablage_version"]
    _question(survey, "deploy_notes")["max"] = 5000
    errors = workflow_survey_errors(survey, workflow_nodes())
    assert "ablage_version: asked by Ablage preflight but not by the workflow" in errors
    assert "deploy_notes: max 5000 in the workflow, 2000 in Ablage deploy" in errors


def _run_notice(tmp_path: Path, extra: dict[str, t.Any]) -> subprocess.CompletedProcess[str]:
    variables = tmp_path / "notice.json"
    variables.write_text(json.dumps(extra), encoding="utf-8")
    return subprocess.run(
        [str(VENV_BIN / "ansible-playbook"), str(REPO / NOTICE_PLAYBOOK), "-e", f"@{variables}"],
        capture_output=True,
        text=True,
        env=_ansible_env(),
        check=False,
        timeout=120,
    )


def test_the_failure_node_shows_the_deploy_report_and_fails(tmp_path: Path) -> None:
    """What AWX gives the failure node: the survey answers and the artefacts of the jobs before it."""
    deploy_report = {
        "playbook": "deploy",
        "result": "rolled_back",
        "failure": '"Deploy | Apply the migration": relation missing',
        "versions": {"from": "1.1.0", "to": "1.2.0", "running": "1.1.0"},
        "escalation_contacts": [{"role": "DevOps Lead", "name": "On call", "phone": "+49 30 1234"}],
    }
    preflight_report = {"playbook": "preflight", "result": "success", "failure": ""}
    proc = _run_notice(
        tmp_path,
        {
            "ablage_version": "1.2.0",
            "awx_workflow_job_id": 4711,
            "ablage_report": {"app-01": deploy_report, "app-02": preflight_report},
        },
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, "the node must fail so that the workflow is failed and notifies"
    assert "Deploy of 1.2.0 FAILED in workflow job 4711" in out
    assert "app-01: ROLLED_BACK" in out and "relation missing" in out and "running now 1.1.0" in out
    assert "app-02" not in out, "a pre-flight's report is no deploy report"
    assert "On call" in out
    proc = _run_notice(tmp_path, {"ablage_version": "1.2.0", "ablage_report": {"app-01": preflight_report}})
    assert proc.returncode != 0
    assert "No deploy report" in proc.stdout + proc.stderr


# --------------------------------------------------------------------------- tests: schedules and notifications


def nightly_schedule_errors(rrule: str, timezone: str) -> list[str]:
    """AWX accepts it, and it runs every day, for ever, at night in the local time zone, outside the DST hour."""
    errors = awx_rrule_errors(rrule)
    if errors:
        return errors
    facts = rrule_facts(rrule)
    rule = facts["rule"]
    if (rule.get("FREQ"), rule.get("INTERVAL")) != ("DAILY", "1"):
        errors.append(f"the backup runs daily (FREQ=DAILY;INTERVAL=1), not {rule}")
    if set(rule) & {"COUNT", "UNTIL", "BYDAY", "BYHOUR", "BYMINUTE", "BYMONTH", "BYMONTHDAY"}:
        errors.append(f"every day, for ever: {rule}")
    if facts["tzid"] != timezone:
        errors.append(f"local time {timezone} expected, not TZID {facts['tzid']!r}")
    hour = facts["start"].hour
    if not 0 <= hour < 6:
        errors.append(f"{facts['start']:%H:%M} is not at night (00:00-05:59)")
    elif hour == 2:
        errors.append(f"{facts['start']:%H:%M} falls into the hour a DST change skips or repeats")
    return errors


def configured_rrules() -> list[str]:
    """The rrules awx/configure.yml builds from awx/vars/controller.yml (the fake AWX run checks the real ones)."""
    data = controller_vars()
    return [
        f"DTSTART;TZID={data['ablage_awx_timezone']}:{data['ablage_awx_schedule_start_date']}"
        f"T{item['time'].replace(':', '')}00 RRULE:FREQ=DAILY;INTERVAL=1"
        for item in data["ablage_awx_backup_schedules"]
    ]


def test_backup_schedules_run_nightly_for_each_inventory() -> None:
    data = controller_vars()
    zoneinfo.ZoneInfo(data["ablage_awx_timezone"])
    schedules = data["ablage_awx_backup_schedules"]
    assert {s["inventory"] for s in schedules} == {i["name"] for i in data["ablage_awx_inventories"]}
    assert data["ablage_awx_backup_job_template"] in {tpl["name"] for tpl in job_templates()}
    backup = next(tpl for tpl in job_templates() if tpl["name"] == data["ablage_awx_backup_job_template"])
    assert backup["playbook"] == "playbooks/backup.yml"
    for rrule in configured_rrules():
        assert nightly_schedule_errors(rrule, data["ablage_awx_timezone"]) == [], rrule


AWX_REFUSED_RRULES = [
    ("DTSTART:NONSENSE", "Valid DTSTART required"),
    ("DTSTART:20300308T050000 RRULE:FREQ=DAILY;INTERVAL=1", "naive datetime"),
    ("DTSTART:20300308T050000Z DTSTART:20310308T050000Z RRULE:FREQ=DAILY;INTERVAL=1", "Multiple DTSTART"),
    ("DTSTART:20300308T050000Z", "One or more rule required"),
    ("DTSTART:20300308T050000Z RRULE:FREQ=DAILY", "INTERVAL required"),
    ("DTSTART:20300308T050000Z RRULE:FREQ=SECONDLY;INTERVAL=5", "SECONDLY is not supported"),
    ("DTSTART:20300308T050000Z RRULE:FREQ=DAILY;INTERVAL=1;COUNT=2000", "COUNT > 999"),
    ("DTSTART;TZID=Europe/Berlim:20300308T050000 RRULE:FREQ=DAILY;INTERVAL=1", "parsing failed"),
    ("DTSTART;TZID=Europe/Berlin:20300230T050000 RRULE:FREQ=DAILY;INTERVAL=1", "parsing failed"),
]


@pytest.mark.parametrize(("rrule", "expected"), AWX_REFUSED_RRULES)
def test_awx_refuses_a_broken_rrule(rrule: str, expected: str) -> None:
    assert any(expected in e for e in awx_rrule_errors(rrule)), awx_rrule_errors(rrule)


@pytest.mark.parametrize(
    ("rrule", "expected"),
    [
        ("DTSTART;TZID=Europe/Berlin:20260101T033000 RRULE:FREQ=HOURLY;INTERVAL=1", "runs daily"),
        ("DTSTART;TZID=Europe/Berlin:20260101T033000 RRULE:FREQ=DAILY;INTERVAL=2", "runs daily"),
        ("DTSTART;TZID=Europe/Berlin:20260101T023000 RRULE:FREQ=DAILY;INTERVAL=1", "DST"),
        ("DTSTART;TZID=Europe/Berlin:20260101T143000 RRULE:FREQ=DAILY;INTERVAL=1", "not at night"),
        ("DTSTART:20260101T033000Z RRULE:FREQ=DAILY;INTERVAL=1", "local time"),
        ("DTSTART;TZID=Europe/Berlin:20260101T033000 RRULE:FREQ=DAILY;INTERVAL=1;COUNT=30", "for ever"),
    ],
)
def test_a_schedule_that_is_not_nightly_is_refused(rrule: str, expected: str) -> None:
    errors = nightly_schedule_errors(rrule, "Europe/Berlin")
    assert any(expected in e for e in errors), errors


NOTIFY_EMAIL_CONFIG = {
    "host": "smtp.ablage.internal",
    "port": 25,
    "username": "",
    "password": "",
    "use_tls": False,
    "use_ssl": False,
    "sender": "awx@ablage.internal",
    "recipients": ["ops@ablage.internal"],
    "timeout": 30,
}


def test_awx_checks_a_notification_configuration_like_on_save() -> None:
    config, errors = awx_notification_errors("webhook", {"url": "https://hooks.example/x", "headers": {}})
    assert errors == []
    assert config["http_method"] == "POST" and config["password"] == "" and config["disable_ssl_verification"] is False
    for kind, broken, expected in (
        ("webhook", {"url": "https://hooks.example/x"}, "Missing required fields for Notification Configuration"),
        ("webhook", {"url": "https://x", "headers": {}, "http_method": "GET"}, "HTTP method must be"),
        ("email", {"host": "smtp", "port": "25"}, "Missing required fields"),
        (
            "email",
            {
                "host": "smtp",
                "port": "25",
                "username": "",
                "password": "",
                "use_tls": False,
                "use_ssl": False,
                "sender": "a@b",
                "recipients": [],
            },
            "incorrect type, expected int",
        ),
    ):
        _config, errors = awx_notification_errors(kind, broken)
        assert any(expected in e for e in errors), (broken, errors)
    _config, errors = awx_notification_errors("email", {**NOTIFY_EMAIL_CONFIG, "recipients": []})
    assert errors == ["No values specified for field 'recipients'"]


def test_docs_name_every_awx_object_and_where_reports_are() -> None:
    text = (REPO / "docs" / "awx.md").read_text(encoding="utf-8")
    data = controller_vars()
    names = [tpl["name"] for tpl in job_templates()] + [WORKFLOW_NAME]
    names += [s["name"] for s in data["ablage_awx_backup_schedules"]]
    names += [data["ablage_awx_notify_webhook_name"], data["ablage_awx_notify_email_name"]]
    assert [name for name in names if name not in text] == []
    for needle in ("ablage_report", "set_stats", "ablage_awx_report_dir", "history.jsonl", "encrypt_string"):
        assert needle in text, needle
    assert "no playbook reads it" not in text


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
    assert {"workflow_job_template", "workflow_job_template_node", "notification_template", "schedule"} <= seen


def test_secrets_are_never_logged() -> None:
    handled = 0
    for task in configure_tasks():
        body = json.dumps({k: v for k, v in task.items() if k not in ("name", "no_log")})
        if SECRET_VARIABLE.search(body):
            handled += 1
            assert task.get("no_log") is True, f"task {task['name']!r} handles a secret without no_log: true"
    # the input checks, the vault and machine credentials, the webhook and e-mail notification templates
    assert handled >= 6
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
    assert "item.notify_on" in args["notification_templates_error"]
    assert "item.notify_on" in args["notification_templates_success"]
    assert "ablage_awx_report_dir" in args["extra_vars"]
    (workflow,) = [
        task["awx.awx.workflow_job_template"] for task in configure_tasks() if "awx.awx.workflow_job_template" in task
    ]
    # The launch variables come from the workflow's survey; nothing else may be typed in at launch.
    assert (workflow["survey_enabled"], workflow["ask_variables_on_launch"]) == (True, False)
    assert workflow["ask_inventory_on_launch"] is True and workflow["allow_simultaneous"] is False
    assert "_awx_notifications" in workflow["notification_templates_error"]
    assert "_awx_notifications" in workflow["notification_templates_approvals"]
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
    "notification_templates_approvals": "notification_templates",
    "success_nodes": "workflow_job_template_nodes",
    "failure_nodes": "workflow_job_template_nodes",
    "always_nodes": "workflow_job_template_nodes",
}
SECRET_INPUTS = {"vault_password", "ssh_key_data", "ssh_key_unlock", "password", "become_password"}
# What /api/v2/unified_job_templates/ lists (the templates a workflow node or a schedule may point at).
UNIFIED_JOB_TEMPLATES = (
    "job_templates",
    "workflow_job_templates",
    "projects",
    "inventory_sources",
    "workflow_approval_templates",
)


class FakeAwx:
    """The part of AWX's REST API (v2) that the awx.awx modules of configure.yml use.

    Collections with name lookups (``?name=``, ``or__id``/``or__name``), create (201), detail
    GET/PATCH, association sub-lists (POST ``{"id"}`` / ``{"id", "disassociate"}``, 204), survey_spec
    (validated with awx_spec_errors, as AWX does on save), project and inventory updates that finish
    at once, secret credential inputs and notification passwords shown as ``$encrypted$``, the
    Bearer token checked; notification configurations and schedule rrules validated on save as AWX
    does (400), ``unified_job_templates`` listing every kind of template, workflow nodes with their
    success/failure/always links and ``create_approval_template``.
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
        if collection == "notification_templates":
            params = NOTIFICATION_INIT_PARAMETERS[obj["notification_type"]]
            shown["notification_configuration"] = {
                k: ("$encrypted$" if params.get(k, ("",))[0] == "password" and v else v)
                for k, v in obj["notification_configuration"].items()
            }
        return shown

    def validate(self, collection: str, data: dict[str, t.Any], old: dict[str, t.Any] | None) -> list[str]:
        """AWX's checks on save of a notification template or a schedule (fills in the configuration's defaults)."""
        if collection == "notification_templates" and "notification_configuration" in data:
            kind = data.get("notification_type") or (old or {}).get("notification_type", "")
            config, errors = awx_notification_errors(kind, data["notification_configuration"])
            for key, value in config.items():  # "$encrypted$" keeps the stored password
                if value == "$encrypted$" and old is not None:
                    config[key] = old["notification_configuration"][key]
            data["notification_configuration"] = config
            return errors
        if collection == "schedules" and "rrule" in data:
            return awx_rrule_errors(data["rrule"])
        return []

    def create(self, collection: str, data: dict[str, t.Any]) -> dict[str, t.Any]:
        self.next_id += 1
        pk = self.next_id
        url = f"/api/v2/{collection}/{pk}/"
        obj = dict(data, id=pk, url=url, type=collection.rstrip("s"), summary_fields={})
        subs = ("survey_spec", "update", "copy", "create_approval_template", *ASSOCIATIONS)
        obj["related"] = {sub: f"{url}{sub}/" for sub in subs}
        self.link_template(obj)
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

    def link_template(self, obj: dict[str, t.Any]) -> None:
        """A workflow node shows the template it runs (AWX: related.unified_job_template, only when set)."""
        pk = obj.get("unified_job_template")
        for collection in UNIFIED_JOB_TEMPLATES:
            if pk is not None and pk in self.objects.get(collection, {}):
                obj["related"]["unified_job_template"] = f"/api/v2/{collection}/{pk}/"

    def handle(self, method: str, path: str, query: dict[str, list[str]], body: t.Any) -> tuple[int, t.Any]:
        parts = [p for p in path.split("/") if p]
        if parts[:2] != ["api", "v2"] or len(parts) < 3:
            return 404, {"detail": "Not found."}
        collection, rest = parts[2], parts[3:]
        if method != "GET":
            self.writes.append((method, path))
        if collection == "unified_job_templates" and not rest and method == "GET":
            every = [o for c in UNIFIED_JOB_TEMPLATES for o in self.objects.get(c, {}).values()]
            return 200, self.listing(every, query)
        items = self.objects.setdefault(collection, {})
        if not rest:
            if method == "GET":
                return 200, self.listing(items.values(), query)
            if method == "POST":
                if errors := self.validate(collection, body, None):
                    return 400, {"__all__": errors}
                return 201, self.public(collection, self.create(collection, body))
        pk = int(rest[0]) if rest and rest[0].isdigit() else None
        if pk is None or pk not in items:
            return 404, {"detail": "Not found."}
        obj = items[pk]
        if len(rest) == 1:
            if method == "GET":
                return 200, self.public(collection, obj)
            if method == "PATCH":
                if errors := self.validate(collection, body, obj):
                    return 400, {"__all__": errors}
                if collection == "credentials":
                    self.secrets[pk] = dict(body.get("inputs", {}))
                obj.update(body)
                self.link_template(obj)
                return 200, self.public(collection, obj)
        sub = rest[1] if len(rest) > 1 else ""
        if sub == "survey_spec":
            return self.survey(method, pk, body)
        if sub == "create_approval_template" and method == "POST" and collection == "workflow_job_template_nodes":
            if not body.get("name"):
                return 400, {"name": ["This field is required."]}
            approval = self.create("workflow_approval_templates", body)
            obj["unified_job_template"] = approval["id"]
            self.link_template(obj)
            return 201, self.public("workflow_approval_templates", approval)
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


NOTIFY_INPUTS: dict[str, t.Any] = {
    "ablage_awx_notify_webhook_url": "https://hooks.ablage.internal/services/T0/B0/fake-webhook-secret-4c1e",
    "ablage_awx_notify_email_recipients": ["ops@ablage.internal"],
}
SMTP_PASSWORD = "fake-smtp-password-77d0"


def _associated(api: FakeAwx, collection: str, pk: int, sub: str) -> list[int]:
    return sorted(api.associated.get((collection, pk, sub), []))


def check_workflow_in_awx(api: FakeAwx, templates: dict[str, dict[str, t.Any]]) -> dict[str, t.Any]:
    """The workflow's nodes, edges and approval template as AWX holds them, against awx/vars/controller.yml."""
    data = controller_vars()
    workflow = api.named("workflow_job_templates", WORKFLOW_NAME)
    assert (workflow["organization"], workflow["inventory"]) == (
        api.named("organizations", "Ablage")["id"],
        api.named("inventories", "ablage-staging")["id"],
    )
    assert (workflow["survey_enabled"], workflow["ask_variables_on_launch"]) == (True, False)
    assert (workflow["ask_inventory_on_launch"], workflow["ask_limit_on_launch"]) == (True, True)
    assert workflow["allow_simultaneous"] is False
    assert api.surveys[workflow["id"]] == load_survey(data["ablage_awx_workflow_survey"])

    nodes = {
        n["identifier"]: n
        for n in api.objects["workflow_job_template_nodes"].values()
        if n["workflow_job_template"] == workflow["id"]
    }
    assert set(nodes) == {n["identifier"] for n in workflow_nodes()}
    identifier_of = {n["id"]: ident for ident, n in nodes.items()}
    template_of = {jt["id"]: name for name, jt in templates.items()}
    approvals = api.objects.get("workflow_approval_templates", {})
    stored = []
    for spec in workflow_nodes():
        node = nodes[spec["identifier"]]
        held: dict[str, t.Any] = {"identifier": spec["identifier"]}
        if node["unified_job_template"] in approvals:
            approval = approvals[node["unified_job_template"]]
            assert approval["name"] == data["ablage_awx_approval_name"]
            assert approval["timeout"] == data["ablage_awx_approval_timeout"]
            assert "pre-flight" in approval["description"]
            held["approval"] = True
        else:
            held["job_template"] = template_of[node["unified_job_template"]]
        for kind in EDGE_KINDS:
            held[kind] = [identifier_of[i] for i in _associated(api, "workflow_job_template_nodes", node["id"], kind)]
            assert sorted(held[kind]) == sorted(spec.get(kind, [])), (spec["identifier"], kind)
        stored.append(held)
    assert len(approvals) == 1
    # The graph AWX holds passes the workflow's rules (pre-flight -> approval -> deploy -> failure notice).
    timeout = next(iter(approvals.values()))["timeout"]
    assert workflow_errors(stored, job_templates(), timeout) == []
    return workflow


def test_configure_builds_the_whole_setup_in_awx(fake_awx: tuple[FakeAwx, str], tmp_path: Path) -> None:
    api, host = fake_awx
    proc, stats = run_configure(tmp_path, host, **NOTIFY_INPUTS)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert stats["failures"] == 0
    for secret in (*SECRETS.values(), FAKE_TOKEN, NOTIFY_INPUTS["ablage_awx_notify_webhook_url"]):
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
        assert jt["timeout"] == spec["timeout"]
        assert "extra_vars" not in jt, "no report directory configured: the job's artefacts are the record"

    # Notification templates: as AWX stores them (its defaults filled in), attached where notify_on says.
    webhook = api.named("notification_templates", "Ablage webhook")
    assert (webhook["notification_type"], webhook["organization"]) == ("webhook", org["id"])
    assert webhook["notification_configuration"]["url"] == NOTIFY_INPUTS["ablage_awx_notify_webhook_url"]
    email = api.named("notification_templates", "Ablage e-mail")
    assert email["notification_configuration"] == NOTIFY_EMAIL_CONFIG
    notify = sorted([webhook["id"], email["id"]])
    for spec in job_templates():
        jt = templates[spec["name"]]
        for event in ("error", "success"):
            expected = notify if event in spec["notify_on"] else []
            assert _associated(api, "job_templates", jt["id"], f"notification_templates_{event}") == expected, (
                spec["name"],
                event,
            )

    # The workflow: its survey, nodes, edges and approval; notified on failure and on approvals.
    workflow = check_workflow_in_awx(api, templates)
    assert _associated(api, "workflow_job_templates", workflow["id"], "notification_templates_error") == notify
    assert _associated(api, "workflow_job_templates", workflow["id"], "notification_templates_approvals") == notify
    assert _associated(api, "workflow_job_templates", workflow["id"], "notification_templates_success") == []

    # The nightly backups: the backup template, one per inventory, daily at night in local time.
    schedules = {o["name"]: o for o in api.objects["schedules"].values()}
    assert set(schedules) == {s["name"] for s in controller_vars()["ablage_awx_backup_schedules"]}
    for spec in controller_vars()["ablage_awx_backup_schedules"]:
        schedule = schedules[spec["name"]]
        assert schedule["unified_job_template"] == templates["Ablage backup"]["id"]
        assert schedule["inventory"] == api.named("inventories", spec["inventory"])["id"]
        assert schedule["enabled"] is True
        assert nightly_schedule_errors(schedule["rrule"], controller_vars()["ablage_awx_timezone"]) == []
        assert f"{rrule_facts(schedule['rrule'])['start']:%H:%M}" == spec["time"]

    # A second run with the secrets left alone (and no sync, which always starts a job) changes nothing.
    writes = len(api.writes)
    proc, stats = run_configure(
        tmp_path, host, ablage_awx_update_secrets=False, ablage_awx_sync_inventories=False, **NOTIFY_INPUTS
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert stats["changed"] == 0, stats
    assert api.writes[writes:] == []

    # No webhook any more, e-mail with an SMTP password, reports on a volume: the templates follow, no secret shows.
    notify_check = next(t["name"] for t in configure_tasks() if t["name"].startswith("AWX | Check the notification"))
    proc, stats = run_configure(
        tmp_path,
        host,
        "--start-at-task",
        notify_check,
        ablage_awx_notify_email_recipients=NOTIFY_INPUTS["ablage_awx_notify_email_recipients"],
        ablage_awx_notify_email_password=SMTP_PASSWORD,
        ablage_awx_report_dir="/srv/ablage-reports",
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert SMTP_PASSWORD not in proc.stdout + proc.stderr, "a secret reached the output"
    assert email["id"] in api.objects["notification_templates"]
    assert api.objects["notification_templates"][email["id"]]["notification_configuration"]["password"] == SMTP_PASSWORD
    for spec in job_templates():
        jt = api.objects["job_templates"][templates[spec["name"]]["id"]]
        assert json.loads(jt["extra_vars"]) == {"ablage_report_dir": "/srv/ablage-reports"}
        expected = [email["id"]] if "error" in spec["notify_on"] else []
        assert _associated(api, "job_templates", jt["id"], "notification_templates_error") == expected
    assert _associated(api, "workflow_job_templates", workflow["id"], "notification_templates_error") == [email["id"]]

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
