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

import xxhash

from restoro.engine.graph import ActionSpec

if TYPE_CHECKING:
    from restoro.engine.store import ActionResult
    from restoro.manifest.resolve import ResolvedShot, ResolvedStage
    from restoro.media.timeline import Timeline
    from restoro.plan.workspace import SourceState, Workspace

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
    memory_mb: int = 0
    """Memory the action may use, the largest its stages' descriptors declare (0: none
    declared). The Ray executor reserves it per task; it never enters the action key."""


@dataclass(frozen=True)
class Shot:
    """A shot: title frames [start, end) (0 = the title's first frame, at the title's rate);
    ``source_start`` is the source frame behind its first frame, ``frame_rate`` the title's."""

    id: str
    start: int
    end: int
    source_start: int = 0
    frame_rate: str = ""


ShotEntry = tuple[Shot, str, "ResolvedShot"]
"""A shot, the id of the node holding its final frames, and its resolved chain."""


_TOOLS: dict[str, str] = {}

CHAIN_VERSION = 2
"""Bump when a chain's output bytes change for the same stages (2: FFVHuff intermediates)."""


def tool_fingerprints(names: tuple[str, ...] | list[str]) -> dict[str, str]:
    """Fingerprints of the external tools an action depends on (cached per process)."""
    out: dict[str, str] = {}
    for name in sorted(set(names)):
        if name not in _TOOLS:
            if name == "ffmpeg":
                from restoro.media.ffmpeg import ffmpeg_fingerprint

                _TOOLS[name] = ffmpeg_fingerprint()
            elif name == "scenedetect":
                # The installed version, without importing it (cv2 + av + numpy: ~0.2 s).
                from importlib.metadata import version

                _TOOLS[name] = f"scenedetect {version('scenedetect')}"
            elif name == "nnedi-weights":
                from restoro.stages.ingest import nnedi_fingerprint

                _TOOLS[name] = nnedi_fingerprint()
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
    ws: Workspace,
    source: SourceState,
    stage: ResolvedStage,
    span: tuple[int, int],
    *,
    frame_rate: str | None = None,
    timeline: dict[str, Any] | None = None,
    want: tuple[int, int] | None = None,
    cadence: list[Any] | None = None,
) -> dict[str, Any]:
    """Params of an ``ingest`` action. A title's ingest has ``span`` (source frames) and the
    declared ``frame_rate`` (None: derived from the cadence); a shot's own ingest also has the
    title's ``timeline``, the title frames it wants and the title's cadence segments."""
    src = ws.manifest.sources[source.name]
    out: dict[str, Any] = {
        "ingest": stage.params.model_dump(mode="json"),
        "span": [span[0], span[1]],
        "crop": list(src.crop),
        "color": src.color,
        "field_order": src.field_order,
    }
    if frame_rate is not None:
        out["frame_rate"] = frame_rate
    if timeline is not None:
        out["timeline"] = timeline
        out["want"] = list(want) if want else None
        out["cadence"] = cadence
    return out


def title_timeline(ws: Workspace, title: str, ingest: ActionResult | None) -> Timeline:
    """The title's timeline, from its ingest (identity at the source rate before one ran)."""
    from fractions import Fraction

    from restoro.manifest.resolve import title_span
    from restoro.media.timeline import Timeline

    if ingest is not None and "timeline" in ingest.meta:
        return Timeline.from_json(ingest.meta["timeline"])
    facts = {n: s.facts for n, s in ws.sources.items()}
    rate = Fraction(ws.sources[ws.manifest.titles[title].source].facts.frame_rate)
    return Timeline(title_span(ws.manifest, title, facts), rate, rate)


def title_timecode(src: SourceState, shot: Shot) -> str:
    """Timecode of a shot's first frame at the title's rate: the source timecode's hours,
    minutes and seconds, frames scaled to the title's nominal rate (29.97 01:00:00;00 →
    23.976 01:00:00:00, as edit systems convert)."""
    from fractions import Fraction

    from restoro.media.timecode import frames_to_timecode, nominal_fps

    s_rate = Fraction(src.facts.frame_rate)
    rate = Fraction(shot.frame_rate) if shot.frame_rate else s_rate
    tc = frames_to_timecode(shot.source_start + src.facts.start_frame, s_rate, src.drop_frame)
    if rate == s_rate:
        return tc
    h, m, s, f = (int(x) for x in tc.replace(";", ":").split(":"))
    n = ((h * 60 + m) * 60 + s) * nominal_fps(rate) + f * nominal_fps(rate) // nominal_fps(s_rate)
    return frames_to_timecode(n, rate, False)


def title_rate(ws: Workspace, title: str) -> str | None:
    """The title's declared output rate: its own ``frame_rate``, else the one its deliverables
    ask for. A title has one rate, so deliverables that disagree are an error."""
    from restoro.errors import ManifestError

    t = ws.manifest.titles[title]
    if t.frame_rate:
        return str(t.frame_rate)
    asked = {
        name: str(getattr(d, "frame_rate", ""))
        for name, d in sorted(ws.manifest.deliverables.items())
        if getattr(d, "frame_rate", None) and (d.titles is None or title in d.titles)
    }
    if len(set(asked.values())) > 1:
        where = ("deliverables", sorted(asked)[1], "frame_rate")
        line, col = ws.loaded.locate(where)
        from restoro.errors import Diagnostic

        raise ManifestError(
            [
                Diagnostic(
                    file=str(ws.loaded.path),
                    line=line,
                    col=col,
                    code="E235",
                    message=f"deliverables ask for different frame rates for title {title!r}: "
                    + ", ".join(f"{n} {r}" for n, r in asked.items()),
                    hint=f"a title has one frame rate: set frame_rate on titles.{title}, "
                    "or make the deliverables agree",
                )
            ]
        )
    return next(iter(asked.values()), None)


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
    ingest_id, shots_id = f"{title}/ingest", f"{title}/shots"

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


def shot_list(
    ws: Workspace, title: str, detected: list[int], ingest: ActionResult | None = None
) -> list[Shot]:
    """Shots of a title in title frames: detected cuts (title frames), minus joins, plus forced
    cuts (cuts and range overrides); manifest positions are source timecode, mapped through the
    title's timeline."""
    from restoro.manifest.resolve import forced_cuts, joins

    tl = title_timeline(ws, title, ingest)
    facts = {n: s.facts for n, s in ws.sources.items()}
    n = tl.frames
    cuts = set(detected) - {tl.title_frame(j) for j in joins(ws.manifest, title, facts)}
    cuts |= {tl.title_frame(c) for c in forced_cuts(ws.manifest, title, facts)}
    bounds = sorted({c for c in cuts if 0 < c < n} | {0, n})
    src = ws.sources[ws.manifest.titles[title].source]
    rate = f"{tl.rate.numerator}/{tl.rate.denominator}"
    return [
        Shot(make_shot_id(title, tl.source_frame(s), src), s, e, tl.source_frame(s), rate)
        for s, e in zip(bounds, bounds[1:], strict=False)
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
    device: str = "auto",
) -> tuple[list[Node], str, ResolvedShot]:
    """A shot's ingest and chain nodes; returns them, the id of its final-frames node, and its
    resolved chain. ``device`` (``--device``) enters the keys of chains that run a model."""
    from restoro.manifest.resolve import resolve_shot
    from restoro.stages import registry
    from restoro.stages.base import StageEnv
    from restoro.stages.ingest import Ingest, ingest_tools

    t = ws.manifest.titles[title]
    facts = {n: s.facts for n, s in ws.sources.items()}
    tl = title_timeline(ws, title, title_ingest)
    rs = resolve_shot(
        ws.manifest,
        title,
        shot_id=shot.id,
        start=tl.source_frame(shot.start),
        end=tl.source_frame(shot.end),
        facts=facts,
        variant=variant,
    )
    title_ingest_params = title_ingest.key_json["params"]["ingest"]
    ingest = rs.stages[0]
    nodes: list[Node] = []
    first_id = f"{shot.id}/ingest"
    n = shot.end - shot.start
    same = rs.source == t.source and rs.source_in is None
    own_ingest = not (same and ingest.params.model_dump(mode="json") == title_ingest_params)
    if not own_ingest:
        a = 0  # shots are title frames, the title's ingest starts at title frame 0
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
        from restoro.media.timeline import Timeline

        src = ws.sources[rs.source]
        # A conformed shot reads its own source on the title's timeline, shifted to where the
        # shot's first frame lies in that source.
        delta = 0 if rs.source_in is None else rs.source_in - shot.source_start
        own = Timeline((tl.span[0] + delta, tl.span[1] + delta), tl.source_rate, tl.rate)
        cadence = title_ingest.meta.get("cadence", {}).get("segments") if delta == 0 and (
            rs.source == t.source
        ) else None  # fmt: skip
        sparams = ingest_params(
            ws, src, ingest, own.span, timeline=own.to_json(), want=(shot.start, shot.end),
            cadence=cadence,
        )  # fmt: skip

        def make_first(_: Results) -> ActionSpec:
            return ActionSpec(
                id=first_id,
                stage="ingest",
                version=Ingest.version,
                params=sparams,
                inputs={"source": src.digest},
                tools=tool_fingerprints(ingest_tools(sparams["ingest"])),
                title=title,
                shot=shot.id,
                variant=variant,
                frames=n,
            )

    memory = Ingest.descriptor.memory_mb if own_ingest else 0
    nodes.append(Node(first_id, (), make_first, title=title, shot=shot.id, memory_mb=memory))
    prev = first_id
    seen: dict[str, int] = {}
    for seg in _segments(rs.stages[1:]):
        name = seg[-1].stage
        seen[name] = seen.get(name, 0) + 1
        node_id = f"{shot.id}/{name}" + (f"#{seen[name]}" if seen[name] > 1 else "")
        classes = [registry.get(st.stage) for st in seg]
        tools = sorted({tool for c in classes if c for tool in c.descriptor.tools})
        # Models (and other content a stage depends on) enter the key by content digest; the
        # n-th stage of one id in a segment names its inputs ``model:…#n`` (n > 1).
        env = StageEnv(root=ws.root, store=ws.store)
        models: dict[str, str] = {}
        count: dict[str, int] = {}
        for st, c in zip(seg, classes, strict=True):
            count[st.stage] = count.get(st.stage, 0) + 1
            if c is not None:
                suffix = f"#{count[st.stage]}" if count[st.stage] > 1 else ""
                for name, digest in c().model_inputs(st.params, env).items():
                    models[name + suffix] = digest
        # A stage that runs a model uses the device, whatever its descriptor says.
        gpu = bool(models) or any(
            c is not None and c().uses_device(st.params) for st, c in zip(seg, classes, strict=True)
        )
        # Seeded stages (grain) get a seed derived from the stable shot id, in the key.
        seeded = any(getattr(c, "seeded", False) for c in classes)
        seed = xxhash.xxh64(shot.id.encode()).intdigest() >> 11 if seeded else None

        def make_seg(
            deps: Results,
            seg: list[ResolvedStage] = seg,
            prev: str = prev,
            node_id: str = node_id,
            tools: list[str] = tools,
            gpu: bool = gpu,
            classes: list[Any] = classes,
            models: dict[str, str] = models,
            seed: int | None = seed,
        ) -> ActionSpec:
            up = deps[prev]
            params: dict[str, Any] = {
                "stages": [
                    [st.stage, c.version, st.params.model_dump(mode="json")]
                    for st, c in zip(seg, classes, strict=True)
                ],
                "format": up.meta["format"],
            }
            if seed is not None:
                params["seed"] = seed
            networks = [k for k in models if not k.startswith("model:lut")]  # a LUT is no model
            if networks and ws.manifest.intermediates == "auto":
                # A cache point after a model: 12-bit FFV1 keeps a season's store in bounds.
                # (Absent otherwise, so the keys of other chains are as they were.)
                from restoro.media.frameio import COMPACT

                params["intermediate"] = COMPACT
            fps = tool_fingerprints(tools)
            if models:  # CPU and CUDA give different pixels from one model
                from restoro.models.device import fingerprint

                fps["device"] = fingerprint(device)
            return ActionSpec(
                id=node_id,
                stage="chain",
                version=CHAIN_VERSION,
                params=params,
                inputs={"frames": digest_of(up, "frames"), **models},
                tools=fps,
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
                memory_mb=max((c.descriptor.memory_mb for c in classes if c), default=0),
            )
        )
        prev = node_id
    return nodes, prev, rs
