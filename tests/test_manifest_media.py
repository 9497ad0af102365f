"""Checks of a manifest against probed media (positions inside sources and titles) and shot ids."""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING

import pytest

from restoro.manifest.loader import LoadedManifest, load_manifest
from restoro.manifest.validate import SourceFacts, check_against_media, check_shot_ids

if TYPE_CHECKING:
    from pathlib import Path

NTSC = Fraction(30000, 1001)
HOUR_DF = 107892

TEXT = """\
restoro: 1
project: demo
sources:
  e01: {path: e01.vob, timecode: "01:00:00;00"}
  fix: {path: fix.mov}
pipelines:
  film: [{stage: ingest}]
titles:
  ep:
    source: e01
    pipeline: film
    range: ["01:00:00;00", "01:01:00;02"]
    shots: {cuts: ["01:00:10;00", "01:05:00;02"], joins: [5]}
    overrides:
      - range: ["01:00:20;00", "01:00:30;00"]
        source: fix
        source_in: 500
      - range: ["01:00:40;00", "01:02:00;02"]
        tags: [late]
      - shots: ["ep@01:00:10;00", "ep@01:00:11;00"]
        tags: [hero]
deliverables: {}
"""


@pytest.fixture
def loaded(tmp_path: Path) -> LoadedManifest:
    path = tmp_path / "restoro.yaml"
    path.write_text(TEXT, encoding="utf-8")
    return load_manifest(path)


def _found(diags) -> list[tuple[int, str, str]]:  # type: ignore[no-untyped-def]
    return [(d.line, d.code, d.message) for d in diags]


def test_positions_inside_sources_and_title(loaded: LoadedManifest) -> None:
    facts = {
        "e01": SourceFacts(NTSC, 3000, HOUR_DF),  # 01:00:00;00 to 01:01:40;02
        "fix": SourceFacts(NTSC, 600, 0),
    }
    diags = check_against_media(loaded, facts)
    assert _found(diags) == [
        (13, "E231", "cut '01:05:00;02' is outside the title (01:00:00;00 to 01:01:00;02)"),
        (17, "E231", "fix ends 200 frames (00:00:06:20) before the range ends at 01:00:30;00"),
        (
            18,
            "E231",
            "override range '01:02:00;02' is outside the title (01:00:00;00 to 01:01:00;02)",
        ),
    ]
    assert diags[0].hint == "the title ends at 01:01:00;02"
    assert diags[1].hint.startswith("'fix' runs from 00:00:00:00 to 00:00:20:00")


def test_title_range_past_the_end_of_the_source(loaded: LoadedManifest) -> None:
    facts = {"e01": SourceFacts(NTSC, 1000, HOUR_DF), "fix": SourceFacts(NTSC, 6000, 0)}
    found = _found(check_against_media(loaded, facts))
    assert found[0] == (12, "E231", "'01:01:00;02' is after the end of source 'e01'")


def test_drop_frame_at_a_pal_rate(loaded: LoadedManifest) -> None:
    facts = {
        "e01": SourceFacts(Fraction(25), 100000, 90000),
        "fix": SourceFacts(Fraction(25), 6000, 0),
    }
    found = _found(check_against_media(loaded, facts))
    assert found[0] == (4, "E230", "drop-frame timecode at 25 fps")
    assert all(code == "E230" for _line, code, _msg in found)
    assert any("drop-frame timecode needs a 29.97 or 59.94 fps source" in m for *_x, m in found)


def test_conform_source_with_another_rate(loaded: LoadedManifest) -> None:
    facts = {"e01": SourceFacts(NTSC, 100000, HOUR_DF), "fix": SourceFacts(Fraction(25), 6000, 0)}
    found = _found(check_against_media(loaded, facts))
    assert (
        16,
        "E234",
        "source 'fix' runs at 25 fps, the title's source at 30000/1001 fps",
    ) in found


def test_position_before_the_first_frame(tmp_path: Path) -> None:
    path = tmp_path / "restoro.yaml"
    path.write_text(TEXT.replace('"01:00:00;00", "01:01', '"00:59:50;00", "01:01'))
    loaded = load_manifest(path)
    facts = {"e01": SourceFacts(NTSC, 100000, HOUR_DF), "fix": SourceFacts(NTSC, 6000, 0)}
    (first, *_rest) = check_against_media(loaded, facts)
    assert (first.line, first.col, first.code) == (12, 13, "E230")
    assert "before the source's first frame (timecode 01:00:00;00)" in first.message


def test_unprobed_sources_are_skipped(loaded: LoadedManifest) -> None:
    assert check_against_media(loaded, {}) == []


def test_shot_ids_must_exist(loaded: LoadedManifest) -> None:
    known = {"ep": {"ep@01:00:00;00", "ep@01:00:10;00", "ep@01:00:11;02"}}
    (diag,) = check_shot_ids(loaded, known)
    assert (diag.line, diag.col, diag.code) == (20, 35, "E232")
    assert diag.message == "unknown shot 'ep@01:00:11;00'"
    assert diag.hint == "did you mean 'ep@01:00:11;02'?"
    assert check_shot_ids(loaded, {}) == []
