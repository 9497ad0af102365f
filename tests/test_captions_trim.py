"""Captions of a title trimmed with ``range:``: the caption file is timed on the source, so its
cues are moved to the title and cut to its range (a cue straddling an end is clipped), those
outside are dropped with one warning event counting them, and the build never fails on them —
in the ProRes master's sidecars and in an HLS package alike, and their QC checks the cues as
delivered (none outside the programme)."""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING, Any

import pytest

from restoro.deliver.captions.io import Cue, cut_to_title, place_cues, read_cues
from restoro.plan.build import Builder, BuildOptions
from restoro.plan.workspace import Workspace
from restoro.testing.synth import make_source

if TYPE_CHECKING:
    from pathlib import Path

# 48 frames at 24 fps (2 s); the title is source frames [12, 36): 0.5 s to 1.5 s.
MANIFEST = """\
restoro: 1
project: captrim
sources:
  tape:
    path: media/source.mkv
pipelines:
  main:
    - {stage: ingest, mode: progressive}
titles:
  ep1:
    source: tape
    pipeline: main
    range: [12, 36]
    shots: {detector: content, threshold: 27, min_frames: 4}
    captions:
      - {path: media/en.srt, language: en, kind: subtitles}
deliverables:
  master: {kind: prores, profile: 422hq, raster: 64x48, fit: pillarbox}
  web:
    kind: hls
    segment_seconds: 0.5
    ladder:
      - {codec: h264, height: 48, bitrate: 100k}
qc: {}
"""
SRT = (
    "1\n00:00:00,100 --> 00:00:00,300\nBefore the title\n\n"
    "2\n00:00:00,400 --> 00:00:00,700\nStraddles the start\n\n"
    "3\n00:00:00,800 --> 00:00:01,000\nInside\n\n"
    "4\n00:00:01,400 --> 00:00:01,800\nStraddles the end\n\n"
    "5\n00:00:01,900 --> 00:00:02,000\nAfter the title\n"
)
WANT = [
    (Fraction(0), Fraction(1, 5)),
    (Fraction(3, 10), Fraction(1, 2)),
    (Fraction(9, 10), Fraction(1)),
]


def test_cut_to_title_clips_straddlers_and_counts_the_dropped() -> None:
    cues = [Cue(Fraction(a, 10), Fraction(b, 10), (t,)) for a, b, t in
            [(1, 3, "a"), (4, 7, "b"), (8, 10, "c"), (14, 18, "d"), (19, 20, "e")]]  # fmt: skip
    kept, dropped = cut_to_title(cues, Fraction(1, 2), Fraction(1))
    assert [(c.begin, c.end) for c in kept] == WANT and dropped == 2
    assert [c.text for c in kept] == ["b", "c", "d"]
    # Trimmed: never an error, a notice counts the dropped cues. Untrimmed: a cue after the
    # end still means the wrong file (or offset) and is refused.
    _, notices = place_cues(cues, Fraction(1), "en.srt", "1/2")
    assert notices == [
        "caption en.srt: 2 of 5 cues lie outside the title's range (source 0.500 s to "
        "1.500 s) and were dropped"
    ]
    notices = place_cues(cues[:3], Fraction(1), "en.srt", "1/2")[1]
    assert len(notices) == 1 and notices[0].startswith("caption en.srt: 1 of 3 cues lie")


@pytest.mark.slow
def test_trimmed_title_build_cuts_captions_and_warns(tmp_path: Path) -> None:
    (tmp_path / "media").mkdir()
    make_source(
        tmp_path / "media" / "source.mkv", width=64, height=48, shots=2, shot_frames=[24, 24],
        audio_channels=2, codec="ffv1", sar="1:1", rate="24",
    )  # fmt: skip
    (tmp_path / "media" / "en.srt").write_text(SRT)
    manifest = tmp_path / "restoro.yaml"
    manifest.write_text(MANIFEST, encoding="utf-8")
    events: list[dict[str, Any]] = []
    ws = Workspace(manifest)
    try:
        b = Builder(ws, BuildOptions())
        b.events.subscribe(events.append)
        report = b.build()
    finally:
        ws.close()
    assert report.failed == 0
    kinds = {f.get("kind") for r in b.qc_results.values() for f in r.meta.get("findings", [])}
    assert "duration" in kinds and not any("outside" in str(k) for k in kinds), kinds
    out = tmp_path / "out"
    srt = read_cues(next(out.rglob("ep1.srt")))
    assert [(c.begin, c.end) for c in srt] == WANT
    assert [c.text for c in srt] == ["Straddles the start", "Inside", "Straddles the end"]
    # The SCC cannot show a caption at programme time 0 (a pop-on caption loads first, two
    # bytes a frame): the clipped first cue shows once loaded, later than in the SRT.
    scc = read_cues(next(out.rglob("ep1.scc")))
    assert scc[0].text == "Straddles the start" and scc[-1].text == "Straddles the end"
    # (the SCC's labels start at the master's timecode, source frame 12: 00:00:00;15)
    zero = Fraction(15 * 1001, 30000)
    assert 0 < scc[0].begin - zero < Fraction(1, 5)
    assert abs(scc[-1].begin - zero - WANT[2][0]) < 0.05
    vtt = read_cues(next(out.rglob("subs0.vtt")))
    assert [(c.begin, c.end) for c in vtt] == WANT
    warnings = [e["message"] for e in events if e["event"] == "warning"]
    dropped = [w for w in warnings if "2 of 5 cues lie outside the title's range" in w]
    # one from the master's caption action, one from the HLS package
    assert len(dropped) == 2, warnings
    assert {w.split(":")[0] for w in dropped} == {"ep1/master/captions/0", "ep1/web"}
