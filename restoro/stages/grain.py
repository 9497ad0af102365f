"""grain: synthesised film grain, added last so restored frames look like film again.

Gaussian noise, low-passed to the grain ``size``, shaped by a luminance response (grain is
most visible in the midtones), partly shared between channels (``colour`` 0 = monochrome
grain, 1 = independent per channel). The random stream is seeded from the chain's seed, which
the planner derives from the shot id (stable across re-detection and edits upstream) and puts in
the chain's params, and from the ``seed`` param: a shot always gets the same grain, other shots
(even with identical pictures) other grain, and the output is a pure function of the action key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from pydantic import Field

from restoro.stages.base import FrameStage, StageContext, StageDescriptor, StageParams

if TYPE_CHECKING:
    from collections.abc import Iterator

    import numpy as np


class GrainParams(StageParams):
    amount: float = Field(0.03, ge=0, le=0.5, description="Grain standard deviation (0-1 scale).")
    size: float = Field(0.7, ge=0, le=8, description="Grain size: low-pass sigma in pixels.")
    colour: float = Field(0.2, ge=0, le=1, description="0 monochrome grain, 1 independent RGB.")
    seed: int = Field(0, ge=0, description="Changes the grain pattern of every shot.")


def shot_seed(chain_seed: int, seed: int) -> int:
    """The grain stream's seed: the chain's (per shot) seed mixed with the ``seed`` param."""
    import xxhash

    return xxhash.xxh64(f"{chain_seed}:{seed}".encode()).intdigest()


def grain_field(rng: np.random.Generator, h: int, w: int, size: float, colour: float) -> np.ndarray:
    """(h, w, 3) float32 noise with unit standard deviation per channel."""
    import cv2
    import numpy as np

    n = rng.standard_normal((h, w, 4), dtype=np.float32)
    if size > 0:
        n = np.stack(
            [
                cv2.GaussianBlur(n[..., c], (0, 0), size, borderType=cv2.BORDER_REFLECT)
                for c in range(4)
            ],
            -1,
        )
        n /= np.maximum(n.std(axis=(0, 1), keepdims=True), 1e-6)
    mono, rgb = n[..., :1], n[..., 1:]
    return (np.sqrt(1 - colour) * mono + np.sqrt(colour) * rgb).astype(np.float32)


class Grain(FrameStage):
    id: ClassVar[str] = "grain"
    version: ClassVar[int] = 2
    Params: ClassVar[type[StageParams]] = GrainParams
    descriptor: ClassVar[StageDescriptor] = StageDescriptor(memory_mb=512)
    seeded: ClassVar[bool] = True
    """The planner puts a per-shot seed (from the shot id) into the chain (``ctx.seed``)."""

    def process(
        self, frames: Iterator[np.ndarray], params: StageParams, ctx: StageContext
    ) -> Iterator[np.ndarray]:
        import numpy as np

        from restoro.stages.filters import to_u16

        assert isinstance(params, GrainParams)
        base = shot_seed(ctx.seed, params.seed)
        ctx.extra.setdefault("meta", {})["seed"] = base
        for i, frame in enumerate(frames):
            if params.amount == 0:
                yield frame
                continue
            rng = np.random.Generator(np.random.PCG64([base, i]))
            h, w = frame.shape[:2]
            f = frame.astype(np.float32) / 65535.0
            y = f.mean(axis=2, keepdims=True)
            response = 0.35 + 2.6 * y * (1 - y)  # strongest in the midtones
            noise = grain_field(rng, h, w, params.size, params.colour)
            yield to_u16(f + params.amount * response * noise)
