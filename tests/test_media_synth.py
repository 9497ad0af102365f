"""Synthetic sources: deterministic, quick to make, and what they claim to be."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest

from restoro.media.probe import probe
from restoro.testing.synth import make_source, shot_starts

if TYPE_CHECKING:
    from pathlib import Path


def test_shot_starts() -> None:
    assert shot_starts() == [24, 48]
    assert shot_starts(3, [5, 7, 9]) == [5, 12]
    assert shot_starts(1, 10) == []
    with pytest.raises(ValueError, match="2 entries for 3 shots"):
        shot_starts(3, [5, 7])


def test_default_source_is_quick_and_deterministic(tmp_path: Path) -> None:
    t0 = time.monotonic()
    a = make_source(tmp_path / "a.mpg")
    elapsed = time.monotonic() - t0
    b = make_source(tmp_path / "b.mpg")
    assert a.read_bytes() == b.read_bytes()
    assert elapsed < 4.0  # typically ~0.3 s
    v = probe(a).video
    assert (v.width, v.height, v.frame_count, v.sar) == (720, 480, 72, "8:9")


@pytest.mark.parametrize("codec", ["ffv1", "h264"])
def test_interlaced_codecs_are_deterministic(tmp_path: Path, codec: str) -> None:
    kw = {"width": 160, "height": 120, "shots": 2, "shot_frames": 6, "interlaced": True}
    a = make_source(tmp_path / "a.mkv", codec=codec, **kw)  # type: ignore[arg-type]
    b = make_source(tmp_path / "b.mkv", codec=codec, **kw)  # type: ignore[arg-type]
    assert a.read_bytes() == b.read_bytes()
    assert probe(a).video.field_order == "tff"


def test_no_audio_and_tagged_colour(tmp_path: Path) -> None:
    src = make_source(
        tmp_path / "x.mkv", width=160, height=120, shots=1, audio_channels=0, codec="ffv1",
        colour="bt709",
    )  # fmt: skip
    info = probe(src)
    assert info.audio == []
    assert (info.video.color_matrix, info.video.color_primaries) == ("bt709", "bt709")


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        make_source(tmp_path / "x.mpg", audio_channels=3)
    with pytest.raises(ValueError):
        make_source(tmp_path / "x.mpg", shots=0)
