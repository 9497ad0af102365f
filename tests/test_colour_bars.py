"""BT.601 → BT.709: 75 % colour bars through ingest and the ProRes master land on the BT.709
10-bit Y'CbCr bar values (limited range) within 2 code values."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pytest
from buildkit import build

from restoro.media.ffmpeg import run_ffmpeg
from restoro.testing.synth import BARS_75, make_bars

if TYPE_CHECKING:
    from pathlib import Path

W, H = 350, 240  # 7 bars of 50 columns
RASTER = (640, 360)

MANIFEST = """\
restoro: 1
project: bars
sources:
  bars:
    path: media/bars.mkv
pipelines:
  main:
    - {stage: ingest, mode: progressive, gamut: GAMUT}
titles:
  t:
    source: bars
    pipeline: main
    shots: {detector: content, threshold: 27, min_frames: 4}
deliverables:
  master: {kind: prores, profile: 422hq, raster: 640x360, fit: pillarbox}
"""


def bt709_10bit(rgb: np.ndarray) -> np.ndarray:
    """R'G'B' in [0, 1] → BT.709 limited-range 10-bit (Y', Cb, Cr), unrounded."""
    r, g, b = rgb
    y = 0.2126 * r + 0.7152 * g + 0.0722 * b
    return np.array([64 + 876 * y, 512 + 896 * (b - y) / 1.8556, 512 + 896 * (r - y) / 1.5748])


def bt601_decode(ycbcr: np.ndarray, bits: int) -> np.ndarray:
    """Limited-range BT.601 Y'CbCr codes → R'G'B' in [0, 1] (float, no rounding; out-of-gamut
    values, e.g. the slightly negative G' of an 8-bit red, clipped as in the working frames)."""
    s = 2 ** (bits - 8)
    y = (ycbcr[0] / s - 16) / 219
    cb, cr = (ycbcr[1] / s - 128) / 224, (ycbcr[2] / s - 128) / 224
    r = y + 1.402 * cr
    b = y + 1.772 * cb
    g = (y - 0.299 * r - 0.114 * b) / 0.587
    return np.clip([r, g, b], 0, 1)  # the working frames are R'G'B' in [0, 1]


def _planes(path: Path, w: int, h: int, pix_fmt: str) -> tuple[np.ndarray, ...]:
    """The first picture's Y, Cb, Cr planes (chroma upsampled by repetition to full size)."""
    raw = path.with_suffix(".yuv")
    run_ffmpeg(["-i", str(path), "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", pix_fmt, str(raw)])
    dtype = "<u2" if "10" in pix_fmt else "u1"
    a = np.fromfile(raw, dtype=dtype).astype(np.float64)
    cw, ch = (w // 2, h // 2) if pix_fmt.startswith("yuv420") else (w // 2, h)
    y = a[: w * h].reshape(h, w)
    cb = a[w * h : w * h + cw * ch].reshape(ch, cw)
    cr = a[w * h + cw * ch :].reshape(ch, cw)
    up = [np.repeat(np.repeat(c, h // ch, axis=0), 2, axis=1) for c in (cb, cr)]
    return y, up[0], up[1]


def _bar_centres(y: np.ndarray) -> list[int]:
    cols = np.flatnonzero(y.mean(axis=0) > 80)  # the blue bar's Y' is well above black
    x0, x1 = cols[0], cols[-1] + 1
    return [int(x0 + (i + 0.5) * (x1 - x0) / 7) for i in range(7)]


def _master_bars(tmp_path: Path, gamut: str = "keep") -> np.ndarray:
    manifest = tmp_path / "restoro.yaml"
    manifest.write_text(MANIFEST.replace("GAMUT", gamut), encoding="utf-8")
    assert build(manifest).failed == 0
    y, cb, cr = _planes(tmp_path / "out" / "master" / "t.mov", *RASTER, "yuv422p10le")
    mid = RASTER[1] // 2
    return np.array([[p[mid, x] for p in (y, cb, cr)] for x in _bar_centres(y)])


@pytest.mark.parametrize("colour", ["bt601-525", None])
def test_10bit_bars_land_on_the_bt709_bar_values(tmp_path: Path, colour: str | None) -> None:
    """A 10-bit 4:2:2 tape capture of 75 % bars, tagged or untagged (SD: BT.601 by line count)."""
    (tmp_path / "media").mkdir()
    make_bars(tmp_path / "media" / "bars.mkv", width=W, height=H, colour=colour,
              pix_fmt="yuv422p10le")  # fmt: skip
    got = _master_bars(tmp_path)
    want = np.array([bt709_10bit(np.array(bar) / 255) for bar in BARS_75])
    err = np.abs(got - want)
    assert err.max() <= 2, np.column_stack([want.round(1), got]).tolist()
    # the matrix was converted: the red bar's BT.601 codes, passed through, would miss by far
    r = 191 / 255
    y601 = 0.299 * r
    as_601 = np.array([64 + 876 * y601, 512 - 896 * y601 / 1.772, 512 + 896 * (r - y601) / 1.402])
    assert np.abs(got[5] - as_601).max() > 20


def test_8bit_dvd_bars_land_within_2_codes_of_what_they_carry(tmp_path: Path) -> None:
    """8-bit 4:2:0, untagged, as on a DVD: the values the source really carries (its 8-bit
    Y'CbCr decoded exactly with the BT.601 matrix) land within 2 codes; the nominal bar values
    within 4 (8-bit Y'CbCr quantisation, not the conversion)."""
    (tmp_path / "media").mkdir()
    src = make_bars(tmp_path / "media" / "bars.mkv", width=W, height=H, colour=None)
    y, cb, cr = _planes(src, W, H, "yuv420p")
    carried = np.array(
        [bt709_10bit(bt601_decode(np.array([p[H // 2, x] for p in (y, cb, cr)]), 8))
         for x in (int((i + 0.5) * W / 7) for i in range(7))]
    )  # fmt: skip
    got = _master_bars(tmp_path)
    assert np.abs(got - carried).max() <= 2, np.column_stack([carried.round(1), got]).tolist()
    nominal = np.array([bt709_10bit(np.array(bar) / 255) for bar in BARS_75])
    assert np.abs(got - nominal).max() <= 4


def test_gamut_convert_maps_the_primaries(tmp_path: Path) -> None:
    """gamut: convert maps SMPTE C primaries into BT.709 at delivery: white stays white, the
    saturated bars move (their other channels lift), so they are no longer the 709 bar values."""
    (tmp_path / "media").mkdir()
    make_bars(tmp_path / "media" / "bars.mkv", width=W, height=H, pix_fmt="yuv422p10le")
    got = _master_bars(tmp_path, "convert")
    want = np.array([bt709_10bit(np.array(bar) / 255) for bar in BARS_75])
    assert np.abs(got[0] - want[0]).max() <= 2
    assert np.abs(got[6] - want[6]).max() > 10  # blue
