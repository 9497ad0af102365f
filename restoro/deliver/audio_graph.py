"""Audio tracks of a title: decoded from the source, 24-bit 48 kHz PCM, picture length."""

from __future__ import annotations

from typing import TYPE_CHECKING

from restoro.engine.actions import RunContext, RunOutput, runner
from restoro.engine.graph import ActionSpec
from restoro.engine.nodes import Node, Results, tool_fingerprints

if TYPE_CHECKING:
    from restoro.engine.workspace import SourceState, Workspace


def audio_nodes(ws: Workspace, title: str, span: tuple[int, int]) -> list[Node]:
    """One node per audio track of the title (default: the source's first audio stream)."""
    t = ws.manifest.titles[title]
    tracks: list[tuple[str, int]] = [(tr.source or t.source, tr.stream) for tr in t.audio]
    if not t.audio:
        info = ws.sources[t.source].info
        if info.audio:
            tracks = [(t.source, info.audio[0].index)]
    nodes: list[Node] = []
    for i, (sname, stream) in enumerate(tracks):
        src = ws.sources[sname]
        aid = f"{title}/audio/{i}"

        def make(
            _: Results, src: SourceState = src, stream: int = stream, aid: str = aid
        ) -> ActionSpec:
            return ActionSpec(
                id=aid,
                stage="audio",
                version=1,
                params={
                    "stream": stream,
                    "start_frame": span[0],
                    "frames": span[1] - span[0],
                    "frame_rate": str(src.facts.frame_rate),
                },
                inputs={"source": src.digest},
                tools=tool_fingerprints(["ffmpeg"]),
                title=title,
            )

        nodes.append(Node(aid, (), make, kind="deliver", title=title))
    return nodes


@runner("audio")
def run_audio(spec: ActionSpec, ctx: RunContext) -> RunOutput:
    from restoro.deliver.audio import extract_audio

    path, _info = ctx.sources[spec.inputs["source"]]
    p = spec.params
    out = ctx.temp(".wav")
    extract_audio(
        path,
        p["stream"],
        start_frame=p["start_frame"],
        frames=p["frames"],
        frame_rate=p["frame_rate"],
        out=out,
    )
    return RunOutput(files={"audio": out}, meta={"frames": p["frames"]})
