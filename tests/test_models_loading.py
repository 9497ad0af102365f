"""Model files of any spandrel architecture: loading, tiling, OOM handling, bad input."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pytest

from restoro.errors import InputError, StageError

torch = pytest.importorskip("torch")
pytest.importorskip("spandrel")

from blendref import host_blend  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

from restoro.models.infer import Engine, Options, ramp, tiles  # noqa: E402
from restoro.models.loader import info_for  # noqa: E402

if TYPE_CHECKING:
    from pathlib import Path


def _save(model: torch.nn.Module, path: Path) -> Path:
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return path


@pytest.fixture(scope="module")
def compact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from spandrel.architectures.Compact import Compact

    torch.manual_seed(1)
    m = Compact(num_in_ch=3, num_out_ch=3, num_feat=16, num_conv=4, upscale=2)
    return _save(m, tmp_path_factory.mktemp("m") / "compact.safetensors")


@pytest.fixture(scope="module")
def span(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from spandrel.architectures.SPAN import SPAN

    torch.manual_seed(2)
    m = SPAN(num_in_ch=3, num_out_ch=3, feature_channels=16, upscale=2)
    return _save(m, tmp_path_factory.mktemp("m") / "span.safetensors")


def _frames(n: int, w: int = 48, h: int = 32) -> list[np.ndarray]:
    import cv2

    rng = np.random.default_rng(3)
    out = []
    for _ in range(n):
        small = rng.integers(0, 65536, (h // 4, w // 4, 3)).astype(np.float32)
        out.append(cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC).clip(0, 65535))
    return [f.astype(np.uint16) for f in out]


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(65535.0**2 / max(mse, 1e-12)))


@pytest.mark.parametrize("which", ["compact", pytest.param("span", marks=pytest.mark.slow)])
def test_random_model_loads_and_tiled_matches_untiled(which: str, request) -> None:  # noqa: ANN001
    path = request.getfixturevalue(which)
    info = info_for(path)
    assert info.scale == 2 and info.architecture == {"compact": "Compact", "span": "SPAN"}[which]
    frames = _frames(2)
    whole = Engine(path, Options(tile=-1)).run(frames)
    tiled = Engine(path, Options(tile=16, tile_pad=16, batch=3)).run(frames)
    assert whole[0].shape == (64, 96, 3)
    for a, b in zip(whole, tiled, strict=True):
        assert _psnr(a, b) >= 45.0
    again = Engine(path, Options(tile=16, tile_pad=16, batch=3)).run(frames)
    assert all(x.tobytes() == y.tobytes() for x, y in zip(tiled, again, strict=True))


def test_blend_weights_partition_unity() -> None:
    h, w, t, p = 37, 50, 16, 5
    acc = np.zeros((h, w))
    for sy, sx in tiles(h, w, t, p):
        acc[sy[0] : sy[1], sx[0] : sx[1]] += np.outer(ramp(sy), ramp(sx))
    np.testing.assert_allclose(acc, 1.0, atol=1e-12)
    acc2 = np.zeros((h * 3, w * 3))
    for sy, sx in tiles(h, w, t, p):
        acc2[sy[0] * 3 : sy[1] * 3, sx[0] * 3 : sx[1] * 3] += np.outer(ramp(sy, 3), ramp(sx, 3))
    np.testing.assert_allclose(acc2, 1.0, atol=1e-12)


@pytest.mark.parametrize("scale", [2, 4])
@pytest.mark.parametrize(("tile", "batch"), [(-1, 0), (16, 3), (12, 1)])
def test_the_device_blend_gives_the_host_blends_bytes(
    scale: int, tile: int, batch: int, tmp_path: Path
) -> None:
    from spandrel.architectures.Compact import Compact

    path = _save(
        Compact(num_in_ch=3, num_out_ch=3, num_feat=8, num_conv=2, upscale=scale),
        tmp_path / "m.safetensors",
    )

    def forward(x: torch.Tensor) -> torch.Tensor:
        # per pixel, so a tile's values do not depend on its batch; every float32 bit in use
        up = torch.nn.functional.interpolate(x, scale_factor=scale, mode="nearest")
        return (torch.sin(up * 37.0) * 0.5 + 0.5).clamp_(0, 1)

    frames = _frames(3, w=50, h=37)
    pad = 4
    got = Engine(path, Options(tile=tile, tile_pad=pad, batch=batch), forward=forward).run(frames)
    want = host_blend(frames, forward, scale, tile, pad)
    assert len(tiles(37, 50, tile, pad)) == (1 if tile < 0 else -(-37 // tile) * -(-50 // tile))
    for a, b in zip(got, want, strict=True):
        assert a.shape == (37 * scale, 50 * scale, 3) and a.dtype == np.uint16
        assert a.flags.c_contiguous
        assert a.tobytes() == b.tobytes()


def _nearest(x: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.interpolate(x, scale_factor=2, mode="nearest")


def test_position_independent_model_tiles_exactly(compact: Path) -> None:
    frames = _frames(1)
    eng = Engine(compact, Options(tile=8, tile_pad=4), forward=_nearest)
    (out,) = eng.run(frames)
    expected = np.repeat(np.repeat(frames[0], 2, 0), 2, 1)
    assert np.abs(out.astype(int) - expected).max() <= 1


class FakeOOM(RuntimeError):
    pass


def test_out_of_memory_halves_batch_then_tile(compact: Path) -> None:
    seen: list[tuple[int, ...]] = []

    def forward(x: torch.Tensor) -> torch.Tensor:
        seen.append(tuple(x.shape))
        if x.shape[0] > 1 or x.shape[2] * x.shape[3] > 24 * 24:
            raise FakeOOM("CUDA out of memory. Tried to allocate 2.00 GiB")
        return _nearest(x)

    eng = Engine(compact, Options(tile=32, tile_pad=4, batch=4), forward=forward)
    out = eng.run(_frames(2))
    assert out[0].shape == (64, 96, 3)
    assert any("tile 16" in e for e in eng.events) and any("batch 2" in e for e in eng.events)


def test_out_of_memory_at_minimum_tile_is_a_clear_error(compact: Path) -> None:
    def forward(x: torch.Tensor) -> torch.Tensor:
        raise FakeOOM("out of memory")

    eng = Engine(compact, Options(tile=64), forward=forward)
    with pytest.raises(StageError, match="out of memory") as info:
        eng.run(_frames(1))
    assert "--device cpu" in (info.value.hint or "")


def test_other_errors_are_not_retried(compact: Path) -> None:
    def forward(x: torch.Tensor) -> torch.Tensor:
        raise ValueError("shape mismatch")

    with pytest.raises(ValueError, match="shape mismatch"):
        Engine(compact, Options(), forward=forward).run(_frames(1))


def test_not_a_model_file(tmp_path: Path) -> None:
    bad = tmp_path / "notes.pth"
    bad.write_text("these are not weights")
    with pytest.raises(InputError, match="not a model file") as info:
        info_for(bad)
    assert "spandrel" in (info.value.hint or "")


def test_unknown_architecture(tmp_path: Path) -> None:
    path = tmp_path / "odd.safetensors"
    save_file({"mystery.weight": torch.zeros(3, 3)}, str(path))
    with pytest.raises(InputError, match="does not recognise"):
        info_for(path)


def test_pth_checkpoints_load_too(tmp_path: Path, compact: Path) -> None:
    from safetensors.torch import load_file

    pth = tmp_path / "compact.pth"
    torch.save(load_file(str(compact)), str(pth))
    assert info_for(pth).scale == 2


def test_scale_mismatch_and_missing_file_via_stage(tmp_path: Path, compact: Path) -> None:
    from restoro.engine.store import Store
    from restoro.stages.base import StageEnv
    from restoro.stages.upscale import MODEL_INPUT, Upscale, UpscaleParams

    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "c.safetensors").write_bytes(compact.read_bytes())
    store = Store(tmp_path / ".restoro")
    env = StageEnv(root=tmp_path, store=store)
    try:
        with pytest.raises(InputError, match="x2 Compact model but the manifest asks for scale 4"):
            Upscale().model_inputs(UpscaleParams(model="models/c.safetensors", scale=4), env)
        with pytest.raises(InputError, match="does not exist"):
            Upscale().model_inputs(UpscaleParams(model="models/none.pth", scale=2), env)
        got = Upscale().model_inputs(UpscaleParams(model="models/c.safetensors", scale=2), env)
        assert store.blob_path(got[MODEL_INPUT]).read_bytes() == compact.read_bytes()
        # Changing the file changes the digest (and so every key that uses it).
        from spandrel.architectures.Compact import Compact

        _save(Compact(num_feat=16, num_conv=4, upscale=2), tmp_path / "models" / "c.safetensors")
        new = Upscale().model_inputs(UpscaleParams(model="models/c.safetensors", scale=2), env)
        assert new[MODEL_INPUT] != got[MODEL_INPUT]
    finally:
        store.close()
