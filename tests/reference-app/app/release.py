"""What this build of the app is: version, the Alembic revisions it ships, its features.

The image build writes /app/release.json (see Dockerfile); outside an image the
release comes from APP_VERSION and migrations/releases.json.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

APP_ROOT = Path(__file__).resolve().parent.parent
RELEASES_FILE = APP_ROOT / "migrations" / "releases.json"
BUILT_RELEASE_FILE = APP_ROOT / "release.json"


@dataclass(frozen=True)
class Release:
    version: str
    revisions: tuple[str, ...]
    required_tables: tuple[str, ...]
    features: frozenset[str]

    @property
    def revision_ids(self) -> tuple[str, ...]:
        """Alembic revision ids ("0001"), in order."""
        return tuple(name.split("_", 1)[0] for name in self.revisions)

    @property
    def head(self) -> str:
        return self.revision_ids[-1]

    def has(self, feature: str) -> bool:
        return feature in self.features


def _from_manifest(version: str, manifest: dict[str, dict[str, object]]) -> Release:
    if version not in manifest:
        known = ", ".join(v for v in manifest if not v.startswith("_"))
        raise SystemExit(f"unknown release {version!r}; known releases: {known}")
    entry = manifest[version]
    return Release(
        version=version,
        revisions=tuple(entry["revisions"]),  # type: ignore[arg-type]
        required_tables=tuple(entry["required_tables"]),  # type: ignore[arg-type]
        features=frozenset(entry.get("features", [])),  # type: ignore[arg-type]
    )


def load_release() -> Release:
    if BUILT_RELEASE_FILE.exists():
        data = json.loads(BUILT_RELEASE_FILE.read_text())
        return _from_manifest(data["version"], {data["version"]: data})
    version = os.environ.get("APP_VERSION", "1.0.0")
    return _from_manifest(version, json.loads(RELEASES_FILE.read_text()))


def select_migrations(version: str, source: Path, target: Path) -> None:
    """Copy only this release's migrations from source to target and write release.json."""
    manifest = json.loads((source / "releases.json").read_text())
    release = _from_manifest(version, manifest)
    (target / "versions").mkdir(parents=True, exist_ok=True)
    for name in ("env.py", "script.py.mako"):
        (target / name).write_bytes((source / name).read_bytes())
    for rev in release.revisions:
        src = source / "versions" / f"{rev}.py"
        (target / "versions" / src.name).write_bytes(src.read_bytes())
    entry = dict(manifest[version])
    entry = {k: v for k, v in entry.items() if not k.startswith("_")}
    entry["version"] = version
    (target.parent / "release.json").write_text(json.dumps(entry, indent=2) + "\n")


if __name__ == "__main__":
    # python -m app.release select <version> <source migrations dir> <target migrations dir>
    if len(sys.argv) != 5 or sys.argv[1] != "select":
        raise SystemExit("usage: python -m app.release select VERSION SOURCE_DIR TARGET_DIR")
    select_migrations(sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]))
