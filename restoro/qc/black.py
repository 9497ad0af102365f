"""Black frames in the output (an inserted slug, a dropout, a failed stage)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from restoro.qc.base import Check, CheckParams, CheckResult, Finding, FramePair, frames_text


class BlackParams(CheckParams):
    max_mean: float = Field(0.04, description="A frame darker than this mean luma (0-1) ...")
    max_p99: float = Field(0.10, description="... whose 99th percentile is below this is black.")
    max_frames: int | None = Field(None, description="More black frames than this fail the build.")


class Black(Check):
    id: ClassVar[str] = "black"
    version: ClassVar[int] = 1
    Params: ClassVar = BlackParams

    def __init__(self, params: CheckParams | None = None) -> None:
        super().__init__(params)
        self.found: list[int] = []
        self.means: list[float] = []

    def update(self, f: FramePair) -> None:
        import numpy as np

        p = self.params
        assert isinstance(p, BlackParams)
        mean = float(f.out_y.mean())
        self.means.append(round(mean, 4))
        if mean < p.max_mean and float(np.percentile(f.out_y, 99)) < p.max_p99:
            self.found.append(f.frame)

    def finish(self) -> CheckResult:
        p = self.params
        assert isinstance(p, BlackParams)
        res = CheckResult(metrics={"black_frames": len(self.found)}, series={"luma": self.means})
        if self.found:
            fail = p.max_frames is not None and len(self.found) > p.max_frames
            res.findings.append(
                Finding(
                    self.id,
                    "error" if fail else self.severity,
                    f"{len(self.found)} black frame(s): {frames_text(self.found)}",
                    frames=self.found,
                    value=len(self.found),
                )
            )
        return res
