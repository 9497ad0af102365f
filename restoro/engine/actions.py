"""What each kind of action does, given only its frozen spec and where its inputs live.

A runner returns the files it wrote (temporary paths in the store's tmp/, committed by the caller
with a validator) and a JSON-able ``meta``. Runners never look at the manifest: everything they
need is in ``spec.params`` and ``spec.inputs``.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from restoro.errors import StageError

if TYPE_CHECKING:
    from pathlib import Path

    import numpy as np

    from restoro.engine.graph import ActionSpec
    from restoro.engine.store import Store
    from restoro.media.probe import SourceInfo

Progress = Callable[[int], None]


@dataclass
class RunContext:
    store: Store
    sources: Mapping[str, tuple[Path, SourceInfo]]
    """Source digest → (path, probe info); sources live outside the store."""
    device: str = "cpu"
    progress: Progress = lambda done: None
    work_dir: Path | None = None
    """A private directory for this action's temporary files (removed after the action)."""

    def blob(self, digest: str) -> Path:
        """Where an input blob lives (the store verified it before the action started)."""
        return self.store.blob_path(digest)

    def temp(self, suffix: str = "") -> Path:
        """A fresh temporary path on the store's filesystem, so commits are renames."""
        if self.work_dir is None:
            return self.store.temp_path(suffix)
        self._n = getattr(self, "_n", 0) + 1
        return self.work_dir / f"out{self._n}{suffix}"


@dataclass
class RunOutput:
    files: dict[str, Path] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    validators: dict[str, Callable[[Path], None]] = field(default_factory=dict)


Runner = Callable[["ActionSpec", RunContext], RunOutput]
RUNNERS: dict[str, Runner] = {}


def runner(stage: str) -> Callable[[Runner], Runner]:
    def deco(fn: Runner) -> Runner:
        RUNNERS[stage] = fn
        return fn

    return deco


def _frames_validator(expected: int) -> Callable[[Path], None]:
    from restoro.media.frameio import validate_intermediate

    return lambda p: validate_intermediate(p, expected)


@runner("ingest")
def run_ingest(spec: ActionSpec, ctx: RunContext) -> RunOutput:
    from restoro.stages.ingest_timeline import run_ingest_action

    path, info = ctx.sources[spec.inputs["source"]]
    out = ctx.temp(".mkv")
    work = ctx.temp(".ingest")
    meta = run_ingest_action(path, info, spec.params, out, work)
    ctx.progress(meta["frames"])
    return RunOutput(
        files={"frames": out},
        meta=meta,
        validators={"frames": _frames_validator(meta["frames"])},
    )


@runner("shots")
def run_shots(spec: ActionSpec, ctx: RunContext) -> RunOutput:
    from restoro.media.shots import detect_cuts

    p = spec.params
    cuts = detect_cuts(
        ctx.blob(spec.inputs["frames"]),
        detector=p["detector"],
        threshold=p["threshold"],
        min_frames=p["min_frames"],
    )
    return RunOutput(meta={"cuts": [int(c) for c in cuts]})


@runner("extract")
def run_extract(spec: ActionSpec, ctx: RunContext) -> RunOutput:
    from restoro.media.frameio import extract_range

    start, end = spec.params["range"]
    out = ctx.temp(".mkv")
    extract_range(ctx.blob(spec.inputs["frames"]), start, end, out)
    ctx.progress(end - start)
    return RunOutput(
        files={"frames": out},
        meta={"format": spec.params["format"], "frames": end - start},
        validators={"frames": _frames_validator(end - start)},
    )


def _threaded(it: Iterator[Any], depth: int = 8) -> Iterator[Any]:
    """Run an iterator in its own thread behind a bounded queue (decode/encode overlap)."""
    q: queue.Queue[Any] = queue.Queue(maxsize=depth)
    done = object()
    failure: list[BaseException] = []
    stop = threading.Event()

    def pump() -> None:
        try:
            for item in it:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
        except BaseException as exc:  # handed to the consumer
            failure.append(exc)
        finally:
            while not stop.is_set():
                try:
                    q.put(done, timeout=0.1)
                    break
                except queue.Full:
                    continue

    t = threading.Thread(target=pump, daemon=True)
    t.start()
    try:
        while True:
            item = q.get()
            if item is done:
                break
            yield item
        if failure:
            raise failure[0]
    finally:
        stop.set()
        t.join(timeout=5)


def windows(frames: Iterator[Any], radius: int) -> Iterator[list[Any]]:
    """Sliding windows of ``2 * radius + 1`` frames centred on each frame, in order.

    At the ends of the stream (a shot boundary: a chain action is one shot) the window is
    clamped by repeating the first or last frame, so no frame ever sees another shot.
    """
    buf: list[Any] = []
    it = iter(frames)
    first = True
    for frame in it:
        if first:
            buf = [frame] * (radius + 1)
            first = False
        else:
            buf.append(frame)
        if len(buf) == 2 * radius + 1:
            yield list(buf)
            buf.pop(0)
    if first:
        return
    for _ in range(radius):
        buf.append(buf[-1])
        yield list(buf)
        buf.pop(0)


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
    from restoro.stages.base import FrameStage, StageContext

    fmt = FrameFormat.model_validate(spec.params["format"])
    frames: Iterator[np.ndarray] = _threaded(read_frames(ctx.blob(spec.inputs["frames"])))
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
        cls = registry.get(stage_id)
        if cls is None or not issubclass(cls, FrameStage):
            raise StageError(f"stage {stage_id!r} is not a frame stage")
        stage = cls()
        params = cls.parse_params(raw)
        stage.check(params)
        sctx = StageContext(
            fmt=fmt,
            shot_id=spec.shot,
            work_dir=work,
            device=ctx.device,
            seed=int(spec.params.get("seed", 0)),
            inputs=own,
            extra={"temporal_radius": cls.descriptor.temporal_radius},
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
        # 12-bit input streams: ffmpeg's own 12 → 16-bit step is not ``from_12bit``'s.)
        from restoro.media.ffilter import transcode

        transcode(src, ",".join(filters), fmt, out)  # type: ignore[arg-type]
        count = count_frames(out)
        ctx.progress(count)
    else:
        if overlap:
            frames = _threaded(frames, depth=4)
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
