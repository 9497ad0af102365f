"""Frozen frames: an output frame (almost) identical to the one before it."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from pydantic import Field

if TYPE_CHECKING:
    import numpy as np

from restoro.qc.base import Check, CheckParams, CheckResult, Finding, FramePair, frames_text


class FrozenParams(CheckParams):
    max_diff: float = Field(
        1e-5, description="Mean absolute luma change (0-1) below which a frame is frozen."
    )
    max_frames: int | None = Field(None, description="More frozen frames than this fail the build.")


class Frozen(Check):
    id: ClassVar[str] = "frozen"
    version: ClassVar[int] = 1
    Params: ClassVar = FrozenParams

    def __init__(self, params: CheckParams | None = None) -> None:
        super().__init__(params)
        self.prev: np.ndarray | None = None
        self.found: list[int] = []
        self.diffs: list[float] = []

    def update(self, f: FramePair) -> None:
        import numpy as np

        p = self.params
        assert isinstance(p, FrozenParams)
        if self.prev is not None:
            d = float(np.mean(np.abs(f.out_y - self.prev)))
            self.diffs.append(round(d, 5))
            # A black frame after a black frame is black, not frozen.
            if d < p.max_diff and float(f.out_y.mean()) >= 0.04:
                self.found.append(f.frame)
        else:
            self.diffs.append(0.0)
        self.prev = f.out_y

    def finish(self) -> CheckResult:
        p = self.params
        assert isinstance(p, FrozenParams)
        res = CheckResult(metrics={"frozen_frames": len(self.found)}, series={"motion": self.diffs})
        if self.found:
            fail = p.max_frames is not None and len(self.found) > p.max_frames
            res.findings.append(
                Finding(
                    self.id,
                    "error" if fail else self.severity,
                    f"{len(self.found)} frozen frame(s) (repeat the frame before): "
                    f"{frames_text(self.found)}",
                    frames=self.found,
                    value=len(self.found),
                )
            )
        return res
