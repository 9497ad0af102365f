"""The ProRes 4444 mezzanine after a model: deterministic bytes, its working frames, and every
ffmpeg graph that reads one sees the frames ``read_frames`` gives (the same output as from an
RGB intermediate holding those frames)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import av
import numpy as np
import pytest
from media_fixtures import SD_601

from restoro.media import frameio
from restoro.media.frameio import (
    MEZZANINE,
    input_filters,
    is_mezzanine,
    read_format,
    read_frames,
    read_last_frame,
    validate_intermediate,
    write_frames,
)

if TYPE_CHECKING:
    from pathlib import Path


def _pictures(n: int, w: int = 64, h: int = 48) -> list[np.ndarray]:
    """Smooth colour pictures with detail (a model's output is no white noise)."""
    import cv2

    rng = np.random.default_rng(7)
    out = []
    for _ in range(n):
        small = rng.random((h // 8, w // 8, 3)).astype(np.float32)
        big = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
        big += 0.01 * rng.standard_normal(big.shape).astype(np.float32)
        out.append(np.clip(np.rint(big * 65535), 0, 65535).astype(np.uint16))
    return out


@pytest.fixture
def pictures() -> list[np.ndarray]:
    return _pictures(4)


@pytest.fixture
def mezz(tmp_path: Path, pictures: list[np.ndarray]) -> Path:
    path = tmp_path / "mezz.mkv"
    write_frames(path, SD_601, iter(pictures), MEZZANINE)
    return path


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * np.log10(65535.0**2 / max(mse, 1e-12))


def test_a_mezzanine_is_prores_4444_and_reads_back_as_its_pictures(
    tmp_path: Path, mezz: Path, pictures: list[np.ndarray]
) -> None:
    validate_intermediate(mezz, 4)
    assert is_mezzanine(mezz) and input_filters(mezz) == [frameio.FROM_MEZZANINE]
    with av.open(str(mezz)) as c:
        s = c.streams.video[0]
        assert s.codec_context.name == "prores" and s.codec_context.codec_tag == "ap4h"
        assert (s.codec_context.color_primaries, s.codec_context.color_trc) == (6, 6)  # 170m
    assert read_format(mezz) == SD_601
    back = list(read_frames(mezz))
    assert len(back) == 4
    for want, got in zip(pictures, back, strict=True):
        assert got.dtype == np.uint16 and got.shape == want.shape
        # 10-bit 4:4:4 at ProRes 4444's rate: ~44 dB on these noisy pictures, 51-54 dB on a
        # model's output (performance.md); a wrong matrix or swapped planes is far below
        assert _psnr(want, got) > 40
        assert not np.array_equal(want, got)  # lossy: this is no lossless path
    np.testing.assert_array_equal(read_last_frame(mezz), back[-1])
    # An RGB intermediate is none of this.
    rgb = tmp_path / "rgb.mkv"
    write_frames(rgb, SD_601, iter(pictures))
    assert not is_mezzanine(rgb) and input_filters(rgb) == []


def test_mezzanine_bytes_depend_on_the_frames_only(
    tmp_path: Path, mezz: Path, pictures: list[np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    again = tmp_path / "again.mkv"
    write_frames(again, SD_601, iter(pictures), MEZZANINE)
    assert again.read_bytes() == mezz.read_bytes()
    assert frameio.MEZZANINE_ARGS[-2:] == ["-threads", "0"]  # every core, whatever the bytes
    for threads in ("1", "2", "4"):
        args = [*frameio.MEZZANINE_ARGS[:-1], threads]
        monkeypatch.setattr(frameio, "MEZZANINE_ARGS", args)
        other = tmp_path / f"t{threads}.mkv"
        write_frames(other, SD_601, iter(pictures), MEZZANINE)
        assert other.read_bytes() == mezz.read_bytes()
    changed = [p.copy() for p in pictures]
    changed[2][10, 10] ^= 0x4000
    write_frames(again, SD_601, iter(changed), MEZZANINE)
    assert again.read_bytes() != mezz.read_bytes()


def _prores(src: Path, out: Path) -> None:
    from restoro.deliver.prores import encode_chunk

    encode_chunk(src, SD_601, raster=(128, 96), fit="pillarbox", out=out)


def _stream(src: Path, out: Path) -> None:
    from restoro.deliver.streaming.encode import encode_shot

    encode_shot(src, SD_601, codec="h264", height=48, bitrate="500k", cadence=2, out=out)


def _imf(src: Path, out: Path) -> None:
    from restoro.deliver.imf.j2k import encode_shot

    encode_shot(src, SD_601, raster=(128, 96), fit="pillarbox", reversible=False, out=out)


def _proxy_frame(src: Path, out: Path) -> None:
    from restoro.media.ffmpeg import run_ffmpeg

    vf = ",".join([*input_filters(src), "format=gbrp16le"])
    run_ffmpeg(["-i", str(src), "-vf", vf, "-f", "rawvideo", "-pix_fmt", "gbrp16le", str(out)])


ENCODERS: dict[str, Any] = {
    "prores chunk": _prores,
    "streaming rendition": _stream,
    "IMF JPEG 2000": _imf,
    "graph with input_filters": _proxy_frame,
}


@pytest.mark.parametrize("kind", list(ENCODERS))
def test_every_graph_reader_sees_the_working_frames_read_frames_gives(
    kind: str, tmp_path: Path, mezz: Path
) -> None:
    """The same output from the mezzanine as from an RGB intermediate of ``read_frames``'
    frames: each reader starts with ``input_filters`` (planted away, the outputs differ)."""
    rgb = tmp_path / "rgb.mkv"
    write_frames(rgb, SD_601, read_frames(mezz))
    a, b = tmp_path / "from-mezz.out", tmp_path / "from-rgb.out"
    ENCODERS[kind](mezz, a)
    ENCODERS[kind](rgb, b)
    assert a.stat().st_size > 0
    assert a.read_bytes() == b.read_bytes()
