"""Node maker for the shots phase: per shot, its ingest (or extract) and its chain segments."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import xxhash

from restoro.engine.graph import ActionSpec
from restoro.errors import StageError
from restoro.plan.nodes import Node, Results, Shot, ShotEntry, digest_of, tool_fingerprints
from restoro.plan.titles import ingest_params, ingest_spec, title_timeline

if TYPE_CHECKING:
    from pathlib import Path

    from restoro.engine.store import ActionResult
    from restoro.manifest.resolve import ResolvedShot, ResolvedStage
    from restoro.media.frames import FrameFormat
    from restoro.media.timeline import Timeline
    from restoro.plan.makers import Walk
    from restoro.plan.titles import TitleIngest
    from restoro.plan.workspace import Workspace

EXTRACT_VERSION = 2
"""2: cut from the title's ingest pieces (1: from one intermediate of the whole title); the
same bytes for the same frames."""
CHAIN_VERSION = 2
"""Bump when a chain's output bytes change for the same stages (2: FFVHuff intermediates)."""


class FoldedId(str):
    """The id of a shot's last cached frames when its final chain segment is *folded* into the
    delivery encode instead of being a cache point (``fold_title``): ``stages`` holds that
    segment's stages as the chain's key names them (``[stage id, version, params]``), to run as
    ffmpeg filters inside the consumer's own graph. Equal to the plain id as a string."""

    stages: list[list[Any]]


def fold_title(walk: Walk, title: str) -> bool:
    """Whether the title's shots may fold a final filter-only segment into what reads their
    final frames: every deliverable of the title in this build is ProRes (whose chunk folds it)
    and follows no approvals, no shot is a target by name (``restoro compare`` reads the final
    frames), and the build is not a shots-only plan (the review's outputs). The shots' QC (in a
    build or ``restoro qc``) reads folded frames too, so a build with QC folds as one without
    does, and ``restoro qc`` after ``restoro build`` finds its chunks cached."""
    from restoro.plan.deliverables import delivers

    ws = walk.ws
    if walk.sel.shots is not None:
        return False
    b = getattr(walk.approvals, "b", None)
    if b is None or getattr(b, "shots_only", False):
        return False
    wanted = [d for d in walk.sel.deliverables if delivers(ws, d, title)]
    following = set(getattr(walk.approvals, "following", ()))
    return bool(wanted) and all(
        ws.manifest.deliverables[d].kind == "prores" and d not in following for d in wanted
    )


def _foldable(ws: Workspace, seg: list[ResolvedStage]) -> list[list[Any]] | None:
    """``seg``'s stages in the chain's key form when every one is a classical ffmpeg filter
    (no model, no device, no seed, no ``cache: true``), else None."""
    from restoro.media.frames import FrameFormat
    from restoro.stages import registry
    from restoro.stages.base import FrameStage, StageEnv

    probe = FrameFormat(width=64, height=48, frame_rate="24")
    env = StageEnv(root=ws.root, store=ws.store)
    out: list[list[Any]] = []
    for st in seg:
        cls = registry.get(st.stage)
        if st.cache or cls is None or not issubclass(cls, FrameStage):
            return None
        stage = cls()
        if (
            set(cls.descriptor.tools) - {"ffmpeg"}  # the chunk's key names ffmpeg only
            or getattr(cls, "seeded", False)
            or stage.uses_device(st.params)
            or stage.model_inputs(st.params, env)
            or stage.ffmpeg_filter(st.params, probe) is None
        ):
            return None
        out.append([st.stage, cls.version, st.params.model_dump(mode="json")])
    return out


def folded_graph(stages: list[list[Any]], fmt: FrameFormat) -> tuple[str, FrameFormat]:
    """The ffmpeg filters of a folded segment over ``gbrp16le`` frames of ``fmt``, ending as
    the chain's transcode ends (``gbrp16le``, its tags), and the frames' format after it."""
    from restoro.media.frameio import tag_filters
    from restoro.stages import registry

    filters = []
    for stage_id, _version, raw in stages:
        stage, params = registry.frame_stage(stage_id, raw)
        graph = stage.ffmpeg_filter(params, fmt)
        if graph is None:
            raise StageError(f"stage {stage_id!r} with these params is no ffmpeg filter")
        filters.append(graph)
        fmt = stage.output_format(params, fmt)
    return ",".join([*filters, "format=gbrp16le", tag_filters(fmt)]), fmt


def fold_params(final_id: str, up: ActionResult) -> dict[str, Any]:
    """What a reader of a shot's final frames other than the ProRes chunk adds to its key when
    the last segment is folded (``FoldedId``; ``up`` is its input's result): the segment's
    stages and the format of the frames they start from. Empty when nothing is folded."""
    stages = getattr(final_id, "stages", None)
    return {} if stages is None else {"fold": stages, "fold_format": up.meta["format"]}


def unfold(
    action: str, src: Path, stages: list[list[Any]], fmt: FrameFormat
) -> tuple[str, FrameFormat]:
    """For a reader of a folded segment's input ``src`` (frames of ``fmt``): the segment's
    filters and the format of the frames they make, as the chain would have made them (the same
    ``gbrp16le`` samples, so what the reader makes of them is what it makes of the chain's)."""
    from restoro.media.frameio import sample_format

    if sample_format(src) != "gbrp16le":
        raise StageError(f"{action}: a folded segment needs 16-bit frames")
    graph, out = folded_graph(stages, fmt)
    if out.frame_rate != fmt.frame_rate:
        raise StageError(f"{action}: a folded segment may not change the frame rate")
    return graph, out


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


def make(walk: Walk, title: str) -> list[Node]:
    """The title's shot nodes (none when its own chains are not needed: ``walk.own``); records
    every selected shot's entry in ``walk.shots``."""
    out: list[Node] = []
    sel = walk.sel
    entries: list[ShotEntry] = []
    walk.shots[title] = entries
    own = walk.own.get(title, True)
    fold = own and fold_title(walk, title)
    for shot in walk.shot_lists[title]:
        if sel.shots is not None and shot.id not in sel.shots:
            continue
        nodes, final_id, rs = shot_nodes(
            walk.ws,
            title,
            shot,
            walk.opts.variant,
            walk.ingests[title],
            walk.opts.device,
            fold=fold,
        )
        out += nodes if own else []
        entries.append((shot, final_id, rs))
    return out


def shot_nodes(
    ws: Workspace,
    title: str,
    shot: Shot,
    variant: str | None,
    title_ingest: TitleIngest,
    device: str = "auto",
    *,
    fold: bool = False,
) -> tuple[list[Node], str, ResolvedShot]:
    """A shot's ingest and chain nodes; returns them, the id of its final-frames node, and its
    resolved chain. ``device`` (``--device``) enters the keys of chains that run a model.

    With ``fold`` (``fold_title``), a chain that is one filter-only segment gets no node: the
    final id returned is a ``FoldedId`` of the shot's first node, carrying the segment."""
    from restoro.manifest.resolve import resolve_shot

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
    nodes = [_first_node(ws, title, shot, variant, title_ingest, rs, tl)]
    prev = nodes[0].id
    seen: dict[str, int] = {}
    segs = _segments(rs.stages[1:])
    folded = _foldable(ws, segs[0]) if fold and len(segs) == 1 else None
    if folded is not None:
        final = FoldedId(prev)
        final.stages = folded
        return nodes, final, rs
    for seg in segs:
        name = seg[-1].stage
        seen[name] = seen.get(name, 0) + 1
        node_id = f"{shot.id}/{name}" + (f"#{seen[name]}" if seen[name] > 1 else "")
        nodes.append(_segment_node(ws, title, shot, variant, device, seg, prev, node_id))
        prev = node_id
    return nodes, prev, rs


def _first_node(
    ws: Workspace,
    title: str,
    shot: Shot,
    variant: str | None,
    title_ingest: TitleIngest,
    rs: ResolvedShot,
    tl: Timeline,
) -> Node:
    """The shot's first frames: cut from the title's ingest pieces that hold them (packets
    copied, across a piece boundary too), or its own ingest when an override changes the
    ingest settings or conforms another source."""
    from restoro.stages.ingest import Ingest

    t = ws.manifest.titles[title]
    title_ingest_params = title_ingest.params["ingest"]
    ingest = rs.stages[0]
    first_id = f"{shot.id}/ingest"
    n = shot.end - shot.start
    same = rs.source == t.source and rs.source_in is None
    own_ingest = not (same and ingest.params.model_dump(mode="json") == title_ingest_params)
    if not own_ingest:
        fmt = title_ingest.format
        held = title_ingest.covering(shot.start, shot.end)
        digests = [d for _, _, d in held]
        params: dict[str, Any] = {
            "range": [shot.start, shot.end],
            "pieces": [[k0, k1] for k0, k1, _ in held],
            "format": fmt,
        }

        def make_first(_: Results) -> ActionSpec:
            return ActionSpec(
                id=first_id,
                stage="extract",
                version=EXTRACT_VERSION,
                params=params,
                inputs={"frames": digests[0] if len(digests) == 1 else digests},
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
            return ingest_spec(
                first_id, sparams, src.digest, title=title, frames=n, shot=shot.id, variant=variant
            )

    memory = Ingest.descriptor.memory_mb if own_ingest else 0
    return Node(first_id, (), make_first, title=title, shot=shot.id, memory_mb=memory)


def _segment_node(
    ws: Workspace,
    title: str,
    shot: Shot,
    variant: str | None,
    device: str,
    seg: list[ResolvedStage],
    prev: str,
    node_id: str,
) -> Node:
    """One chain segment: the fused stages of ``seg`` over the frames of node ``prev``."""
    from restoro.stages import registry
    from restoro.stages.base import StageEnv

    n = shot.end - shot.start
    classes: list[Any] = [registry.get(st.stage) for st in seg]
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

    def make_seg(deps: Results) -> ActionSpec:
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
            # A cache point after a model: a ProRes 4444 mezzanine keeps a season's store in
            # bounds (a model's output barely compresses losslessly).
            # (Absent otherwise, so the keys of other chains are as they were.)
            from restoro.media.frameio import MEZZANINE

            params["intermediate"] = MEZZANINE
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

    return Node(
        node_id,
        (prev,),
        make_seg,
        title=title,
        shot=shot.id,
        resources={"gpu": 1} if gpu else {"cpu": 1},
        memory_mb=max((c.descriptor.memory_mb for c in classes if c), default=0),
    )
