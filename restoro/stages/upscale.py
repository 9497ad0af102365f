"""upscale: resize frames by an integer scale with a classical kernel or (later) a model."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from pydantic import Field

from restoro.errors import StageError
from restoro.stages.base import FrameStage, StageContext, StageDescriptor, StageParams

if TYPE_CHECKING:
    from collections.abc import Iterator

    import numpy as np

    from restoro.media.frames import FrameFormat

CLASSICAL_KERNELS = ("lanczos", "spline36", "bicubic")


class UpscaleParams(StageParams):
    model: str = Field(
        "lanczos",
        description="A classical kernel (lanczos, spline36, bicubic), a built-in model name, or "
        "a path to a model file (.pth, .safetensors, .ckpt) relative to the manifest.",
    )
    scale: int = Field(4, ge=1, le=16, description="Integer scale factor.")


class Upscale(FrameStage):
    id: ClassVar[str] = "upscale"
    version: ClassVar[int] = 1
    Params: ClassVar[type[StageParams]] = UpscaleParams
    descriptor: ClassVar[StageDescriptor] = StageDescriptor()

    def output_format(self, params: StageParams, fmt: FrameFormat) -> FrameFormat:
        """Width and height times the scale; rate, pixel aspect and colour unchanged."""
        assert isinstance(params, UpscaleParams)
        return fmt.model_copy(
            update={"width": fmt.width * params.scale, "height": fmt.height * params.scale}
        )

    def check(self, params: StageParams) -> None:
        """Only the classical kernels run in this release."""
        assert isinstance(params, UpscaleParams)
        if params.model not in CLASSICAL_KERNELS:
            raise StageError(
                f"upscale model {params.model!r} is not available yet: AI models arrive with "
                "restoro[ai] (issue 4)",
                hint="use model: lanczos, spline36 or bicubic for now",
            )

    def process(
        self, frames: Iterator[np.ndarray], params: StageParams, ctx: StageContext
    ) -> Iterator[np.ndarray]:
        """Resize each frame with the kernel named by ``params.model``."""
        from restoro.media.resample import resize

        assert isinstance(params, UpscaleParams)
        self.check(params)
        out = self.output_format(params, ctx.fmt)
        for frame in frames:
            if params.scale == 1:
                yield frame
            else:
                yield resize(frame, out.width, out.height, params.model)  # type: ignore[arg-type]
