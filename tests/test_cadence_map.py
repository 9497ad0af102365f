"""The cadence map against clips with known per-frame truth (``restoro.testing.cadence``): slow
true-interlaced motion comes out ``interlaced`` (it came out ``progressive``), film around it
in one telecine segment per cadence, edits mid-cycle as phase breaks, bottom field first."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from restoro.media.cadence import analyse
from restoro.testing.cadence import FAST, SLOW, Part, make_clip, write_clip

if TYPE_CHECKING:
    from pathlib import Path

W, H = 360, 240


def _map(tmp_path: Path, name: str, parts: list[Part], order: str = "tff"):  # type: ignore[no-untyped-def]
    clip = make_clip(name, parts, order=order, width=W, height=H)  # type: ignore[arg-type]
    path = write_clip(clip, tmp_path / f"{name}.mpg")
    cmap = analyse(path, 0, width=W, height=H, start=0, end=len(clip.frames), declared=order)
    return clip, cmap


def _check(clip, cmap) -> None:  # type: ignore[no-untyped-def]
    """Same segments as the truth (kind and absolute phase), each boundary within 3 frames."""
    truth = clip.segments()
    got = [(s.kind, None if s.phase is None else (s.start + s.phase) % 5) for s in cmap.segments]
    assert got == [(k, p) for _a, _b, k, p in truth], (cmap.segments, truth)
    for seg, (a, b, _k, _p) in zip(cmap.segments, truth, strict=True):
        assert abs(seg.start - a) <= 3 and abs(seg.end - b) <= 3, (seg, a, b)


def test_slow_drift_true_video_is_interlaced(tmp_path: Path) -> None:
    # 0.2 pixel a field: the case restoro used to call progressive
    clip, cmap = _map(tmp_path, "slow", [Part("video", 60, SLOW, seed=4)])
    assert [(s.kind, s.start, s.end) for s in cmap.segments] == [("interlaced", 0, 60)]
    assert cmap.field_order == "tff"
    # the same drift, progressive, stays progressive (no field order to tell)
    clip, cmap = _map(tmp_path, "prog", [Part("progressive", 60, SLOW, seed=25)])
    assert [(s.kind, s.start, s.end) for s in cmap.segments] == [("progressive", 0, 60)]
    assert cmap.field_order == "unknown"


def test_film_slow_video_film_with_a_cadence_break(tmp_path: Path) -> None:
    parts = [Part("film", 40, FAST, seed=5), Part("video", 45, SLOW, seed=6),
             Part("film", 40, (30.0, 0.0), seed=7, skip=2)]  # fmt: skip
    clip, cmap = _map(tmp_path, "hybrid", parts)
    assert [s.kind for s in cmap.segments] == ["telecine", "interlaced", "telecine"]
    _check(clip, cmap)
    assert cmap.field_order == "tff" and cmap.idet["repeated.top"] > 5


def test_edits_mid_cycle_are_phase_breaks(tmp_path: Path) -> None:
    parts = [Part("film", 32, FAST, seed=16), Part("film", 32, FAST, seed=17, skip=1),
             Part("film", 32, (60.0, 30.0), seed=18, skip=3)]  # fmt: skip
    clip, cmap = _map(tmp_path, "edits", parts)
    assert [s.kind for s in cmap.segments] == ["telecine"] * 3
    _check(clip, cmap)


def test_bottom_field_first(tmp_path: Path) -> None:
    parts = [Part("film", 40, FAST, seed=22), Part("video", 45, SLOW, seed=23)]
    clip, cmap = _map(tmp_path, "bff", parts, order="bff")
    _check(clip, cmap)
    assert cmap.field_order == "bff"
    # declared the other way: the picture wins, with a warning
    path = tmp_path / "bff.mpg"
    contradicted = analyse(path, 0, width=W, height=H, start=0, end=len(clip.frames),
                           declared="tff")  # fmt: skip
    assert contradicted.field_order == "bff"
    assert "declared tff but the picture says bff" in contradicted.warnings[0]


@pytest.mark.parametrize("n", [1, 2, 3])
def test_very_short_spans_do_not_fail(tmp_path: Path, n: int) -> None:
    clip, cmap = _map(tmp_path, f"short{n}", [Part("video", n, FAST, seed=1)])
    assert sum(s.end - s.start for s in cmap.segments) == n


SLOW_LOG = """\
import os, subprocess, sys, time
argv = sys.argv[1:]
vf = argv.index("-vf") + 1
log = argv[vf].rsplit("file=", 1)[1]
argv[vf] = argv[vf].replace("file=" + log, "file=" + log + ".part")
code = subprocess.call(argv)
time.sleep(1.0)  # a busy machine: the log is complete only when ffmpeg is done
os.replace(log + ".part", log)
sys.exit(code)
"""


def test_idet_log_is_read_once_ffmpeg_is_done(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The analysis waits for ffmpeg before reading idet's log. Planted: an ffmpeg whose log
    appears a second after its last frame (as on a loaded machine) gives the same idet counts."""
    import sys

    from restoro.media import ffmpeg

    clip = make_clip("film", [Part("film", 30, FAST, seed=2)], order="tff", width=W, height=H)
    path = write_clip(clip, tmp_path / "film.mpg")
    want = analyse(path, 0, width=W, height=H, start=0, end=30, declared="tff")
    assert sum(want.idet.values()) == 2 * 30
    wrapper = tmp_path / "slow_log.py"
    wrapper.write_text(SLOW_LOG, encoding="utf-8")
    real = ffmpeg.full_argv
    monkeypatch.setattr(ffmpeg, "full_argv", lambda a: [sys.executable, str(wrapper), *real(a)])
    got = analyse(path, 0, width=W, height=H, start=0, end=30, declared="tff")
    assert got.idet == want.idet and got.segments == want.segments
