"""Shot detection finds the synthetic clip's hard cuts at the right frames."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pytest
from media_fixtures import source

from restoro.errors import StageError
from restoro.media.probe import probe
from restoro.media.shots import analysis_frame, detect_cuts
from restoro.stages.ingest import IngestParams, ingest
from restoro.testing.synth import shot_starts

if TYPE_CHECKING:
    from pathlib import Path

SHOTS = [14, 12, 17, 13, 15, 12]


def _intermediate(factory: pytest.TempPathFactory, interlaced: bool) -> Path:
    src = source(
        factory, "cuts.mpg", width=320, height=240, shots=len(SHOTS), shot_frames=SHOTS,
        interlaced=interlaced, audio_channels=0,
    )  # fmt: skip
    info = probe(src)
    out = factory.mktemp("cuts") / "frames.mkv"
    ingest(src, info, IngestParams(), start=0, end=info.video.frame_count, out=out)
    return out


@pytest.fixture(scope="module")
def progressive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _intermediate(tmp_path_factory, interlaced=False)


def test_content_detector_finds_every_cut(progressive: Path) -> None:
    expected = shot_starts(len(SHOTS), SHOTS)
    assert expected == [14, 26, 43, 56, 71]
    assert detect_cuts(progressive, min_frames=8) == expected


def test_min_frames_suppresses_short_shots(progressive: Path) -> None:
    cuts = detect_cuts(progressive, min_frames=16)
    assert cuts and all(b - a >= 16 for a, b in zip([0, *cuts], cuts, strict=False))


def test_interlaced_source_after_deinterlace(tmp_path_factory: pytest.TempPathFactory) -> None:
    frames = _intermediate(tmp_path_factory, interlaced=True)
    assert detect_cuts(frames, min_frames=8) == shot_starts(len(SHOTS), SHOTS)


def test_none_and_unknown(progressive: Path) -> None:
    assert detect_cuts(progressive, detector="none") == []
    with pytest.raises(StageError, match="unknown shot detector"):
        detect_cuts(progressive, detector="magic")


def test_analysis_frame_is_small_8bit_bgr() -> None:
    frame = np.zeros((480, 720, 3), np.uint16)
    frame[..., 0] = 65535  # red
    small = analysis_frame(frame)
    assert small.dtype == np.uint8 and small.shape == (240, 360, 3)
    assert small[0, 0].tolist() == [0, 0, 255]
