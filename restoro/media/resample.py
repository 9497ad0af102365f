"""A separable resampler written for determinism: the same bytes on every machine.

No BLAS and no threads: each output sample is a sum over a fixed number of taps, accumulated
tap by tap in float32 with numpy elementwise multiply and add (never a reduction or a dot
product), so the arithmetic is the same IEEE operations in the same order on every machine and
thread count. float32 keeps a 4x SD→UHD-class frame well under a second; against a float64
reference the result differs by at most one code value (a rounding tie). Kernels:

* ``lanczos``  — Lanczos3, ``sinc(x)·sinc(x/3)`` for ``|x| < 3``;
* ``spline36`` — the 6-tap cubic spline (Panorama Tools / AviSynth ``Spline36Resize``);
* ``bicubic``  — Catmull-Rom (Mitchell–Netravali with B=0, C=0.5), radius 2.

Sample centres are aligned (``src = (dst + 0.5) / scale - 0.5``); when downscaling the kernel
is widened by ``1/scale`` (so it low-passes); edges are clamped (the border sample repeats);
the weights of every output sample are normalised to sum to 1.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import TYPE_CHECKING, Literal

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Callable

Kernel = Literal["lanczos", "spline36", "bicubic"]


def _lanczos3(x: np.ndarray) -> np.ndarray:
    ax = np.abs(x)
    return np.where(ax < 3.0, np.sinc(x) * np.sinc(x / 3.0), 0.0)


def _spline36(x: np.ndarray) -> np.ndarray:
    ax = np.abs(x)
    a = ax
    b = ax - 1.0
    c = ax - 2.0
    near = ((13.0 / 11.0 * a - 453.0 / 209.0) * a - 3.0 / 209.0) * a + 1.0
    mid = ((-6.0 / 11.0 * b + 270.0 / 209.0) * b - 156.0 / 209.0) * b
    far = ((1.0 / 11.0 * c - 45.0 / 209.0) * c + 26.0 / 209.0) * c
    return np.where(ax < 1.0, near, np.where(ax < 2.0, mid, np.where(ax < 3.0, far, 0.0)))


def _catmull_rom(x: np.ndarray) -> np.ndarray:
    ax = np.abs(x)
    near = (1.5 * ax - 2.5) * ax * ax + 1.0
    far = ((-0.5 * ax + 2.5) * ax - 4.0) * ax + 2.0
    return np.where(ax < 1.0, near, np.where(ax < 2.0, far, 0.0))


KERNELS: dict[str, tuple[Callable[[np.ndarray], np.ndarray], float]] = {
    "lanczos": (_lanczos3, 3.0),
    "spline36": (_spline36, 3.0),
    "bicubic": (_catmull_rom, 2.0),
}


@lru_cache(maxsize=64)
def weights(n_in: int, n_out: int, kernel: str) -> tuple[np.ndarray, np.ndarray]:
    """Per output sample: source indices (n_out, taps) and normalised weights (n_out, taps).

    Weights are computed in float64; ``_resample_axis`` applies them in float32.
    """
    if kernel not in KERNELS:
        raise ValueError(f"unknown kernel {kernel!r}; expected one of {sorted(KERNELS)}")
    func, radius = KERNELS[kernel]
    scale = n_out / n_in
    stretch = min(scale, 1.0)  # < 1 when downscaling: widen the kernel by 1/scale
    support = radius / stretch
    taps = 2 * math.ceil(support) + 1
    centre = (np.arange(n_out, dtype=np.float64) + 0.5) / scale - 0.5
    first = np.floor(centre - support).astype(np.int64) + 1
    idx = first[:, None] + np.arange(taps, dtype=np.int64)[None, :]
    w = func((idx - centre[:, None]) * stretch)
    w /= w.sum(axis=1, keepdims=True)
    idx = np.clip(idx, 0, n_in - 1)
    used = np.any(w != 0.0, axis=0)  # taps that are zero for every output sample
    idx, w = np.ascontiguousarray(idx[:, used]), np.ascontiguousarray(w[:, used])
    idx.setflags(write=False)
    w.setflags(write=False)
    return idx, w


def _resample_axis(data: np.ndarray, n_out: int, kernel: str, axis: int) -> np.ndarray:
    n_in = data.shape[axis]
    idx, w = weights(n_in, n_out, kernel)
    shape = [1] * data.ndim
    shape[axis] = n_out
    out_shape = list(data.shape)
    out_shape[axis] = n_out
    w32 = w.astype(np.float32)
    acc = np.zeros(out_shape, dtype=np.float32)
    tap = np.empty(out_shape, dtype=np.float32)
    for k in range(idx.shape[1]):  # fixed tap order → identical sums everywhere
        np.take(data, idx[:, k], axis=axis, out=tap)
        tap *= w32[:, k].reshape(shape)
        acc += tap
    return acc


def resize(frame: np.ndarray, width: int, height: int, kernel: Kernel = "lanczos") -> np.ndarray:
    """Resize an (H, W, C) or (H, W) uint16 image to (height, width); round and clip."""
    if frame.dtype != np.uint16:
        raise TypeError(f"resize expects uint16 frames, got {frame.dtype}")
    if width < 1 or height < 1:
        raise ValueError(f"bad output size {width}x{height}")
    data = frame.astype(np.float32)
    if width != frame.shape[1]:
        data = _resample_axis(data, width, kernel, axis=1)
    if height != frame.shape[0]:
        data = _resample_axis(data, height, kernel, axis=0)
    return np.clip(np.rint(data), 0, 65535).astype(np.uint16)
