"""Node maker for the analysis phase: per title, one short serial ``analysis`` action.

It decides what the title's frames will be — the cadence map (when the ingest mode needs one),
the timeline and the working format — and makes none of them: the frames come from the title's
ingest pieces and their shot detection (``restoro.plan.pieces``), planned from its meta.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from restoro.engine.graph import ActionSpec
from restoro.plan.nodes import Node, Results, tool_fingerprints
from restoro.plan.titles import ingest_params, title_rate

if TYPE_CHECKING:
    from restoro.plan.makers import Walk
    from restoro.plan.workspace import Workspace

ANALYSIS_VERSION = 1
"""Bump when an analysis' meta changes for the same params."""


def make(walk: Walk, title: str) -> list[Node]:
    """The title's analysis node."""
    return [analysis_node(walk.ws, title, walk.opts.variant)]


def analysis_id(title: str) -> str:
    return f"{title}/analysis"


def analysis_node(ws: Workspace, title: str, variant: str | None) -> Node:
    """The ``analysis`` node of a title: its params are the title's ingest params (the title
    pipeline's ingest settings, variant applied; the span; the declared frame rate)."""
    from restoro.manifest.resolve import resolve_shot, title_span

    t = ws.manifest.titles[title]
    source = ws.sources[t.source]
    facts = {n: s.facts for n, s in ws.sources.items()}
    span = title_span(ws.manifest, title, facts)
    first = resolve_shot(
        ws.manifest,
        title,
        shot_id=f"{title}@analysis",
        start=span[0],
        end=span[1],
        facts=facts,
        variant=variant,
    ).stages[0]
    node_id = analysis_id(title)
    params = ingest_params(ws, source, first, span, frame_rate=title_rate(ws, title))

    def make_analysis(_: Results) -> ActionSpec:
        return ActionSpec(
            id=node_id,
            stage="analysis",
            version=ANALYSIS_VERSION,
            params=params,
            inputs={"source": source.digest},
            tools=tool_fingerprints(["ffmpeg"]),  # the cadence analysis' decode and idet
            title=title,
            frames=span[1] - span[0],
            variant=None,
        )

    return Node(node_id, (), make_analysis, kind="title", title=title)
