"""The ``prores`` deliverable: per-shot all-intra ProRes chunks, then a master per title
assembled from them without re-encoding, with PCM audio and a timecode track."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from restoro import __version__
from restoro.engine.actions import RunContext, RunOutput, runner
from restoro.engine.graph import ActionSpec
from restoro.plan.deliverables import DeliverableKind, register
from restoro.plan.nodes import (
    Node,
    Results,
    Shot,
    ShotEntry,
    describe_stage,
    digest_of,
    tool_fingerprints,
)
from restoro.plan.titles import title_timecode

if TYPE_CHECKING:
    from collections.abc import Callable

    from restoro.engine.store import ActionResult
    from restoro.manifest.resolve import ResolvedStage
    from restoro.plan.workspace import Workspace


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
            # A folded final segment (plan/chains.py) runs inside this encode: the key holds
            # its input's digest and format and the segment's stages with their versions.
            fold = getattr(final_id, "stages", None)
            return ActionSpec(
                id=cid,
                stage="prores-chunk",
                version=1,
                params={
                    "raster": d.raster,
                    "fit": d.fit,
                    "profile": d.profile,
                    "format": up.meta["format"],
                    **({"fold": fold} if fold is not None else {}),
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
    # Shots share their resolved stages (resolve_shot validates each distinct stage once).
    distinct = list({id(st): st for _s, _f, rs in shots for st in rs.stages}.values())
    stages = sorted({_summary(st) for st in distinct})
    ai = any(describe_stage(st)["ai"] for st in distinct)
    metadata = {
        "encoder": f"restoro {__version__}",
        "comment": ("AI-processed: yes" if ai else "AI-processed: no")
        + "; processing: "
        + "; ".join(stages),
    }
    mid = f"{title}/{deliverable}"
    cap_ids = caption_nodes(ws, title, deliverable, nodes, rate=rate, timecode=tc, frames=total)

    def make_master(deps: Results) -> ActionSpec:
        sidecars = [digest_of(deps[c], k) for c in cap_ids for k in ("srt", "scc")]
        return ActionSpec(
            id=mid,
            stage="prores-master",
            version=1,
            params={
                "frame_rate": rate,
                "timecode": tc,
                "frames": total,
                "metadata": metadata,
                **(
                    {"sidecars": [_sidecar_stem(ws, title, i) for i in range(len(cap_ids))]}
                    if cap_ids
                    else {}
                ),
            },
            inputs={
                "chunks": [digest_of(deps[c], "chunk") for c in chunk_ids],
                "audio": [digest_of(deps[a], "audio") for a in audio_ids],
                **({"sidecars": sidecars} if sidecars else {}),
            },
            tools=tool_fingerprints(["ffmpeg"]),
            title=title,
            variant=variant,
            frames=total,
        )

    deps = (*chunk_ids, *audio_ids, *cap_ids)
    nodes.append(Node(mid, deps, make_master, kind="deliver", title=title))
    return nodes


def _sidecar_stem(ws: Workspace, title: str, i: int) -> str:
    """``<title>`` for the first caption track, ``<title>.<n>.<language>`` for the others."""
    lang = ws.manifest.titles[title].captions[i].language
    return title if i == 0 else f"{title}.{i}.{lang}"


def caption_nodes(
    ws: Workspace, title: str, deliverable: str, nodes: list[Node], **master: object
) -> list[str]:
    """One ``master-captions`` action per caption track of the title (SRT + SCC sidecars)."""
    from importlib.metadata import version

    from restoro.plan.audio import caption_trim, store_file

    ids = []
    trim = caption_trim(ws, title)
    for i, c in enumerate(ws.manifest.titles[title].captions):
        spec = ActionSpec(
            id=f"{title}/{deliverable}/captions/{i}",
            stage="master-captions",
            version=1,
            params={"name": Path(c.path).name, "offset_ms": c.offset_ms, **master, **trim},
            inputs={"captions": store_file(ws, c.path)},
            tools={"ttconv": f"ttconv {version('ttconv')}"},
            title=title,
        )
        nodes.append(Node(spec.id, (), _fixed(spec), kind="deliver", title=title))
        ids.append(spec.id)
    return ids


def _fixed(spec: ActionSpec) -> Callable[[Results], ActionSpec]:
    """A node's spec maker for an action with no upstream nodes."""
    return lambda _deps: spec


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
    src = ctx.blob(spec.inputs["frames"])
    fmt = FrameFormat.model_validate(p["format"])
    pre = None
    if "fold" in p:
        # The shot's folded final segment, as the chain's transcode would run it: the same
        # gbrp16le samples reach the fit to raster, so the chunk's bytes are the unfolded ones.
        from restoro.plan.chains import unfold

        pre, fmt = unfold(spec.id, src, p["fold"], fmt)
    count = encode_chunk(
        src, fmt, raster=(w, h), fit=p["fit"], profile=p["profile"], out=out, pre=pre
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
    meta: dict[str, object] = {"frames": p["frames"]}
    if "sidecars" in spec.inputs:  # caption sidecars travel with the master to the output
        digests = spec.inputs["sidecars"]
        meta["sidecars"] = [
            [stem, digests[2 * i], digests[2 * i + 1]] for i, stem in enumerate(p["sidecars"])
        ]
    return RunOutput(files={"master": out}, meta=meta)


@runner("master-captions")
def run_master_captions(spec: ActionSpec, ctx: RunContext) -> RunOutput:
    from restoro.deliver.captions.sidecars import master_sidecars

    p = spec.params
    notices: list[str] = []
    srt, scc = master_sidecars(
        ctx.blob(spec.inputs["captions"]), name=p["name"], offset_ms=p["offset_ms"],
        frames=p["frames"], frame_rate=p["rate"], timecode=p["timecode"], trim=p.get("trim"),
        notices=notices,
    )  # fmt: skip
    files = {}
    for key, text in (("srt", srt), ("scc", scc)):
        files[key] = ctx.temp(f".{key}")
        files[key].write_bytes(text.encode("utf-8"))
    meta: dict[str, object] = {"cues": srt.count(" --> ")}
    return RunOutput(files=files, meta={**meta, **({"notices": notices} if notices else {})})


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
    from restoro.engine.materialise import export, write_json
    from restoro.plan.provenance import provenance

    out = export(ws, result.outputs["master"].digest, out_dir / f"{title}.mov")
    sidecars = [
        export(ws, digest, out_dir / f"{stem}.{ext}")
        for stem, *digests in result.meta.get("sidecars", [])
        for ext, digest in zip(("srt", "scc"), digests, strict=True)
    ]
    meta = provenance(ws, deliverable, title, result, shots, variant, output="master")
    write_json(out_dir / f"{title}.provenance.json", meta)
    return [out, *sidecars]


register(DeliverableKind("prores", prores_nodes, materialise, primary=lambda r: "master"))
