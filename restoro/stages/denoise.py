"""denoise: ffmpeg hqdn3d / nlmeans, or a model, with an automatic per-shot strength.

``strength: auto`` estimates the noise of the shot's first frames per 16x16 block and per
luminance band (film and video noise is worse in the shadows), picks the filter strength from
the noisiest band, and scales the filter's effect per pixel by its band's estimate. The estimate
is recorded in the action's meta (``stages.denoise``).
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field

from restoro.errors import StageError
from restoro.stages.base import FrameStage, StageContext, StageDescriptor, StageEnv, StageParams

if TYPE_CHECKING:
    from collections.abc import Iterator

    import numpy as np

MODEL_INPUT = "model:denoise"
SAMPLE_FRAMES = 8


class DenoiseParams(StageParams):
    method: Literal["hqdn3d", "nlmeans", "model"] = Field(
        "hqdn3d", description="hqdn3d (fast, temporal), nlmeans (slower, spatial) or model."
    )
    strength: Literal["auto"] | float = Field(
        "auto",
        description="auto (estimated per shot) or a noise sigma in 8-bit code values (0-50).",
    )
    chroma: float = Field(1.0, ge=0, le=4, description="Chroma strength relative to luma.")
    adaptive: bool = Field(
        True, description="Scale the effect per pixel by the noise of its luminance band."
    )
    model: str | None = Field(
        None, description="For method: model, a x1 model file relative to the manifest."
    )


class Denoise(FrameStage):
    id: ClassVar[str] = "denoise"
    version: ClassVar[int] = 1
    Params: ClassVar[type[StageParams]] = DenoiseParams
    descriptor: ClassVar[StageDescriptor] = StageDescriptor(memory_mb=1024, tools=("ffmpeg",))

    def check(self, params: StageParams) -> None:
        assert isinstance(params, DenoiseParams)
        if params.method == "model" and not params.model:
            raise StageError("denoise method: model needs a model file", hint="add model: PATH")
        if isinstance(params.strength, float) and not 0 <= params.strength <= 50:
            raise StageError("denoise strength must be auto or between 0 and 50")

    def model_inputs(self, params: StageParams, env: StageEnv) -> dict[str, str]:
        from restoro.models.refs import pin

        assert isinstance(params, DenoiseParams)
        if params.method != "model" or not params.model:
            return {}
        return {MODEL_INPUT: pin(params.model, 1, env, stage="denoise")}

    def process(
        self, frames: Iterator[np.ndarray], params: StageParams, ctx: StageContext
    ) -> Iterator[np.ndarray]:
        from restoro.stages.filters import estimate_noise

        assert isinstance(params, DenoiseParams)
        self.check(params)
        it = iter(frames)
        head = list(itertools.islice(it, SAMPLE_FRAMES))
        if not head:
            return
        est = estimate_noise(head)
        sigma = float(est["sigma"]) if params.strength == "auto" else float(params.strength)  # type: ignore[arg-type]
        bands = [float(b if b is not None else est["overall"]) for b in est["bands"]]  # type: ignore[attr-defined, arg-type]
        meta = {"estimate": est, "sigma": round(sigma, 3), "method": params.method}
        ctx.extra.setdefault("meta", {}).update(meta)
        stream = itertools.chain(head, it)
        if params.method == "model":
            yield from self._model(stream, params, ctx)
        elif sigma <= 0.05:
            yield from stream
        else:
            weights: list[float] | None = (
                bands if params.adaptive and params.strength == "auto" else None
            )
            yield from _ffmpeg_denoise(stream, params, ctx, sigma, weights)

    def _model(
        self, frames: Iterator[np.ndarray], params: DenoiseParams, ctx: StageContext
    ) -> Iterator[np.ndarray]:
        from restoro.models.infer import Options, run_model

        path = ctx.inputs.get(MODEL_INPUT)
        if path is None:
            raise StageError("denoise with a model ran without its model input")
        yield from run_model(frames, path, Options(device=ctx.device), ctx)


def filter_graph(method: str, sigma: float, chroma: float) -> tuple[str, int]:
    """The ffmpeg filter and the bit depth it runs at, for a noise sigma (8-bit units)."""
    if method == "nlmeans":
        s = min(max(sigma, 1.0), 30.0)
        return f"nlmeans=s={s:.3f}:p=7:r=15", 8
    ls = min(sigma * 2.5, 60.0)
    cs = min(ls * 0.75 * chroma, 60.0)
    return f"hqdn3d={ls:.3f}:{cs:.3f}:{ls * 1.5:.3f}:{cs * 1.5:.3f}", 16


def _ffmpeg_denoise(
    frames: Iterator[np.ndarray],
    params: DenoiseParams,
    ctx: StageContext,
    sigma: float,
    bands: list[float] | None,
) -> Iterator[np.ndarray]:
    """Filter in YCbCr via ffmpeg, add the change back to the original (optionally weighted)."""
    import collections

    import numpy as np

    from restoro.stages.filters import (
        band_weights,
        ffmpeg_stream,
        to_u16,
        to_ycc,
        ycc_delta_to_rgb,
    )

    vf, depth = filter_graph(params.method, sigma, params.chroma)
    top = 65535 if depth == 16 else 255
    pending: collections.deque[tuple[np.ndarray, np.ndarray]] = collections.deque()

    def sent() -> Iterator[np.ndarray]:
        for f in frames:
            rgb = f.astype(np.float32) / 65535.0
            ycc = np.clip(np.rint(to_ycc(rgb) * top), 0, top) / top
            pending.append((rgb, ycc.astype(np.float32)))
            yield ycc

    w, h = ctx.fmt.width, ctx.fmt.height
    for filtered in ffmpeg_stream(sent(), w, h, vf, depth):
        rgb, ycc = pending.popleft()
        delta = filtered - ycc
        if bands is not None:
            delta *= band_weights(ycc[..., 0], bands)[..., None]
        yield to_u16(rgb + ycc_delta_to_rgb(delta))
