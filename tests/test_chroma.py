"""Luma-guided chroma upsampling (restoro.media.chroma) and ingest's ``chroma: guided``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pytest

from restoro.media.chroma import (
    downsample_plane,
    guided_upsample,
    planar_layout,
    upsample_frame,
    upsample_plane,
)
from restoro.media.ffmpeg import bitexact_args, run_ffmpeg
from restoro.media.frameio import read_frames, validate_intermediate
from restoro.media.probe import probe
from restoro.stages.ingest import IngestParams, ingest

if TYPE_CHECKING:
    from pathlib import Path

KR, KB = 0.299, 0.114  # BT.601
COLOURS = np.array([[0.85, 0.1, 0.1], [0.1, 0.75, 0.1], [0.1, 0.1, 0.85]])


def _checker(h: int = 48, w: int = 64, cell: int = 8) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return COLOURS[(yy // cell + xx // cell) % 3]


def _ycbcr(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Normalised (0 to 1) Y', Cb, Cr of RGB (BT.601, full swing)."""
    y = KR * rgb[..., 0] + (1 - KR - KB) * rgb[..., 1] + KB * rgb[..., 2]
    cb = (rgb[..., 2] - y) / (2 * (1 - KB)) + 0.5
    cr = (rgb[..., 0] - y) / (2 * (1 - KR)) + 0.5
    return y, cb, cr


def _psnr(a: np.ndarray, b: np.ndarray, peak: float = 1.0) -> float:
    return float(10 * np.log10(peak**2 / np.mean((np.asarray(a, float) - b) ** 2)))


@pytest.mark.parametrize("siting", ["left", "center"])
def test_guided_beats_bicubic_on_colour_edges(siting: str) -> None:
    y, cb, cr = _ycbcr(_checker())
    low = [downsample_plane(c, (2, 2), siting) for c in (cb, cr)]  # type: ignore[arg-type]
    guided = guided_upsample(y, low, siting=siting)  # type: ignore[arg-type]
    for g, lo, ref in zip(guided, low, (cb, cr), strict=True):
        bicubic = upsample_plane(lo, y.shape, method="bicubic", siting=siting)  # type: ignore[arg-type]
        assert g.shape == ref.shape
        assert _psnr(g, ref) > _psnr(bicubic, ref) + 3.0


def test_flat_areas_unchanged() -> None:
    y = np.full((32, 48), 150.0)
    y[:, 24:] = 90.0  # a luma edge with no chroma edge: the chroma must not pick it up
    cb, cr = np.full((16, 24), 100.0), np.full((16, 24), 170.0)
    out = upsample_frame((y, cb, cr), 8)
    assert out.dtype == np.uint16 and out.shape == (3, 32, 48)
    np.testing.assert_array_equal(out[0], (y.astype(np.uint16) << 8))
    assert np.abs(out[1].astype(int) - (100 << 8)).max() <= 256
    assert np.abs(out[2].astype(int) - (170 << 8)).max() <= 256


def test_deterministic_and_odd_sizes() -> None:
    y, cb, cr = _ycbcr(_checker(h=37, w=51, cell=5))
    planes = [np.rint(p * 255) for p in (y, cb, cr)]
    low = [downsample_plane(c, (2, 2)) for c in planes[1:]]
    a = upsample_frame((planes[0], np.rint(low[0]), np.rint(low[1])), 8)
    b = upsample_frame((planes[0], np.rint(low[0]), np.rint(low[1])), 8)
    assert a.shape == (3, 37, 51)
    assert a.tobytes() == b.tobytes()


def test_planar_layout() -> None:
    assert planar_layout("yuv420p") == ("yuv420p", 8, (2, 2))
    assert planar_layout("yuv422p10le") == ("yuv422p10le", 10, (1, 2))
    assert planar_layout("yuv444p") is None and planar_layout("rgb24") is None
    assert planar_layout(None) is None


def _write_source(path: Path, rgb: np.ndarray, frames: int, subsample: bool) -> Path:
    """An FFV1 source of ``rgb`` as 8-bit limited-range BT.601 Y'CbCr (4:2:0 or 4:4:4)."""
    h, w = rgb.shape[:2]
    y, cb, cr = _ycbcr(rgb)
    if subsample:
        cb, cr = downsample_plane(cb, (2, 2)), downsample_plane(cr, (2, 2))
    yc = np.rint(16 + 219 * y)
    cc = [np.rint(16 + 224 * c) for c in (cb, cr)]
    data = np.concatenate([p.ravel() for p in (yc, *cc)]).astype(np.uint8).tobytes()
    pix = "yuv420p" if subsample else "yuv444p"
    run_ffmpeg(
        ["-f", "rawvideo", "-pix_fmt", pix, "-s", f"{w}x{h}", "-r", "25", "-i", "pipe:0",
         "-vf", "setparams=range=tv:colorspace=smpte170m", "-c:v", "ffv1", *bitexact_args(),
         str(path)],
        input=data * frames,
    )  # fmt: skip
    return path


def _ingest(src: Path, out: Path, chroma: str) -> list[np.ndarray]:
    info = probe(src)
    params = IngestParams(mode="progressive", chroma=chroma)  # type: ignore[arg-type]
    fmt, n = ingest(src, info, params, start=0, end=3, color="bt601-525", out=out)
    assert n == 3
    validate_intermediate(out, 3)
    return list(read_frames(out))


def test_ingest_guided_end_to_end(tmp_path: Path) -> None:
    rgb = _checker(h=48, w=64, cell=8)
    src = _write_source(tmp_path / "s420.mkv", rgb, 3, subsample=True)
    full = _write_source(tmp_path / "s444.mkv", rgb, 3, subsample=False)
    ref = _ingest(full, tmp_path / "ref.mkv", "bicubic")[0].astype(float)
    bicubic = _ingest(src, tmp_path / "bic.mkv", "bicubic")
    guided = _ingest(src, tmp_path / "gui.mkv", "guided")
    assert guided[0].dtype == np.uint16 and guided[0].shape == (48, 64, 3)
    assert not np.array_equal(guided[0], bicubic[0])
    p_guided = _psnr(guided[0], ref, 65535)
    p_bicubic = _psnr(bicubic[0], ref, 65535)
    print(f"RGB PSNR vs 4:4:4: guided {p_guided:.2f} dB, bicubic {p_bicubic:.2f} dB")
    assert p_guided > p_bicubic + 3.0, (p_guided, p_bicubic)
    # Byte-deterministic writer.
    _ingest(src, tmp_path / "gui2.mkv", "guided")
    assert (tmp_path / "gui.mkv").read_bytes() == (tmp_path / "gui2.mkv").read_bytes()
    # A 4:4:4 source has nothing to upsample: guided is the plain conversion.
    same = _ingest(full, tmp_path / "ref2.mkv", "guided")
    np.testing.assert_array_equal(same[0], ref.astype(np.uint16))
