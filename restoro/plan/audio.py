"""Audio tracks of a title: remastered to 24-bit 48 kHz PCM, exactly the picture's length.

Node ``f"{title}/audio/{i}"`` per track (default: the source's first audio stream in its own
layout; a track without ``stream`` takes the source's stream in its ``language``, see
``plan.streams.resolve_stream``); its output ``audio`` is the WAV, its meta carries the
loudness figures (measured before and after normalisation, gain, true peak) for the lockfile
and the QC report.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from restoro.engine.actions import RunContext, RunOutput, runner
from restoro.engine.graph import ActionSpec
from restoro.plan.nodes import Node, Results, tool_fingerprints
from restoro.plan.streams import resolve_stream

if TYPE_CHECKING:
    from restoro.plan.makers import Walk
    from restoro.plan.workspace import Workspace

AUDIO_VERSION = 2


def track_params(ws: Workspace, title: str) -> list[dict[str, Any]]:
    """Each audio track of a title as the params its action needs (sources by name)."""
    from restoro.deliver.audio import DEFAULT_TRUE_PEAK, source_layout

    t = ws.manifest.titles[title]
    tracks: list[dict[str, Any]] = []
    for i, tr in enumerate(t.audio):
        stems = [store_file(ws, path) for path in tr.stems or []]
        name = tr.source or t.source
        tracks.append(
            {
                "sources": [] if stems else [(name, resolve_stream(ws, title, i))],
                "stems": stems,
                "layout": str(tr.layout),
                "loudness": tr.loudness,
                "true_peak": tr.true_peak,
                "offset_ms": tr.offset_ms,
                "language": tr.language,
            }
        )
    if not t.audio:
        info = ws.sources[t.source].info
        if info.audio:
            index = info.audio[0].index
            src = ws.sources[t.source]
            tracks.append(
                {
                    "sources": [(t.source, index)],
                    "stems": [],
                    "layout": source_layout(src.path, index, _probed_layout(info.audio[0])),
                    "loudness": None,
                    "true_peak": DEFAULT_TRUE_PEAK,
                    "offset_ms": 0,
                    "language": "und",
                }
            )
    return tracks


def _probed_layout(stream: Any) -> str | None:
    """The probe's layout name in the form ``_open_stream`` gives (mono for one channel)."""
    if stream.channels == 1:
        return "mono"
    return str(stream.layout) if stream.layout else None


def store_file(ws: Workspace, relpath: str) -> str:
    """Put a side file of the manifest (a stem, a caption file) in the store; its digest."""
    import shutil

    from restoro.errors import MediaError

    path = (ws.root / relpath).resolve()
    if not path.is_file():
        raise MediaError(f"file {relpath!r} does not exist (looked at {path})")
    tmp = ws.store.temp_path(path.suffix)
    shutil.copyfile(path, tmp)
    return ws.store.put_file(tmp).digest


def caption_trim(ws: Workspace, title: str) -> dict[str, str]:
    """``{"trim": start}`` for the caption actions of a title cut with ``range:`` (its start
    in source seconds, a fraction string): the caption file is timed on the source and is cut
    to the title. Empty for a title without a range, whose action keys stay as they were."""
    from fractions import Fraction

    from restoro.manifest.resolve import title_span

    t = ws.manifest.titles[title]
    if t.range is None:
        return {}
    facts = {n: s.facts for n, s in ws.sources.items()}
    start = title_span(ws.manifest, title, facts)[0]
    return {"trim": str(Fraction(start) / Fraction(ws.sources[t.source].facts.frame_rate))}


def make(walk: Walk, title: str) -> list[Node]:
    """The title's audio nodes, when a deliverable of it uses audio; records their ids in
    ``walk.audio`` (the deliverable kinds get them either way)."""
    from restoro.plan.deliverables import get, wanted

    ingest = walk.ingests[title]
    a, b = ingest.span
    picture = (ingest.frames, ingest.format["frame_rate"])
    audio = audio_nodes(walk.ws, title, (a, b), picture)
    walk.audio[title] = [n.id for n in audio]
    kinds = walk.ws.manifest.deliverables
    uses = any(getattr(get(kinds[d].kind), "uses_audio", False) for d in wanted(walk, title))
    return audio if uses else []


def audio_nodes(
    ws: Workspace, title: str, span: tuple[int, int], picture: tuple[int, str] | None = None
) -> list[Node]:
    """One node per audio track of the title; ``span`` is in source frames at the source rate
    (wall-clock time, whatever frame rate ingest delivers); ``picture`` is the title's frame
    count and rate, which set the track's exact length."""
    t = ws.manifest.titles[title]
    rate = str(ws.sources[t.source].facts.frame_rate)
    nodes: list[Node] = []
    for i, tr in enumerate(track_params(ws, title)):
        aid = f"{title}/audio/{i}"
        if tr["stems"]:
            inputs: dict[str, Any] = {"stems": tr["stems"]}
            streams = [0] * len(tr["stems"])
        else:
            name, stream = tr["sources"][0]
            inputs, streams = {"source": ws.sources[name].digest}, [stream]

        def make(
            _: Results,
            tr: dict[str, Any] = tr,
            aid: str = aid,
            inputs: Any = inputs,
            st: Any = streams,
        ) -> ActionSpec:
            return ActionSpec(
                id=aid,
                stage="audio",
                version=AUDIO_VERSION,
                params={
                    "streams": st,
                    "layout": tr["layout"],
                    "loudness": tr["loudness"],
                    "true_peak": tr["true_peak"],
                    "offset_ms": tr["offset_ms"],
                    "start_frame": span[0],
                    "frames": span[1] - span[0],
                    "frame_rate": rate,
                    "picture": list(picture) if picture else None,
                },
                inputs=inputs,
                tools=tool_fingerprints(["ffmpeg"]),
                title=title,
            )

        nodes.append(Node(aid, (), make, kind="deliver", title=title))
    return nodes


@runner("audio")
def run_audio(spec: ActionSpec, ctx: RunContext) -> RunOutput:
    from restoro.deliver.audio import remaster

    p = spec.params
    if "stems" in spec.inputs:
        srcs = [(ctx.blob(d), 0) for d in spec.inputs["stems"]]
    else:
        srcs = [(ctx.sources[spec.inputs["source"]][0], p["streams"][0])]
    out = ctx.temp(".wav")
    facts = remaster(
        srcs,
        layout=p["layout"],
        start_frame=p["start_frame"],
        frames=p["frames"],
        frame_rate=p["frame_rate"],
        offset_ms=p["offset_ms"],
        target=p["loudness"],
        ceiling=p["true_peak"],
        out=out,
        picture=tuple(p["picture"]) if p.get("picture") else None,
    )
    return RunOutput(files={"audio": out}, meta={"frames": p["frames"], **facts})
