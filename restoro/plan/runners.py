"""The action runners for titles and shots: analysis, ingest, shot detection, extract and the
fused chain.

Registered with the engine's ``@runner``; ``MODULES`` lists every module of the planner that
registers runners, which the engine imports before running an action (a farm worker too).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from restoro.engine import execute
from restoro.engine.actions import RunContext, RunOutput, runner, threaded
from restoro.errors import StageError
from restoro.plan.deliverables import BUILTIN_MODULES

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    import numpy as np

    from restoro.engine.graph import ActionSpec

MODULES: tuple[str, ...] = (
    "restoro.plan.runners",
    "restoro.plan.audio",
    "restoro.plan.qc",
    *BUILTIN_MODULES,
)
"""The planner's modules that register action runners (the deliverable kinds' too)."""

execute.RUNNER_MODULES.extend(m for m in MODULES if m not in execute.RUNNER_MODULES)


def _frames_validator(expected: int) -> Callable[[Path], None]:
    from restoro.media.frameio import validate_intermediate

    return lambda p: validate_intermediate(p, expected)


def _source(spec: ActionSpec, ctx: RunContext) -> tuple[Path, Any]:
    from restoro.media.probe import SourceInfo

    path, info = ctx.sources[spec.inputs["source"]]
    if isinstance(info, dict):  # sent as JSON to a farm worker
        info = SourceInfo.model_validate(info)
    return path, info


@runner("analysis")
def run_analysis(spec: ActionSpec, ctx: RunContext) -> RunOutput:
    """A title's cadence, timeline and working format: meta only, no frames."""
    from restoro.stages.ingest_timeline import analyse_title

    path, info = _source(spec, ctx)
    return RunOutput(meta=analyse_title(path, info, spec.params))


@runner("ingest")
def run_ingest(spec: ActionSpec, ctx: RunContext) -> RunOutput:
    from restoro.stages.ingest_timeline import run_ingest_action

    path, info = _source(spec, ctx)
    out = ctx.temp(".mkv")
    work = ctx.temp(".ingest")
    scores = ctx.temp(".f64") if spec.params.get("scores") else None
    meta = run_ingest_action(path, info, spec.params, out, work, scores)
    ctx.progress(meta["frames"])
    return RunOutput(
        files={"frames": out, **({"scores": scores} if scores is not None else {})},
        meta=meta,
        validators={"frames": _frames_validator(meta["frames"])},
    )


@runner("shots")
def run_shots(spec: ActionSpec, ctx: RunContext) -> RunOutput:
    """A title's cuts: the detector's decisions replayed over its pieces' shot scores in order
    (written by the ingest pieces). A piece's first ``content`` score compares its first frame
    with the last frame of the piece before: computed here from those two frames (``frames``:
    the pieces' intermediates, given for a ``content`` metric over several pieces)."""
    import numpy as np

    from restoro.media.shots import boundary_score, cuts_from_scores

    p = spec.params
    parts = [
        np.frombuffer(ctx.blob(d).read_bytes(), dtype="<f8").copy()
        for d in spec.inputs.get("scores", [])
    ]
    frames = spec.inputs.get("frames", [])
    if frames:
        if len(frames) != len(parts):
            raise StageError(f"{len(frames)} pieces' frames for the scores of {len(parts)}")
        for i in range(1, len(parts)):
            if len(parts[i]):
                parts[i][0] = boundary_score(ctx.blob(frames[i - 1]), ctx.blob(frames[i]))
    scores = np.concatenate(parts) if parts else np.zeros(0)
    if parts and len(scores) != p["frames"]:
        raise StageError(f"shot scores of {len(scores)} frames for a title of {p['frames']}")
    cuts = cuts_from_scores(
        scores,
        detector=p["detector"],
        threshold=p["threshold"],
        min_frames=p["min_frames"],
        frame_rate=p["frame_rate"],
    )
    return RunOutput(meta={"cuts": [int(c) for c in cuts]})


@runner("extract")
def run_extract(spec: ActionSpec, ctx: RunContext) -> RunOutput:
    """A shot's title frames, packets copied from the ingest pieces that hold them."""
    from restoro.media.frameio import extract_pieces

    start, end = spec.params["range"]
    given = spec.inputs["frames"]
    digests = given if isinstance(given, list) else [given]
    pieces = [(ctx.blob(d), k0) for d, (k0, _) in zip(digests, spec.params["pieces"], strict=True)]
    out = ctx.temp(".mkv")
    extract_pieces(pieces, start, end, out, spec.params["format"]["frame_rate"])
    ctx.progress(end - start)
    return RunOutput(
        files={"frames": out},
        meta={"format": spec.params["format"], "frames": end - start},
        validators={"frames": _frames_validator(end - start)},
    )


@runner("chain")
def run_chain(spec: ActionSpec, ctx: RunContext) -> RunOutput:
    """A shot's fused chain of frame stages: decode → stages → encode, no intermediate files.

    Decoding runs in its own thread; when a stage uses the GPU, the stages run in another, so
    decode, inference and encode overlap behind bounded queues. A stage whose descriptor has a
    ``temporal_radius`` buffers that many neighbours itself (``windows``); the stream it sees
    ends at the shot's boundaries. Stages may leave a JSON-able summary in
    ``ctx.extra["meta"]``; it is recorded in the action's meta under ``stages``.
    """
    from restoro.media.frameio import (
        CODEC,
        FrameWriter,
        count_frames,
        read_frames,
        sample_format,
    )
    from restoro.media.frames import FrameFormat
    from restoro.stages import registry
    from restoro.stages.base import StageContext

    fmt = FrameFormat.model_validate(spec.params["format"])
    frames: Iterator[np.ndarray] = threaded(read_frames(ctx.blob(spec.inputs["frames"])))
    work = ctx.temp(".work")
    work.mkdir()
    contexts: list[tuple[str, StageContext]] = []
    filters: list[str | None] = []
    overlap = False
    extra_inputs = {
        name: ctx.blob(digest) for name, digest in spec.inputs.items() if name.startswith("model:")
    }
    nth: dict[str, int] = {}
    for stage_id, _version, raw in spec.params["stages"]:
        # The n-th stage of one id reads its model inputs named ``model:…#n`` (n > 1).
        nth[stage_id] = n = nth.get(stage_id, 0) + 1
        own = {k: v for k, v in extra_inputs.items() if "#" not in k}
        if n > 1:
            own = {k.split("#")[0]: v for k, v in extra_inputs.items() if k.endswith(f"#{n}")}
        stage, params = registry.frame_stage(stage_id, raw)
        sctx = StageContext(
            fmt=fmt,
            shot_id=spec.shot,
            work_dir=work,
            device=ctx.device,
            seed=int(spec.params.get("seed", 0)),
            inputs=own,
            extra={"temporal_radius": stage.descriptor.temporal_radius},
        )
        contexts.append((stage_id, sctx))
        overlap = overlap or stage.uses_device(params)
        filters.append(stage.ffmpeg_filter(params, fmt))
        frames = stage.process(frames, params, sctx)
        fmt = stage.output_format(params, fmt)
    out = ctx.temp(".mkv")
    src = ctx.blob(spec.inputs["frames"])
    if filters and all(f is not None for f in filters) and sample_format(src) == "gbrp16le":
        # Every stage is an ffmpeg filter: one transcode, no frame crosses into Python (the
        # stages' generators above are never started). Same bytes as streaming them. (A
        # 12-bit or mezzanine input streams: ffmpeg's own 12 → 16-bit step is not
        # ``from_12bit``'s, and a mezzanine's frames are its working frames once converted.)
        from restoro.media.ffilter import transcode

        transcode(src, ",".join(filters), fmt, out)  # type: ignore[arg-type]
        count = count_frames(out)
        ctx.progress(count)
    else:
        if overlap:
            frames = threaded(frames, depth=4)
        codec = spec.params.get("intermediate", CODEC)
        with FrameWriter(out, fmt, codec) as writer:
            for frame in frames:
                writer.write(frame)
                ctx.progress(writer.count)
            count = writer.count
    expected = spec.frames
    if expected and count != expected:
        raise StageError(
            f"the chain of {spec.shot} produced {count} frames, expected {expected}",
            hint="a stage changed the frame count; report this as a bug in that stage",
        )
    meta: dict[str, Any] = {"format": fmt.model_dump(mode="json"), "frames": count}
    stage_meta = {sid: c.extra["meta"] for sid, c in contexts if c.extra.get("meta")}
    if stage_meta:
        meta["stages"] = stage_meta
    return RunOutput(
        files={"frames": out},
        meta=meta,
        validators={"frames": _frames_validator(count)},
    )
