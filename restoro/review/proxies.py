"""Small media for the review page, made from the store's cached frames and cached as actions.

A ``review-proxy`` action reads one shot's cached frames (a variant's final frames, or the
shot's ingested SD frames) and writes either

- ``video``: an H.264 MP4 (yuv420p, all-intra so every frame is a seek point and frame
  stepping in a browser is exact, faststart), scaled to the shot's display size, which fits in
  640x480 and is the same for the source and both variants, so a wipe lines up; or
- ``thumb``: a JPEG of the shot's middle frame, 160 pixels wide.

Its key holds the input frames' digest, the size and ffmpeg's fingerprint, like any action: a
proxy is encoded once and found in the store after. Nothing here runs a model: an output that
is not built has no proxy (the page says how to build it).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from restoro.engine.actions import RunContext, RunOutput, runner
from restoro.engine.graph import ActionSpec
from restoro.errors import StageError

if TYPE_CHECKING:
    from restoro.engine.store import ActionResult, Store

PROXY_VERSION = 1
MAX_W, MAX_H = 640, 480
THUMB_W = 160
KINDS = ("video", "thumb")


@dataclass(frozen=True)
class Size:
    width: int
    height: int


def _even(x: float) -> int:
    return max(2, int(round(x / 2)) * 2)


def display_size(fmt: dict[str, Any], max_w: int = MAX_W, max_h: int = MAX_H) -> Size:
    """The size that shows frames of format ``fmt`` (its JSON: width, height, sar) at their
    display aspect, as large as fits in ``max_w`` x ``max_h``."""
    n, d = (int(x) for x in str(fmt.get("sar", "1:1")).split(":"))
    dar = Fraction(int(fmt["width"]) * n, int(fmt["height"]) * max(d, 1))
    w, h = float(max_h * dar), float(max_h)
    if w > max_w:
        w, h = float(max_w), float(max_w / dar)
    return Size(_even(w), _even(h))


def thumb_size(size: Size) -> Size:
    return Size(THUMB_W, _even(THUMB_W * size.height / size.width))


def proxy_spec(
    *,
    shot: str,
    role: str,
    kind: str,
    frames: str,
    count: int,
    frame_rate: str,
    size: Size,
    title: str = "",
) -> ActionSpec:
    """The action that makes the ``kind`` proxy (``video`` or ``thumb``) of one shot's frames
    (digest ``frames``, ``count`` frames); ``role`` is ``source`` or a variant label (its id
    only: two variants with the same frames share the action by key)."""
    from restoro.plan.nodes import tool_fingerprints

    if kind not in KINDS:
        raise ValueError(kind)
    out = size if kind == "video" else thumb_size(size)
    params: dict[str, Any] = {
        "kind": kind,
        "width": out.width,
        "height": out.height,
        "frame_rate": frame_rate,
    }
    if kind == "thumb":
        params["frame"] = count // 2
    return ActionSpec(
        id=f"{shot}/review-{kind}/{role}",
        stage="review-proxy",
        version=PROXY_VERSION,
        params=params,
        inputs={"frames": frames},
        tools=tool_fingerprints(["ffmpeg"]),
        title=title,
        shot=shot,
        frames=count,
    )


def _scale(p: dict[str, Any]) -> str:
    return (
        f"scale={p['width']}:{p['height']}:flags=bicubic:out_color_matrix=bt709:out_range=tv,"
        "format=yuv420p,setsar=1"
    )


@runner("review-proxy")
def run_review_proxy(spec: ActionSpec, ctx: RunContext) -> RunOutput:
    from restoro.media.ffmpeg import bitexact_args, run_ffmpeg
    from restoro.media.frameio import input_filters

    p = dict(spec.params)
    src = ctx.blob(spec.inputs["frames"])
    pre = "".join(f + "," for f in input_filters(src))  # a mezzanine: its working frames
    colour = ["-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709"]
    if p["kind"] == "thumb":
        out = ctx.temp(".jpg")
        select = f"select=eq(n\\,{int(p['frame'])}),"
        run_ffmpeg(
            ["-i", str(src), "-vf", pre + select + _scale(p), "-frames:v", "1", "-c:v", "mjpeg"]
            + ["-q:v", "4", "-threads", "1", *bitexact_args(), "-f", "image2", str(out)]
        )
        ctx.progress(spec.frames)
        return RunOutput(files={"thumb": out}, meta={"width": p["width"], "height": p["height"]})
    out = ctx.temp(".mp4")
    rate = str(p["frame_rate"])
    vf = pre + _scale(p)  # the input's -r numbers the frames n / rate: exact frame times
    run_ffmpeg(
        ["-r", rate, "-i", str(src), "-vf", vf, "-an", "-c:v", "libx264", "-preset", "veryfast"]
        + ["-crf", "18", "-g", "1", "-bf", "0", "-threads", "1", "-r", rate, *colour]
        + ["-movflags", "+faststart", *bitexact_args(), str(out)]
    )

    def check(path: Any) -> None:
        from restoro.media.frameio import count_frames

        got = count_frames(path)
        if spec.frames and got != spec.frames:
            raise StageError(
                f"the review proxy of {spec.shot} has {got} frames, expected {spec.frames}",
                hint="report this as a bug (the proxy encoder dropped or repeated frames)",
            )

    ctx.progress(spec.frames)
    meta = {"width": p["width"], "height": p["height"], "frames": spec.frames, "rate": rate}
    return RunOutput(files={"video": out}, meta=meta, validators={"video": check})


_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def ensure(store: Store, spec: ActionSpec) -> tuple[ActionResult, bool]:
    """The proxy's cached result, encoding it first when the store lacks it; (result, ran)."""
    from restoro.engine.execute import run_spec

    key = spec.key()[0]
    with _locks_guard:
        lock = _locks.setdefault(key, threading.Lock())
    with lock:  # one encode per proxy in this process; leases cover other processes
        lk = store.lookup(key)
        if lk.status == "hit" and lk.result is not None:
            return lk.result, False
        ex = run_spec(spec, store, {}, "cpu")
        assert ex.result is not None
        return ex.result, ex.ran
