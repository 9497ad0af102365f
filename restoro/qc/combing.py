"""Combing left after ingest: the two fields of a frame from different moments.

Per 8×8 block, the line-alternating energy (a line brighter or darker than both neighbours,
which belong to the other field) is compared with the same measure two lines apart (the same
field): progressive pictures have the second larger or similar, combed areas the first many times
larger. A frame is combed when enough blocks are; measured on the ingested frames, where combing
is at line scale.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from pydantic import Field

if TYPE_CHECKING:
    import numpy as np

from restoro.qc.base import Check, CheckParams, CheckResult, Finding, FramePair, frames_text, rnd


class CombingParams(CheckParams):
    ratio: float = Field(3.0, description="Comb/same-field energy ratio of a combed block.")
    min_energy: float = Field(4e-4, description="Minimum comb energy of a combed block.")
    min_blocks: float = Field(0.018, description="Share of combed 8×8 blocks of a combed frame.")
    min_fraction: float = Field(0.1, description="Fraction of combed frames that flags a shot.")
    error: bool = Field(False, description="A combed shot fails the build.")


def comb_score(y: np.ndarray) -> tuple[float, float]:
    """(share of combed blocks, comb/same-field energy ratio over the frame) of one frame."""
    return _blocks(y, CombingParams.model_validate({}))


def _blocks(y: np.ndarray, p: CombingParams) -> tuple[float, float]:
    import cv2
    import numpy as np

    m = y[2:-2]
    comb = np.maximum(0.0, (m - y[1:-3]) * (m - y[3:-1]))
    same = np.maximum(0.0, (m - y[:-4]) * (m - y[4:]))
    h, w = comb.shape
    size = (max(1, w // 8), max(1, h // 8))
    cb = cv2.resize(comb, size, interpolation=cv2.INTER_AREA)
    sb = cv2.resize(same, size, interpolation=cv2.INTER_AREA)
    combed = (cb > p.ratio * sb) & (cb > p.min_energy)
    return float(combed.mean()), float(comb.mean() / (same.mean() + 1e-7))


class Combing(Check):
    id: ClassVar[str] = "combing"
    version: ClassVar[int] = 2
    Params: ClassVar = CombingParams

    def __init__(self, params: CheckParams | None = None) -> None:
        super().__init__(params)
        self.scores: list[float] = []
        self.found: list[int] = []

    def update(self, f: FramePair) -> None:
        p = self.params
        assert isinstance(p, CombingParams)
        if f.src_y.shape[0] < 8:
            return
        share, _ratio = _blocks(f.src_y, p)
        self.scores.append(rnd(share, 4))
        if share > p.min_blocks:
            self.found.append(f.frame)

    def finish(self) -> CheckResult:
        import numpy as np

        p = self.params
        assert isinstance(p, CombingParams)
        n = max(1, len(self.scores))
        frac = len(self.found) / n
        res = CheckResult(
            metrics={
                "combed_frames": len(self.found),
                "combed_blocks": rnd(float(np.median(self.scores)) if self.scores else 0.0, 4),
            },
            series={"comb": self.scores},
        )
        if self.found and frac >= p.min_fraction:
            res.findings.append(
                Finding(
                    self.id,
                    "error" if p.error else self.severity,
                    f"combing in {len(self.found)} of {n} frames ({frames_text(self.found)}): "
                    "check the ingest mode (deinterlace or ivtc)",
                    frames=self.found,
                    value=rnd(frac, 3),
                )
            )
        return res
