"""Conform: an override replacing a range with another source must cover it exactly, and the
master's frames in that range come from the other source."""

from __future__ import annotations

import shutil
from fractions import Fraction
from typing import TYPE_CHECKING

import av
import pytest
from buildkit import build

from restoro.errors import ManifestError
from restoro.manifest.loader import load_manifest
from restoro.manifest.validate import SourceFacts, check_against_media
from restoro.testing.synth import make_solid

if TYPE_CHECKING:
    from pathlib import Path

NTSC = Fraction(30000, 1001)
HOUR_DF = 107892  # 01:00:00;00 as a frame count
TEXT = """\
restoro: 1
project: conform
sources:
  e01: {path: e01.vob, timecode: "01:00:00;00"}
  e01_vfx_rerender: {path: vfx.mov, timecode: "01:05:00;02"}
pipelines:
  film: [{stage: ingest}]
titles:
  ep:
    source: e01
    pipeline: film
    overrides:
      - range: ["01:05:00;02", "01:05:08;12"]
        source: e01_vfx_rerender
        source_in: SOURCE_IN
deliverables: {}
"""


def _diags(
    tmp_path: Path, source_in: str | None, element_frames: int, element_start: int = 8992
) -> list[tuple[str, str, str]]:
    path = tmp_path / "restoro.yaml"
    text = TEXT.replace("SOURCE_IN", source_in or "")
    if source_in is None:  # aligned by the two sources' timecodes
        text = text.replace("        source_in: \n", "")
    path.write_text(text, encoding="utf-8")
    facts = {
        "e01": SourceFacts(NTSC, 20000, HOUR_DF),
        # 8992 frames after 01:00:00;00 is 01:05:00;02
        "e01_vfx_rerender": SourceFacts(NTSC, element_frames, HOUR_DF + element_start),
    }
    return [
        (d.code, d.message, d.hint or "") for d in check_against_media(load_manifest(path), facts)
    ]


def test_a_short_element_reports_the_gap_in_frames_and_timecode(tmp_path: Path) -> None:
    # the range is 250 frames; the element has 238 from source_in
    (diag,) = _diags(tmp_path, '"01:05:00;02"', 238)
    assert diag[:2] == (
        "E231",
        "e01_vfx_rerender ends 12 frames (00:00:00;12) before the range ends at 01:05:08;12",
    )
    assert diag[2].startswith("'e01_vfx_rerender' runs from 01:05:00;02 to 01:05:08;00")


def test_an_element_that_covers_the_range_exactly_is_accepted(tmp_path: Path) -> None:
    assert _diags(tmp_path, '"01:05:00;02"', 250) == []
    # starting later in a longer element is fine too
    assert _diags(tmp_path, '"01:05:01;00"', 278) == []
    (diag,) = _diags(tmp_path, '"01:05:01;00"', 277)
    assert "ends 1 frames (00:00:00;01) before" in diag[1]


def test_a_source_in_before_the_element_starts_is_reported(tmp_path: Path) -> None:
    (diag,) = _diags(tmp_path, '"01:04:59;28"', 400)
    assert diag[0] == "E230" and "before the source's first frame" in diag[1]
    # aligned by timecode (no source_in), an element starting late leaves a gap at the start
    assert _diags(tmp_path, None, 250) == []
    (diag,) = _diags(tmp_path, None, 400, element_start=8994)
    assert diag[:2] == (
        "E231",
        "e01_vfx_rerender starts 2 frames (00:00:00;02) after the range starts at 01:05:00;02",
    )


MANIFEST = """\
restoro: 1
project: conform
sources:
  tape:
    path: media/source.mkv
  plate:
    path: media/plate.mkv
pipelines:
  main:
    - {stage: ingest, mode: progressive}
titles:
  ep1:
    source: tape
    pipeline: main
    shots: {detector: content, threshold: 27, min_frames: 4}
    overrides:
      - range: [12, 24]
        source: plate
        source_in: SOURCE_IN
deliverables:
  master: {kind: prores, profile: 422hq, raster: 160x120, fit: pillarbox}
"""


@pytest.fixture
def conform_ws(tmp_path: Path, progressive_source: Path) -> Path:
    (tmp_path / "media").mkdir()
    shutil.copy(progressive_source, tmp_path / "media" / "source.mkv")
    make_solid(tmp_path / "media" / "plate.mkv", (40, 200, 60), width=160, height=120, frames=16)
    return tmp_path / "restoro.yaml"


@pytest.mark.slow
def test_conformed_range_comes_from_the_other_source(conform_ws: Path) -> None:
    conform_ws.write_text(MANIFEST.replace("SOURCE_IN", "2"), encoding="utf-8")
    report = build(conform_ws)
    assert report.failed == 0
    with av.open(str(conform_ws.parent / "out" / "master" / "ep1.mov")) as c:
        frames = [f.to_ndarray(format="rgb24").astype(int) for f in c.decode(video=0)]
    assert len(frames) == 36
    flat = [f.reshape(-1, 3).std(axis=0).max() < 4 for f in frames]
    green = [i for i, f in enumerate(frames) if flat[i] and f[..., 1].mean() > 150]
    assert green == list(range(12, 24))
    for i in (11, 24):  # the title's own frames either side
        assert not flat[i]


def test_a_short_plate_fails_at_plan_time(conform_ws: Path) -> None:
    # 16 plate frames from frame 6 leave 10 for a 12-frame range
    conform_ws.write_text(MANIFEST.replace("SOURCE_IN", "6"), encoding="utf-8")
    with pytest.raises(ManifestError) as exc:
        build(conform_ws)
    text = str(exc.value)
    assert "plate ends 2 frames (00:00:00:02) before the range ends at 00:00:00:24" in text
