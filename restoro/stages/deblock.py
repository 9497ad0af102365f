"""deblock: soften the 8x8 block edges of MPEG-2/DV sources (ffmpeg ``deblock``, 16-bit)."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field

from restoro.stages.base import FrameStage, StageContext, StageDescriptor, StageParams

if TYPE_CHECKING:
    from collections.abc import Iterator

    import numpy as np


class DeblockParams(StageParams):
    filter: Literal["weak", "strong"] = Field("strong", description="ffmpeg deblock filter type.")
    block: int = Field(8, ge=4, le=512, description="Block size of the codec (8 for MPEG-2).")
    alpha: float = Field(0.098, ge=0, le=1, description="Edge threshold alpha.")
    beta: float = Field(0.05, ge=0, le=1, description="Edge threshold beta.")


class Deblock(FrameStage):
    id: ClassVar[str] = "deblock"
    version: ClassVar[int] = 1
    Params: ClassVar[type[StageParams]] = DeblockParams
    descriptor: ClassVar[StageDescriptor] = StageDescriptor(memory_mb=256, tools=("ffmpeg",))

    def process(
        self, frames: Iterator[np.ndarray], params: StageParams, ctx: StageContext
    ) -> Iterator[np.ndarray]:
        import collections

        import numpy as np

        from restoro.stages.filters import ffmpeg_stream, to_u16, to_ycc, ycc_delta_to_rgb

        assert isinstance(params, DeblockParams)
        vf = (
            f"deblock=filter={params.filter}:block={params.block}:"
            f"alpha={params.alpha}:beta={params.beta}:planes=7"
        )
        pending: collections.deque[tuple[np.ndarray, np.ndarray]] = collections.deque()

        def sent() -> Iterator[np.ndarray]:
            for f in frames:
                rgb = f.astype(np.float32) / 65535.0
                ycc = (np.clip(np.rint(to_ycc(rgb) * 65535), 0, 65535) / 65535).astype(np.float32)
                pending.append((rgb, ycc))
                yield ycc

        for out in ffmpeg_stream(sent(), ctx.fmt.width, ctx.fmt.height, vf, 16):
            rgb, ycc = pending.popleft()
            yield to_u16(rgb + ycc_delta_to_rgb(out - ycc))
