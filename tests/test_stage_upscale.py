"""The upscale stage with classical kernels; AI models are refused plainly."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pytest
from media_fixtures import SD_601, random_frames

from restoro.media.resample import resize
from restoro.stages.base import StageContext
from restoro.stages.upscale import Upscale, UpscaleParams

if TYPE_CHECKING:
    from pathlib import Path


def _ctx(tmp_path: Path) -> StageContext:
    return StageContext(fmt=SD_601, shot_id="t@0", work_dir=tmp_path)


def test_output_format_keeps_sar_rate_colour() -> None:
    out = Upscale().output_format(UpscaleParams(scale=3), SD_601)
    assert (out.width, out.height) == (192, 144)
    assert (out.sar, out.frame_rate, out.colour) == (SD_601.sar, SD_601.frame_rate, SD_601.colour)
    assert out.dar == SD_601.dar


@pytest.mark.parametrize("model", ["bicubic", "spline36", "lanczos"])
def test_process_resizes(tmp_path: Path, model: str) -> None:
    frames = random_frames(2, SD_601.width, SD_601.height)
    params = UpscaleParams(model=model, scale=2)
    out = list(Upscale().process(iter(frames), params, _ctx(tmp_path)))
    assert len(out) == 2
    assert out[0].shape == (96, 128, 3) and out[0].dtype == np.uint16
    np.testing.assert_array_equal(out[1], resize(frames[1], 128, 96, model))  # type: ignore[arg-type]


def test_scale_one_passes_through(tmp_path: Path) -> None:
    frames = random_frames(1, SD_601.width, SD_601.height)
    (out,) = Upscale().process(iter(frames), UpscaleParams(scale=1), _ctx(tmp_path))
    assert out is frames[0]


def test_classical_models_pass_check() -> None:
    for model in ("lanczos", "spline36", "bicubic"):
        Upscale().check(UpscaleParams(model=model))
