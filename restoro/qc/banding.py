"""Banding in dark gradients: smooth dark areas made of flat steps instead of a ramp.

In dark (luma < ``max_luma``), smooth areas of the output, the share of pixels whose horizontal
and vertical neighbours are identical while the local slope (over ``span`` pixels) is not zero:
a ramp quantised into bands is flat almost everywhere, with its slope in rare steps.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from restoro.qc.base import Check, CheckParams, CheckResult, Finding, FramePair, rnd


class BandingParams(CheckParams):
    max_luma: float = Field(0.3, description="Only areas darker than this are looked at.")
    max_score: float = Field(0.95, description="Banding score (0-1) above which a shot is flagged.")
    min_area: float = Field(0.05, description="Minimum share of the frame that is dark gradient.")


class Banding(Check):
    id: ClassVar[str] = "banding"
    severity: ClassVar = "info"
    version: ClassVar[int] = 1
    Params: ClassVar = BandingParams

    def __init__(self, params: CheckParams | None = None) -> None:
        super().__init__(params)
        self.scores: list[float] = []
        self.frames: list[int] = []

    def update(self, f: FramePair) -> None:
        import cv2
        import numpy as np

        p = self.params
        assert isinstance(p, BandingParams)
        y = np.round(f.out_y * 1023.0).astype(np.float32)  # 10-bit code values
        span = 9
        smooth = cv2.blur(np.abs(np.diff(y, axis=1, prepend=y[:, :1])), (span, span))
        region = (f.out_y < p.max_luma) & (smooth < 2.0) & (smooth > 0.05)
        if region.mean() < p.min_area:
            self.scores.append(0.0)
            return
        dx = np.diff(y, axis=1, prepend=y[:, :1]) == 0
        dy = np.diff(y, axis=0, prepend=y[:1]) == 0
        flat = (dx & dy)[region].mean()
        self.scores.append(rnd(float(flat), 3))
        self.frames.append(f.frame)

    def finish(self) -> CheckResult:
        import numpy as np

        p = self.params
        assert isinstance(p, BandingParams)
        score = float(np.mean(self.scores)) if self.scores else 0.0
        res = CheckResult(metrics={"banding": rnd(score, 3)}, series={"banding": self.scores})
        if self.frames and score > p.max_score:
            res.findings.append(
                Finding(
                    self.id,
                    self.severity,
                    f"banding in dark gradients (score {score:.2f} > {p.max_score:g})",
                    frames=self.frames[:3],
                    value=rnd(score, 3),
                )
            )
        return res
