"""``restoro.lock``: resolved source digests, detected shots and deliverable digests.

The file sits beside the manifest and is committed to git, so it is written sorted, indented and
only when its content changes. It carries its own schema version; ``UPGRADES[n]`` turns a version
``n`` document into version ``n + 1``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from restoro.engine.keys import pretty_json
from restoro.errors import InputError

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

LOCK_SCHEMA = 1
LOCK_NAME = "restoro.lock"

UPGRADES: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


def empty_lock() -> dict[str, Any]:
    return {"restoro_lock": LOCK_SCHEMA, "sources": {}, "titles": {}, "deliverables": {}}


def render(data: dict[str, Any]) -> str:
    """Sorted and indented, one shot per line, so git diffs show exactly what changed."""
    return pretty_json(data)


def read_lockfile(path: Path) -> dict[str, Any]:
    """The lockfile's content, upgraded to the current schema; an empty lock when absent."""
    if not path.exists():
        return empty_lock()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(
            f"cannot read {path.name}: {exc}",
            location=str(path),
            code="E250",
            hint="restore it from git, or delete it: the next build recreates it",
        ) from exc
    version = data.get("restoro_lock") if isinstance(data, dict) else None
    if not isinstance(version, int) or version > LOCK_SCHEMA:
        raise InputError(
            f"{path.name} has lock schema {version!r}; this restoro reads up to {LOCK_SCHEMA}",
            location=str(path),
            code="E251",
            hint="upgrade restoro, or delete the lockfile to recreate it",
        )
    while version < LOCK_SCHEMA:
        data = dict(UPGRADES[version](data))
        version += 1
    return dict(data)


def write_lockfile(path: Path, data: dict[str, Any]) -> bool:
    """Write atomically when the content differs; returns whether the file changed."""
    from restoro.engine.materialise import write_text

    return write_text(path, render(data))
