"""temporal: flow-guided stabilisation of flicker and shimmer within a shot.

For each frame, its neighbours (``radius`` on each side, never across a shot boundary: the
stream a chain action sees is one shot) are aligned to it with dense optical flow (Farneback)
and warped. Two corrections follow, both scaled by ``strength``:

* **deflicker**: the frame's low-frequency brightness is pulled to the average low-frequency
  brightness of the aligned window (a gain map), which removes flicker but keeps real changes
  slower than the window; a neighbour counts only where its brightness ratio to the frame
  matches its frame-wide ratio (flicker is global, content changes are local);
* **detail blend**: each aligned neighbour (brought to the corrected brightness) is averaged in
  only where it agrees with the frame (a soft consistency test on luma), so moving or occluded
  content never ghosts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from pydantic import Field

from restoro.stages.base import FrameStage, StageContext, StageDescriptor, StageParams

if TYPE_CHECKING:
    from collections.abc import Iterator

    import numpy as np

MAX_RADIUS = 4


class TemporalParams(StageParams):
    radius: int = Field(2, ge=1, le=MAX_RADIUS, description="Neighbours on each side.")
    strength: float = Field(1.0, ge=0, le=1, description="0 = off, 1 = full correction.")
    deflicker: bool = Field(True, description="Even out low-frequency brightness flicker.")
    blend: bool = Field(True, description="Average consistent detail across aligned frames.")
    threshold: float = Field(
        0.03, gt=0, le=0.5, description="Luma difference (0-1) above which a neighbour is ignored."
    )
    flow: bool = Field(True, description="Align neighbours with optical flow (off: no motion).")


def _flow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Dense flow from ``a`` to ``b`` (both luma in [0, 1]); deterministic (Farneback)."""
    import cv2
    import numpy as np

    a8 = np.clip(a * 255 + 0.5, 0, 255).astype(np.uint8)
    b8 = np.clip(b * 255 + 0.5, 0, 255).astype(np.uint8)
    return cv2.calcOpticalFlowFarneback(a8, b8, None, 0.5, 3, 15, 3, 5, 1.2, 0)  # type: ignore[call-overload, no-any-return]


def _warp(img: np.ndarray, flow: np.ndarray) -> np.ndarray:
    import cv2
    import numpy as np

    h, w = flow.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(
        img, gx + flow[..., 0], gy + flow[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


def _lowpass(y: np.ndarray) -> np.ndarray:
    import cv2

    sigma = max(2.0, min(y.shape) / 8)
    return cv2.GaussianBlur(y, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)


def stabilise(window: list[np.ndarray], params: TemporalParams) -> np.ndarray:
    """The corrected centre frame of a window of uint16 RGB frames."""
    import numpy as np

    from restoro.stages.filters import KB, KG, KR, to_u16

    r = len(window) // 2
    frames = [f.astype(np.float32) / 65535.0 for f in window]
    lum = [KR * f[..., 0] + KG * f[..., 1] + KB * f[..., 2] for f in frames]
    centre, yc = frames[r], lum[r]
    aligned: list[tuple[np.ndarray, np.ndarray]] = []
    for i, (f, y) in enumerate(zip(frames, lum, strict=True)):
        if i == r or window[i] is window[r]:
            continue  # a clamped copy of the centre adds nothing
        if params.flow:
            fl = _flow(yc, y)
            f, y = _warp(f, fl), _warp(y, fl)
        aligned.append((f, y))
    out = centre
    eps = 1e-4
    if params.deflicker and aligned:
        lc = _lowpass(yc)
        num, den = lc.copy(), np.ones_like(lc)
        for _, y in aligned:
            ln = _lowpass(y)
            ratio = (ln + eps) / (lc + eps)
            # Flicker scales the whole picture; where the ratio departs from the frame-wide
            # ratio, content changed (motion, a new object): that neighbour is not used there.
            dev = ratio / float(np.median(ratio)) - 1
            wt = np.exp(-((dev / 0.02) ** 2))
            num += wt * ln
            den += wt
        target = num / den
        gain = np.clip((target + eps) / (lc + eps), 0.5, 2.0)
        out = centre * gain[..., None]
        yc = yc * gain
    if params.blend and aligned:
        acc, wsum = out.copy(), np.ones_like(yc)
        for f, y in aligned:
            match = (_lowpass(yc) + eps) / (_lowpass(y) + eps)
            fm, ym = f * match[..., None], y * match
            wt = np.exp(-(((ym - yc) / params.threshold) ** 2))
            acc += fm * wt[..., None]
            wsum += wt
        out = acc / wsum[..., None]
    return to_u16(centre + params.strength * (out - centre))


class Temporal(FrameStage):
    id: ClassVar[str] = "temporal"
    version: ClassVar[int] = 1
    Params: ClassVar[type[StageParams]] = TemporalParams
    descriptor: ClassVar[StageDescriptor] = StageDescriptor(
        memory_mb=1024, temporal_radius=MAX_RADIUS
    )

    def process(
        self, frames: Iterator[np.ndarray], params: StageParams, ctx: StageContext
    ) -> Iterator[np.ndarray]:
        from restoro.engine.actions import windows

        assert isinstance(params, TemporalParams)
        if params.strength == 0:
            yield from frames
            return
        for window in windows(frames, params.radius):
            yield stabilise(window, params)
