"""probe: what make_source made is what probe sees; broken files fail with MediaError."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
from media_fixtures import source

from restoro.errors import MediaError
from restoro.media.ffmpeg import bitexact_args, run_ffmpeg
from restoro.media.probe import probe

if TYPE_CHECKING:
    from pathlib import Path


def test_progressive_mpeg2(tmp_path_factory: pytest.TempPathFactory) -> None:
    info = probe(source(tmp_path_factory, "p.mpg"))
    v = info.video
    assert (v.codec, v.width, v.height) == ("mpeg2video", 720, 480)
    assert v.frame_rate == "30000/1001"
    assert v.frame_count == 72
    assert v.field_order == "progressive"
    assert (v.sar, v.dar) == ("8:9", "4:3")
    assert v.color_matrix is None and v.color_primaries is None  # untagged, like a DVD
    assert [(a.channels, a.sample_rate, a.codec) for a in info.audio] == [(2, 48000, "ac3")]
    assert info.format_name == "mpeg"
    json.dumps(info.model_dump(mode="json"))


def test_interlaced_mpeg2_is_tff_with_51(tmp_path_factory: pytest.TempPathFactory) -> None:
    info = probe(source(tmp_path_factory, "i.mpg", interlaced=True, audio_channels=6))
    assert info.video.field_order == "tff"
    assert info.video.frame_count == 72
    assert info.audio[0].channels == 6


@pytest.mark.parametrize(
    ("codec", "interlaced", "order"),
    [("h264", True, "tff"), ("ffv1", False, "progressive"), ("ffv1", True, "tff")],
)
def test_matroska_sources(
    tmp_path_factory: pytest.TempPathFactory, codec: str, interlaced: bool, order: str
) -> None:
    src = source(
        tmp_path_factory, "s.mkv", codec=codec, interlaced=interlaced, width=320, height=240,
        shot_frames=[10, 7],  shots=2,
    )  # fmt: skip
    v = probe(src).video
    assert (v.codec, v.field_order, v.frame_count) == (codec, order, 17)


def test_pal_tagged_mov(tmp_path_factory: pytest.TempPathFactory) -> None:
    src = source(
        tmp_path_factory, "pal.mov", codec="h264", width=720, height=576, rate="25",
        sar="16:15", colour="bt601-625", shot_frames=5,
    )  # fmt: skip
    v = probe(src).video
    assert (v.frame_rate, v.sar, v.dar, v.frame_count) == ("25/1", "16:15", "4:3", 15)
    assert (v.color_matrix, v.color_primaries, v.color_range) == ("bt470bg", "bt470bg", "tv")


def test_timecode_from_gop_header(tmp_path: Path) -> None:
    out = tmp_path / "tc.mpg"
    run_ffmpeg(
        ["-f", "lavfi", "-i", "testsrc2=s=320x240:r=30000/1001", "-frames:v", "5",
         "-c:v", "mpeg2video", "-timecode", "01:00:00;00", *bitexact_args(), str(out)]
    )  # fmt: skip
    assert probe(out).video.timecode == "01:00:00;00"


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="not found"):
        probe(tmp_path / "nope.vob")


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "e.vob").write_bytes(b"")
    with pytest.raises(MediaError, match="empty"):
        probe(tmp_path / "e.vob")


@pytest.mark.parametrize("content", [b"just some text\n" * 10, bytes(range(256)) * 64])
def test_not_media(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "junk.mpg").write_bytes(content)
    with pytest.raises(MediaError) as info:
        probe(tmp_path / "junk.mpg")
    assert info.value.hint


def test_audio_only(tmp_path: Path) -> None:
    out = tmp_path / "tone.wav"
    run_ffmpeg(["-f", "lavfi", "-i", "sine=d=0.2", *bitexact_args(), str(out)])
    with pytest.raises(MediaError, match="no video stream.*audio"):
        probe(out)


def test_matroska_cut_in_the_middle_is_reported(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    src = source(tmp_path_factory, "cut.mkv", codec="h264", width=320, height=240)
    data = src.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(MediaError, match="truncated"):
        probe(cut)


def test_truncated_mpeg_ps_fails_cleanly_or_is_shorter(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    # MPEG-PS carries no total duration, so a cut copy can only be seen to be shorter.
    data = source(tmp_path_factory, "p.mpg").read_bytes()
    for size in (2048, len(data) // 2):
        cut = tmp_path / f"cut{size}.mpg"
        cut.write_bytes(data[:size])
        try:
            info = probe(cut)
        except MediaError:
            continue
        assert info.video.frame_count < 72
