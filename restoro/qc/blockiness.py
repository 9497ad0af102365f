"""Blockiness: 8×8 coding-block edges surviving in the output (at the source raster).

The step across each block boundary against the steps beside it, the median over boundaries;
about 1 for clean pictures, well above 1 for visible blocks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from pydantic import Field

if TYPE_CHECKING:
    import numpy as np

from restoro.qc.base import Check, CheckParams, CheckResult, Finding, FramePair, rnd


class BlockinessParams(CheckParams):
    block: int = Field(8, ge=2, description="Block size of the source's codec.")
    max_ratio: float = Field(1.6, description="Boundary/neighbour step ratio that flags a shot.")


def _axis_score(d: np.ndarray, block: int) -> float:
    """Median over the block boundaries along the last axis of (step at the boundary / steps
    beside it); the median ignores the few boundaries that fall on a picture edge."""
    import numpy as np

    col = np.minimum(d, 0.04).mean(axis=0)  # subtle steps: strong edges must not dominate
    cs = np.arange(block - 1, col.shape[0] - 1, block)
    ratios = col[cs] / (0.5 * (col[cs - 1] + col[cs + 1]) + 0.001)
    return float(np.median(ratios))


def blockiness(y: np.ndarray, block: int) -> float:
    import numpy as np

    if y.shape[0] < 2 * block or y.shape[1] < 2 * block:
        return 1.0
    dx = np.abs(np.diff(y, axis=1))
    dy = np.abs(np.diff(y, axis=0)).T
    return 0.5 * (_axis_score(dx, block) + _axis_score(dy, block))


class Blockiness(Check):
    id: ClassVar[str] = "blockiness"
    version: ClassVar[int] = 1
    Params: ClassVar = BlockinessParams

    def __init__(self, params: CheckParams | None = None) -> None:
        super().__init__(params)
        self.values: list[float] = []
        self.frames: list[int] = []

    def update(self, f: FramePair) -> None:
        p = self.params
        assert isinstance(p, BlockinessParams)
        self.values.append(rnd(blockiness(f.out_y, p.block), 3))
        self.frames.append(f.frame)

    def finish(self) -> CheckResult:
        import numpy as np

        p = self.params
        assert isinstance(p, BlockinessParams)
        score = float(np.mean(self.values)) if self.values else 1.0
        res = CheckResult(metrics={"blockiness": rnd(score, 3)}, series={"blockiness": self.values})
        if score > p.max_ratio:
            worst = sorted(range(len(self.values)), key=lambda i: -self.values[i])[:3]
            res.findings.append(
                Finding(
                    self.id,
                    self.severity,
                    f"blocking artefacts (boundary/neighbour step ratio {score:.2f} "
                    f"> {p.max_ratio:g})",
                    frames=[self.frames[i] for i in worst],
                    value=rnd(score, 3),
                )
            )
        return res
