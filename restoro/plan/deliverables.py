"""Deliverable kinds: each says which graph nodes it adds per title and how its output leaves
the store. Built-in kinds are listed here; a kind module registers itself when imported. The
module is also the ``deliver`` phase's node maker (``make``) for every kind.

A kind's ``nodes`` returns the title's nodes for one deliverable, the last of which has the id
``f"{title}/{deliverable}"`` and is what ``materialise`` receives; ``materialise`` returns the
files it wrote, the primary output's first. The kind's ``primary`` names the output
whose digest stands for the deliverable in ``restoro.lock`` and the provenance sidecar; never the
first in dict order, which differs between a fresh result (the runner's order) and one read back
from the store (sorted).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from restoro.engine.store import ActionResult
    from restoro.plan.makers import Walk
    from restoro.plan.nodes import Node, ShotEntry
    from restoro.plan.workspace import Workspace

NodesFn = Callable[
    ["Workspace", str, str, "list[ShotEntry]", "list[str]", "str | None"], "list[Node]"
]
MaterialiseFn = Callable[
    ["Workspace", str, str, "ActionResult", Path, "list[ShotEntry]", "str | None"], "list[Path]"
]

BUILTIN_MODULES = (
    "restoro.plan.prores",
    "restoro.plan.streaming",
    "restoro.plan.imf",
)

_KINDS: dict[str, DeliverableKind] = {}
_loaded = False


def first_output(result: ActionResult) -> str:
    """The default primary output: the only one, or else the first by name."""
    return min(result.outputs)


@dataclass(frozen=True)
class DeliverableKind:
    kind: str
    nodes: NodesFn
    materialise: MaterialiseFn
    uses_audio: bool = True
    primary: Callable[[ActionResult], str] = first_output


def register(kind: DeliverableKind) -> DeliverableKind:
    if kind.kind in _KINDS and _KINDS[kind.kind] is not kind:
        raise ValueError(f"deliverable kind {kind.kind!r} is registered twice")
    _KINDS[kind.kind] = kind
    return kind


def load() -> None:
    """Import the built-in kind modules (which also registers their action runners)."""
    global _loaded
    if not _loaded:
        _loaded = True
        for name in BUILTIN_MODULES:
            importlib.import_module(name)


def get(kind: str) -> DeliverableKind | None:
    load()
    return _KINDS.get(kind)


def all_kinds() -> dict[str, Any]:
    load()
    return dict(_KINDS)


def delivers(ws: Workspace, deliverable: str, title: str) -> bool:
    """Whether ``deliverable`` is of a known kind and covers ``title``."""
    d = ws.manifest.deliverables[deliverable]
    return get(d.kind) is not None and (d.titles is None or title in d.titles)


def wanted(walk: Walk, title: str) -> dict[str, list[ShotEntry]]:
    """The build's deliverables of ``title`` and the shots each is made of (approvals
    applied; a refused deliverable is left out)."""
    made_of = {
        d: walk.approvals.entries(title, d, walk.shots[title])
        for d in walk.sel.deliverables
        if delivers(walk.ws, d, title)
    }
    return {d: e for d, e in made_of.items() if e is not None}


def make(walk: Walk, title: str) -> list[Node]:
    """The title's deliverable nodes, each kind's own (after the audio maker's)."""
    out: list[Node] = []
    kinds = walk.ws.manifest.deliverables
    for d, entries in wanted(walk, title).items():
        kind = get(kinds[d].kind)
        assert kind is not None
        out += kind.nodes(walk.ws, title, d, entries, walk.audio[title], walk.opts.variant)
    return out
