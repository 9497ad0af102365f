"""Cadence maps: segments of a hybrid film/video/film clip, PAL video, field-order evidence."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from restoro.media.cadence import analyse
from restoro.media.probe import probe
from restoro.testing.synth import make_hybrid, make_pal, make_telecine

if TYPE_CHECKING:
    from pathlib import Path

SIZE = {"width": 360, "height": 240}


@pytest.fixture(scope="module")
def hybrid(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list]:  # type: ignore[type-arg]
    return make_hybrid(tmp_path_factory.mktemp("cad") / "hybrid.mpg", **SIZE)


def test_hybrid_segments_match_the_truth(hybrid: tuple[Path, list]) -> None:  # type: ignore[type-arg]
    path, truth = hybrid
    info = probe(path, cadence=True)
    cmap = info.cadence
    assert cmap is not None and cmap.mixed and cmap.summary() == "mixed (interlaced, telecine)"
    kinds = {"film": "telecine", "video": "interlaced"}
    assert [s.kind for s in cmap.segments] == [kinds[t.kind] for t in truth]
    for seg, t in zip(cmap.segments, truth, strict=True):
        assert abs(seg.start - t.start) <= 3 and abs(seg.end - t.end) <= 3, (seg, t)
    # the telecine phase is the truth's, counted from the detected segment start
    for seg, t in zip(cmap.segments, truth, strict=True):
        if t.phase is not None:
            assert seg.phase == (t.phase + t.start - seg.start) % 5
    assert cmap.field_order == "tff" and info.warnings == []
    assert cmap.idet["repeated.top"] + cmap.idet["repeated.bottom"] > 10  # ffmpeg agrees: pulldown


def test_declared_field_order_contradicting_the_picture_warns(
    hybrid: tuple[Path, list],  # type: ignore[type-arg]
) -> None:
    path, _ = hybrid
    info = probe(path)
    v = info.video
    cmap = analyse(path, v.index, width=v.width, height=v.height, start=0, end=v.frame_count,
                   declared="bff")  # fmt: skip
    assert len(cmap.warnings) == 1
    w = cmap.warnings[0]
    assert "declared bff" in w and "says tff" in w and "frames vote tff" in w
    assert cmap.votes["tff"] > 10 * max(1, cmap.votes["bff"])


def test_pal_video_and_pure_telecine(tmp_path: Path) -> None:
    pal = probe(make_pal(tmp_path / "pal.mpg", width=360, height=288, frames=30), cadence=True)
    assert pal.cadence is not None
    assert [(s.kind, s.start, s.end) for s in pal.cadence.segments] == [("interlaced", 0, 30)]
    assert pal.video.sar == "16:15" and pal.video.dar == "4:3" and pal.audio[0].channels == 6
    tc = probe(make_telecine(tmp_path / "tc.mpg", film_frames=24, **SIZE), cadence=True)
    assert tc.cadence is not None
    assert [(s.kind, s.phase) for s in tc.cadence.segments] == [("telecine", 2)]
    assert tc.audio[0].codec == "ac3" and tc.audio[0].channels == 6
    assert tc.video.dar == "4:3" and tc.video.frame_count == 30
