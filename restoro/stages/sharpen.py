"""sharpen: an unsharp mask on luma, with a noise threshold so grain is not amplified."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from pydantic import Field

from restoro.stages.base import FrameStage, StageContext, StageDescriptor, StageParams

if TYPE_CHECKING:
    from collections.abc import Iterator

    import numpy as np


class SharpenParams(StageParams):
    amount: float = Field(0.5, ge=0, le=4, description="How much detail to add (0 = none).")
    radius: float = Field(1.0, gt=0, le=10, description="Blur sigma of the mask in pixels.")
    threshold: float = Field(
        0.0, ge=0, le=0.2, description="Detail below this (0-1 scale) is left alone (soft knee)."
    )


class Sharpen(FrameStage):
    id: ClassVar[str] = "sharpen"
    version: ClassVar[int] = 1
    Params: ClassVar[type[StageParams]] = SharpenParams
    descriptor: ClassVar[StageDescriptor] = StageDescriptor(memory_mb=256)

    def process(
        self, frames: Iterator[np.ndarray], params: StageParams, ctx: StageContext
    ) -> Iterator[np.ndarray]:
        import cv2
        import numpy as np

        from restoro.stages.filters import luma, to_u16

        assert isinstance(params, SharpenParams)
        for frame in frames:
            if params.amount == 0:
                yield frame
                continue
            y = luma(frame)
            detail = y - cv2.GaussianBlur(y, (0, 0), params.radius, borderType=cv2.BORDER_REFLECT)
            if params.threshold > 0:
                mag = np.abs(detail)
                detail = detail * (mag / (mag + params.threshold))
            f = frame.astype(np.float32) / 65535.0
            yield to_u16(f + params.amount * detail[..., None])
