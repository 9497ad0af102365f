"""Captions: SCC → IMSC1/WebVTT/SRT round trips within a frame, IMSC1 schema validity, retiming
without 1.001 scaling, checks flagging planted violations, and clear errors on bad files."""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING

import pytest
from buildkit import cli
from xml_validator import assert_valid

from restoro.deliver.captions.checks import Thresholds, check_cues
from restoro.deliver.captions.io import (
    CaptionError,
    Cue,
    read_cues,
    retime,
    to_imsc,
    to_srt,
    to_vtt,
)

if TYPE_CHECKING:
    from pathlib import Path

FRAME = Fraction(1001, 30000)


@pytest.fixture
def scc(shared_dir: Path) -> Path:
    return shared_dir / "samples" / "captions" / "pycaption" / "example.scc"


@pytest.mark.parametrize(
    ("suffix", "writer"), [(".ttml", to_imsc), (".vtt", to_vtt), (".srt", to_srt)]
)
def test_scc_round_trip_within_one_frame(scc: Path, tmp_path: Path, suffix: str, writer) -> None:  # noqa: ANN001
    cues = read_cues(scc)
    assert len(cues) >= 3
    out = tmp_path / f"out{suffix}"
    data = writer(cues)
    out.write_bytes(data if isinstance(data, bytes) else data.encode())
    back = read_cues(out)
    assert [c.lines for c in back] == [c.lines for c in cues]
    for a, b in zip(cues, back, strict=True):
        assert abs(a.begin - b.begin) <= FRAME and abs(a.end - b.end) <= FRAME


def test_imsc1_output_validates(scc: Path, tmp_path: Path, shared_dir: Path) -> None:
    pytest.importorskip("lxml")
    out = tmp_path / "captions.ttml"
    out.write_bytes(to_imsc(read_cues(scc), language="es"))
    assert_valid(shared_dir, out, kinds=["TTML1/IMSC1"])


def test_writers_are_deterministic(scc: Path) -> None:
    cues = read_cues(scc)
    for writer in (to_imsc, to_vtt, to_srt):
        assert writer(cues) == writer(cues)


def test_retime_offsets_and_never_scales_for_ivtc() -> None:
    cues = [Cue(Fraction(10), Fraction(12), ("a",))]
    moved = retime(cues, offset_ms=500)
    assert (moved[0].begin, moved[0].end) == (Fraction(21, 2), Fraction(25, 2))
    # A 29.97 → 23.976 change keeps wall-clock time: the default scale is exactly 1.
    assert retime(cues)[0].begin == Fraction(10)
    assert retime(cues, offset_ms=-11000)[0].begin == 0  # clipped at the start


def test_checks_flag_planted_violations() -> None:
    cues = [
        Cue(Fraction(1), Fraction(3), ("Fine.",)),
        Cue(Fraction(2), Fraction(4), ("Overlaps the first.",)),
        Cue(Fraction(5), Fraction(5, 1) + Fraction(1, 2), ("Too short",)),
        Cue(Fraction(6), Fraction(7), ("x" * 50,)),
        Cue(Fraction(8), Fraction(10), ("one", "two", "three")),
        Cue(Fraction(10) + Fraction(1, 100), Fraction(11), ("Gap too small",)),
        Cue(Fraction(12), Fraction(25), ("Past the end",)),
    ]
    found = {(f.check, f.cue) for f in check_cues(cues, programme=20.0)}
    assert ("overlap", 2) in found
    assert ("duration", 3) in found
    assert ("reading-rate", 4) in found and ("line-length", 4) in found
    assert ("lines", 5) in found
    assert ("gap", 6) in found
    assert ("outside-programme", 7) in found
    assert not any(c == 1 for _, c in found)
    relaxed = Thresholds(max_cps=100, max_chars_per_line=60)
    assert ("line-length", 4) not in {(f.check, f.cue) for f in check_cues(cues, limits=relaxed)}


def test_unknown_and_broken_caption_files(tmp_path: Path) -> None:
    odd = tmp_path / "notes.xyz"
    odd.write_text("just some text\n")
    with pytest.raises(CaptionError, match="unknown caption format"):
        read_cues(odd)
    broken = tmp_path / "bad.ttml"
    broken.write_text("<tt xmlns='http://www.w3.org/ns/ttml'><body><div><p begin='1s'")
    with pytest.raises(CaptionError, match="not a readable TTML caption file"):
        read_cues(broken)


def test_cli_check(tmp_path: Path) -> None:
    good = tmp_path / "ok.srt"
    good.write_text("1\n00:00:01,000 --> 00:00:03,000\nHello.\n")
    assert cli("captions", "check", str(good)).returncode == 0
    late = tmp_path / "late.srt"
    late.write_text("1\n00:00:30,000 --> 00:00:32,000\nToo late.\n")
    proc = cli("captions", "check", str(late), "--duration", "10")
    assert proc.returncode == 1 and "outside-programme" in proc.stdout
    bad = tmp_path / "x.bin"
    bad.write_text("??")
    proc = cli("captions", "check", str(bad))
    assert proc.returncode == 2 and "unknown caption format" in proc.stderr
