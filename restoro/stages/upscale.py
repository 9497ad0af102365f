"""upscale: resize frames by an integer scale with a classical kernel or a model.

Models are built-ins (converted Real-ESRGAN weights) or files of any architecture spandrel
loads; their content digest enters the action key (``model_inputs``). Inference is tiled and
batched (``restoro.models.infer``); the model sees RGB in [0, 1] and 16-bit frames come back.
A ``final`` size other than the model's scale is reached with a classical resize afterwards.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, field_validator

from restoro.errors import StageError
from restoro.media.frames import MAX_SIDE
from restoro.stages.base import FrameStage, StageContext, StageDescriptor, StageEnv, StageParams

if TYPE_CHECKING:
    from collections.abc import Iterator

    import numpy as np

    from restoro.media.frames import FrameFormat

CLASSICAL_KERNELS = ("lanczos", "spline36", "bicubic")
MODEL_INPUT = "model:upscale"


class UpscaleParams(StageParams):
    model: str = Field(
        "lanczos",
        description="A classical kernel (lanczos, spline36, bicubic), a built-in model name, or "
        "a path to a model file (.pth, .safetensors, .ckpt) relative to the manifest.",
    )
    scale: int = Field(4, ge=1, le=16, description="Integer scale factor.")
    tile: int = Field(
        0,
        ge=-1,
        description="Tile edge in input pixels for model inference; 0 chooses from free "
        "device memory (a fixed 256 on CPU for large frames), -1 never tiles.",
    )
    tile_pad: int = Field(16, ge=0, le=128, description="Overlap (halo) around each tile.")
    batch: int = Field(0, ge=0, le=64, description="Tiles per forward pass; 0 chooses.")
    precision: Literal["auto", "fp32", "fp16", "bf16"] = Field(
        "auto", description="Model precision on CUDA (auto: fp16 where supported); CPU is fp32."
    )
    final: str | None = Field(
        None,
        description="Final size WxH reached with a lanczos resize after the model "
        "(for non-integer overall scales).",
    )

    @field_validator("final")
    @classmethod
    def _size(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"[1-9]\d*x[1-9]\d*", v):
            raise ValueError("final must be WxH, e.g. 1440x1080")
        if v is not None and max(int(x) for x in v.split("x")) > MAX_SIDE:
            raise ValueError(f"final must be at most {MAX_SIDE} on each side (8K), got {v}")
        return v


def is_classical(model: str) -> bool:
    return model in CLASSICAL_KERNELS


def inference_options(params: Any, device: str) -> Any:
    from restoro.models.infer import Options

    return Options(
        device=device,
        precision=params.precision,
        tile=params.tile,
        tile_pad=params.tile_pad,
        batch=params.batch,
    )


class Upscale(FrameStage):
    id: ClassVar[str] = "upscale"
    version: ClassVar[int] = 2  # 2: classical kernels are zimg's (zscale), not numpy's
    Params: ClassVar[type[StageParams]] = UpscaleParams
    descriptor: ClassVar[StageDescriptor] = StageDescriptor(
        gpu=True, memory_mb=4096, tools=("ffmpeg",)
    )

    def uses_device(self, params: StageParams) -> bool:
        """Models run on the device; classical kernels are ffmpeg's, on the CPU."""
        assert isinstance(params, UpscaleParams)
        return not is_classical(params.model)

    def ffmpeg_filter(self, params: StageParams, fmt: FrameFormat) -> str | None:
        """A classical kernel is zimg's resize (``zscale``, no dither); a model is not a filter.

        zimg keeps 16-bit samples through both passes (it clips ringing after each pass, so
        inside the picture it is within 2 code values of ``restoro.media.resample``) and is
        ~50x faster; its SIMD path depends on the CPU, which the ffmpeg fingerprint names.
        """
        assert isinstance(params, UpscaleParams)
        if not is_classical(params.model):
            return None
        out = self.output_format(params, fmt)
        if (out.width, out.height) == (fmt.width, fmt.height):
            return "null"
        # zimg's defaults are our kernels: Lanczos 3 taps, bicubic B = 0, C = 0.5 (it mirrors
        # at the edges where restoro.media.resample repeats the border sample).
        return f"zscale=w={out.width}:h={out.height}:filter={params.model}:dither=none"

    def output_format(self, params: StageParams, fmt: FrameFormat) -> FrameFormat:
        """Width and height times the scale (or ``final``); rate, aspect, colour unchanged."""
        assert isinstance(params, UpscaleParams)
        if params.final:
            w, h = (int(x) for x in params.final.split("x"))
            return fmt.model_copy(update={"width": w, "height": h})
        return fmt.model_copy(
            update={"width": fmt.width * params.scale, "height": fmt.height * params.scale}
        )

    def check(self, params: StageParams) -> None:
        """Refuse unknown model names and scale mismatches of built-ins (no torch needed)."""
        from restoro.errors import InputError
        from restoro.models.refs import check_ref

        assert isinstance(params, UpscaleParams)
        if is_classical(params.model):
            return
        try:
            check_ref(params.model, params.scale, stage="upscale")
        except InputError as e:
            raise StageError(e.message, hint=e.hint) from None

    def model_inputs(self, params: StageParams, env: StageEnv) -> dict[str, str]:
        """The model's content digest (a built-in is converted and stored once)."""
        from restoro.models.refs import pin

        assert isinstance(params, UpscaleParams)
        if is_classical(params.model):
            return {}
        return {MODEL_INPUT: pin(params.model, params.scale, env, stage="upscale")}

    def process(
        self, frames: Iterator[np.ndarray], params: StageParams, ctx: StageContext
    ) -> Iterator[np.ndarray]:
        """Resize each frame with the kernel or model named by ``params.model``."""
        from restoro.media.resample import resize

        assert isinstance(params, UpscaleParams)
        self.check(params)
        out = self.output_format(params, ctx.fmt)
        graph = self.ffmpeg_filter(params, ctx.fmt)
        if graph == "null":
            yield from frames
            return
        if graph is not None:
            from restoro.media.ffilter import filter_frames

            yield from filter_frames(frames, ctx.fmt, graph, out)
            return
        from restoro.models.infer import run_model

        path = ctx.inputs.get(MODEL_INPUT)
        if path is None:
            raise StageError(
                f"upscale with model {params.model!r} ran without its model input",
                hint="model stages run inside a build (the model is pinned at plan time)",
            )
        for frame in run_model(frames, path, inference_options(params, ctx.device), ctx):
            if frame.shape[1] != out.width or frame.shape[0] != out.height:
                frame = resize(frame, out.width, out.height, "lanczos")
            yield frame
