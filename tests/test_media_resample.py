"""The deterministic resampler: kernel shapes, normalisation, and a float64 reference."""

from __future__ import annotations

import numpy as np
import pytest

from restoro.media.resample import KERNELS, resize, weights

KERNEL_NAMES = sorted(KERNELS)


@pytest.mark.parametrize("kernel", KERNEL_NAMES)
def test_kernel_shape(kernel: str) -> None:
    func, radius = KERNELS[kernel]
    x = np.linspace(-radius - 1, radius + 1, 401)
    np.testing.assert_allclose(func(x), func(-x), atol=1e-15)  # symmetric
    assert func(np.array([0.0]))[0] == pytest.approx(1.0)
    ints = np.arange(1, int(radius) + 2, dtype=np.float64)
    np.testing.assert_allclose(func(ints), 0.0, atol=1e-12)  # interpolating kernels
    assert np.all(func(np.array([radius, radius + 0.5])) == 0.0)  # compact support


@pytest.mark.parametrize("kernel", KERNEL_NAMES)
@pytest.mark.parametrize(("n_in", "n_out"), [(8, 32), (32, 8), (30, 17), (5, 5)])
def test_weights_normalised(kernel: str, n_in: int, n_out: int) -> None:
    idx, w = weights(n_in, n_out, kernel)
    np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-12)
    assert idx.min() >= 0 and idx.max() < n_in


def test_downscale_widens_the_kernel() -> None:
    _, up = weights(100, 200, "lanczos")
    _, down = weights(200, 100, "lanczos")
    assert up.shape[1] == 6 and down.shape[1] >= 12


@pytest.mark.parametrize("kernel", KERNEL_NAMES)
@pytest.mark.parametrize("size", [(40, 30), (7, 5), (13, 21)])
def test_constant_stays_constant(kernel: str, size: tuple[int, int]) -> None:
    img = np.full((10, 12, 3), 40000, np.uint16)
    out = resize(img, size[0], size[1], kernel)  # type: ignore[arg-type]
    assert out.shape == (size[1], size[0], 3)
    assert np.all(out == 40000)


def _reference(img: np.ndarray, width: int, height: int, kernel: str) -> np.ndarray:
    """Direct float64 evaluation, one output pixel at a time (slow, obviously right)."""
    func, radius = KERNELS[kernel]

    def axis_matrix(n_in: int, n_out: int) -> np.ndarray:
        scale = n_out / n_in
        stretch = min(scale, 1.0)
        m = np.zeros((n_out, n_in))
        for o in range(n_out):
            centre = (o + 0.5) / scale - 0.5
            lo = int(np.floor(centre - radius / stretch)) - 1
            for j in range(lo, lo + int(2 * radius / stretch) + 4):
                m[o, min(max(j, 0), n_in - 1)] += func(np.array([(j - centre) * stretch]))[0]
        return m / m.sum(axis=1, keepdims=True)

    mh = axis_matrix(img.shape[0], height)
    mw = axis_matrix(img.shape[1], width)
    out = np.einsum("oh,hwc,pw->opc", mh, img.astype(np.float64), mw)
    return np.clip(np.rint(out), 0, 65535)


@pytest.mark.parametrize("kernel", KERNEL_NAMES)
@pytest.mark.parametrize(("width", "height"), [(36, 24), (5, 4), (23, 11)])
def test_matches_float64_reference(kernel: str, width: int, height: int) -> None:
    rng = np.random.default_rng(7)
    img = rng.integers(0, 65536, (8, 12, 3), dtype=np.uint16)
    got = resize(img, width, height, kernel).astype(np.int64)  # type: ignore[arg-type]
    want = _reference(img, width, height, kernel).astype(np.int64)
    # float32 accumulation: at most a rounding tie apart
    assert np.abs(got - want).max() <= 1
    assert np.mean(got == want) > 0.97


def test_downscale_low_passes() -> None:
    checker = (np.indices((64, 64)).sum(axis=0) % 2 * 65535).astype(np.uint16)
    out = resize(checker, 32, 32, "lanczos")
    assert abs(float(out[8:-8, 8:-8].mean()) - 32767.5) < 300
    assert out[8:-8, 8:-8].std() < 300  # point sampling would give 0 / 65535


def test_identity_and_determinism() -> None:
    rng = np.random.default_rng(1)
    img = rng.integers(0, 65536, (9, 11, 3), dtype=np.uint16)
    np.testing.assert_array_equal(resize(img, 11, 9, "spline36"), img)
    a = resize(img, 44, 36, "lanczos")
    b = resize(img.copy(), 44, 36, "lanczos")
    assert a.tobytes() == b.tobytes()


def test_rejects_non_uint16() -> None:
    with pytest.raises(TypeError):
        resize(np.zeros((4, 4, 3), np.float32), 8, 8)
