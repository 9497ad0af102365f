"""Flicker: temporal instability of the output beyond what the source itself does.

Each frame is reduced to a grid of block means (luma); the frame-to-frame change of that grid in
the output is compared with the same change in the source, so motion, cuts and fades present in
the source cancel and only brightness changes the chain introduced remain. The value is in 8-bit
code values (mean absolute excess change per block).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from pydantic import Field

if TYPE_CHECKING:
    import numpy as np

from restoro.qc.base import Check, CheckParams, CheckResult, Finding, FramePair, rnd


class FlickerParams(CheckParams):
    max_flicker: float = Field(2.0, description="Maximum mean flicker of a shot (8-bit levels).")
    grid: int = Field(8, ge=1, description="Blocks per side of the grid of block means.")
    error: bool = Field(True, description="A shot over max_flicker fails the build.")


def block_means(y: np.ndarray, grid: int) -> np.ndarray:
    import cv2
    import numpy as np

    gw, gh = min(grid, y.shape[1]), min(grid, y.shape[0])
    return cv2.resize(y, (gw, gh), interpolation=cv2.INTER_AREA).astype(np.float64)


class Flicker(Check):
    id: ClassVar[str] = "flicker"
    version: ClassVar[int] = 1
    severity: ClassVar = "error"
    Params: ClassVar = FlickerParams

    def __init__(self, params: CheckParams | None = None) -> None:
        super().__init__(params)
        self.prev: tuple[np.ndarray, np.ndarray] | None = None
        self.values: list[float] = []
        self.frames: list[int] = []

    def update(self, f: FramePair) -> None:
        import numpy as np

        p = self.params
        assert isinstance(p, FlickerParams)
        bo, bs = block_means(f.out_y, p.grid), block_means(f.src_y, p.grid)
        if self.prev is not None:
            excess = np.abs((bo - self.prev[0]) - (bs - self.prev[1]))
            self.values.append(rnd(float(excess.mean()) * 255.0, 3))
        else:
            self.values.append(0.0)
        self.frames.append(f.frame)
        self.prev = (bo, bs)

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
                    f"change; worst at frame {self.frames[worst[0]]}",
                    frames=[self.frames[i] for i in worst],
                    value=rnd(mean, 3),
                )
            )
        return res
