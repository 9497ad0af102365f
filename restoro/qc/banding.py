"""Banding: smooth gradients made of flat plateaus and small steps instead of a ramp.

A gradient quantised to 8 bits (then carried in the 16-bit working frames) is flat almost
everywhere, with its slope in rare steps of about one 8-bit code value, all the same way. A
clean 16-bit ramp changes by a little at nearly every pixel; a dithered 8-bit one changes by a
code value at many pixels, up and down. So, per colour channel (or on luma when no RGB is
given) and per ``block``×``block`` block, along the axis where the block climbs most:

- *steps* are neighbour differences of 0.05 to 2.5 8-bit code values, *flat* ones are exact
  zeros (the frames are 16-bit: an exact zero is a plateau), anything else (a finer change, or
  an edge) is *other*;
- a block is *gradient* when its steps climb (net steps ≥ half a step per line) and it is
  nearly free of other changes along both axes; it is *banded* when, moreover, at most
  ``max_step_density`` of its differences along that axis are steps, nearly all the same way
  (net ≥ 0.8 of them), and no other changes.

A frame's score is the share of its gradient blocks (in areas darker than ``max_luma``) that
are banded, the largest over the channels; frames with fewer gradient blocks than ``min_area``
of the frame do not count. The shot's score is the mean over the frames that count.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from pydantic import Field

from restoro.qc.base import Check, CheckParams, CheckResult, Finding, FramePair, rnd

if TYPE_CHECKING:
    import numpy as np

FLAT = 0.0  # an exact zero difference (8-bit code values of 16-bit frames)
STEP_MIN, STEP_MAX = 0.05, 2.5  # a step of about one 8-bit code value (any channel's share)


class BandingParams(CheckParams):
    max_luma: float = Field(0.3, description="Only areas darker than this are looked at.")
    max_score: float = Field(
        0.5,
        description="Share of the gradient blocks that are banded above which a shot is flagged.",
    )
    min_area: float = Field(
        0.05, description="Minimum share of the frame that is gradient blocks for a frame to count."
    )
    block: int = Field(16, ge=4, description="Block size (pixels) the statistics are taken over.")
    max_step_density: float = Field(
        0.4, description="Most steps per difference a banded block has (bands ≥ 2.5 px wide)."
    )


def _blocks(a: np.ndarray, b: int) -> np.ndarray:
    """Sums over b×b blocks of ``a`` (cropped to whole blocks)."""
    import numpy as np

    hb, wb = a.shape[0] // b, a.shape[1] // b
    return a[: hb * b, : wb * b].reshape(hb, b, wb, b).sum(axis=(1, 3), dtype=np.int32)


def _axis(c: np.ndarray, axis: int, b: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per block: (steps, |net steps|, others) of the differences along ``axis``."""
    import numpy as np

    d = np.diff(c, axis=axis)
    d = d[:, : c.shape[1] - 1] if axis == 0 else d[: c.shape[0] - 1]  # same shape both axes
    a = np.abs(d)
    step = (a >= STEP_MIN) & (a <= STEP_MAX)
    other = (a > FLAT) & ~step
    steps = _blocks(step, b)
    net = np.abs(_blocks(step & (d > 0), b) - _blocks(step & (d < 0), b))
    return steps, net, _blocks(other, b)


def banding_score(c: np.ndarray, dark: np.ndarray, p: BandingParams) -> tuple[float, float]:
    """(banded share of the gradient blocks, gradient blocks' share of the frame) of one
    channel ``c`` in 8-bit code values; ``dark`` marks the blocks that are looked at."""
    import numpy as np

    b = p.block
    sx, nx, ox = _axis(c, 1, b)
    sy, ny, oy = _axis(c, 0, b)
    use_x = nx >= ny
    steps, net, other = np.where(use_x, sx, sy), np.where(use_x, nx, ny), np.where(use_x, ox, oy)
    n = b * b
    gradient = dark & (2 * net >= b) & (ox + oy <= 0.1 * n)
    banded = (
        gradient & (steps <= p.max_step_density * n) & (net >= 0.8 * steps) & (other <= 0.02 * n)
    )
    g = int(gradient.sum())
    return (float(banded.sum()) / g if g else 0.0), g / max(gradient.size, 1)


class Banding(Check):
    id: ClassVar[str] = "banding"
    severity: ClassVar = "info"
    version: ClassVar[int] = 2
    Params: ClassVar = BandingParams

    def __init__(self, params: CheckParams | None = None) -> None:
        super().__init__(params)
        self.scores: list[float] = []
        self.frames: list[int] = []
        self.counted: list[float] = []

    def update(self, f: FramePair) -> None:
        import numpy as np

        p = self.params
        assert isinstance(p, BandingParams)
        b = p.block
        h, w = f.out_y.shape
        if h <= b or w <= b:
            self.scores.append(0.0)
            return
        dark = _blocks(f.out_y[: h - 1, : w - 1] < p.max_luma, b) * 2 > b * b
        if dark.mean() < p.min_area:  # not enough dark area to hold a gradient that counts
            self.scores.append(0.0)
            return
        if f.out_rgb is not None:
            scale = 255.0 / 65535.0 if f.out_rgb.dtype == np.uint16 else 1.0
            chans = [f.out_rgb[..., i].astype(np.float32) * scale for i in range(3)]
        else:
            chans = [f.out_y * np.float32(255.0)]
        best, counted = 0.0, False
        for c in chans:
            score, area = banding_score(c, dark, p)
            if area >= p.min_area:
                best, counted = max(best, score), True
        self.scores.append(rnd(best, 3))
        if counted:
            self.counted.append(best)
            self.frames.append(f.frame)

    def finish(self) -> CheckResult:
        import numpy as np

        p = self.params
        assert isinstance(p, BandingParams)
        score = float(np.mean(self.counted)) if self.counted else 0.0
        res = CheckResult(metrics={"banding": rnd(score, 3)}, series={"banding": self.scores})
        if self.counted and score > p.max_score:
            worst = sorted(range(len(self.counted)), key=lambda i: -self.counted[i])[:3]
            res.findings.append(
                Finding(
                    self.id,
                    self.severity,
                    f"banding in dark gradients: {score:.0%} of their blocks are flat plateaus "
                    f"with steps of about one 8-bit code value (> {p.max_score:.0%})",
                    frames=sorted(self.frames[i] for i in worst),
                    value=rnd(score, 3),
                )
            )
        return res
