"""Flicker: temporal instability of the output beyond what the source itself does.

Motion-compensated: for each pair of consecutive frames, dense optical flow is estimated on the
*source* pair (DIS, at a reduced raster whose long side is ``raster`` pixels), and the previous
frame is warped onto the current one with that same flow, in the output and in the source. What
the output changes beyond the source's own warp residual is what the chain added:

    excess = (out_t - warp(out_t-1)) - (src_t - warp(src_t-1))

Natural motion, zooms and fades are in both terms and cancel, and so does any difference between
output and source that moves with the picture (a contrast lift, sharpening, a sub-pixel shift),
which a measure without motion compensation blames on fast pans. Pixels where the source's own
warp residual is large (occlusions, flow failures) or whose flow points outside the frame are
ignored. The excess is low-passed to a grid of block means (masked) so grain and fine detail do
not dominate; a frame's value is the mean absolute block excess, in 8-bit code values.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field

if TYPE_CHECKING:
    import numpy as np

from restoro.qc.base import Check, CheckParams, CheckResult, Finding, FramePair, rnd


class FlickerParams(CheckParams):
    max_flicker: float = Field(2.0, description="Maximum mean flicker of a shot (8-bit levels).")
    grid: int = Field(8, ge=1, description="Blocks per side of the grid the excess is averaged on.")
    raster: int = Field(
        192, ge=16, description="Long side (pixels) of the raster flow and residuals are taken at."
    )
    occlusion: float = Field(
        0.08,
        gt=0,
        description="Pixels whose source warp residual exceeds this (0-1 luma) are ignored.",
    )
    error: bool = Field(True, description="A shot over max_flicker fails the build.")


MIN_COVER = 0.25
"""A block counts when at least this share of its pixels is valid (not occluded)."""


class _Frame:
    """One frame at the measuring raster: luma of output and source, and the source in 8 bits
    (what the flow is estimated on)."""

    __slots__ = ("out", "src", "src8")

    def __init__(self, out: np.ndarray, src: np.ndarray, src8: np.ndarray) -> None:
        self.out, self.src, self.src8 = out, src, src8


def measure_size(h: int, w: int, raster: int) -> tuple[int, int]:
    """(width, height) of the measuring raster: the frame's, or smaller so the long side is
    ``raster`` (aspect kept)."""
    scale = min(1.0, raster / max(h, w))
    return max(1, round(w * scale)), max(1, round(h * scale))


class Flicker(Check):
    id: ClassVar[str] = "flicker"
    version: ClassVar[int] = 2
    severity: ClassVar = "error"
    Params: ClassVar = FlickerParams

    def __init__(self, params: CheckParams | None = None) -> None:
        super().__init__(params)
        self.prev: _Frame | None = None
        self.values: list[float] = []
        self.frames: list[int] = []
        self._flow: Any = None
        self._grid: tuple[np.ndarray, np.ndarray] | None = None

    def _reduce(self, f: FramePair) -> _Frame:
        import cv2
        import numpy as np

        p = self.params
        assert isinstance(p, FlickerParams)
        h, w = f.src_y.shape[:2]
        size = measure_size(h, w, p.raster)
        out, src = f.out_y, f.src_y
        if size != (w, h):
            out = cv2.resize(out, size, interpolation=cv2.INTER_AREA)
            src = cv2.resize(src, size, interpolation=cv2.INTER_AREA)
        src8 = np.clip(src * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return _Frame(out.astype(np.float32), src.astype(np.float32), src8)

    def _warp_maps(self, cur8: np.ndarray, prev8: np.ndarray) -> tuple[np.ndarray, ...]:
        """Where each pixel of the current frame was in the previous one (backward flow), and
        which of those positions lie inside the frame."""
        import cv2
        import numpy as np

        h, w = cur8.shape
        if self._flow is None:
            # DIS is deterministic (no random initialisation); the preset trades a little
            # accuracy for speed, which the occlusion mask and the block means absorb.
            self._flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        if self._grid is None or self._grid[0].shape != (h, w):
            gy, gx = np.mgrid[0:h, 0:w].astype(np.float32)
            self._grid = (gx, gy)
        if min(h, w) >= 16:
            flow = self._flow.calc(cur8, prev8, None)
        else:  # too small for a flow pyramid: no motion compensation
            flow = np.zeros((h, w, 2), np.float32)
        mx = self._grid[0] + flow[..., 0]
        my = self._grid[1] + flow[..., 1]
        inside = (mx >= 0) & (mx <= w - 1) & (my >= 0) & (my <= h - 1)
        return mx, my, inside

    def _excess(self, cur: _Frame, prev: _Frame) -> float:
        import cv2
        import numpy as np

        p = self.params
        assert isinstance(p, FlickerParams)
        mx, my, inside = self._warp_maps(cur.src8, prev.src8)

        def warp(img: np.ndarray) -> np.ndarray:
            return cv2.remap(img, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

        r_src = cur.src - warp(prev.src)
        r_out = cur.out - warp(prev.out)
        valid = (inside & (np.abs(r_src) <= p.occlusion)).astype(np.float32)
        h, w = valid.shape
        grid = (min(p.grid, w), min(p.grid, h))
        # Masked block means: mean of (excess × valid) over mean of valid, per block.
        num = cv2.resize((r_out - r_src) * valid, grid, interpolation=cv2.INTER_AREA)
        cover = cv2.resize(valid, grid, interpolation=cv2.INTER_AREA)
        ok = cover >= MIN_COVER
        if not ok.any():
            return 0.0
        return float(np.mean(np.abs(num[ok] / cover[ok]))) * 255.0

    def update(self, f: FramePair) -> None:
        cur = self._reduce(f)
        self.values.append(rnd(self._excess(cur, self.prev), 3) if self.prev is not None else 0.0)
        self.frames.append(f.frame)
        self.prev = cur

    def finish(self) -> CheckResult:
        import numpy as np

        p = self.params
        assert isinstance(p, FlickerParams)
        vals = self.values[1:]
        mean = float(np.mean(vals)) if vals else 0.0
        peak = float(np.max(vals)) if vals else 0.0
        res = CheckResult(
            metrics={"flicker": rnd(mean, 3), "flicker_max": rnd(peak, 3)},
            series={"flicker": self.values},
        )
        if mean > p.max_flicker:
            worst = sorted(range(1, len(self.values)), key=lambda i: -self.values[i])[:3]
            res.findings.append(
                Finding(
                    self.id,
                    "error" if p.error else "warning",
                    f"flicker {mean:.2f} levels (max {p.max_flicker:g}) beyond the source's own "
                    f"motion-compensated change; worst at frame {self.frames[worst[0]]}",
                    frames=[self.frames[i] for i in worst],
                    value=rnd(mean, 3),
                )
            )
        return res
