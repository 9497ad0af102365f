"""The ``prores`` deliverable: per-shot all-intra ProRes chunks, then a master per title
assembled from them without re-encoding, with PCM audio and a timecode track."""

from __future__ import annotations

from typing import TYPE_CHECKING

from restoro import __version__
from restoro.deliver.registry import DeliverableKind, register
from restoro.engine.actions import RunContext, RunOutput, runner
from restoro.engine.graph import ActionSpec
from restoro.engine.nodes import (
    Node,
    Results,
    Shot,
    ShotEntry,
    describe_stage,
    digest_of,
    title_timecode,
    tool_fingerprints,
)

if TYPE_CHECKING:
    from pathlib import Path

    from restoro.engine.store import ActionResult
    from restoro.engine.workspace import Workspace
    from restoro.manifest.resolve import ResolvedStage


def prores_nodes(
    ws: Workspace,
    title: str,
    deliverable: str,
    shots: list[ShotEntry],
    audio_ids: list[str],
    variant: str | None,
) -> list[Node]:
    """Per-shot ProRes chunks and the title's master assembled from them."""
    from restoro.media.timecode import frames_to_timecode

    d = ws.manifest.deliverables[deliverable]
    nodes: list[Node] = []
    chunk_ids: list[str] = []
    for shot, final_id, _rs in shots:
        cid = f"{shot.id}/{deliverable}"
        chunk_ids.append(cid)

        def make_chunk(
            deps: Results, final_id: str = final_id, cid: str = cid, shot: Shot = shot
        ) -> ActionSpec:
            up = deps[final_id]
            return ActionSpec(
                id=cid,
                stage="prores-chunk",
                version=1,
                params={
                    "raster": d.raster,
                    "fit": d.fit,
                    "profile": d.profile,
                    "format": up.meta["format"],
                },
                inputs={"frames": digest_of(up, "frames")},
                tools=tool_fingerprints(["ffmpeg"]),
                title=title,
                shot=shot.id,
                variant=variant,
                frames=shot.end - shot.start,
            )

        nodes.append(Node(cid, (final_id,), make_chunk, kind="deliver", title=title, shot=shot.id))
    src = ws.sources[ws.manifest.titles[title].source]
    start = shots[0][0].start if shots else 0
    total = sum(s.end - s.start for s, _, _ in shots)
    # The master runs at the title's rate (24000/1001 after IVTC) from its first frame's timecode.
    rate = (shots[0][0].frame_rate if shots else "") or str(src.facts.frame_rate)
    tc = (
        title_timecode(src, shots[0][0])
        if shots
        else frames_to_timecode(start + src.facts.start_frame, src.facts.frame_rate, src.drop_frame)
    )
    stages = sorted({_summary(st) for _s, _f, rs in shots for st in rs.stages})
    ai = any(describe_stage(st)["ai"] for _s, _f, rs in shots for st in rs.stages)
    metadata = {
        "encoder": f"restoro {__version__}",
        "comment": ("AI-processed: yes" if ai else "AI-processed: no")
        + "; processing: "
        + "; ".join(stages),
    }
    mid = f"{title}/{deliverable}"

    def make_master(deps: Results) -> ActionSpec:
        return ActionSpec(
            id=mid,
            stage="prores-master",
            version=1,
            params={
                "frame_rate": rate,
                "timecode": tc,
                "frames": total,
                "metadata": metadata,
            },
            inputs={
                "chunks": [digest_of(deps[c], "chunk") for c in chunk_ids],
                "audio": [digest_of(deps[a], "audio") for a in audio_ids],
            },
            tools=tool_fingerprints(["ffmpeg"]),
            title=title,
            variant=variant,
            frames=total,
        )

    nodes.append(Node(mid, (*chunk_ids, *audio_ids), make_master, kind="deliver", title=title))
    return nodes


def _summary(st: ResolvedStage) -> str:
    """``upscale(model=lanczos,scale=2)``: one stage as the master's metadata names it."""
    params = st.params.model_dump(mode="json")
    return f"{st.stage}({','.join(f'{k}={v}' for k, v in sorted(params.items()))})"


@runner("prores-chunk")
def run_prores_chunk(spec: ActionSpec, ctx: RunContext) -> RunOutput:
    from restoro.deliver.prores import encode_chunk
    from restoro.media.frames import FrameFormat

    p = spec.params
    w, h = (int(x) for x in p["raster"].split("x"))
    out = ctx.temp(".mov")
    count = encode_chunk(
        ctx.blob(spec.inputs["frames"]),
        FrameFormat.model_validate(p["format"]),
        raster=(w, h),
        fit=p["fit"],
        profile=p["profile"],
        out=out,
    )
    ctx.progress(count)
    return RunOutput(files={"chunk": out}, meta={"frames": count})


@runner("prores-master")
def run_prores_master(spec: ActionSpec, ctx: RunContext) -> RunOutput:
    from restoro.deliver.prores import assemble_master

    p = spec.params
    out = ctx.temp(".mov")
    assemble_master(
        [ctx.blob(d) for d in spec.inputs["chunks"]],
        out,
        frame_rate=p["frame_rate"],
        timecode=p["timecode"],
        audio=[ctx.blob(d) for d in spec.inputs["audio"]],
        metadata=p["metadata"],
    )
    ctx.progress(p["frames"])
    return RunOutput(files={"master": out}, meta={"frames": p["frames"]})


def materialise(
    ws: Workspace,
    deliverable: str,
    title: str,
    result: ActionResult,
    out_dir: Path,
    shots: list[ShotEntry],
    variant: str | None,
) -> list[Path]:
    """Copy the master out of the store and write its provenance sidecar."""
    from restoro.engine.materialise import export, provenance, write_json

    out = export(ws, result.outputs["master"].digest, out_dir / f"{title}.mov")
    meta = provenance(ws, deliverable, title, result, shots, variant, output="master")
    write_json(out_dir / f"{title}.provenance.json", meta)
    return [out]


register(DeliverableKind("prores", prores_nodes, materialise))
