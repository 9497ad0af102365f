"""Helpers shared by the filter stages: YCbCr deltas, an ffmpeg filter stream, noise estimates.

Filters that work in YCbCr (ffmpeg's hqdn3d, nlmeans, deblock) are applied as a *delta*: the
frame is converted (BT.709, full range, float), filtered, and the change the filter made is
converted back and added to the original RGB. Pixels a filter leaves alone stay bit-identical,
and 16-bit precision survives even an 8-bit filter.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Iterator

KR, KB = 0.2126, 0.0722
KG = 1 - KR - KB


def to_ycc(rgb: np.ndarray) -> np.ndarray:
    """RGB in [0, 1] → Y, Cb, Cr in [0, 1] (chroma centred on 0.5)."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = KR * r + KG * g + KB * b
    return np.stack([y, (b - y) / (2 * (1 - KB)) + 0.5, (r - y) / (2 * (1 - KR)) + 0.5], -1)


def ycc_delta_to_rgb(d: np.ndarray) -> np.ndarray:
    """A change in (Y, Cb, Cr) → the same change in RGB."""
    dy, dcb, dcr = d[..., 0], d[..., 1], d[..., 2]
    dr = dy + 2 * (1 - KR) * dcr
    db = dy + 2 * (1 - KB) * dcb
    dg = (dy - KR * dr - KB * db) / KG
    return np.stack([dr, dg, db], -1)


def luma(frame: np.ndarray) -> np.ndarray:
    """Y in [0, 1] of a uint16 RGB frame."""
    f = frame.astype(np.float32) / 65535.0
    return KR * f[..., 0] + KG * f[..., 1] + KB * f[..., 2]


def to_u16(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x * 65535.0), 0, 65535).astype(np.uint16)


def ffmpeg_stream(
    planes: Iterator[np.ndarray], width: int, height: int, vf: str, depth: int
) -> Iterator[np.ndarray]:
    """Stream (H, W, 3) YCbCr planes in [0, 1] through an ffmpeg filter graph, one out per in.

    ``depth`` is 16 (yuv444p16le) or 8 (yuv444p); ffmpeg runs single-threaded and bit-exact.
    """
    from restoro.media.ffmpeg import raw_pipe

    fmt, dtype, top = ("yuv444p16le", "<u2", 65535) if depth == 16 else ("yuv444p", "u1", 255)
    args = ["-f", "rawvideo", "-pix_fmt", fmt, "-s", f"{width}x{height}", "-r", "25"]
    args += ["-i", "pipe:0", "-vf", vf, "-threads", "1", "-filter_threads", "1"]
    args += ["-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", fmt, "pipe:1"]

    def sent() -> Iterator[bytes]:
        for p in planes:
            q = np.clip(np.rint(p * top), 0, top).astype(dtype)
            yield np.ascontiguousarray(q.transpose(2, 0, 1)).tobytes()

    size = width * height * 3 * (2 if depth == 16 else 1)
    for buf in raw_pipe(sent(), args, size, f"filter {vf!r}"):
        arr = np.frombuffer(buf, dtype).reshape(3, height, width).transpose(1, 2, 0)
        yield arr.astype(np.float32) / top


# -- noise estimation -----------------------------------------------------------------------

BANDS = 4
BLOCK = 16


def block_noise(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per 16x16 block: (mean luma, noise sigma) with Immerkaer's Laplacian-difference
    estimator, which cancels smooth gradients. ``y`` in [0, 1]; sigma in the same units."""
    import cv2

    k = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
    resp = np.abs(cv2.filter2D(y.astype(np.float32), -1, k, borderType=cv2.BORDER_REFLECT))
    h, w = (y.shape[0] // BLOCK) * BLOCK, (y.shape[1] // BLOCK) * BLOCK
    if h == 0 or w == 0:
        return np.array([float(y.mean())]), np.array([float(resp.mean()) * np.sqrt(np.pi / 2) / 6])
    r = resp[:h, :w].reshape(h // BLOCK, BLOCK, w // BLOCK, BLOCK).mean((1, 3))
    m = y[:h, :w].reshape(h // BLOCK, BLOCK, w // BLOCK, BLOCK).mean((1, 3))
    return m.ravel(), (r * np.sqrt(np.pi / 2) / 6).ravel()


def estimate_noise(frames: list[np.ndarray]) -> dict[str, object]:
    """Noise sigma per luminance band (dark → bright) over some frames of a shot.

    In each band the 25th percentile of block sigmas is taken, so textured blocks (which look
    noisy to any estimator) do not inflate the figure. Bands with too few blocks borrow the
    overall estimate. Sigmas are in 8-bit code values (0-255 scale) for readability.
    """
    means, sigmas = [], []
    for f in frames:
        m, s = block_noise(luma(f))
        means.append(m)
        sigmas.append(s)
    mean, sigma = np.concatenate(means), np.concatenate(sigmas) * 255
    overall = float(np.percentile(sigma, 25))
    bands = []
    for b in range(BANDS):
        sel = sigma[(mean >= b / BANDS) & (mean < (b + 1) / BANDS + (b == BANDS - 1))]
        bands.append(round(float(np.percentile(sel, 25)), 3) if sel.size >= 3 else None)
    filled = [v if v is not None else overall for v in bands]
    return {"sigma": round(max(filled), 3), "overall": round(overall, 3), "bands": bands}


def band_weights(y: np.ndarray, bands: list[float]) -> np.ndarray:
    """Per-pixel weight in [0, 1]: the band's sigma relative to the largest, interpolated."""
    top = max(bands) or 1.0
    centres = (np.arange(BANDS) + 0.5) / BANDS
    return np.interp(y, centres, np.asarray(bands) / top).astype(np.float32)
