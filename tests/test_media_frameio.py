"""FFVHuff intermediates: bit-exact round trips, deterministic bytes, validation, exact ranges."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pytest
from media_fixtures import SD_601, random_frames

from restoro.errors import StageError
from restoro.media.frameio import (
    FrameWriter,
    count_frames,
    extract_range,
    read_format,
    read_frames,
    read_last_frame,
    validate_intermediate,
    write_frames,
)

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture
def frames() -> list[np.ndarray]:
    return random_frames(10, SD_601.width, SD_601.height)


@pytest.fixture
def clip(tmp_path: Path, frames: list[np.ndarray]) -> Path:
    path = tmp_path / "clip.mkv"
    write_frames(path, SD_601, iter(frames))
    return path


def test_round_trip_is_bit_exact(clip: Path, frames: list[np.ndarray]) -> None:
    back = list(read_frames(clip))
    assert len(back) == len(frames)
    for a, b in zip(frames, back, strict=True):
        assert b.dtype == np.uint16 and b.shape == a.shape
        np.testing.assert_array_equal(a, b)


def test_channel_order_is_rgb(tmp_path: Path) -> None:
    frame = np.empty((SD_601.height, SD_601.width, 3), np.uint16)
    frame[..., 0], frame[..., 1], frame[..., 2] = 1000, 30000, 65535
    path = tmp_path / "rgb.mkv"
    write_frames(path, SD_601, iter([frame]))
    (back,) = read_frames(path)
    assert back[0, 0].tolist() == [1000, 30000, 65535]


def test_bytes_are_deterministic(tmp_path: Path, clip: Path, frames: list[np.ndarray]) -> None:
    again = tmp_path / "again.mkv"
    write_frames(again, SD_601, iter(frames))
    assert again.read_bytes() == clip.read_bytes()


def test_format_count_and_tags(clip: Path) -> None:
    import av

    assert read_format(clip) == SD_601
    assert count_frames(clip) == 10
    with av.open(str(clip)) as c:
        s = c.streams.video[0]
        assert s.codec_context.name == "ffvhuff"
        assert str(s.sample_aspect_ratio) == "8/9"
        assert s.codec_context.color_primaries == 6  # smpte170m
        assert s.codec_context.colorspace == 0  # RGB


def test_writer_counts_and_rejects_bad_frames(tmp_path: Path) -> None:
    path = tmp_path / "bad.mkv"
    with pytest.raises(StageError, match="expected uint16"):
        with FrameWriter(path, SD_601) as writer:
            writer.write(np.zeros((SD_601.height, SD_601.width, 3), np.uint16))
            assert writer.count == 1
            writer.write(np.zeros((SD_601.height, SD_601.width, 3), np.uint8))
    assert not path.exists()


def test_validate(clip: Path) -> None:
    validate_intermediate(clip)
    validate_intermediate(clip, 10)
    with pytest.raises(StageError, match="10 frames, expected 11"):
        validate_intermediate(clip, 11)


@pytest.mark.parametrize("keep", [0.5, 0.97])
def test_validate_catches_a_file_cut_short(tmp_path: Path, clip: Path, keep: float) -> None:
    data = clip.read_bytes()
    bad = tmp_path / "bad.mkv"
    bad.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(StageError):
        validate_intermediate(bad, 10)


def test_validate_rejects_another_layout(tmp_path: Path) -> None:
    from restoro.media.ffmpeg import run_ffmpeg

    path = tmp_path / "yuv.mkv"
    run_ffmpeg(["-f", "lavfi", "-i", "testsrc2=s=64x48:r=24", "-frames:v", "3",
                "-c:v", "ffvhuff", "-pix_fmt", "yuv420p", str(path)])  # fmt: skip
    with pytest.raises(StageError, match="yuv420p, not gbrp16le"):
        validate_intermediate(path, 3)


def test_the_12_bit_planes_the_writer_sends_are_rounded_as_to_12bit_says() -> None:
    from restoro.media.frameio import planes_12bit, to_12bit, to_planes

    every = np.arange(65536, dtype=np.uint16)
    rng = np.random.default_rng(5)
    frame = np.stack([every, rng.permutation(every), every[::-1]], axis=-1).reshape(256, 256, 3)
    got = planes_12bit(frame)
    assert got.dtype == np.dtype("<u2") and got.shape == (3, 256, 256)
    assert np.array_equal(got, to_planes(to_12bit(frame)))  # every 16-bit value, each plane
    odd = frame[:37, :50]  # a view with strides, as a stage may hand the writer
    assert np.array_equal(planes_12bit(odd), to_planes(to_12bit(odd)))


def test_compact_intermediates_round_to_12_bits(tmp_path: Path, frames: list[np.ndarray]) -> None:
    import av

    from restoro.media.frameio import COMPACT, from_12bit, to_12bit

    a, b = tmp_path / "a.mkv", tmp_path / "b.mkv"
    write_frames(a, SD_601, iter(frames), COMPACT)
    write_frames(b, SD_601, iter(frames), COMPACT)
    assert a.read_bytes() == b.read_bytes()
    validate_intermediate(a, 10)
    with av.open(str(a)) as c:
        ctx = c.streams.video[0].codec_context
        assert (ctx.name, ctx.pix_fmt) == ("ffv1", "gbrp12le")
    for want, got in zip(frames, read_frames(a), strict=True):
        np.testing.assert_array_equal(got, from_12bit(to_12bit(want)))
        assert np.abs(got.astype(np.int64) - want).max() <= 9  # half a 12-bit step, rounded
    edges = np.array([0, 8, 9, 65526, 65527, 65535], np.uint16)
    assert from_12bit(to_12bit(edges)).tolist() == [0, 0, 16, 65519, 65535, 65535]


def test_legacy_ffv1_intermediates_still_read(tmp_path: Path, frames: list[np.ndarray]) -> None:
    import restoro.media.frameio as frameio

    path = tmp_path / "old.mkv"
    args = ["-c:v", "ffv1", "-level", "3", "-g", "1", "-slices", "4", "-slicecrc", "1"]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(frameio, "CODEC_ARGS", args)
        write_frames(path, SD_601, iter(frames))
    validate_intermediate(path, 10)
    for a, b in zip(frames, read_frames(path), strict=True):
        np.testing.assert_array_equal(a, b)


def test_validate_rejects_non_media(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mkv"
    junk.write_text("nope")
    with pytest.raises(StageError):
        validate_intermediate(junk)


def test_extract_range_is_exact_and_deterministic(
    tmp_path: Path, clip: Path, frames: list[np.ndarray]
) -> None:
    a, b = tmp_path / "a.mkv", tmp_path / "b.mkv"
    extract_range(clip, 3, 8, a)
    extract_range(clip, 3, 8, b)
    assert a.read_bytes() == b.read_bytes()
    back = list(read_frames(a))
    assert len(back) == 5
    for want, got in zip(frames[3:8], back, strict=True):
        np.testing.assert_array_equal(want, got)
    assert read_format(a) == SD_601
    validate_intermediate(a, 5)


def test_extract_range_bounds(tmp_path: Path, clip: Path) -> None:
    with pytest.raises(StageError, match="outside"):
        extract_range(clip, 5, 11, tmp_path / "x.mkv")


def test_bytes_do_not_depend_on_thread_count(
    tmp_path: Path, frames: list[np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    import restoro.media.frameio as frameio

    outs = []
    for threads in ("1", "3"):
        args = list(frameio.CODEC_ARGS)
        args[args.index("-threads") + 1] = threads
        monkeypatch.setattr(frameio, "CODEC_ARGS", args)
        out = tmp_path / f"t{threads}.mkv"
        write_frames(out, SD_601, iter(frames))
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]


@pytest.mark.parametrize("n", [1, 2, 300])
def test_the_last_frame_is_read_from_the_end_of_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, n: int
) -> None:
    """``read_last_frame`` is the last frame ``read_frames`` gives, found by a seek to the
    end: of a long intermediate it demuxes a few packets, not all of them."""
    from restoro.media import frameio
    from restoro.media.frames import FrameFormat

    rng = np.random.default_rng(n)
    frames = [rng.integers(0, 65535, (48, 64, 3), dtype=np.uint16) for _ in range(n)]
    path = tmp_path / "f.mkv"
    write_frames(path, FrameFormat(width=64, height=48, frame_rate="24000/1001"), iter(frames))
    demuxed: list[int] = []
    whole = frameio._count_and_decode_last

    def spy(*args: object) -> tuple[int, object]:
        got = whole(*args)  # type: ignore[arg-type]
        demuxed.append(got[0])
        return got

    monkeypatch.setattr(frameio, "_count_and_decode_last", spy)
    last = read_last_frame(path)
    assert np.array_equal(last, frames[-1]) and np.array_equal(last, list(read_frames(path))[-1])
    if n == 300:
        assert demuxed and demuxed[-1] < 100, demuxed
