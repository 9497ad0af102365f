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
    # Mid-range noise: ringing never reaches 0 or 65535, where zimg clips after each pass
    # and our float reference only at the end.
    frames = [f // 4 + 16384 for f in random_frames(2, SD_601.width, SD_601.height)]
    params = UpscaleParams(model=model, scale=2)
    out = list(Upscale().process(iter(frames), params, _ctx(tmp_path)))
    assert len(out) == 2
    assert out[0].shape == (96, 128, 3) and out[0].dtype == np.uint16
    # zimg's kernel against our float reference: the same filter, rounded once per pass;
    # zimg mirrors at the edges where the reference repeats the border sample.
    ref = resize(frames[1], 128, 96, model).astype(np.int64)  # type: ignore[arg-type]
    diff = np.abs(out[1].astype(np.int64) - ref)[6:-6, 6:-6]
    assert diff.max() <= 2 and diff.mean() < 0.6, (diff.mean(), diff.max())


def test_chain_transcode_equals_streaming(tmp_path: Path) -> None:
    """A chain of filters only runs as one ffmpeg transcode: the same bytes as streaming."""
    from restoro.media.ffilter import transcode
    from restoro.media.frameio import read_frames, write_frames

    frames = random_frames(3, SD_601.width, SD_601.height)
    params = UpscaleParams(model="lanczos", scale=3)
    stage = Upscale()
    streamed = list(stage.process(iter(frames), params, _ctx(tmp_path)))
    src, out = tmp_path / "in.mkv", tmp_path / "out.mkv"
    write_frames(src, SD_601, iter(frames))
    graph = stage.ffmpeg_filter(params, SD_601)
    assert graph is not None and graph.startswith("zscale=w=192:h=144:filter=lanczos")
    transcode(src, graph, stage.output_format(params, SD_601), out)
    for a, b in zip(streamed, read_frames(out), strict=True):
        np.testing.assert_array_equal(a, b)


def test_models_are_not_filters() -> None:
    stage = Upscale()
    params = UpscaleParams(model="realesr-animevideov3", scale=4)
    assert stage.ffmpeg_filter(params, SD_601) is None and stage.uses_device(params)
    assert not stage.uses_device(UpscaleParams(model="lanczos"))


def test_scale_one_passes_through(tmp_path: Path) -> None:
    frames = random_frames(1, SD_601.width, SD_601.height)
    (out,) = Upscale().process(iter(frames), UpscaleParams(scale=1), _ctx(tmp_path))
    assert out is frames[0]


def test_classical_models_pass_check() -> None:
    for model in ("lanczos", "spline36", "bicubic"):
        Upscale().check(UpscaleParams(model=model))
