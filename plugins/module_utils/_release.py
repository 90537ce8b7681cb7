# Copyright (c) ablage.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The release a compose project runs: its version variable in ``.env`` and the images it resolves to.

PRIVATE: this file is an implementation detail of the ablage.ops collection.
It is not a public API and may change or disappear in any release.

The collection assumes nothing about how an application names its images. The
compose file is the contract: the version lives in one variable of the
project's ``.env`` (``ABLAGE_VERSION`` for Ablage-System), and the images of a
release are whatever ``docker compose config`` resolves with that variable set.
One image for several services, another registry or a digest pin all work.
"""

from __future__ import annotations

import ipaddress
import json
import re
import typing as t

from ansible_collections.ablage.ops.plugins.module_utils._dotenv import DotenvError
from ansible_collections.ablage.ops.plugins.module_utils._dotenv import parse as parse_dotenv
from ansible_collections.ablage.ops.plugins.module_utils._dotenv import plan as plan_dotenv
from ansible_collections.ablage.ops.plugins.module_utils._dotenv import read as read_dotenv

# Docker's tag grammar: what a version must be to end up in an image reference.
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ReleaseError(Exception):
    """The release cannot be read or resolved; the message names the cause and the fix."""


def version_problem(version: str, what: str = "ablage_version") -> str | None:
    """Why ``version`` cannot be a release (empty, a newline, ``;``...), or None when it can."""
    if _TAG.fullmatch(version or ""):
        return None
    return (
        f"{what}={json.dumps(version)} is not a valid release: it must be a Docker tag "
        "(letters, digits, '_', '.', '-', at most 128 characters, not starting with '.' or '-')"
    )


def variable_problem(variable: str) -> str | None:
    if _VARIABLE.fullmatch(variable or ""):
        return None
    return f"ablage_version_variable={json.dumps(variable)} is not a shell variable name"


def read_variable(text: str, variable: str) -> str | None:
    """The value compose reads for ``variable`` from an env file's text (its last assignment).

    None when the file does not assign it, or leaves it to the environment (``VARIABLE`` alone,
    ``VARIABLE=${OTHER}``). The file is read as compose reads it (``_dotenv``).
    """
    try:
        return read_dotenv(text).get(variable)
    except DotenvError as exc:
        raise _unreadable(exc) from exc


def set_variable(text: str, variable: str, value: str) -> str:
    """The env file's text with ``variable`` set to ``value``; every other line is kept as it is.

    The last assignment is rewritten (that is the one compose reads), keeping its ``export`` and
    inline comment; a missing one is appended. The rewritten or appended line ends with a newline.
    """
    try:
        entries = parse_dotenv(text)
        new_text = plan_dotenv(text, {variable: value}).text
    except DotenvError as exc:
        raise _unreadable(exc) from exc
    last = entries[-1] if entries else None
    if new_text != text and last is not None and last.key == variable and not last.text.endswith("\n"):
        new_text += "\n"
    return new_text


def _unreadable(exc: DotenvError) -> ReleaseError:
    return ReleaseError(f"the env file cannot be read as compose reads it: {exc}")


def images_of(config: t.Any, services: t.Sequence[str]) -> dict[str, str]:
    """Map each of ``services`` to its image in the output of ``docker compose config --format json``."""
    declared = (config or {}).get("services") or {}
    missing = [name for name in services if name not in declared]
    if missing:
        raise ReleaseError(
            f"the compose project has no service {', '.join(missing)} "
            f"(it has {', '.join(sorted(declared)) or 'none'}); "
            "set ablage_app_services to the services whose image follows the release"
        )
    images = {}
    for name in services:
        image = declared[name].get("image")
        if not image:
            raise ReleaseError(
                f"service {name} has no image: in the compose file (it is built locally); a deploy needs every app "
                "service's image in a registry"
            )
        images[name] = str(image)
    return images


def follows_version(images_a: dict[str, str], images_b: dict[str, str]) -> list[str]:
    """Services whose image is the same for two versions: they do not follow the version variable."""
    return sorted(name for name, image in images_a.items() if images_b.get(name) == image)


def registry_of(image: str) -> str:
    """The registry host of an image reference, as Docker reads it (docker.io when the first part is no host)."""
    first, _sep, rest = image.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return first
    return "docker.io"


def insecure_registries(registry_config: t.Any) -> set[str]:
    """Registries the engine talks plain HTTP to, from ``docker info --format '{{json .RegistryConfig}}'``."""
    out: set[str] = set()
    for name, index in ((registry_config or {}).get("IndexConfigs") or {}).items():
        if not (index or {}).get("Secure", True):
            out.add(name)
    cidrs = (registry_config or {}).get("InsecureRegistryCIDRs") or []
    out.update(f"cidr:{cidr}" for cidr in cidrs)
    return out


def is_insecure(registry: str, insecure: set[str]) -> bool:
    if registry in insecure:
        return True
    host = registry.rsplit(":", 1)[0] if registry.count(":") == 1 else registry
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    for entry in insecure:
        if entry.startswith("cidr:"):
            try:
                if address in ipaddress.ip_network(entry[5:], strict=False):
                    return True
            except ValueError:
                continue
    return False


def config_digest(manifest_json: str) -> str | None:
    """The image's config digest (= the image ID an engine gives it) of a single-platform manifest, else None."""
    try:
        document = json.loads(manifest_json)
    except ValueError:
        return None
    digest = (document.get("config") or {}).get("digest") if isinstance(document, dict) else None
    return str(digest) if digest else None


def up_to_date(
    current: str | None,
    version: str,
    images: dict[str, str],
    running: dict[str, dict[str, t.Any]],
    registry: dict[str, dict[str, t.Any]],
) -> tuple[bool, str]:
    """Whether every app service already runs the registry's image of ``version``, and why (not)."""
    if current != version:
        return False, f"the project points at {current}, not {version}"
    for service, image in sorted(images.items()):
        container = running.get(service) or {}
        if container.get("state") != "running":
            return False, f"{service} is not running ({container.get('state') or 'no container'})"
        wanted = (registry.get(image) or {}).get("config_digest")
        if not wanted:
            return False, f"the registry's image of {image} has no single config digest to compare with"
        if container.get("image_id") != wanted:
            return (
                False,
                f"{service} runs {str(container.get('image_id'))[:19]}, the registry's {image} is {wanted[:19]}",
            )
    return True, f"every app service runs the registry's image of {version}"


def manifest_summary(manifest_json: str) -> str | None:
    """A short proof of what ``docker manifest inspect`` found: media type and, for an index, its platforms."""
    try:
        document = json.loads(manifest_json)
    except ValueError:
        return None
    media = str(document.get("mediaType") or "")
    if document.get("manifests"):
        platforms = [
            f"{(m.get('platform') or {}).get('os', '?')}/{(m.get('platform') or {}).get('architecture', '?')}"
            for m in document["manifests"]
        ]
        return f"index ({media or 'OCI'}) with {', '.join(platforms)}"
    config = (document.get("config") or {}).get("digest")
    return f"manifest {media or 'OCI'}, config {config}" if config else media or None
