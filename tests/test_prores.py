"""ProRes delivery: raster fitting, BT.709 conversion and tags, lossless concat master, audio."""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING

import av
import numpy as np
import pytest
from media_fixtures import SD_601, source

from restoro.deliver.audio import extract_audio, sample_count
from restoro.deliver.prores import assemble_master, encode_chunk, picture_size
from restoro.errors import MediaError, StageError
from restoro.media.frameio import write_frames
from restoro.media.frames import Colour, FrameFormat

if TYPE_CHECKING:
    from pathlib import Path

NTSC = FrameFormat(width=720, height=480, frame_rate="30000/1001", sar="8:9")


def test_picture_size() -> None:
    assert picture_size(NTSC, (1920, 1080), "pillarbox") == (1440, 1080)
    assert picture_size(NTSC, (1920, 1080), "fit") == (1440, 1080)
    wide = FrameFormat(width=720, height=480, frame_rate="24", sar="32:27")  # 16:9
    assert picture_size(wide, (1440, 1080), "letterbox") == (1440, 810)
    assert picture_size(wide, (1440, 1080), "fit") == (1440, 810)
    with pytest.raises(StageError, match="does not fit"):
        picture_size(wide, (1440, 1080), "pillarbox")


def _planes(frame: av.VideoFrame) -> list[np.ndarray]:
    out = []
    for p in frame.planes:
        row = p.line_size // 2
        out.append(np.frombuffer(p, "<u2").reshape(p.height, row)[:, : p.width])
    return out


def _flat(tmp_path: Path, rgb: tuple[int, int, int], fmt: FrameFormat, n: int = 3) -> Path:
    frame = np.empty((fmt.height, fmt.width, 3), np.uint16)
    frame[...] = rgb
    path = tmp_path / f"flat{rgb}.mkv"
    write_frames(path, fmt, iter([frame] * n))
    return path


@pytest.fixture
def grey_chunk(tmp_path: Path) -> Path:
    src = _flat(tmp_path, (32768, 32768, 32768), SD_601)
    out = tmp_path / "grey.mov"
    assert encode_chunk(src, SD_601, raster=(128, 72), fit="pillarbox", out=out) == 3
    return out


def test_chunk_format_and_tags(grey_chunk: Path) -> None:
    with av.open(str(grey_chunk)) as c:
        v = c.streams.video[0]
        cc = v.codec_context
        assert (cc.name, cc.codec_tag, cc.pix_fmt) == ("prores", "apch", "yuv422p10le")
        assert (cc.width, cc.height, v.average_rate) == (128, 72, Fraction(30000, 1001))
        assert (cc.color_primaries, cc.color_trc, cc.colorspace, cc.color_range) == (1, 1, 1, 1)
        assert v.metadata.get("encoder") == "Apple ProRes 422 HQ"
        packet = next(p for p in c.demux(v) if p.size)
        assert bytes(packet)[4:8] == b"icpf" and bytes(packet)[12:16] == b"apl0"
        y, cb, cr = _planes(next(c.decode(v)))
    # 64x48 at 8:9 is 32:27 → an 86x72 picture centred at x=20, exact black bars either side
    assert picture_size(SD_601, (128, 72), "pillarbox") == (86, 72)
    assert np.all(y[:, :20] == 64) and np.all(y[:, 106:] == 64)
    assert np.all(cb[:, :10] == 512) and np.all(cr[:, 53:] == 512)
    # 50% grey: Y = 64 + 0.5 * 876, neutral chroma whatever the primaries conversion does
    assert np.all(np.abs(y[:, 20:106].astype(int) - 502) <= 1)
    assert np.all(np.abs(cb[:, 11:52].astype(int) - 512) <= 1)
    assert np.all(np.abs(cr[:, 11:52].astype(int) - 512) <= 1)


def test_chunk_is_deterministic(tmp_path: Path, grey_chunk: Path) -> None:
    src = _flat(tmp_path, (32768, 32768, 32768), SD_601)
    again = tmp_path / "again.mov"
    encode_chunk(src, SD_601, raster=(128, 72), fit="pillarbox", out=again)
    assert again.read_bytes() == grey_chunk.read_bytes()


def test_primaries_are_converted(tmp_path: Path) -> None:
    """Pure SMPTE-C green is not pure BT.709 green: the conversion must show in Cb/Cr."""
    g601 = _flat(tmp_path, (0, 65535, 0), SD_601, n=1)
    fmt709 = SD_601.model_copy(update={"colour": Colour()})
    g709 = _flat(tmp_path, (0, 65535, 0), fmt709, n=1)
    chroma = []
    for src, fmt in ((g601, SD_601), (g709, fmt709)):
        out = tmp_path / f"{src.stem}.mov"
        encode_chunk(src, fmt, raster=(96, 72), fit="pillarbox", profile="4444", out=out)
        with av.open(str(out)) as c:
            assert c.streams.video[0].codec_context.codec_tag == "ap4h"
            frame = next(c.decode(video=0))
            assert frame.format.name == "yuv444p12le"  # the decoder's format for 4444
            y, cb, cr = (p >> 2 for p in _planes(frame))
        chroma.append((int(y[36, 48]), int(cb[36, 48]), int(cr[36, 48])))
    # BT.709 green, limited 10-bit: Y = 64 + 0.7152 * 876
    assert abs(chroma[1][0] - round(64 + 0.7152 * 876)) <= 1
    assert chroma[0] != chroma[1]


def _master_inputs(factory: pytest.TempPathFactory, tmp: Path) -> tuple[list[Path], Path]:
    chunks = []
    for i, rgb in enumerate([(1000, 20000, 40000), (50000, 30000, 10000)]):
        src = _flat(tmp, rgb, SD_601, n=4 + i)
        chunks.append(
            encode_chunk(src, SD_601, raster=(128, 72), out=tmp / f"c{i}.mov") and tmp / f"c{i}.mov"
        )
    stereo = source(factory, "audio.mpg", width=160, height=120, shots=1, shot_frames=12)
    wav = tmp / "a.wav"
    extract_audio(stereo, 1, start_frame=0, frames=9, frame_rate="30000/1001", out=wav)
    return chunks, wav


def test_master(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    chunks, wav = _master_inputs(tmp_path_factory, tmp_path)
    meta = {"title": "Emissary", "comment": "restoro"}
    outs = [tmp_path / "m1.mov", tmp_path / "m2.mov"]
    for out in outs:
        assemble_master(
            chunks, out, frame_rate="30000/1001", timecode="01:00:00;00", audio=[wav], metadata=meta
        )
    assert outs[0].read_bytes() == outs[1].read_bytes()
    want = []
    for chunk in chunks:
        with av.open(str(chunk)) as c:
            want += [bytes(p) for p in c.demux(c.streams.video[0]) if p.size]
    with av.open(str(outs[0])) as c:
        assert [s.type for s in c.streams] == ["video", "audio", "data"]
        assert c.metadata["title"] == "Emissary" and c.metadata["comment"] == "restoro"
        assert c.streams.data[0].metadata["timecode"] == "01:00:00;00"
        a = c.streams.audio[0]
        assert (a.codec_context.name, a.rate, a.channels) == ("pcm_s24le", 48000, 2)
        got = [bytes(p) for p in c.demux(c.streams.video[0]) if p.size]
    assert len(got) == 9 and got == want


def _samples(path: Path) -> np.ndarray:
    """Decoded PCM as (samples, channels)."""
    with av.open(str(path)) as c:
        channels = c.streams.audio[0].channels
        data = np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(audio=0)])
    return data.reshape(-1, channels)


def test_extract_audio_length_and_determinism(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    src = source(tmp_path_factory, "a6.mpg", width=160, height=120, audio_channels=6)
    a, b = tmp_path / "a.wav", tmp_path / "b.wav"
    for out in (a, b):
        extract_audio(src, 1, start_frame=10, frames=25, frame_rate="30000/1001", out=out)
    assert a.read_bytes() == b.read_bytes()
    with av.open(str(a)) as c:
        s = c.streams.audio[0]
        assert (s.codec_context.name, s.rate, s.channels) == ("pcm_s24le", 48000, 6)
        n = sum(f.samples for f in c.decode(s))
    assert n == sample_count(25, "30000/1001") == 40040


def test_extract_audio_is_aligned_to_the_picture(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    src = source(tmp_path_factory, "a6.mpg", width=160, height=120, audio_channels=6)
    whole, part = tmp_path / "whole.wav", tmp_path / "part.wav"
    extract_audio(src, 1, start_frame=0, frames=60, frame_rate="30000/1001", out=whole)
    extract_audio(src, 1, start_frame=30, frames=30, frame_rate="30000/1001", out=part)

    w, p = _samples(whole), _samples(part)
    first = sample_count(30, "30000/1001")
    assert w.shape == (sample_count(60, "30000/1001"), 6)
    np.testing.assert_array_equal(w[first : first + len(p)], p)


def test_resampling_and_padding(tmp_path: Path) -> None:
    from restoro.media.ffmpeg import bitexact_args, run_ffmpeg

    src = tmp_path / "441.wav"
    run_ffmpeg(["-f", "lavfi", "-i", "sine=r=44100:d=0.5", *bitexact_args(), str(src)])
    out = tmp_path / "o.wav"
    # 1 s of picture from a 0.5 s source: soxr to 48 kHz, then padded with silence
    extract_audio(src, 0, start_frame=0, frames=25, frame_rate="25", out=out)
    data = _samples(out)
    assert data.shape == (48000, 1)
    assert np.abs(data[:20000]).max() > 0 and np.all(data[26000:] == 0)


def test_extract_audio_rejects_video_stream(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    src = source(tmp_path_factory, "a6.mpg", width=160, height=120, audio_channels=6)
    with pytest.raises(
        MediaError, match=r"stream 0 .* not an audio stream \(streams: 0: video, 1: audio\)"
    ):
        extract_audio(
            src, 0, start_frame=0, frames=5, frame_rate="30000/1001", out=tmp_path / "x.wav"
        )
