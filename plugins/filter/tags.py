# Copyright (c) ablage.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What a tag-scoped run of deploy.yml may do (docs/tags.md).

A deploy is one unit: maintenance, backup, stop, migration and start are safe only together, with
the rescue that rolls them back. Ansible's tags cut a playbook anywhere, so ``--tags migrate``
would migrate without a backup and ``--skip-tags backup`` would deploy without one. deploy.yml asks
this filter first and stops before anything runs when the tags would cut the deploy; the message
names the playbook that does the step on its own. The pre-flight gates and fetching the images
are safe alone, so those tags narrow the run.
"""

from __future__ import annotations

import typing as t

from ansible.errors import AnsibleFilterError

# The pre-flight gates (roles/preflight): read-only, safe alone and safe to skip.
PREFLIGHT = (
    "preflight",
    "preflight_config",
    "preflight_infra",
    "preflight_db",
    "preflight_contract",
    "preflight_quality",
)

# Tags that name a part of the deploy or its checks, and where that part runs on its own.
ELSEWHERE = {
    "deploy": "the deploy without its pre-flight gates: playbooks/deploy.yml --skip-tags preflight",
    "maintenance": "maintenance mode on or off alone: playbooks/maintenance.yml -e operate_maintenance_state=enabled",
    "backup": "a verified backup of the running system: playbooks/backup.yml",
    "stop": "stopping or restarting services: playbooks/restart.yml -e operate_restart_service=all",
    "start": "stopping or restarting services: playbooks/restart.yml -e operate_restart_service=all",
    "migrate": "migrations run only inside a whole deploy, after its backup and with its rollback: "
    "playbooks/deploy.yml without --tags",
    "verify": "the checks of the running system: playbooks/verify.yml",
    "health": "the health checks alone: playbooks/verify.yml --tags health",
    "smoke": "the smoke tests alone: playbooks/verify.yml --tags smoke",
    "monitoring": "the monitoring checks alone: playbooks/verify.yml --tags monitoring",
    "grafana": "the Grafana check alone: playbooks/verify.yml --tags grafana",
    "rollback": "a rollback: playbooks/rollback.yml",
    "restore": "a restore: playbooks/restore.yml",
}

SCOPES = ("deploy", "preflight", "pull")


def _names(value: t.Any, what: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, (list, tuple, set, frozenset)):
        raise AnsibleFilterError(f"deploy_run_scope: {what} must be a list of tag names, got {value!r}")
    return sorted({str(v) for v in value})


def _hint(tag: str) -> str:
    return ELSEWHERE.get(tag, f"deploy.yml has no tag {tag!r} (its tags: docs/tags.md)")


def deploy_run_scope(run_tags: t.Any, skip_tags: t.Any = None) -> dict[str, t.Any]:
    """The scope of a deploy.yml run from ``ansible_run_tags`` and ``ansible_skip_tags``.

    ``scope`` is ``deploy`` (the whole deploy), ``preflight`` (only gates) or ``pull`` (gates named
    with it, then the target's images fetched); ``refused`` is the message to stop with, or "".
    """
    run = _names(run_tags, "run_tags") or ["all"]
    skip = _names(skip_tags, "skip_tags")
    scope = ""
    problems: list[str] = []

    # Skipping a tag no task of deploy.yml carries skips nothing (Molecule always skips "notest").
    cut = [tag for tag in skip if tag in ELSEWHERE or tag == "pull"]
    if cut:
        problems.append(
            f"--skip-tags {','.join(cut)} would leave steps out of the deploy ("
            + "; ".join(f"{tag}: {_hint(tag)}" for tag in cut)
            + "). Only the pre-flight gates may be skipped (--skip-tags preflight)"
        )

    if "all" in run:
        scope = "deploy"
        extra = [tag for tag in run if tag != "all" and tag not in PREFLIGHT]
    elif set(run) <= set(PREFLIGHT):
        scope, extra = "preflight", []
    elif "pull" in run:
        scope = "pull"
        extra = [tag for tag in run if tag != "pull" and tag not in PREFLIGHT]
    else:
        extra = [tag for tag in run if tag not in PREFLIGHT]
    if extra:
        problems.append(
            f"--tags {','.join(extra)} would run part of a deploy out of its order ("
            + "; ".join(f"{tag}: {_hint(tag)}" for tag in extra)
            + ")"
        )
        scope = ""

    refused = ""
    if problems:
        refused = (
            "deploy.yml runs a whole deploy, only its pre-flight gates (--tags preflight) or only the pull of the "
            "target's images (--tags pull). " + ". ".join(problems) + ". Nothing was changed."
        )
        scope = ""
    return {"scope": scope, "refused": refused, "run_tags": run, "skip_tags": skip}


class FilterModule:
    def filters(self) -> dict[str, t.Callable[..., t.Any]]:
        return {"deploy_run_scope": deploy_run_scope}
