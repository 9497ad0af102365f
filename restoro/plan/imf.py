"""The ``imf`` deliverable: an IMF package per title (App 2E JPEG 2000, or App ProRes).

Per shot, one picture track file (``imf-track``): the shot's final frames encoded to JPEG 2000
(or ProRes) and frame-wrapped, with a track-file UUID derived from the essence, so a changed
shot re-encodes alone and an unchanged shot keeps its track file (and UUID) byte for byte.
Per title and audio track, a clip-wrapped PCM track file with MCA labels (``imf-audio``). Then
``imf-package`` writes CPL/OPL/PKL/ASSETMAP referencing them; ``materialise`` copies the track
files and documents into ``output/<deliverable>/<title>/``. With ``supplemental_to``, track
files already in the earlier package are referenced, not copied (a supplemental package).
"""

from __future__ import annotations

import logging
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from restoro.engine.actions import RunContext, RunOutput, runner
from restoro.engine.graph import ActionSpec
from restoro.errors import InputError
from restoro.plan.deliverables import DeliverableKind, register
from restoro.plan.nodes import Node, Results, Shot, ShotEntry, describe_stage, digest_of
from restoro.plan.nodes import tool_fingerprints as tools

if TYPE_CHECKING:
    from pathlib import Path

    from restoro.engine.store import ActionResult
    from restoro.plan.workspace import Workspace

log = logging.getLogger("restoro.imf")
DEFAULT_ISSUE_DATE = "2000-01-01T00:00:00Z"
DROP_FRAME_RATES = {Fraction(30000, 1001), Fraction(60000, 1001)}
APP_2E_RATES = {"24000/1001", "24", "25", "30000/1001", "30", "48", "50", "60000/1001", "60"}


def check_raster(deliverable: str, raster: str, application: str) -> tuple[int, int]:
    """The raster as (w, h); a clear error when App 2E forbids it."""
    from restoro.deliver.imf.checks import APP_2E_RASTERS

    w, h = (int(x) for x in raster.split("x"))
    if application == "2e" and (w, h) not in APP_2E_RASTERS:
        allowed = ", ".join(f"{a}x{b}" for a, b in sorted(APP_2E_RASTERS))
        raise InputError(
            f"IMF App 2E does not allow a {raster} raster",
            location=f"deliverables.{deliverable}.raster",
            hint=f"use one of {allowed}",
            code="E150",
        )
    return w, h


def _previous_assets(ws: Workspace, folder: str | None, title: str) -> list[str]:
    """Asset ids in the ASSETMAP of the title's earlier package (``<folder>/<title>/``)."""
    if folder is None:
        return []
    import xml.etree.ElementTree as ET

    am = ws.root / folder / title / "ASSETMAP.xml"
    if not am.is_file():
        raise InputError(f"no ASSETMAP.xml in {am.parent}", code="E151",
                         hint="supplemental_to names the output folder of an earlier imf "
                         "deliverable (holding one package folder per title)")  # fmt: skip
    ids = [e.text or "" for e in ET.parse(am).getroot().iter() if e.tag.endswith("}Id")]
    return sorted(i.strip().lower().removeprefix("urn:uuid:") for i in ids[1:])


def imf_nodes(
    ws: Workspace,
    title: str,
    deliverable: str,
    shots: list[ShotEntry],
    audio_ids: list[str],
    variant: str | None,
) -> list[Node]:
    from restoro.media.timecode import frames_to_timecode
    from restoro.plan.streams import resolve_stream

    d = ws.manifest.deliverables[deliverable]
    check_raster(deliverable, d.raster, d.application)
    src = ws.sources[ws.manifest.titles[title].source]
    rate = str(ws.manifest.titles[title].frame_rate or src.facts.frame_rate)
    nodes: list[Node] = []
    track_ids: list[str] = []
    encoder: dict[str, Any] = {}
    if d.reversible and d.application == "2e":  # which encoder makes the 5-3 codestreams
        from restoro.deliver.imf.j2k_reversible import available

        encoder = {"j2k_encoder": available() or "ffmpeg-libopenjpeg"}
    for shot, final_id, _rs in shots:
        tid = f"{shot.id}/{deliverable}"
        track_ids.append(tid)

        def make_track(deps: Results, final_id: str = final_id, tid: str = tid,
                       shot: Shot = shot) -> ActionSpec:  # fmt: skip
            up = deps[final_id]
            fmt = up.meta["format"]
            if d.application == "2e" and fmt["frame_rate"] not in APP_2E_RATES:
                raise InputError(f"IMF App 2E does not allow {fmt['frame_rate']} fps",
                                 location=f"deliverables.{deliverable}", code="E152")  # fmt: skip
            return ActionSpec(
                id=tid, stage="imf-track", version=1,
                params={"application": d.application, "raster": d.raster, "fit": d.fit,
                        "reversible": d.reversible, "profile": d.profile, "format": fmt,
                        "issued": d.issue_date or DEFAULT_ISSUE_DATE, **encoder},
                inputs={"frames": digest_of(up, "frames")}, tools=tools(["ffmpeg"]),
                title=title, shot=shot.id, variant=variant, frames=shot.end - shot.start,
            )  # fmt: skip

        nodes.append(Node(tid, (final_id,), make_track, kind="deliver", title=title,
                          shot=shot.id))  # fmt: skip
    t = ws.manifest.titles[title]
    notices = []
    audio_tracks: list[str] = []
    for i, aid in enumerate(audio_ids):
        tr = t.audio[i] if i < len(t.audio) else None
        sname = (tr.source if tr and tr.source else None) or t.source
        info = ws.sources[sname].info
        index = resolve_stream(ws, title, i) if tr is not None and not tr.stems else None
        rates = {a.sample_rate for a in info.audio if index is None or a.index == index}
        if rates and rates != {48000}:
            notices.append(f"audio track {i} is {sorted(rates)[0]} Hz: resampled to 48 kHz "
                           "(soxr) for IMF")  # fmt: skip
        mid = f"{title}/{deliverable}/audio/{i}"
        audio_tracks.append(mid)

        def make_audio(deps: Results, aid: str = aid, mid: str = mid, tr: Any = tr,
                       i: int = i) -> ActionSpec:  # fmt: skip
            return ActionSpec(
                id=mid, stage="imf-audio", version=2,
                params={"layout": str(tr.layout) if tr else None,
                        "language": tr.language if tr else "und",
                        "title": f"{title} audio {i}",
                        "issued": d.issue_date or DEFAULT_ISSUE_DATE},
                inputs={"audio": digest_of(deps[aid], "audio")}, title=title, variant=variant,
            )  # fmt: skip

        nodes.append(Node(mid, (aid,), make_audio, kind="deliver", title=title))
    text_tracks, text_sequences = _text_nodes(ws, title, deliverable, shots, rate, variant, nodes)
    for n in notices:
        log.warning("%s/%s: %s", title, deliverable, n)
    start = shots[0][0].start if shots else 0
    # Drop-frame composition timecode only where the title keeps a drop-frame source's rate.
    drop = bool(src.drop_frame) and Fraction(rate) in DROP_FRAME_RATES
    tc = frames_to_timecode(start + src.facts.start_frame, src.facts.frame_rate, src.drop_frame)
    stages = [describe_stage(st) for _s, _f, rs in shots for st in rs.stages]
    previous = _previous_assets(ws, d.supplemental_to, title)
    mid = f"{title}/{deliverable}"

    def make_package(deps: Results) -> ActionSpec:
        return ActionSpec(
            id=mid, stage="imf-package", version=2,
            params={"title": title, "application": d.application, "frame_rate": rate,
                    "timecode": tc if drop else tc.replace(";", ":"), "drop_frame": drop,
                    "issued": d.issue_date or DEFAULT_ISSUE_DATE,
                    "disclosure": disclosure(stages), "previous": previous, "notices": notices,
                    "text_sequences": text_sequences},
            inputs={"picture": [digest_of(deps[x], "track") for x in track_ids],
                    "audio": [digest_of(deps[x], "track") for x in audio_tracks],
                    "text": [digest_of(deps[x], "track") for x in text_tracks]},
            title=title, variant=variant,
        )  # fmt: skip

    nodes.append(Node(mid, (*track_ids, *audio_tracks, *text_tracks), make_package,
                      kind="deliver", title=title))  # fmt: skip
    return nodes


def _text_nodes(
    ws: Workspace,
    title: str,
    deliverable: str,
    shots: list[ShotEntry],
    rate: str,
    variant: str | None,
    nodes: list[Node],
) -> tuple[list[str], list[str]]:
    """One ``imf-text`` node per caption track of the title: (node ids, CPL sequence kinds)."""
    from restoro.deliver.imf.timedtext import SEQUENCE_OF_KIND
    from restoro.plan.audio import caption_trim, store_file

    d = ws.manifest.deliverables[deliverable]
    duration = sum(s.end - s.start for s, _f, _r in shots)
    ids, kinds = [], []
    trim = caption_trim(ws, title)
    for i, cap in enumerate(ws.manifest.titles[title].captions):
        tid = f"{title}/{deliverable}/text/{i}"
        spec = ActionSpec(
            id=tid, stage="imf-text", version=1,
            params={"offset_ms": cap.offset_ms, "language": cap.language, "frame_rate": rate,
                    "duration": duration, "issued": d.issue_date or DEFAULT_ISSUE_DATE,
                    "where": f"titles.{title}.captions[{i}]", **trim},
            inputs={"caption": store_file(ws, cap.path)}, title=title, variant=variant,
        )  # fmt: skip

        def make_text(_deps: Results, spec: ActionSpec = spec) -> ActionSpec:
            return spec

        nodes.append(Node(tid, (), make_text, kind="deliver", title=title))
        ids.append(tid)
        kinds.append(SEQUENCE_OF_KIND[cap.kind])
    return ids, kinds


def disclosure(stages: list[dict[str, Any]]) -> dict[str, Any]:
    """What the CPL says about processing: AI or not, and each model with its digest."""
    ai = [s for s in stages if s["ai"]]
    models = sorted(
        {(s["stage"], str(s["params"].get("model")), str(s["params"].get("model_digest") or
          s["params"].get("digest") or "unrecorded")) for s in ai}
    )  # fmt: skip
    names = sorted({s["stage"] for s in stages})
    summary = ("AI-processed: yes" if ai else "AI-processed: no") + "; stages: " + ", ".join(names)
    return {
        "ai": bool(ai),
        "summary": summary,
        "models": [{"stage": st, "name": n, "digest": dg} for st, n, dg in models],
    }


@runner("imf-track")
def run_imf_track(spec: ActionSpec, ctx: RunContext) -> RunOutput:
    from restoro.deliver.imf.trackgen import picture_track
    from restoro.media.frames import FrameFormat

    p = spec.params
    out = ctx.temp(".mxf")
    w, h = (int(x) for x in p["raster"].split("x"))
    n = picture_track(ctx.blob(spec.inputs["frames"]), FrameFormat.model_validate(p["format"]),
                      application=p["application"], raster=(w, h), fit=p["fit"],
                      reversible=p["reversible"], profile=p["profile"], issued=p["issued"],
                      out=out, work=ctx.temp(".d"))  # fmt: skip
    ctx.progress(n)
    return RunOutput(files={"track": out}, meta={"frames": n})


@runner("imf-audio")
def run_imf_audio(spec: ActionSpec, ctx: RunContext) -> RunOutput:
    from restoro.deliver.imf.trackgen import audio_track

    p = spec.params
    out = ctx.temp(".mxf")
    n = audio_track(ctx.blob(spec.inputs["audio"]), out, layout=p["layout"],
                    language=p["language"], title=p["title"], issued=p["issued"])  # fmt: skip
    return RunOutput(files={"track": out}, meta={"samples": n})


@runner("imf-text")
def run_imf_text(spec: ActionSpec, ctx: RunContext) -> RunOutput:
    from restoro.deliver.imf.timedtext import text_track

    p = spec.params
    out, imsc = ctx.temp(".mxf"), ctx.temp(".ttml")
    notices: list[str] = []
    n, doc = text_track(ctx.blob(spec.inputs["caption"]), out, offset_ms=p["offset_ms"],
                        language=p["language"], frame_rate=p["frame_rate"],
                        duration=p["duration"], issued=p["issued"], where=p["where"],
                        trim=p.get("trim"), notices=notices)  # fmt: skip
    imsc.write_bytes(doc)
    meta: dict[str, Any] = {"duration": n, **({"notices": notices} if notices else {})}
    return RunOutput(files={"track": out, "imsc": imsc}, meta=meta)


@runner("imf-package")
def run_imf_package(spec: ActionSpec, ctx: RunContext) -> RunOutput:
    from restoro.deliver.imf.trackgen import package_documents

    p = spec.params
    work = ctx.temp(".pkg")
    texts = spec.inputs.get("text", [])
    digests = {str(ctx.blob(x)): x for x in [*spec.inputs["picture"], *spec.inputs["audio"],
                                             *texts]}  # fmt: skip
    docs, meta = package_documents(
        [ctx.blob(x) for x in spec.inputs["picture"]],
        [ctx.blob(x) for x in spec.inputs["audio"]],
        work, params=p, texts=[ctx.blob(x) for x in texts],
    )  # fmt: skip
    tracks = [(digests[blob], name) for blob, name in meta["tracks"]]
    return RunOutput(
        files=docs, meta={"names": meta["names"], "tracks": tracks, "notices": p["notices"]}
    )


def materialise(
    ws: Workspace,
    deliverable: str,
    title: str,
    result: ActionResult,
    out_dir: Path,
    shots: list[ShotEntry],
    variant: str | None,
) -> list[Path]:
    """Copy track files and documents into ``out_dir/<title>/`` (skipping external ones); the
    CPL first, as the lock records the first path with the primary output's digest."""
    from restoro.engine.materialise import export, write_json
    from restoro.plan.provenance import provenance

    pkg = out_dir / title
    written = []
    for key, name in sorted(result.meta["names"].items(), key=lambda kv: (kv[0] != "cpl", kv)):
        if key in result.outputs:
            written.append(export(ws, result.outputs[key].digest, pkg / name))
    for digest, name in result.meta.get("tracks", []):
        written.append(export(ws, digest, pkg / name))
    meta = provenance(ws, deliverable, title, result, shots, variant, output="cpl")
    meta["notices"] = result.meta.get("notices", [])
    write_json(out_dir / f"{title}.provenance.json", meta)
    return written


register(DeliverableKind("imf", imf_nodes, materialise, primary=lambda r: "cpl"))
