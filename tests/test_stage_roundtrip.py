"""The whole media path: synth → probe → ingest → cuts → per-shot upscale → ProRes → master."""

from __future__ import annotations

from typing import TYPE_CHECKING

import av

import restoro.deliver.prores as prores
from restoro.deliver.audio import extract_audio, sample_count
from restoro.deliver.prores import assemble_master, encode_chunk
from restoro.media.frameio import FrameWriter, extract_range, read_frames, validate_intermediate
from restoro.media.probe import probe
from restoro.media.shots import detect_cuts
from restoro.stages.base import StageContext
from restoro.stages.ingest import IngestParams, ingest
from restoro.stages.upscale import Upscale, UpscaleParams
from restoro.testing.synth import make_source, shot_starts

if TYPE_CHECKING:
    from pathlib import Path

    import pytest


def test_round_trip(tmp_path: Path) -> None:
    shots = [10, 8, 9]
    src = make_source(
        tmp_path / "src.mpg", width=176, height=120, shots=3, shot_frames=shots, interlaced=True,
        audio_channels=2,
    )  # fmt: skip
    info = probe(src)
    total = info.video.frame_count
    assert total == sum(shots)
    fmt, n = ingest(src, info, IngestParams(), start=0, end=total, out=tmp_path / "title.mkv")
    assert n == total
    cuts = detect_cuts(tmp_path / "title.mkv", min_frames=6)
    assert cuts == shot_starts(3, shots)

    up = Upscale()
    params = UpscaleParams(model="spline36", scale=2)
    up.check(params)
    out_fmt = up.output_format(params, fmt)
    chunks = []
    for i, (a, b) in enumerate(zip([0, *cuts], [*cuts, total], strict=True)):
        shot = tmp_path / f"shot{i}.mkv"
        extract_range(tmp_path / "title.mkv", a, b, shot)
        ctx = StageContext(fmt=fmt, shot_id=f"t@{a}", work_dir=tmp_path)
        big = tmp_path / f"shot{i}-x2.mkv"
        with FrameWriter(big, out_fmt) as writer:
            for frame in up.process(read_frames(shot), params, ctx):
                writer.write(frame)
        validate_intermediate(big, b - a)
        chunk = tmp_path / f"shot{i}.mov"
        assert encode_chunk(big, out_fmt, raster=(640, 360), out=chunk) == b - a
        chunks.append(chunk)

    wav = tmp_path / "a.wav"
    extract_audio(src, info.audio[0].index, start_frame=0, frames=total,
                  frame_rate=fmt.frame_rate, out=wav)  # fmt: skip
    master = tmp_path / "master.mov"
    assemble_master(chunks, master, frame_rate=fmt.frame_rate, timecode="00:59:59;28",
                    audio=[wav], metadata={"title": "round trip"})  # fmt: skip
    m = probe(master)
    assert m.video.frame_count == total and (m.video.width, m.video.height) == (640, 360)
    assert m.video.timecode == "00:59:59;28"
    with av.open(str(master)) as c:
        a = c.streams.audio[0]
        assert sum(f.samples for f in c.decode(a)) == sample_count(total, fmt.frame_rate)


def test_prores_bytes_do_not_depend_on_thread_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = make_source(tmp_path / "s.mkv", width=160, height=120, shots=1, shot_frames=4,
                      audio_channels=0, codec="ffv1")  # fmt: skip
    fmt, _ = ingest(src, probe(src), IngestParams(), start=0, end=4, out=tmp_path / "f.mkv")
    outs = []
    for threads in ("1", "2", "4"):
        monkeypatch.setattr(prores, "ENCODER_THREADS", threads)
        out = tmp_path / f"t{threads}.mov"
        encode_chunk(tmp_path / "f.mkv", fmt, raster=(320, 180), out=out)
        outs.append(out.read_bytes())
    assert outs[0] == outs[1] == outs[2]
