"""A title's frames and shots: its timeline, rate and timecodes, ingest params and shot list."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from restoro.plan.nodes import Shot

if TYPE_CHECKING:
    from restoro.engine.graph import ActionSpec
    from restoro.manifest.resolve import ResolvedStage
    from restoro.media.timeline import Timeline
    from restoro.plan.workspace import SourceState, Workspace


@dataclass(frozen=True)
class TitleIngest:
    """A title's ingested frames as the planner knows them after the analysis phase: the
    ``analysis`` action's meta (cadence, timeline, format, frames, field_order, warnings) and
    params (the title's ingest params: ingest settings, span, crop...), and the pieces of its
    working frames, ``(k0, k1, digest)``: title frames [k0, k1) in the intermediate ``digest``,
    consecutive from 0 to the title's frame count."""

    meta: dict[str, Any]
    params: dict[str, Any]
    pieces: tuple[tuple[int, int, str], ...]

    @property
    def span(self) -> list[int]:
        """The title's span in source frames, as its ingest params give it."""
        return list(self.params["span"])

    @property
    def format(self) -> dict[str, Any]:
        return self.meta["format"]

    @property
    def frames(self) -> int:
        return int(self.meta["frames"])

    def covering(self, start: int, end: int) -> list[tuple[int, int, str]]:
        """The pieces holding title frames [start, end), in order."""
        return [p for p in self.pieces if p[0] < end and p[1] > start]


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


def ingest_spec(
    node_id: str,
    params: dict[str, Any],
    source: str,
    *,
    title: str,
    frames: int,
    shot: str = "",
    variant: str | None = None,
) -> ActionSpec:
    """An ``ingest`` action of ``params`` (``ingest_params``) over the source of digest
    ``source``: a piece of a title, or a shot's own ingest."""
    from restoro.engine.graph import ActionSpec
    from restoro.plan.nodes import tool_fingerprints
    from restoro.stages.ingest import Ingest, ingest_tools

    return ActionSpec(
        id=node_id,
        stage="ingest",
        version=Ingest.version,
        params=params,
        inputs={"source": source},
        # A title's piece that scores its frames for shot detection runs scenedetect's code.
        tools=tool_fingerprints(
            [*ingest_tools(params["ingest"]), *(["scenedetect"] if params.get("scores") else [])]
        ),
        title=title,
        shot=shot,
        variant=variant,
        frames=frames,
    )


def title_timeline(ws: Workspace, title: str, ingest: TitleIngest | None) -> Timeline:
    """The title's timeline, from its analysis (identity at the source rate before it ran)."""
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


def shot_list(
    ws: Workspace, title: str, detected: list[int], ingest: TitleIngest | None = None
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
