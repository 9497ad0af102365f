"""The node makers of a build, in one list: which module makes the nodes of each phase.

``Builder._walk`` runs the phases in order — ``analysis`` (per title: cadence, timeline and
format, no frames), ``ingest`` (per title: its frames in pieces and their shot detection),
``shots`` (per shot: ingest or extract, chain segments), ``deliver`` (audio, then each
deliverable kind) and ``qc`` — and between them runs what the next phase needs (the analysis
actions, the review phase of approved masters). A maker is a module with ``make(walk, title) ->
list[Node]`` for one title; the walk calls the makers of a phase title by title, in list
order. A maker reads the build so far from the ``Walk`` and may record what later makers read
(the shots maker records each shot's entry, the audio maker its track ids).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from restoro.engine.records import BuildOptions, Selection
    from restoro.engine.store import ActionResult
    from restoro.plan.nodes import Node, Shot, ShotEntry
    from restoro.plan.titles import TitleIngest
    from restoro.plan.workspace import Workspace

MAKERS: tuple[tuple[str, str], ...] = (
    ("analysis", "restoro.plan.analysis"),
    ("ingest", "restoro.plan.pieces"),
    ("shots", "restoro.plan.chains"),
    ("deliver", "restoro.plan.audio"),
    ("deliver", "restoro.plan.deliverables"),
    ("qc", "restoro.plan.qc"),
)
"""(phase, module) of every node maker, in the order the walk calls them."""

PHASES = ("analysis", "ingest", "shots", "deliver", "qc")


@dataclass
class Walk:
    """What the makers of one build read, and what they leave for the makers after them."""

    ws: Workspace
    sel: Selection
    opts: BuildOptions
    approvals: Any = None
    """The build's ``Approvals`` (restoro/plan/approvals.py): which shots each deliverable is
    made of, and whether a title's own shot chains are needed."""
    analyses: dict[str, ActionResult] = field(default_factory=dict)
    """Title → its ``analysis`` result (titles whose analysis is known)."""
    pieces: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    """Title → title frames [k0, k1) of each of its ingest pieces (set by the ingest maker)."""
    ingests: dict[str, TitleIngest] = field(default_factory=dict)
    """Title → its ingested frames (titles whose analysis and pieces are known)."""
    shot_lists: dict[str, list[Shot]] = field(default_factory=dict)
    """Title → every shot of it."""
    own: dict[str, bool] = field(default_factory=dict)
    """Title → whether the build's own shot chains of it join the graph."""
    shots: dict[str, list[ShotEntry]] = field(default_factory=dict)
    """Title → the selected shots' entries (set by the shots maker)."""
    audio: dict[str, list[str]] = field(default_factory=dict)
    """Title → its audio track node ids (set by the audio maker)."""
    made: list[Node] = field(default_factory=list)
    """Every node made so far in the shots and deliver phases (what QC looks at)."""


def make(phase: str, walk: Walk) -> list[Node]:
    """The nodes of one phase: per title, each maker of ``phase`` in list order. Analysis
    covers the selected titles, ingest those whose analysis is known, later phases the titles
    whose shots are known."""
    if phase not in PHASES:
        raise KeyError(f"unknown phase {phase!r}")
    fns = [importlib.import_module(m).make for ph, m in MAKERS if ph == phase]
    titles = {"analysis": walk.sel.titles, "ingest": list(walk.analyses)}.get(
        phase, list(walk.shot_lists)
    )
    out: list[Node] = []
    for title in titles:
        for fn in fns:
            out += fn(walk, title)
    if phase in ("shots", "deliver"):
        walk.made += out
    return out
