"""Synthetic NTSC sources with a known cadence on every frame, for the cadence map's tests and
benchmark (``benchmarks/bench_cadence.py``).

A clip is a list of parts — 3:2-telecined film, true interlaced video (every field its own
59.94 Hz moment), 29.97p progressive video — cut together, each a camera moving over a
natural-looking texture (1/f noise with hard-edged shapes, so fields have the vertical detail of
real pictures). Optional per part: a fade, a static title over the picture, film frames cut out
after the pulldown (edits mid-cycle, which leave orphan fields and break the cadence). Frames
are built field by field in numpy and encoded as interlaced MPEG-2 (as on a DVD), top or bottom
field first.

The truth of each frame is its kind (``telecine``, ``interlaced``, ``progressive``) and, for
telecine, the pulldown phase: the index mod 5 (in the clip) of the first combed frame of its
3:2 cycle — the convention of ``restoro.media.cadence``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np

from restoro.media.ffmpeg import bitexact_args, run_ffmpeg

if TYPE_CHECKING:
    from pathlib import Path

FIELD_RATE = 60000 / 1001
FILM_RATE = 24000 / 1001
Kind = Literal["telecine", "interlaced", "progressive"]


@dataclass(frozen=True)
class Part:
    """One stretch of a clip.

    ``kind``: ``film`` (3:2 pulldown of 23.976p), ``video`` (true interlaced), ``progressive``
    (29.97p). ``frames``: film frames for film, video frames otherwise. ``speed``: camera
    speed in pixels per second (x, y). ``skip``: telecined frames dropped at the start (the
    part begins mid-cycle). ``drop``: telecined frames (indices after ``skip``) cut out.
    ``fade``: ``in`` or ``out`` (from or to black over the whole part). ``title``: a static
    title (progressive, the same in both fields) over the middle of the picture.
    """

    kind: Literal["film", "video", "progressive"]
    frames: int
    speed: tuple[float, float] = (120.0, 20.0)
    seed: int = 0
    skip: int = 0
    drop: tuple[int, ...] = ()
    fade: Literal["in", "out"] | None = None
    title: bool = False


@dataclass
class Clip:
    """A clip's frames (luma, ``height`` x ``width``) and the truth of each."""

    name: str
    order: Literal["tff", "bff"]
    frames: list[np.ndarray] = field(default_factory=list)
    kinds: list[Kind] = field(default_factory=list)
    phases: list[int | None] = field(default_factory=list)

    def segments(self) -> list[tuple[int, int, Kind, int | None]]:
        """The truth as runs (start, end, kind, phase): a change of kind or phase starts one."""
        runs: list[tuple[int, int, Kind, int | None]] = []
        for i, (k, ph) in enumerate(zip(self.kinds, self.phases, strict=True)):
            if runs and runs[-1][2] == k and runs[-1][3] == ph:
                runs[-1] = (runs[-1][0], i + 1, k, ph)
            else:
                runs.append((i, i + 1, k, ph))
        return runs


def _texture(seed: int, width: int, height: int) -> np.ndarray:
    """A natural-looking picture, 0..1: 1/f noise plus a few hard-edged shapes."""
    rng = np.random.default_rng(seed)
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    radius = np.sqrt(fx * fx + fy * fy)
    radius[0, 0] = 1.0
    spectrum = np.fft.rfft2(rng.standard_normal((height, width))) / radius**1.1
    spectrum[0, 0] = 0
    # natural pictures hold little energy at the sampling limit
    spectrum *= np.exp(-((radius / 0.35) ** 2))
    tex = np.fft.irfft2(spectrum, s=(height, width))
    tex = (tex - tex.mean()) / (tex.std() * 6) + 0.5
    yy, xx = np.mgrid[0:height, 0:width]
    for _ in range(40):
        cx, cy, r = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(6, 40)
        value = rng.uniform(0.1, 0.9)
        if rng.random() < 0.5:
            tex[(xx - cx) ** 2 + (yy - cy) ** 2 < r * r] = value
        else:
            tex[(abs(xx - cx) < r) & (abs(yy - cy) < r * 0.6)] = value
    # soften the edges a little (a lens): 3-tap blur both ways
    tex = (np.roll(tex, 1, 0) + 2 * tex + np.roll(tex, -1, 0)) / 4
    tex = (np.roll(tex, 1, 1) + 2 * tex + np.roll(tex, -1, 1)) / 4
    return np.clip(tex, 0.0, 1.0)


class _Camera:
    """Views of a texture at any (sub-pixel) position, moving at ``speed`` px/s."""

    def __init__(self, part: Part, width: int, height: int) -> None:
        self.w, self.h = width, height
        self.speed = part.speed
        seconds = part.frames / FILM_RATE + 0.2
        sx, sy = (int(abs(v) * seconds) + 8 for v in part.speed)
        self.tex = _texture(part.seed + 1, width + sx, height + sy)
        self.x0 = 4 + (0 if part.speed[0] >= 0 else self.tex.shape[1] - width - 8)
        self.y0 = 4 + (0 if part.speed[1] >= 0 else self.tex.shape[0] - height - 8)

    def at(self, t: float) -> np.ndarray:
        x = self.x0 + self.speed[0] * t
        y = self.y0 + self.speed[1] * t
        x = min(max(x, 0.0), self.tex.shape[1] - self.w - 2.0)
        y = min(max(y, 0.0), self.tex.shape[0] - self.h - 2.0)
        ix, iy = int(x), int(y)
        fx, fy = x - ix, y - iy
        t00 = self.tex[iy : iy + self.h, ix : ix + self.w]
        t01 = self.tex[iy : iy + self.h, ix + 1 : ix + 1 + self.w]
        t10 = self.tex[iy + 1 : iy + 1 + self.h, ix : ix + self.w]
        t11 = self.tex[iy + 1 : iy + 1 + self.h, ix + 1 : ix + 1 + self.w]
        top = t00 * (1 - fx) + t01 * fx
        bottom = t10 * (1 - fx) + t11 * fx
        return top * (1 - fy) + bottom * fy


def _title(width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """A static title: blocky white letters with a dark edge over the middle third (mask,
    value)."""
    mask = np.zeros((height, width), bool)
    value = np.zeros((height, width))
    rng = np.random.default_rng(99)
    y0, y1 = height // 3, 2 * height // 3
    x = width // 10
    while x < width - width // 10:
        lw = int(rng.integers(width // 40, width // 20))
        for _ in range(3):
            a = int(rng.integers(y0, y1 - 8))
            b = int(rng.integers(a + 4, y1))
            mask[a:b, x : x + lw] = True
        x += lw + int(rng.integers(2, width // 30))
    value[mask] = 0.95
    edge = np.roll(mask, 1, 0) | np.roll(mask, -1, 0) | np.roll(mask, 1, 1) | np.roll(mask, -1, 1)
    edge &= ~mask
    value[edge] = 0.05
    return mask | edge, value


def _gain(part: Part, t: float, length: float) -> float:
    if part.fade is None:
        return 1.0
    x = min(max(t / length, 0.0), 1.0)
    return x if part.fade == "in" else 1.0 - x


def _weave(first: np.ndarray, second: np.ndarray, order: str) -> np.ndarray:
    """A frame from the pictures its first and second fields sample."""
    frame = np.empty_like(first)
    a, b = (0, 1) if order == "tff" else (1, 0)
    frame[a::2] = first[a::2]
    frame[b::2] = second[b::2]
    return frame


def _part_frames(
    part: Part, width: int, height: int, order: str, start: int
) -> tuple[list[np.ndarray], list[Kind], list[int | None]]:
    cam = _Camera(part, width, height)
    title = _title(width, height) if part.title else None

    def picture(t: float, length: float) -> np.ndarray:
        pic = cam.at(t)
        if title is not None:
            pic = np.where(title[0], title[1], pic)
        return pic * _gain(part, t, length)

    frames: list[np.ndarray] = []
    kinds: list[Kind] = []
    phases: list[int | None] = []
    if part.kind == "film":
        length = part.frames / FILM_RATE
        pics = [picture(k / FILM_RATE, length) for k in range(part.frames)]
        fields = [k for k in range(part.frames) for _ in range(2 if k % 2 == 0 else 3)]
        # (picture of the first field, of the second, position in the 5-frame cycle)
        tele = [(fields[2 * j], fields[2 * j + 1], j % 5) for j in range(len(fields) // 2)]
        tele = tele[part.skip :]
        tele = [f for j, f in enumerate(tele) if j not in part.drop]
        for i, (a, b, q) in enumerate(tele):
            frames.append(_weave(pics[a], pics[b], order))
            kinds.append("telecine")
            phases.append((start + i - q + 2) % 5)  # positions 2 and 3 are combed
    elif part.kind == "video":
        length = part.frames * 2 / FIELD_RATE
        for j in range(part.frames):
            first = picture(2 * j / FIELD_RATE, length)
            second = picture((2 * j + 1) / FIELD_RATE, length)
            frames.append(_weave(first, second, order))
            kinds.append("interlaced")
            phases.append(None)
    else:
        length = part.frames * 2 / FIELD_RATE
        for j in range(part.frames):
            pic = picture(2 * j / FIELD_RATE, length)
            frames.append(pic)
            kinds.append("progressive")
            phases.append(None)
    return [np.clip(16 + f * 219, 0, 255).astype(np.uint8) for f in frames], kinds, phases


def make_clip(
    name: str,
    parts: list[Part],
    *,
    order: Literal["tff", "bff"] = "tff",
    width: int = 360,
    height: int = 240,
) -> Clip:
    """The frames and truth of ``parts`` cut together."""
    clip = Clip(name, order)
    for part in parts:
        f, k, ph = _part_frames(part, width, height, order, len(clip.frames))
        clip.frames += f
        clip.kinds += k
        clip.phases += ph
    return clip


def write_clip(clip: Clip, path: Path, *, quality: int = 3) -> Path:
    """Encode ``clip`` as interlaced MPEG-2 (4:2:0, grey chroma) at 29.97 in an MPEG-PS."""
    h, w = clip.frames[0].shape
    setfield = "tff" if clip.order == "tff" else "bff"
    args = [
        "-f", "rawvideo", "-pix_fmt", "gray", "-s", f"{w}x{h}", "-r", "30000/1001", "-i", "-",
        "-vf", f"format=yuv420p,setfield={setfield}", "-c:v", "mpeg2video",
        "-q:v", str(quality), "-g", "15", "-bf", "2", "-threads", "1",
        "-aspect", "4:3",
        *bitexact_args("+ildct+ilme"), "-y", str(path),
    ]  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    run_ffmpeg(args, input=b"".join(f.tobytes() for f in clip.frames))
    return path


FAST, SLOW = (300.0, 40.0), (12.0, 4.0)
"""Camera speeds (px/s): a fast pan (5 px a field) and a slow drift (0.2 px a field)."""


def benchmark_clips(seed: int = 0) -> list[tuple[str, list[Part], Literal["tff", "bff"]]]:
    """The benchmark's clips: (name, parts, field order); ``seed`` varies the pictures."""
    import dataclasses

    clips = [
        ("film-fast", [Part("film", 120, FAST, seed=1)], "tff"),
        ("film-slow", [Part("film", 120, (24.0, 6.0), seed=2)], "tff"),
        ("video-fast", [Part("video", 150, FAST, seed=3)], "tff"),
        ("video-slow", [Part("video", 150, SLOW, seed=4)], "tff"),
        (
            "progressive-slow-fast",
            [Part("progressive", 75, SLOW, seed=25), Part("progressive", 75, FAST, seed=26)],
            "tff",
        ),
        (
            "hybrid-slow-video",
            [Part("film", 64, FAST, seed=5), Part("video", 90, SLOW, seed=6),
             Part("film", 64, (30.0, 0.0), seed=7, skip=2)],
            "tff",
        ),
        (
            "titles-over-video",
            [Part("film", 48, FAST, seed=8), Part("video", 90, SLOW, seed=9, title=True),
             Part("video", 40, (-20.0, 0.0), seed=10, title=True),
             Part("film", 48, FAST, seed=11, title=True)],
            "tff",
        ),
        (
            "fades",
            [Part("film", 56, FAST, seed=12, fade="out"), Part("video", 60, FAST, seed=13,
             fade="in"), Part("video", 45, SLOW, seed=14, fade="out"),
             Part("film", 56, (60.0, 10.0), seed=15, fade="in")],
            "tff",
        ),
        (
            "edits-mid-cycle",
            [Part("film", 48, FAST, seed=16), Part("film", 48, FAST, seed=17, skip=1),
             Part("film", 48, (60.0, 30.0), seed=18, skip=3),
             Part("progressive", 45, FAST, seed=19), Part("film", 48, FAST, seed=20, skip=4)],
            "tff",
        ),
        (
            "film-orphan-fields",
            [Part("film", 160, (150.0, 20.0), seed=21, drop=(28, 71, 133, 154))],
            "tff",
        ),
        (
            "bff",
            [Part("film", 64, FAST, seed=22), Part("video", 75, SLOW, seed=23),
             Part("film", 64, FAST, seed=24, skip=3)],
            "bff",
        ),
    ]  # fmt: skip
    return [
        (name, [dataclasses.replace(p, seed=p.seed + 100 * seed) for p in parts], order)
        for name, parts, order in clips
    ]
