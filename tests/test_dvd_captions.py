"""CEA-608 captions embedded in MPEG-2 picture user data (A/53 and DVD forms): extracted with
timing in source frames, they give the cues the same captions give from an SCC file."""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING

import pytest

from restoro.deliver.captions.embedded import extract_all, title_captions
from restoro.deliver.captions.io import read_cues
from restoro.media.cc608 import channels_present, frame_pairs
from restoro.testing.dvd import Programme, Track, make_mpeg2_cc, popon_pairs, scc_text

if TYPE_CHECKING:
    from pathlib import Path

NTSC = Fraction(30000, 1001)
CUES = [(20, 41, "HELLO THERE\nSECOND LINE"), (60, 75, "ODD LENGTH"), (92, 105, "LAST ONE")]


def _frames(cues: list, rate: Fraction = NTSC) -> list[tuple[float, float, tuple[str, ...]]]:
    return [(float(c.begin * rate), float(c.end * rate), c.lines) for c in cues]


@pytest.mark.parametrize("form", ["a53", "dvd"])
def test_embedded_cues_match_the_scc_of_the_same_captions(tmp_path: Path, form: str) -> None:
    src = tmp_path / "cc.mpg"
    pairs = make_mpeg2_cc(src, Programme(frames=110, cues=CUES, form=form, tracks=[Track("en")]))
    ref = tmp_path / "same.scc"
    ref.write_text(scc_text(pairs))
    want = _frames(read_cues(ref))
    found = extract_all(src)
    assert list(found) == ["1"]
    got = _frames(title_captions(found["1"], start=0, frame_rate=NTSC))
    assert [g[2] for g in got] == [w[2] for w in want] == [
        ("HELLO THERE", "SECOND LINE"), ("ODD LENGTH",), ("LAST ONE",)
    ]  # fmt: skip
    for g, w in zip(got, want, strict=True):
        assert abs(g[0] - w[0]) <= 1 and abs(g[1] - w[1]) <= 1
    # and in the frames the generator put them on: shown at the EOC, cleared at the EDM
    assert [(round(g[0]), round(g[1])) for g in got] == [(a, b) for a, b, _ in CUES]


def test_title_start_moves_cues_to_programme_time(tmp_path: Path) -> None:
    src = tmp_path / "cc.mpg"
    make_mpeg2_cc(src, Programme(frames=110, cues=CUES, tracks=[Track("en")]))
    scc = extract_all(src)["1"]
    got = _frames(title_captions(scc, start=30, frame_rate=NTSC))
    # the first cue ends at 41 (11 frames into the title); it straddles the start: clipped to 0
    assert [(round(a), round(b)) for a, b, _ in got] == [(0, 11), (30, 45), (62, 75)]
    # an episode cut out of the title: [30, 100) — the last cue straddles its end: clipped
    got = _frames(title_captions(scc, start=30, end=100, frame_rate=NTSC))
    assert [(round(a), round(b)) for a, b, _ in got] == [(0, 11), (30, 45), (62, 70)]
    # [30, 90): the last cue starts after the end: dropped
    got = _frames(title_captions(scc, start=30, end=90, frame_rate=NTSC))
    assert [(round(a), round(b)) for a, b, _ in got] == [(0, 11), (30, 45)]


def test_channels_are_told_apart(tmp_path: Path) -> None:
    src = tmp_path / "cc3.mpg"
    make_mpeg2_cc(src, Programme(frames=60, cues=[(30, 50, "FIELD TWO")], channel=3,
                                 tracks=[Track("en")]))  # fmt: skip
    frames = frame_pairs(src)
    assert channels_present(frames) == [3]
    found = extract_all(src)
    assert list(found) == ["3"]
    got = _frames(title_captions(found["3"], start=0, frame_rate=NTSC))
    assert [(round(a), round(b), t) for a, b, t in got] == [(30, 50, ("FIELD TWO",))]

    src2 = tmp_path / "cc2.mpg"
    make_mpeg2_cc(src2, Programme(frames=60, cues=[(30, 50, "SECOND")], channel=2,
                                  tracks=[Track("en")]))  # fmt: skip
    assert channels_present(frame_pairs(src2)) == [2]


def test_a_source_without_captions_has_none(tmp_path: Path) -> None:
    src = tmp_path / "plain.mpg"
    make_mpeg2_cc(src, Programme(frames=30, tracks=[Track("en")]))
    assert extract_all(src) == {}


def test_overlapping_codes_are_refused() -> None:
    with pytest.raises(ValueError, match="do not fit"):
        popon_pairs([(20, 40, "A"), (22, 30, "B")], 60)


MANIFEST = """\
restoro: 1
project: p
sources:
  s: {{path: a.vob{src}}}
pipelines:
  main: [{{stage: ingest}}]
titles:
  t:
    source: s
    pipeline: main
    captions: [{cap}]
"""


@pytest.mark.parametrize(
    ("src", "cap", "needle"),
    [
        ("", "{kind: cc}", "exactly one of path: or source:"),
        ("", "{path: a.scc, source: s}", "exactly one of path: or source:"),
        ("", "{path: a.scc, channel: 2}", "channel: picks a channel of embedded captions"),
        ("", "{source: s, channel: 5}", "less than or equal to 4"),
        (", chapters: [3, 1]", "{source: s}", "chapters: [first, last] needs first <= last"),
        (", title: 0", "{source: s}", "greater than or equal to 1"),
    ],
)
def test_manifest_refuses_bad_disc_and_caption_fields(
    tmp_path: Path, src: str, cap: str, needle: str
) -> None:
    from restoro.errors import ManifestError
    from restoro.manifest.loader import load_manifest

    path = tmp_path / "restoro.yaml"
    path.write_text(MANIFEST.format(src=src, cap=cap))
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    assert needle in info.value.render()


def test_manifest_takes_disc_and_caption_fields(tmp_path: Path) -> None:
    from restoro.manifest.loader import load_manifest

    path = tmp_path / "restoro.yaml"
    path.write_text(MANIFEST.format(src=", title: 2, chapters: [1, 3]",
                                    cap="{source: s, channel: 3, language: fr}"))  # fmt: skip
    m = load_manifest(path).manifest
    assert (m.sources["s"].title, m.sources["s"].chapters) == (2, [1, 3])
    c = m.titles["t"].captions[0]
    assert (c.path, c.source, c.channel, c.language) == ("", "s", 3, "fr")
