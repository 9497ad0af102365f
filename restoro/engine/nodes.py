"""Manifest → graph: the nodes of a build, each a function from its inputs' results to a spec.

Two phases. *Analysis* per title: ingest the title's span once (SD, cheap) and detect shots on
the progressive frames. *Shots and delivery*: per shot, its ingest (cut from the title's frames, or
its own ingest when an override changes the ingest settings or conforms another source), its
chain segments (split at cache points), per-shot delivery chunks, then per-title assembly.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from restoro.engine.graph import ActionSpec

if TYPE_CHECKING:
    from restoro.engine.store import ActionResult
    from restoro.engine.workspace import SourceState, Workspace
    from restoro.manifest.resolve import ResolvedShot, ResolvedStage

Results = Mapping[str, "ActionResult"]


@dataclass
class Node:
    id: str
    deps: tuple[str, ...]
    make: Callable[[Results], ActionSpec]
    kind: str = "shot"  # "title" | "shot" | "deliver"
    title: str = ""
    shot: str = ""
    resources: Mapping[str, int] = field(default_factory=lambda: {"cpu": 1})


@dataclass(frozen=True)
class Shot:
    id: str
    start: int
    end: int


ShotEntry = tuple[Shot, str, "ResolvedShot"]
"""A shot, the id of the node holding its final frames, and its resolved chain."""


_TOOLS: dict[str, str] = {}


def tool_fingerprints(names: tuple[str, ...] | list[str]) -> dict[str, str]:
    """Fingerprints of the external tools an action depends on (cached per process)."""
    out: dict[str, str] = {}
    for name in sorted(set(names)):
        if name not in _TOOLS:
            if name == "ffmpeg":
                from restoro.media.ffmpeg import ffmpeg_fingerprint

                _TOOLS[name] = ffmpeg_fingerprint()
            elif name == "scenedetect":
                import scenedetect

                _TOOLS[name] = f"scenedetect {scenedetect.__version__}"
            else:
                raise KeyError(f"unknown tool {name!r}")
        out[name] = _TOOLS[name]
    return out


def reset_tool_cache() -> None:
    _TOOLS.clear()


def digest_of(res: ActionResult, name: str) -> str:
    """The content digest of one named output of an action result."""
    return res.outputs[name].digest


def ingest_params(
    ws: Workspace, source: SourceState, stage: ResolvedStage, span: tuple[int, int]
) -> dict[str, Any]:
    src = ws.manifest.sources[source.name]
    return {
        "ingest": stage.params.model_dump(mode="json"),
        "span": [span[0], span[1]],
        "crop": list(src.crop),
        "color": src.color,
        "field_order": src.field_order,
    }


def title_nodes(ws: Workspace, title: str, variant: str | None) -> tuple[list[Node], str, str]:
    """The analysis nodes of a title: its ingest and its shot detection."""
    from restoro.manifest.resolve import resolve_shot, title_span
    from restoro.stages.ingest import Ingest

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
    ingest_id, shots_id = f"{title}/ingest", f"{title}/shots"

    def make_ingest(_: Results) -> ActionSpec:
        return ActionSpec(
            id=ingest_id,
            stage="ingest",
            version=Ingest.version,
            params=ingest_params(ws, source, first, span),
            inputs={"source": source.digest},
            tools=tool_fingerprints(["ffmpeg"]),
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
        Node(ingest_id, (), make_ingest, kind="title", title=title),
        Node(shots_id, (ingest_id,), make_shots, kind="title", title=title),
    ]
    return nodes, ingest_id, shots_id


def shot_list(ws: Workspace, title: str, detected: list[int]) -> list[Shot]:
    """Shots of a title: detected cuts, minus joins, plus forced cuts (cuts and range overrides)."""
    from restoro.manifest.resolve import forced_cuts, joins, title_span

    facts = {n: s.facts for n, s in ws.sources.items()}
    a, b = title_span(ws.manifest, title, facts)
    cuts = {a + c for c in detected} - set(joins(ws.manifest, title, facts))
    cuts |= {c for c in forced_cuts(ws.manifest, title, facts) if a < c < b}
    bounds = sorted({c for c in cuts if a < c < b} | {a, b})
    src = ws.sources[ws.manifest.titles[title].source]
    return [
        Shot(make_shot_id(title, s, src), s, e) for s, e in zip(bounds, bounds[1:], strict=False)
    ]


def make_shot_id(title: str, start: int, src: SourceState) -> str:
    """``<title>@<source timecode of the shot's first frame>``: survives re-detection elsewhere."""
    from restoro.media.timecode import frames_to_timecode

    rate = src.facts.frame_rate
    return f"{title}@{frames_to_timecode(start + src.facts.start_frame, rate, src.drop_frame)}"


def _segments(stages: tuple[ResolvedStage, ...]) -> list[list[ResolvedStage]]:
    """Split a chain (without ingest) at cache points: after a GPU stage or ``cache: true``."""
    from restoro.stages import registry

    segs: list[list[ResolvedStage]] = [[]]
    for st in stages:
        segs[-1].append(st)
        cls = registry.get(st.stage)
        if st.cache or (cls is not None and cls.descriptor.gpu):
            segs.append([])
    return [s for s in segs if s]


def describe_stage(st: ResolvedStage) -> dict[str, Any]:
    """A stage as provenance records it; ``ai`` marks model-based processing."""
    from restoro.stages.upscale import CLASSICAL_KERNELS

    params = st.params.model_dump(mode="json")
    model = params.get("model")
    return {
        "stage": st.stage,
        "params": params,
        "ai": bool(model) and model not in CLASSICAL_KERNELS,
    }


def shot_nodes(
    ws: Workspace,
    title: str,
    shot: Shot,
    variant: str | None,
    title_ingest: ActionResult,
) -> tuple[list[Node], str, ResolvedShot]:
    """A shot's ingest and chain nodes; returns them, the id of its final-frames node, and its
    resolved chain."""
    from restoro.manifest.resolve import resolve_shot
    from restoro.stages import registry
    from restoro.stages.base import StageEnv
    from restoro.stages.ingest import Ingest

    t = ws.manifest.titles[title]
    facts = {n: s.facts for n, s in ws.sources.items()}
    rs = resolve_shot(
        ws.manifest,
        title,
        shot_id=shot.id,
        start=shot.start,
        end=shot.end,
        facts=facts,
        variant=variant,
    )
    title_ingest_params = title_ingest.key_json["params"]["ingest"]
    ingest = rs.stages[0]
    nodes: list[Node] = []
    first_id = f"{shot.id}/ingest"
    n = shot.end - shot.start
    same = rs.source == t.source and rs.source_in is None
    if same and ingest.params.model_dump(mode="json") == title_ingest_params:
        a = title_ingest.key_json["params"]["span"][0]
        fmt = title_ingest.meta["format"]

        def make_first(_: Results) -> ActionSpec:
            return ActionSpec(
                id=first_id,
                stage="extract",
                version=1,
                params={"range": [shot.start - a, shot.end - a], "format": fmt},
                inputs={"frames": title_ingest.outputs["frames"].digest},
                title=title,
                shot=shot.id,
                variant=variant,
                frames=n,
            )
    else:
        src = ws.sources[rs.source]
        s0 = rs.source_in if rs.source_in is not None else shot.start

        def make_first(_: Results) -> ActionSpec:
            return ActionSpec(
                id=first_id,
                stage="ingest",
                version=Ingest.version,
                params=ingest_params(ws, src, ingest, (s0, s0 + n)),
                inputs={"source": src.digest},
                tools=tool_fingerprints(["ffmpeg"]),
                title=title,
                shot=shot.id,
                variant=variant,
                frames=n,
            )

    nodes.append(Node(first_id, (), make_first, title=title, shot=shot.id))
    prev = first_id
    seen: dict[str, int] = {}
    for seg in _segments(rs.stages[1:]):
        name = seg[-1].stage
        seen[name] = seen.get(name, 0) + 1
        node_id = f"{shot.id}/{name}" + (f"#{seen[name]}" if seen[name] > 1 else "")
        classes = [registry.get(st.stage) for st in seg]
        tools = sorted({tool for c in classes if c for tool in c.descriptor.tools})
        gpu = any(c is not None and c.descriptor.gpu for c in classes)
        # Models (and other content a stage depends on) enter the key by content digest.
        env = StageEnv(root=ws.root, store=ws.store)
        models: dict[str, str] = {}
        for st, c in zip(seg, classes, strict=True):
            if c is not None:
                models.update(c().model_inputs(st.params, env))

        def make_seg(
            deps: Results,
            seg: list[ResolvedStage] = seg,
            prev: str = prev,
            node_id: str = node_id,
            tools: list[str] = tools,
            gpu: bool = gpu,
            classes: list[Any] = classes,
            models: dict[str, str] = models,
        ) -> ActionSpec:
            up = deps[prev]
            return ActionSpec(
                id=node_id,
                stage="chain",
                version=1,
                params={
                    "stages": [
                        [st.stage, c.version, st.params.model_dump(mode="json")]
                        for st, c in zip(seg, classes, strict=True)
                    ],
                    "format": up.meta["format"],
                },
                inputs={"frames": digest_of(up, "frames"), **models},
                tools=tool_fingerprints(tools),
                resources={"gpu": 1} if gpu else {"cpu": 1},
                title=title,
                shot=shot.id,
                variant=variant,
                frames=n,
            )

        nodes.append(
            Node(
                node_id,
                (prev,),
                make_seg,
                title=title,
                shot=shot.id,
                resources={"gpu": 1} if gpu else {"cpu": 1},
            )
        )
        prev = node_id
    return nodes, prev, rs
