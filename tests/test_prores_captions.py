"""Caption sidecars of the ProRes master: ``<title>.srt`` and ``<title>.scc`` beside the master,
retimed for ``offset_ms``, cut at the programme's end, the SCC's timecode aligned to the
master's start timecode; cached as actions; a cue past the end is a clear error."""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING

import av
import pytest
from buildkit import build, executed

from restoro.deliver.captions.io import CaptionError, read_cues
from restoro.deliver.captions.sidecars import master_sidecars, scc_timing
from restoro.media.timecode import timecode_to_frames
from restoro.testing.synth import make_source

if TYPE_CHECKING:
    from pathlib import Path

NTSC = Fraction(30000, 1001)
MANIFEST = """\
restoro: 1
project: capmaster
sources:
  tape:
    path: media/source.mkv
    timecode: "01:00:00:00"
pipelines:
  main:
    - {stage: ingest, mode: progressive}
titles:
  ep1:
    source: tape
    pipeline: main
    shots: {detector: content, threshold: 27, min_frames: 4}
    captions:
      - {path: media/en.srt, language: en, kind: subtitles, offset_ms: 250}
deliverables:
  master: {kind: prores, profile: 422hq, raster: 160x120, fit: pillarbox}
"""
SRT = (
    "1\n00:00:00,200 --> 00:00:00,900\nHello there\n\n"
    "2\n00:00:02,400 --> 00:00:03,500\nRuns past the end\n"
)


def _seconds(tc: str, rate: Fraction) -> Fraction:
    return timecode_to_frames(tc, rate) / rate


@pytest.mark.slow
def test_master_gets_retimed_srt_and_timecode_aligned_scc(tmp_path: Path) -> None:
    (tmp_path / "media").mkdir()
    make_source(
        tmp_path / "media" / "source.mkv", width=160, height=120, shots=3,
        shot_frames=[24, 24, 24], audio_channels=2, codec="ffv1", sar="1:1", rate="24",
    )  # fmt: skip
    (tmp_path / "media" / "en.srt").write_text(SRT)
    manifest = tmp_path / "restoro.yaml"
    manifest.write_text(MANIFEST)
    report = build(manifest)
    assert report.failed == 0
    out = tmp_path / "out" / "master"
    with av.open(str(out / "ep1.mov")) as c:
        start = c.streams.video[0].metadata.get("timecode") or c.metadata.get("timecode")
    assert start == "01:00:00:00"

    # SRT: programme time, delayed 250 ms, the last cue cut at the 3 s programme end.
    srt = read_cues(out / "ep1.srt")
    assert [c.lines for c in srt] == [("Hello there",), ("Runs past the end",)]
    assert [(c.begin, c.end) for c in srt] == [
        (Fraction(9, 20), Fraction(23, 20)),
        (Fraction(53, 20), Fraction(3)),
    ]

    # SCC: 29.97 drop-frame labels starting at the master's 01:00:00:00.
    scc_text = (out / "ep1.scc").read_text()
    assert scc_text.startswith("Scenarist_SCC V1.0")
    first_label = scc_text.split("\n\n")[1].split("\t")[0]
    assert first_label.startswith("01:00:00;")
    zero = _seconds("01:00:00;00", NTSC)
    scc = read_cues(out / "ep1.scc")
    assert [c.lines for c in scc] == [c.lines for c in srt]
    for a, b in zip(scc, srt, strict=True):
        assert abs(a.begin - zero - b.begin) <= 1 / NTSC
        assert abs(a.end - zero - b.end) <= 1 / NTSC

    # Cached: a rebuild runs nothing; a new offset re-runs the caption action and the master's
    # assembly (a remux), never the per-shot encodes.
    assert executed(build(manifest)) == {}
    manifest.write_text(MANIFEST.replace("offset_ms: 250", "offset_ms: 0"))
    ran = executed(build(manifest))
    assert set(ran) == {"ep1/master/captions/0", "ep1/master"}
    assert read_cues(out / "ep1.srt")[0].begin == Fraction(1, 5)


def test_sidecars_are_deterministic_and_refuse_late_cues(tmp_path: Path) -> None:
    path = tmp_path / "en.srt"
    path.write_text(SRT)
    kw = {"name": "en.srt", "offset_ms": 0, "frames": 96, "frame_rate": "24000/1001"}
    one = master_sidecars(path, timecode="00:59:58:00", **kw)  # type: ignore[arg-type]
    assert one == master_sidecars(path, timecode="00:59:58:00", **kw)  # type: ignore[arg-type]
    scc = tmp_path / "out.scc"
    scc.write_text(one[1])
    first = read_cues(scc)[0]  # shown at the master's 00:59:58:00 + 0.2 s
    assert abs(first.begin - _seconds("00:59:58;00", NTSC) - Fraction(1, 5)) <= 1 / NTSC
    with pytest.raises(CaptionError, match=r"cue at 2\.400 s .*beyond the programme end"):
        master_sidecars(path, timecode="00:00:00:00", **{**kw, "frames": 48})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("tc", "rate", "want"),
    [
        ("01:00:00:00", "24000/1001", ("29.97DF", "01:00:00;00")),
        ("00:59:59:12", "24", ("29.97DF", "00:59:59;15")),
        ("10:01:00:00", "25", ("29.97DF", "10:01:00;02")),  # ;00 and ;01 do not exist
        ("01:00:00;00", "30000/1001", ("29.97DF", "01:00:00;00")),
        ("01:00:00:00", "30000/1001", ("29.97NDF", "01:00:00:00")),
        ("01:00:00:00", "30", ("30NDF", "01:00:00:00")),
    ],
)
def test_scc_timing(tc: str, rate: str, want: tuple[str, str]) -> None:
    assert scc_timing(tc, rate) == want
