"""The upscale stage on CUDA: fp16, tiled vs untiled, run-to-run determinism, CPU agreement.

Marked ``gpu``; skipped where torch sees no CUDA device. Run them on a GPU machine with
``python -m pytest -m gpu tests/test_models_gpu.py`` (docs/models.md, "GPU tests").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pytest

if TYPE_CHECKING:
    from pathlib import Path

torch = pytest.importorskip("torch")
pytest.importorskip("spandrel")

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def _frames(n: int, w: int, h: int) -> list[np.ndarray]:
    import cv2

    rng = np.random.default_rng(5)
    out = []
    for _ in range(n):
        small = rng.integers(0, 65536, (h // 4, w // 4, 3)).astype(np.float32)
        out.append(cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC).clip(0, 65535))
    return [f.astype(np.uint16) for f in out]


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(65535.0**2 / max(mse, 1e-12)))


def _upscale(tmp_path: Path, model: str, scale: int, frames: list, device: str, **kw) -> list:  # noqa: ANN003
    from restoro.engine.store import Store
    from restoro.media.frames import FrameFormat
    from restoro.stages.base import StageContext, StageEnv
    from restoro.stages.upscale import MODEL_INPUT, Upscale, UpscaleParams

    store = Store(tmp_path / "store")
    try:
        params = UpscaleParams(model=model, scale=scale, **kw)
        digest = Upscale().model_inputs(params, StageEnv(root=tmp_path, store=store))[MODEL_INPUT]
        h, w = frames[0].shape[:2]
        ctx = StageContext(
            fmt=FrameFormat(width=w, height=h, frame_rate="25"),
            shot_id="gpu@0",
            work_dir=tmp_path,
            device=device,
            inputs={MODEL_INPUT: store.blob_path(digest)},
        )
        out = list(Upscale().process(iter(frames), params, ctx))
        assert ctx.extra["meta"]["device"].startswith(device.split(":")[0])
        return out
    finally:
        store.close()


@pytest.mark.parametrize("model", ["realesr-animevideov3", "realesrgan-x4plus"])
def test_fp16_tiled_matches_untiled_and_is_deterministic(tmp_path: Path, model: str) -> None:
    scale = 2 if model == "realesr-animevideov3" else 4
    frames = _frames(3, 160, 96)
    whole = _upscale(tmp_path, model, scale, frames, "cuda", precision="fp16", tile=-1)
    tiled = _upscale(tmp_path, model, scale, frames, "cuda", precision="fp16", tile=48, batch=4)
    assert whole[0].shape == (96 * scale, 160 * scale, 3) and whole[0].dtype == np.uint16
    for a, b in zip(whole, tiled, strict=True):
        assert _psnr(a, b) >= 40.0  # fp16 rounding differs at tile borders; seams would be < 35
    again = _upscale(tmp_path, model, scale, frames, "cuda", precision="fp16", tile=48, batch=4)
    assert all(x.tobytes() == y.tobytes() for x, y in zip(tiled, again, strict=True))


def test_cuda_fp16_agrees_with_cpu_fp32(tmp_path: Path) -> None:
    frames = _frames(2, 96, 64)
    gpu = _upscale(tmp_path, "realesr-animevideov3", 2, frames, "cuda", precision="fp16")
    cpu = _upscale(tmp_path, "realesr-animevideov3", 2, frames, "cpu")
    for a, b in zip(gpu, cpu, strict=True):
        assert _psnr(a, b) >= 35.0


def test_device_fingerprint_names_the_gpu() -> None:
    from restoro.models import device

    device.reset()
    fp = device.fingerprint("auto")
    assert fp.startswith("cuda:") and torch.cuda.get_device_name(0) in fp
    assert fp.endswith(f"torch {torch.__version__}")


@pytest.mark.parametrize(("tile", "batch"), [(-1, 0), (16, 3)])
def test_the_blend_on_cuda_gives_the_host_blends_bytes(
    tmp_path: Path, tile: int, batch: int
) -> None:
    """The tiles are blended and rounded on the device: in IEEE float64, op for op, so the
    bytes are those of the float64 numpy blend on the host (``blendref``)."""
    from blendref import host_blend
    from safetensors.torch import save_file
    from spandrel.architectures.Compact import Compact

    from restoro.models.infer import Engine, Options

    model = Compact(num_in_ch=3, num_out_ch=3, num_feat=8, num_conv=2, upscale=2)
    path = tmp_path / "m.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))

    def forward(x: torch.Tensor) -> torch.Tensor:  # per pixel, on the GPU, every float32 bit
        up = torch.nn.functional.interpolate(x.to("cuda"), scale_factor=2, mode="nearest")
        return (torch.sin(up * 37.0) * 0.5 + 0.5).clamp_(0, 1)

    frames = _frames(3, 50, 37)
    eng = Engine(path, Options(device="cuda", tile=tile, tile_pad=4, batch=batch), forward=forward)
    got = eng.run(frames)
    want = host_blend(frames, forward, 2, tile, 4)
    for a, b in zip(got, want, strict=True):
        assert a.tobytes() == b.tobytes()
