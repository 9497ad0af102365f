"""Node maker for the ingest phase: a title's frames in pieces, and its shot detection.

After a title's ``analysis`` (``restoro.plan.analysis``) the planner knows its timeline,
cadence and format, and splits its frames into pieces of about ``PIECE_FRAMES`` title frames
(``piece_bounds``: deterministic from the title alone, snapped to a cadence segment boundary
nearby). Each piece is an ``ingest`` action for its title frames ``want=(k0, k1)`` with the
analysis' timeline and cadence in its params — the mechanism of a shot's own ingest, so a
piece's frames are exactly those title frames of a whole-title ingest. When the title detects
its shots, a piece also writes the shot detector's per-frame score of each frame as it makes
it (``scores``: no decode of its frames again), and the title's ``shots`` action replays the
detector's decisions over the pieces' scores in order, which gives the cuts of one detector run
over the whole title (``restoro.media.shots.cuts_from_scores``); the first frame of a piece is
scored there against the last frame of the piece before. The pieces run in parallel; only the
analysis and the replay are serial.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from restoro.engine.graph import ActionSpec
from restoro.plan.nodes import Node, Results, digest_of, tool_fingerprints

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from restoro.engine.store import ActionResult
    from restoro.plan.makers import Walk
    from restoro.plan.titles import TitleIngest

PIECE_FRAMES = 3200
"""Target length of an ingest piece in title frames. Besides its frames (~14 ms each for SD,
their shot scores included), a piece costs an ffmpeg start, the IVTC cycles it shares with its
neighbours and a decode of the source from its start up to the piece (no seek; ~0.3 ms a SD
frame): ~0.2 CPU-ks over the 22 pieces of 2,400 frames of a 52,000-frame episode, ~0.15 over
16 pieces of 3,200. On 16 cores those 16 pieces are one wave (~45 s, then at most ~20 s of the
last one's decode), 22 would be two (~65 s); a season's many titles fill the cores either way
(docs/performance.md, Issue 12, "Ingest in pieces")."""
SHOTS_VERSION = 3
"""3: the pieces' scores come from the ingest pieces, the first of each piece scored here (2:
from a ``shot-scores`` action per piece; 1: one detector run over the title)."""


def piece_id(title: str, i: int) -> str:
    return f"{title}/ingest/{i}"


def shots_id(title: str) -> str:
    return f"{title}/shots"


def piece_bounds(
    frames: int, marks: Sequence[int] = (), length: int | None = None
) -> list[tuple[int, int]]:
    """Title frames [k0, k1) of each piece of a title of ``frames`` frames: about ``length``
    (``PIECE_FRAMES``) each, a boundary moved to the nearest of ``marks`` (cadence segment
    starts, in title frames) within a quarter of the length. Depends on these only."""
    length = length or PIECE_FRAMES
    snap = length // 4
    n = max(1, round(frames / length))
    bounds = [0]
    for i in range(1, n):
        ideal = i * frames // n
        near = [m for m in marks if abs(m - ideal) <= snap and bounds[-1] < m < frames]
        b = min(near, key=lambda m: (abs(m - ideal), m)) if near else ideal
        if bounds[-1] < b < frames:
            bounds.append(b)
    bounds.append(frames)
    return list(zip(bounds, bounds[1:], strict=False))


def title_pieces(analysis: ActionResult) -> list[tuple[int, int]]:
    """The pieces of a title, from its analysis' meta (timeline and cadence segments)."""
    from restoro.media.timeline import Timeline

    tl = Timeline.from_json(analysis.meta["timeline"])
    segments = (analysis.meta.get("cadence") or {}).get("segments") or []
    marks = sorted({tl.title_frame(int(s["start"])) for s in segments} - {0, tl.frames})
    return piece_bounds(tl.frames, marks)


def piece_params(analysis: ActionResult, want: tuple[int, int]) -> dict[str, Any]:
    """An ingest piece's params: the title's ingest params, the analysis' timeline, cadence
    segments and field order (the evidence's, where the manifest says ``auto``), and ``want``."""
    params = {k: v for k, v in analysis.key_json["params"].items() if k != "frame_rate"}
    meta = analysis.meta
    params["timeline"] = meta["timeline"]
    params["want"] = [want[0], want[1]]
    params["cadence"] = (meta.get("cadence") or {}).get("segments")
    if params["field_order"] == "auto":
        params["field_order"] = meta.get("field_order", "auto")
    return params


def make(walk: Walk, title: str) -> list[Node]:
    """The title's ingest pieces (with their shot scores) and the title's shot detection; records
    the pieces' bounds in ``walk.pieces``."""
    from restoro.plan.analysis import analysis_id
    from restoro.plan.titles import ingest_spec
    from restoro.stages.ingest import Ingest

    ws = walk.ws
    analysis = walk.analyses[title]
    t = ws.manifest.titles[title]
    source = ws.sources[t.source]
    bounds = title_pieces(analysis)
    walk.pieces[title] = bounds
    aid = analysis_id(title)
    cfg = t.shots
    metric = {"none": None, "threshold": "mean"}.get(cfg.detector, "content")
    nodes: list[Node] = []
    for i, (k0, k1) in enumerate(bounds):
        params = piece_params(analysis, (k0, k1))
        if metric is not None:
            params["scores"] = metric

        def make_piece(_: Results, i: int = i, params: dict[str, Any] = params) -> ActionSpec:
            n = params["want"][1] - params["want"][0]
            return ingest_spec(piece_id(title, i), params, source.digest, title=title, frames=n)

        nodes.append(
            Node(
                piece_id(title, i),
                (aid,),
                make_piece,
                kind="title",
                title=title,
                memory_mb=Ingest.descriptor.memory_mb,
            )
        )
    pieces = tuple(piece_id(title, i) for i in range(len(bounds))) if metric else ()
    frames = bounds[-1][1]
    rate = analysis.meta["format"]["frame_rate"]

    def make_shots(d: Results) -> ActionSpec:
        inputs: dict[str, Any] = {}
        if metric is not None:
            inputs["scores"] = [digest_of(d[x], "scores") for x in pieces]
        if metric == "content" and len(pieces) > 1:  # each piece's first score needs these
            inputs["frames"] = [digest_of(d[x], "frames") for x in pieces]
        return ActionSpec(
            id=shots_id(title),
            stage="shots",
            version=SHOTS_VERSION,
            params={
                "detector": cfg.detector,
                "threshold": cfg.threshold,
                "min_frames": cfg.min_frames,
                "frames": frames,
                "frame_rate": rate,
            },
            inputs=inputs,
            tools=tool_fingerprints(["scenedetect"]),
            title=title,
            frames=frames,
        )

    nodes.append(Node(shots_id(title), pieces, make_shots, kind="title", title=title))
    return nodes


def title_ingest(walk: Walk, title: str, done: Mapping[str, ActionResult]) -> TitleIngest | None:
    """The title's ``TitleIngest`` once its analysis and every piece are known, else None."""
    from restoro.plan.titles import TitleIngest

    analysis = walk.analyses.get(title)
    bounds = walk.pieces.get(title)
    if analysis is None or bounds is None:
        return None
    pieces = []
    for i, (k0, k1) in enumerate(bounds):
        res = done.get(piece_id(title, i))
        if res is None:
            return None
        pieces.append((k0, k1, digest_of(res, "frames")))
    return TitleIngest(dict(analysis.meta), dict(analysis.key_json["params"]), tuple(pieces))
