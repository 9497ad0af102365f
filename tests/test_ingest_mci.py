"""`convert: mci`: video-rate frames converted to a film-rate title by motion-compensated
interpolation put a moving object once, where it is at that instant (a blend shows it twice)."""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np

from restoro.media.ffmpeg import run_ffmpeg
from restoro.media.frameio import read_frames
from restoro.media.probe import probe
from restoro.media.timeline import Timeline
from restoro.stages.ingest import IngestParams
from restoro.stages.ingest_timeline import ingest_title

if TYPE_CHECKING:
    from pathlib import Path

NTSC, FILM = Fraction(30000, 1001), Fraction(24000, 1001)
X0, SPEED, SIDE = 16, 8, 24  # a square moving SPEED pixels a frame


def _moving_square(path: Path, frames: int = 20) -> Path:
    graph = (
        "color=c=black:s=192x96:r=30000/1001,format=yuv444p[bg];"
        f"color=c=white:s={SIDE}x{SIDE}:r=30000/1001,format=yuv444p[fg];"
        f"[bg][fg]overlay=x='{X0}+{SPEED}*n':y=36:shortest=0,setsar=1"
    )
    run_ffmpeg(["-filter_complex", graph, "-frames:v", str(frames), "-r", "30000/1001",
                "-c:v", "ffv1", "-pix_fmt", "yuv444p", str(path)])  # fmt: skip
    return path


def _convert(src: Path, out: Path, convert: str) -> list[np.ndarray]:
    info = probe(src)
    tl = Timeline((0, info.video.frame_count), NTSC, FILM)
    ingest_title(src, info, IngestParams(mode="progressive", convert=convert), timeline=tl,  # type: ignore[arg-type]
                 cadence=None, out=out, work=out.parent / "w")  # fmt: skip
    return list(read_frames(out))


def _profile(frame: np.ndarray) -> np.ndarray:
    """The square's rows, averaged: brightness by column in [0, 1]."""
    return frame[40:56, :, 1].astype(np.float64).mean(axis=0) / 65535


def test_mci_moves_the_object_instead_of_doubling_it(tmp_path: Path) -> None:
    src = _moving_square(tmp_path / "sq.mkv")
    mci = _convert(src, tmp_path / "mci.mkv", "mci")
    blend = _convert(src, tmp_path / "blend.mkv", "blend")
    assert len(mci) == len(blend) == 16  # 20 frames at 29.97 → 16 at 23.976
    cols = np.arange(mci[0].shape[1])

    def centre(p: np.ndarray) -> float:
        return float((p * cols).sum() / p.sum())

    origin = centre(_profile(mci[0]))  # title frame 0 is source frame 0, as it is
    checked = 0
    for k in range(1, 12):
        x = Fraction(k) * NTSC / FILM  # position in source frames
        if x.denominator == 1:
            continue
        want = origin + SPEED * float(x)
        p, q = _profile(mci[k]), _profile(blend[k])
        assert abs(centre(p) - want) < 0.5, (k, centre(p), want)
        # one sharp square: few partly-lit columns; the blend has a ghost strip on each side
        assert int(((p > 0.15) & (p < 0.85)).sum()) <= 3, (k, np.round(p, 2).tolist())
        assert int(((q > 0.15) & (q < 0.85)).sum()) >= SPEED
        checked += 1
    assert checked >= 6
    again = _convert(src, tmp_path / "mci2.mkv", "mci")
    assert all(np.array_equal(a, b) for a, b in zip(mci, again, strict=True))
