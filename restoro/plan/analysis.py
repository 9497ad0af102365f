"""Node maker for the analysis phase: per title, its ingest and its shot detection."""

from __future__ import annotations

from typing import TYPE_CHECKING

from restoro.engine.graph import ActionSpec
from restoro.plan.nodes import Node, Results, digest_of, tool_fingerprints
from restoro.plan.titles import ingest_params, title_rate

if TYPE_CHECKING:
    from restoro.plan.makers import Walk
    from restoro.plan.workspace import Workspace


def make(walk: Walk, title: str) -> list[Node]:
    """The title's analysis nodes."""
    return title_nodes(walk.ws, title, walk.opts.variant)[0]


def ingest_id(title: str) -> str:
    return f"{title}/ingest"


def shots_id(title: str) -> str:
    return f"{title}/shots"


def title_nodes(ws: Workspace, title: str, variant: str | None) -> tuple[list[Node], str, str]:
    """The analysis nodes of a title: its ingest and its shot detection."""
    from restoro.manifest.resolve import resolve_shot, title_span
    from restoro.stages.ingest import Ingest, ingest_tools

    t = ws.manifest.titles[title]
    source = ws.sources[t.source]
    facts = {n: s.facts for n, s in ws.sources.items()}
    span = title_span(ws.manifest, title, facts)
    # The title-level ingest uses the title pipeline's ingest settings (variant applied).
    first = resolve_shot(
        ws.manifest,
        title,
        shot_id=f"{title}@analysis",
        start=span[0],
        end=span[1],
        facts=facts,
        variant=variant,
    ).stages[0]
    ingest_id, shots_id = f"{title}/ingest", f"{title}/shots"  # as ingest_id(), shots_id()

    def make_ingest(_: Results) -> ActionSpec:
        return ActionSpec(
            id=ingest_id,
            stage="ingest",
            version=Ingest.version,
            params=ingest_params(ws, source, first, span, frame_rate=title_rate(ws, title)),
            inputs={"source": source.digest},
            tools=tool_fingerprints(ingest_tools(first.params.model_dump(mode="json"))),
            title=title,
            frames=span[1] - span[0],
            variant=None,
        )

    def make_shots(deps: Results) -> ActionSpec:
        cfg = t.shots
        return ActionSpec(
            id=shots_id,
            stage="shots",
            version=1,
            params={
                "detector": cfg.detector,
                "threshold": cfg.threshold,
                "min_frames": cfg.min_frames,
            },
            inputs={"frames": digest_of(deps[ingest_id], "frames")},
            tools=tool_fingerprints(["scenedetect"]),
            title=title,
            frames=span[1] - span[0],
        )

    nodes = [
        Node(
            ingest_id,
            (),
            make_ingest,
            kind="title",
            title=title,
            memory_mb=Ingest.descriptor.memory_mb,
        ),
        Node(shots_id, (ingest_id,), make_shots, kind="title", title=title),
    ]
    return nodes, ingest_id, shots_id
