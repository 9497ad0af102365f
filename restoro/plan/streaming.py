"""The ``hls`` and ``dash`` deliverables: per-shot, per-rendition encodes (a changed shot
re-encodes alone), then one packaging action per title that concatenates them without
re-encoding, encodes the audio renditions, segments the captions and writes the playlists/MPD."""

from __future__ import annotations

import tempfile
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from restoro.engine.actions import RunContext, RunOutput, runner
from restoro.engine.graph import ActionSpec
from restoro.plan.deliverables import DeliverableKind, register
from restoro.plan.nodes import Node, Results, Shot, ShotEntry, digest_of, tool_fingerprints

if TYPE_CHECKING:
    from restoro.engine.store import ActionResult
    from restoro.plan.workspace import Workspace


def streaming_nodes(
    ws: Workspace,
    title: str,
    deliverable: str,
    shots: list[ShotEntry],
    audio_ids: list[str],
    variant: str | None,
) -> list[Node]:
    from restoro.plan.audio import caption_trim, store_file, track_params

    d = ws.manifest.deliverables[deliverable]
    nodes: list[Node] = []
    chunk_ids: dict[str, list[str]] = {}
    for r, rend in enumerate(d.ladder):  # type: ignore[union-attr]
        rid = f"v{r}"
        chunk_ids[rid] = []
        for shot, final_id, _rs in shots:
            cid = f"{shot.id}/{deliverable}/{rid}"
            chunk_ids[rid].append(cid)
            crf = d.shot_crf.get(shot.id, rend.crf)  # type: ignore[union-attr]

            def make_chunk(
                deps: Results, final_id: str = final_id, cid: str = cid, shot: Shot = shot,
                rend: Any = rend, crf: int | None = crf,
            ) -> ActionSpec:  # fmt: skip
                up = deps[final_id]
                rate = Fraction(up.meta["format"]["frame_rate"])
                return ActionSpec(
                    id=cid,
                    stage="stream-encode",
                    version=1,
                    params={
                        "codec": rend.codec,
                        "height": rend.height,
                        "bitrate": rend.bitrate,
                        "bit_depth": 10 if rend.codec == "hevc" else rend.bit_depth,
                        "crf": crf,
                        "cadence": max(1, int(d.segment_seconds * rate)),  # type: ignore[union-attr]
                        "format": up.meta["format"],
                    },
                    inputs={"frames": digest_of(up, "frames")},
                    tools=tool_fingerprints(["ffmpeg"]),
                    title=title,
                    shot=shot.id,
                    variant=variant,
                    frames=shot.end - shot.start,
                )

            nodes.append(
                Node(cid, (final_id,), make_chunk, kind="deliver", title=title, shot=shot.id)
            )
    tracks = track_params(ws, title)
    captions = []
    if d.subtitles:  # type: ignore[union-attr]
        trim = caption_trim(ws, title)
        for c in ws.manifest.titles[title].captions:
            captions.append(
                {"digest": store_file(ws, c.path), "language": c.language, "kind": c.kind,
                 "offset_ms": c.offset_ms, "name": Path(c.path).name,
                 **trim}
            )  # fmt: skip
    carried, carried_src = _passthrough(ws, title, d.audio, tracks)  # type: ignore[union-attr]
    mid = f"{title}/{deliverable}"
    all_chunks = [c for ids in chunk_ids.values() for c in ids]

    def make_package(deps: Results) -> ActionSpec:
        first = deps[chunk_ids["v0"][0]] if shots else None
        return ActionSpec(
            id=mid,
            stage="stream-package",
            version=3,  # 2: fragments joined into segments; 3: first picture presents at 0
            params={
                "kind": d.kind,
                "frame_rate": first.meta["frame_rate"] if first else "24",
                "segment_seconds": d.segment_seconds,  # type: ignore[union-attr]
                "audio": [a.model_dump(mode="json") for a in d.audio],  # type: ignore[union-attr]
                "tracks": [_track_param(t) for t in tracks],
                "captions": [{k: v for k, v in c.items() if k != "digest"} for c in captions],
                "passthrough": carried,
            },
            inputs={
                **{
                    rid: [digest_of(deps[c], "chunk") for c in ids]
                    for rid, ids in chunk_ids.items()
                },
                "audio": [digest_of(deps[a], "audio") for a in audio_ids],
                "captions": [c["digest"] for c in captions],
                **({"source": carried_src} if carried_src else {}),
            },
            tools=tool_fingerprints(["ffmpeg"]),
            title=title,
            variant=variant,
        )

    nodes.append(Node(mid, (*all_chunks, *audio_ids), make_package, kind="deliver", title=title))
    return nodes


def _track_param(track: dict[str, Any]) -> dict[str, Any]:
    """What packaging needs of an audio track: layout, language and, when the track has a
    loudness target, the target and ceiling every encoded rendition is brought to (absent
    otherwise, so a package without targets keeps its key)."""
    out = {"layout": track["layout"], "language": track["language"]}
    if track["loudness"] is not None:
        out.update(loudness=track["loudness"], true_peak=track["true_peak"])
    return out


def _passthrough(
    ws: Workspace, title: str, renditions: list[Any], tracks: list[dict[str, Any]]
) -> tuple[dict[str, dict[str, Any]], str | None]:
    """Cut descriptions (rendition index → stream, span, offset) of the passthrough renditions
    and the digest of the source they read (one per package: the action's ``source`` input,
    which the engine resolves outside the store); the span is the title's, in source frames."""
    from restoro.errors import InputError
    from restoro.manifest.resolve import title_span

    t = ws.manifest.titles[title]
    facts = {n: s.facts for n, s in ws.sources.items()}
    span = title_span(ws.manifest, title, facts)
    rate = str(ws.sources[t.source].facts.frame_rate)
    cuts: dict[str, dict[str, Any]] = {}
    digests: set[str] = set()
    for i, a in enumerate(renditions):
        if not a.passthrough or a.track >= len(tracks):
            continue
        tr = tracks[a.track]
        if tr["stems"]:
            raise InputError(
                f"audio rendition {i} of {title} is passthrough, but track {a.track} is made "
                "of stems (there is no compressed stream to carry)",
                hint="set passthrough: false",
            )
        name, stream = tr["sources"][0]
        probed = {s.index: s.codec for s in ws.sources[name].info.audio}
        if probed.get(stream, "ac3") not in ("ac3", "eac3"):
            raise InputError(
                f"audio rendition {i} of {title} is passthrough, which needs an AC-3 or E-AC-3 "
                f"stream; stream {stream} of source {name!r} is {probed[stream]}",
                hint="set passthrough: false to encode the rendition from the remastered track",
            )
        cuts[str(i)] = {
            "stream": stream, "start_frame": span[0], "frames": span[1] - span[0],
            "frame_rate": rate, "offset_ms": tr["offset_ms"], "language": tr["language"],
        }  # fmt: skip
        digests.add(ws.sources[name].digest)
    if len(digests) > 1:
        raise InputError(
            f"the passthrough audio renditions of {title} read different sources",
            hint="carry streams of one source per package, or set passthrough: false",
        )
    return cuts, next(iter(digests), None)


@runner("stream-encode")
def run_stream_encode(spec: ActionSpec, ctx: RunContext) -> RunOutput:
    from restoro.deliver.streaming.encode import encode_shot
    from restoro.media.frames import FrameFormat

    p = spec.params
    fmt = FrameFormat.model_validate(p["format"])
    out = ctx.temp(".mp4")
    count = encode_shot(
        ctx.blob(spec.inputs["frames"]), fmt, codec=p["codec"], height=p["height"],
        bitrate=p["bitrate"], bit_depth=p["bit_depth"], crf=p["crf"], cadence=p["cadence"],
        out=out,
    )  # fmt: skip
    ctx.progress(count)
    return RunOutput(files={"chunk": out}, meta={"frames": count, "frame_rate": fmt.frame_rate})


@runner("stream-package")
def run_stream_package(spec: ActionSpec, ctx: RunContext) -> RunOutput:
    from restoro.deliver.streaming.builder import build_package

    root = ctx.temp(".pkg")
    root.mkdir()
    videos = {k: [ctx.blob(x) for x in v] for k, v in spec.inputs.items() if k.startswith("v")}
    with tempfile.TemporaryDirectory(prefix="restoro-stream-", dir=root.parent) as tmp:
        files, meta = build_package(
            dict(spec.params),
            videos=videos,
            audio=[ctx.blob(x) for x in spec.inputs["audio"]],
            captions=[ctx.blob(x) for x in spec.inputs["captions"]],
            source=ctx.sources[spec.inputs["source"]][0] if "source" in spec.inputs else None,
            out_dir=root,
            work=Path(tmp),
        )
    return RunOutput(files={name: root / name for name in files}, meta=meta)


def materialise(
    ws: Workspace,
    deliverable: str,
    title: str,
    result: ActionResult,
    out_dir: Path,
    shots: list[ShotEntry],
    variant: str | None,
) -> list[Path]:
    """Export the package to ``out_dir/<title>/`` (main playlist or MPD first, then by name)."""
    from restoro.engine.materialise import export, write_json
    from restoro.plan.provenance import provenance

    base = out_dir / title
    main = package_main(result)
    names = [main, *sorted(n for n in result.outputs if n != main)]
    paths = [export(ws, result.outputs[n].digest, base / n) for n in names]
    meta = provenance(ws, deliverable, title, result, shots, variant, output=main)
    write_json(out_dir / f"{title}.provenance.json", meta)
    return paths


def package_main(result: ActionResult) -> str:
    """The package's entry point: the HLS master playlist or the DASH MPD."""
    return "master.m3u8" if "master.m3u8" in result.outputs else "manifest.mpd"


register(DeliverableKind("hls", streaming_nodes, materialise, primary=package_main))
register(DeliverableKind("dash", streaming_nodes, materialise, primary=package_main))
