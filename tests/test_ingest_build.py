"""A hybrid NTSC title built end to end: IVTC'd title timeline, shots in title frames with
source-timecode ids, a per-range ingest override, and a 23.976 master of the right length."""

from __future__ import annotations

import shutil
from fractions import Fraction
from typing import TYPE_CHECKING

import av
import numpy as np
import pytest
from buildkit import build

from restoro.engine.lockfile import LOCK_NAME, read_lockfile
from restoro.testing.synth import make_hybrid

if TYPE_CHECKING:
    from pathlib import Path

MANIFEST = """\
restoro: 1
project: hybrid
sources:
  dvd:
    path: media/hybrid.mpg
    timecode: "01:00:00:00"
pipelines:
  main:
    - {stage: ingest}
titles:
  ep:
    source: dvd
    pipeline: main
    shots: {detector: content, threshold: 27, min_frames: 4}
OVERRIDES
deliverables:
  master: {kind: prores, profile: 422hq, raster: 960x540, fit: pillarbox}
"""
OVERRIDE = """\
    overrides:
      - range: ["01:00:02:00", "01:00:03:15"]
        params: {ingest: {mode: deinterlace}}
"""


@pytest.mark.slow
def test_hybrid_title_end_to_end(tmp_path: Path) -> None:
    (tmp_path / "media").mkdir()
    _, truth = make_hybrid(tmp_path / "media" / "hybrid.mpg", width=360, height=240)
    manifest = tmp_path / "restoro.yaml"
    manifest.write_text(MANIFEST.replace("OVERRIDES\n", ""), encoding="utf-8")
    report = build(manifest)
    assert report.failed == 0
    lock = read_lockfile(tmp_path / LOCK_NAME)["titles"]["ep"]
    assert lock["frame_rate"] == "24000/1001"
    shots = lock["shots"]
    assert shots[0]["start"] == 0 and shots[-1]["end"] == 122
    # shots are title frames; ids carry the source timecode of their first frame
    starts = {s["start"]: s["id"] for s in shots}
    assert starts[48] == "ep@01:00:02:00" and starts[84] == "ep@01:00:03:15"

    master = tmp_path / "out" / "master" / "ep.mov"
    with av.open(str(master)) as c:
        v = c.streams.video[0]
        assert v.average_rate == Fraction(24000, 1001) and v.frames == 122
        assert c.streams.video[0].metadata.get("timecode", c.metadata.get("timecode")) in (
            None,
            "01:00:00:00",
        ) or any(s.metadata.get("timecode") == "01:00:00:00" for s in c.streams)
        audio = c.streams.audio[0]
        assert audio.duration is not None and audio.time_base is not None
        a_dur = float(audio.duration * audio.time_base)
        frame = next(iter(c.decode(video=0))).to_ndarray(format="gray")
    assert abs(a_dur - 122 / (24000 / 1001)) <= 1 / (24000 / 1001)
    # 4:3 (360x240 at SAR 8:9 is 4:3) pillarboxed in 960x540: 720 active columns, DAR ± 0.5 %
    cols = np.flatnonzero(frame.mean(axis=0) > 20)
    active = (cols[-1] - cols[0] + 1) / 540
    assert abs(active / (4 / 3) - 1) <= 0.005, active

    # One override changes the ingest of the video part: every shot id stays the same, the
    # overridden shot gets its own ingest and exactly its frames.
    before = [s["id"] for s in shots]
    manifest.write_text(MANIFEST.replace("OVERRIDES\n", OVERRIDE), encoding="utf-8")
    report = build(manifest)
    assert report.failed == 0
    runs = {r.id: r.stage for r in report.records if r.status == "executed"}
    assert runs.get("ep@01:00:02:00/ingest") == "ingest"
    after = [s["id"] for s in read_lockfile(tmp_path / LOCK_NAME)["titles"]["ep"]["shots"]]
    assert after == before
    with av.open(str(master)) as c:
        assert c.streams.video[0].frames == 122
    shutil.rmtree(tmp_path / ".restoro")
