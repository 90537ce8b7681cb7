# Copyright (c) ablage.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Filters over a release's images (ablage.ops.compose_release's result), for the deploy state.

The rollback point names each service's image by digest, so a tag moved in the registry later
cannot change what a rollback would start.
"""

from __future__ import annotations

import typing as t

from ansible.errors import AnsibleFilterError


def _repository(image: str) -> str:
    """``registry:5000/a/b:tag`` or ``a/b@sha256:..`` -> ``registry:5000/a/b``."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)
    if ":" in last[-1]:
        name = name[: name.rindex(":")]
    return name


def service_digests(images: t.Mapping[str, str], pull_results: t.Sequence[t.Mapping[str, t.Any]]) -> dict[str, str]:
    """Each service's image as ``repository@sha256:...`` from docker_image_pull results (``''`` when unknown)."""
    digests: dict[str, list[str]] = {}
    for result in pull_results or []:
        image = result.get("image") or {}
        digests[str(result.get("item", ""))] = list(image.get("RepoDigests") or [])
    out = {}
    for service, image in (images or {}).items():
        repo = _repository(image)
        known = digests.get(image, [])
        out[service] = next((d for d in known if _repository(d) == repo), known[0] if known else "")
    return out


def deploy_plan(
    release: t.Mapping[str, t.Any], migration: t.Mapping[str, t.Any] | None, force: bool, locked: bool = False
) -> dict[str, t.Any]:
    """Deploy, or nothing to do: the running release is the target, its images are the registry's, nothing pending.

    ``migration`` is alembic_migrate's status result (skipped or absent when the images differ anyway). A deploy
    lock held by another run means what runs now may be half way: the lock step decides, never this plan.
    """
    current, version = release.get("current_version"), release.get("version")
    plan = {"current_version": current, "version": version}
    if force:
        return dict(plan, action="deploy", reason=f"deploy_force=true: {version} is deployed again")
    if locked:
        return dict(plan, action="deploy", reason="a deploy lock is held: another run may be half way")
    if not release.get("up_to_date"):
        return dict(plan, action="deploy", reason=str(release.get("up_to_date_reason") or f"{current} -> {version}"))
    if not migration or migration.get("skipped") or "pending" not in migration:
        return dict(plan, action="deploy", reason="the migration state was not read")
    pending = list(migration.get("pending") or [])
    if pending:
        return dict(plan, action="deploy", reason=f"{version} runs, but migrations are pending: {', '.join(pending)}")
    return dict(
        plan,
        action="none",
        reason=f"already at {version}: every app service runs the registry's image of {version}, "
        f"database at {migration.get('current_before') or 'base'} (head), nothing pending",
    )


def releases_kept(
    history: t.Sequence[t.Mapping[str, t.Any]], keep: int, current: str, previous: str | None
) -> list[str]:
    """The versions whose images stay on the host: the running one, the rollback target, and the newest
    successful deploys up to ``keep`` versions in all (``keep`` 0: every version ever deployed)."""
    kept: list[str] = []
    for version in (current, previous):
        if version and version not in kept:
            kept.append(str(version))
    for record in reversed(list(history or [])):
        version = record.get("version")
        if record.get("action") != "deploy" or record.get("result") != "success" or not version:
            continue
        if keep and len(kept) >= keep:
            break
        if str(version) not in kept:
            kept.append(str(version))
    return kept


def releases_old(history: t.Sequence[t.Mapping[str, t.Any]], kept: t.Sequence[str]) -> list[str]:
    """The versions this host's deploys named before (success or not) that are not kept, oldest first.

    Only these leave the host: an image of a version no deploy named (one pulled ahead of its window
    with ``--tags pull``) is never an old release.
    """
    old: list[str] = []
    for record in history or []:
        version = record.get("version")
        if record.get("action") == "deploy" and version and str(version) not in kept and str(version) not in old:
            old.append(str(version))
    return old


def images_to_prune(
    local: t.Sequence[t.Mapping[str, t.Any]],
    kept: t.Sequence[t.Mapping[str, str]],
    old: t.Sequence[t.Mapping[str, str]],
) -> list[str]:
    """Local tags of old releases that no kept release uses, oldest first.

    ``local`` is docker_host_info's ``images`` (each with ``RepoTags`` and ``Created``); ``kept`` and ``old``
    the ``images`` (service to reference) of compose_release for each kept and each old version.
    """
    kept_refs = {ref for images in kept for ref in (images or {}).values()}
    old_refs = {ref for images in old for ref in (images or {}).values()} - kept_refs
    prune: list[str] = []
    for image in sorted(local or [], key=lambda i: i.get("Created") or 0):
        prune.extend(tag for tag in image.get("RepoTags") or [] if tag in old_refs)
    return prune


STRATEGIES = ("window", "zero_downtime", "auto")


def deploy_mode(
    review: t.Mapping[str, t.Any] | None, strategy: str, proxy_enabled: bool, hosts: int
) -> dict[str, t.Any]:
    """Maintenance window or zero downtime, and why: from the migration reviewed before the window.

    Zero downtime needs the proxy, one app host and a migration the old release can keep serving on
    (alembic_migrate's ``online`` verdict: nothing pending, or every statement additive). ``auto`` falls
    back to the window with the reason; ``zero_downtime`` asked for where it cannot be refuses, before
    users see anything, instead of quietly taking a window.
    """
    if strategy not in STRATEGIES:
        raise AnsibleFilterError(
            f"deploy_mode: ablage_deploy_strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}"
        )
    if strategy == "window":
        return {"mode": "window", "reason": "ablage_deploy_strategy is window", "refuse": None}
    blocker = None
    online = dict((review or {}).get("online") or {})
    if not proxy_enabled:
        blocker = (
            "there is no reverse proxy in front of the backend (ablage_proxy_enabled is false; docs/zero-downtime.md)"
        )
    elif hosts != 1:
        blocker = f"the zero-downtime mode switches one app host, this play has {hosts}"
    elif not review or review.get("skipped"):
        blocker = "the migration was not reviewed"
    elif online.get("mode") != "online":
        blocker = "the migration needs maintenance: " + str(online.get("reason") or "no verdict on its SQL").rstrip(".")
    if blocker is None:
        pending = list(review.get("pending") or []) if review else []
        reason = (
            f"every pending statement is additive ({', '.join(pending)}), the running release keeps serving"
            if pending
            else "no migration is pending"
        )
        return {"mode": "zero_downtime", "reason": reason, "refuse": None}
    refuse = None
    if strategy == "zero_downtime":
        refuse = (
            f"ablage_deploy_strategy=zero_downtime, but {blocker}. Deploy with ablage_deploy_strategy=auto or window "
            "(a maintenance window), or remove the cause. Nothing was changed: the running release serves as before."
        )
    return {"mode": "window", "reason": blocker, "refuse": refuse}


class FilterModule:
    def filters(self) -> dict[str, t.Callable[..., t.Any]]:
        return {
            "service_digests": service_digests,
            "deploy_plan": deploy_plan,
            "deploy_mode": deploy_mode,
            "releases_kept": releases_kept,
            "releases_old": releases_old,
            "images_to_prune": images_to_prune,
        }
