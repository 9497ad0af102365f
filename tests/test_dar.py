"""Display aspect through a full build: anamorphic 16:9 and 4:3 PAL sources give masters whose
active picture (the non-black area of the raster) has the source's DAR within 0.5 %."""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np
import pytest
from buildkit import build

from restoro.media.ffmpeg import run_ffmpeg
from restoro.testing.synth import make_pal

if TYPE_CHECKING:
    from pathlib import Path

MANIFEST = """\
restoro: 1
project: dar
sources:
  pal:
    path: media/pal.mpg
pipelines:
  main:
    - {stage: ingest}
titles:
  t:
    source: pal
    pipeline: main
    shots: {detector: content, threshold: 27, min_frames: 4}
deliverables:
  master: {kind: prores, profile: 422hq, raster: RASTER, fit: FIT}
"""


def active_area(path: Path, w: int, h: int) -> tuple[int, int]:
    """Width and height of the part of the raster that is not the pad's exact black (Y' 64)
    in any frame."""
    raw = path.with_suffix(".y")
    run_ffmpeg(["-i", str(path), "-f", "rawvideo", "-pix_fmt", "yuv422p10le", str(raw)])
    a = np.fromfile(raw, dtype="<u2").reshape(-1, h * w * 2)[:, : w * h].reshape(-1, h, w)
    peak = a.max(axis=0)  # brightest Y' over all frames at each pixel
    cols = np.flatnonzero(peak.max(axis=0) > 72)
    rows = np.flatnonzero(peak.max(axis=1) > 72)
    return int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)


@pytest.mark.parametrize(
    ("sar", "dar", "raster", "fit"),
    [
        ("64:45", Fraction(16, 9), (640, 480), "letterbox"),  # anamorphic 16:9 into 4:3
        ("64:45", Fraction(16, 9), (768, 432), "pillarbox"),  # fills a 16:9 raster
        ("16:15", Fraction(4, 3), (768, 432), "pillarbox"),  # 4:3 stays 4:3
    ],
)
def test_master_keeps_the_display_aspect(
    tmp_path: Path, sar: str, dar: Fraction, raster: tuple[int, int], fit: str
) -> None:
    (tmp_path / "media").mkdir()
    make_pal(tmp_path / "media" / "pal.mpg", width=360, height=288, frames=10, sar=sar)
    manifest = tmp_path / "restoro.yaml"
    text = MANIFEST.replace("RASTER", f"{raster[0]}x{raster[1]}").replace("FIT", fit)
    manifest.write_text(text, encoding="utf-8")
    assert build(manifest).failed == 0
    w, h = active_area(tmp_path / "out" / "master" / "t.mov", *raster)
    assert abs(Fraction(w, h) / dar - 1) <= Fraction(5, 1000), (w, h, float(Fraction(w, h)))
    # the picture touches the raster's edges along the fitted dimension: no second stretch
    assert (h if fit == "pillarbox" else w) == (raster[1] if fit == "pillarbox" else raster[0])
