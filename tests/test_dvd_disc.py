"""DVD-Video discs as sources, on real VIDEO_TS folders made by dvdauthor: two titles (the
first of two chapters), two audio languages, captions embedded in the video in the DVD
user-data form (the A/53 form is covered in test_dvd_captions), the title set's VOB split over
three files. Skipped
where dvdauthor is not installed."""

from __future__ import annotations

import json
import shutil
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from buildkit import build, cli, plan, store_entries

from restoro.deliver.captions.embedded import extract_all, title_captions
from restoro.deliver.captions.io import read_cues
from restoro.media.dvd import import_title, is_disc, list_titles
from restoro.media.probe import probe
from restoro.plan.workspace import Workspace
from restoro.testing.dvd import (
    Programme,
    Track,
    dvdauthor_available,
    iso_tool,
    make_dvd,
    make_iso,
    make_mpeg2_cc,
)

pytestmark = pytest.mark.skipif(not dvdauthor_available(), reason="dvdauthor is not installed")

NTSC = Fraction(30000, 1001)
CH1 = [(20, 41, "HELLO THERE\nSECOND LINE"), (60, 75, "ODD LENGTH"), (92, 105, "LAST ONE")]
CH2 = [(30, 50, "CHAPTER TWO")]
TRACKS = [Track("en", pitch=440), Track("fr", pitch=660)]
ONSET = 20
"""Frame of title 2 where its English track's tone starts (a sync mark)."""


@pytest.fixture(scope="module")
def disc(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("dvd")
    parts = [work / "ch1.mpg", work / "ch2.mpg", work / "t2.mpg"]
    make_mpeg2_cc(parts[0], Programme(frames=120, cues=CH1, form="dvd", tracks=TRACKS))
    make_mpeg2_cc(parts[1], Programme(frames=60, cues=CH2, form="dvd", tracks=TRACKS,
                                      pattern="smptebars"))  # fmt: skip
    make_mpeg2_cc(parts[2], Programme(frames=45, pattern="testsrc",
                                      tracks=[Track("en", onset=ONSET), TRACKS[1]]))  # fmt: skip
    (work / "t2.ps").write_bytes(parts[2].read_bytes())
    root = work / "DISC"
    make_dvd(root, [parts[:2], parts[2:]], languages=["en", "fr"], split_parts=3)
    return root


def test_fixture_is_a_split_two_title_disc(disc: Path) -> None:
    vobs = sorted(p.name for p in (disc / "VIDEO_TS").glob("VTS_01_*.VOB"))
    assert vobs == ["VTS_01_1.VOB", "VTS_01_2.VOB", "VTS_01_3.VOB"]
    assert is_disc(disc) and is_disc(disc / "VIDEO_TS") and not is_disc(disc.parent)
    titles = list_titles(disc)
    assert [t.number for t in titles] == [1, 2]
    assert [[a.language for a in t.audio] for t in titles] == [["eng", "fre"]] * 2


def test_probe_lists_every_title(disc: Path) -> None:
    res = cli("probe", str(disc), "--json")
    assert res.returncode == 0, res.stderr
    info = json.loads(res.stdout)
    t1, t2 = info["titles"]
    assert (t1["title"], t1["frames"], t2["frames"]) == (1, 180, 45)
    assert t1["duration_s"] == pytest.approx(180 / NTSC, abs=1e-3)
    assert len(t1["chapters"]) == 2 and t1["chapters"][1] == pytest.approx(120 / NTSC, abs=0.02)
    assert len(t2["chapters"]) == 1
    assert [(a["language"], a["layout"], a["codec"]) for a in t1["audio"]] == [
        ("eng", "stereo", "ac3"), ("fre", "stereo", "ac3")
    ]  # fmt: skip
    assert (t1["captions"], t2["captions"]) == ([1], [])
    text = cli("probe", str(disc / "VIDEO_TS"))
    assert text.returncode == 0 and "2 titles" in text.stdout and "CC1" in text.stdout


def test_import_copies_the_title_across_its_vobs_bit_exact(disc: Path, tmp_path: Path) -> None:
    a, b = tmp_path / "a.mkv", tmp_path / "b.mkv"
    import_title(disc, 1, None, a, "test")
    import_title(disc / "VIDEO_TS", 1, None, b, "test")
    assert a.read_bytes() == b.read_bytes()
    info = probe(a)
    assert (info.video.codec, info.video.frame_count) == ("mpeg2video", 180)
    # the picture user data came through the copy: both chapters' captions, in title frames
    cues = title_captions(extract_all(a)["1"], start=0, frame_rate=NTSC)
    want = [(s, e, tuple(t.split("\n"))) for s, e, t in CH1] + [
        (s + 120, e + 120, (t,)) for s, e, t in CH2
    ]
    got = [(round(c.begin * NTSC), round(c.end * NTSC), c.lines) for c in cues]
    assert got == want
    # angle 1 named is the title as it plays
    a1 = tmp_path / "a1.mkv"
    import_title(disc, 1, None, a1, "test", angle=1)
    assert a1.read_bytes() == a.read_bytes()
    # chapter 2 alone
    c2 = tmp_path / "c2.mkv"
    import_title(disc, 1, (2, 2), c2, "test")
    assert probe(c2).video.frame_count == 60


def _onset_as_built(path: Path, frames: int) -> float:
    """Where the tone starts, in frames from the picture's first, as the build's audio reads
    it (restoro.deliver.audio.decode_to_float)."""
    from restoro.deliver.audio import decode_to_float

    raw = path.with_suffix(".f32")
    index = next(a.index for a in probe(path).audio)
    n = decode_to_float([(path, index)], layout="stereo", start_frame=0, frames=frames,
                        frame_rate="30000/1001", offset_ms=0, out=raw)  # fmt: skip
    samples = np.fromfile(raw, dtype=np.float32).reshape(n, 2)[:, 0]
    return float(np.nonzero(np.abs(samples) > 0.05)[0][0] / 48000 * NTSC)


def _onset_decoded(path: Path) -> float:
    """The same from the decoded frames' own times (first picture, first loud sample)."""
    with av.open(str(path)) as c:
        first = next(iter(c.decode(video=0))).time
    with av.open(str(path)) as c:
        for fr in c.decode(audio=0):
            loud = np.nonzero(np.abs(fr.to_ndarray()[0]) > 0.05)[0]
            if len(loud):
                return float((fr.time + loud[0] / fr.sample_rate - first) * NTSC)
    raise AssertionError("no tone")


def _frame_times(path: Path, n: int) -> list[float]:
    with av.open(str(path)) as c:
        return [f.time for _, f in zip(range(n), c.decode(video=0), strict=False)]


def test_import_keeps_sound_and_picture_in_sync(disc: Path, tmp_path: Path) -> None:
    ps = tmp_path / "t2.mpg"
    ps.write_bytes((disc.parent / "t2.ps").read_bytes())
    in_source = _onset_decoded(ps)
    # the fixture's muxer starts the sound a frame before the picture, and AC-3 smears a little
    assert abs(in_source - ONSET) <= 2, in_source
    for number in (1, 2):
        title = tmp_path / f"t{number}.mkv"
        import_title(disc, number, None, title, "test")
        # the demuxer stamps a cell's first picture with the cell's start and the next ones
        # half a second on (their program stream's lead-in); the import closes the jump
        times = _frame_times(title, 4)
        steps = [(b - a) * float(NTSC) for a, b in zip(times, times[1:], strict=False)]
        assert all(abs(s - 1) < 0.05 for s in steps), times  # Matroska keeps milliseconds
    assert abs(_onset_as_built(tmp_path / "t2.mkv", 45) - in_source) <= 0.5


MANIFEST = """\
restoro: 1
project: fromdisc
sources:
  disc:
    path: DISC{title}
    timecode: "01:00:00;00"
pipelines:
  main:
    - {{stage: ingest, mode: progressive}}
titles:
  ep1:
    source: disc
    pipeline: main
    shots: {{detector: none}}
    audio:
      - {{stream: 2, layout: stereo}}
    captions:
      - {{source: {capsrc}, kind: cc{channel}}}
deliverables:
  master: {{kind: prores, profile: 422hq, raster: 160x120, fit: pillarbox}}
"""


def _workspace(tmp_path: Path, disc: Path, **kw: str) -> Path:
    shutil.copytree(disc, tmp_path / "DISC")
    fields = {"title": "", "capsrc": "disc", "channel": ""} | kw
    (tmp_path / "restoro.yaml").write_text(MANIFEST.format(**fields))
    return tmp_path / "restoro.yaml"


@pytest.mark.slow
def test_build_from_a_two_chapter_title_with_its_own_captions(
    disc: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = _workspace(tmp_path, disc, title="\n    title: 1")
    report = build(manifest)
    assert report.failed == 0
    out = tmp_path / "out" / "master"
    with av.open(str(out / "ep1.mov")) as c:
        assert c.streams.video[0].frames == 180 and len(c.streams.audio) == 1
    want = [(s, e, tuple(t.split("\n"))) for s, e, t in CH1] + [
        (s + 120, e + 120, (t,)) for s, e, t in CH2
    ]
    # SRT: programme time, within a frame. SCC: in the master's timecode (29.97 drop-frame
    # labels from 01:00:00;00), rewritten by the SCC writer: within two frames.
    for name, shift, slack in (("ep1.srt", 0, 1), ("ep1.scc", 3600, 2)):
        got = [(c.begin - shift, c.end - shift, c.lines) for c in read_cues(out / name)]
        assert [g[2] for g in got] == [w[2] for w in want], name
        for (b, e, _), (wb, we, _) in zip(got, want, strict=True):
            assert abs(b * NTSC - wb) <= slack and abs(e * NTSC - we) <= slack, (name, got)
    # the import is a stored file; the next plan finds it (without reading the disc again)
    # and every result cached
    import restoro.media.dvd

    def no_disc_reading(args: list[str]) -> None:
        raise AssertionError(f"the disc was read again: {args}")

    monkeypatch.setattr(restoro.media.dvd, "_run", no_disc_reading)
    ws = Workspace(manifest)
    try:
        ws.preflight(["ep1"])
        src = ws.sources["disc"]
        assert src.path.is_relative_to(tmp_path / ".restoro") and src.info.video.frame_count == 180
        assert len(ws.made_keys) == 2  # the import and the caption extraction
    finally:
        ws.close()
    again = plan(manifest)
    assert {r.status for r in again.records} == {"cached"}


def test_default_title_is_the_longest(disc: Path, tmp_path: Path) -> None:
    manifest = _workspace(tmp_path, disc)
    ws = Workspace(manifest)
    try:
        ws.preflight(["ep1"])
        assert ws.sources["disc"].info.video.frame_count == 180
        assert ws.sources["disc"].info.audio[1].language == "fre"
        # the caption track now reads the title's captions, in programme time
        cues = read_cues(Path(ws.manifest.titles["ep1"].captions[0].path))
        assert [c.lines for c in cues][-1] == ("CHAPTER TWO",)
        assert round(cues[-1].begin * NTSC) == 150
    finally:
        ws.close()


@pytest.mark.slow
def test_an_episode_cut_from_a_title_gets_its_own_stretch_of_captions(
    disc: Path, tmp_path: Path
) -> None:
    manifest = _workspace(tmp_path, disc)
    text = manifest.read_text().replace(
        "    pipeline: main\n", "    pipeline: main\n    range: [45, 155]\n"
    )
    manifest.write_text(text)
    assert build(manifest).failed == 0
    # As delivered (cut to the title once, at delivery, like a caption file):
    cues = read_cues(tmp_path / "out" / "master" / "ep1.srt")
    # [45, 155): CH1's first cue ends before it, CHAPTER TWO (150-170) straddles its end
    got = [(round(c.begin * NTSC), round(c.end * NTSC), c.lines) for c in cues]
    assert got == [(15, 30, ("ODD LENGTH",)), (47, 60, ("LAST ONE",)), (105, 110, ("CHAPTER TWO",))]


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        ({"title": "\n    title: 7"}, "has no title 7 (titles: 1 (0:00:06), 2 (0:00:02))"),
        ({"title": "\n    title: 1\n    chapters: [1, 3]"}, "title 1 of the disc"),
        ({"title": "\n    title: 2", "channel": ", channel: 1"}, "no closed captions on CC1"),
        ({"title": "\n    title: 1", "channel": ", channel: 3"}, "channels: CC1"),
        ({"title": "\n    title: 2\n    angle: 2"}, "has no camera angle 2"),
    ],
)
def test_bad_disc_input_exits_2(disc: Path, tmp_path: Path, edit: dict, needle: str) -> None:
    manifest = _workspace(tmp_path, disc, **edit)
    res = cli("plan", "-f", str(manifest))
    assert res.returncode == 2, res.stdout + res.stderr
    out = res.stdout + res.stderr
    assert needle in out, out
    assert "DISC" in out or "source 'disc'" in out
    assert "Traceback" not in out
    if "chapters" in edit.get("title", ""):
        assert "has 2 chapters" in out


def test_damaged_ifo_is_a_clear_error(disc: Path, tmp_path: Path) -> None:
    manifest = _workspace(tmp_path, disc)
    for name in ("VIDEO_TS.IFO", "VIDEO_TS.BUP"):
        p = tmp_path / "DISC" / "VIDEO_TS" / name
        p.write_bytes(b"\0" * p.stat().st_size)
    res = cli("plan", "-f", str(manifest))
    out = res.stdout + res.stderr
    assert res.returncode == 2, out
    assert "cannot read the DVD-Video disc" in out and "DISC" in out and "Traceback" not in out
    assert store_entries(tmp_path) == []


@pytest.mark.skipif(iso_tool() is None, reason="genisoimage/mkisofs is not installed")
def test_an_iso_image_reads_like_its_folder(disc: Path, tmp_path: Path) -> None:
    iso = make_iso(disc, tmp_path / "disc.iso")
    assert is_disc(iso)
    a, b = tmp_path / "iso.mkv", tmp_path / "folder.mkv"
    import_title(iso, 1, None, a, "test")
    import_title(disc, 1, None, b, "test")
    assert a.read_bytes() == b.read_bytes()
    res = cli("probe", str(iso), "--json")
    assert res.returncode == 0, res.stderr
    assert [t["frames"] for t in json.loads(res.stdout)["titles"]] == [180, 45]


def test_not_a_disc_is_a_clear_error(disc: Path, tmp_path: Path) -> None:
    manifest = _workspace(tmp_path, disc)
    (tmp_path / "fake.iso").write_bytes(b"not a disc image" * 4096)
    text = manifest.read_text().replace("path: DISC", "path: fake.iso")
    manifest.write_text(text)
    res = cli("plan", "-f", str(manifest))
    out = res.stdout + res.stderr
    assert res.returncode == 2 and "cannot read the DVD-Video disc" in out and "fake.iso" in out
    # title:/chapters: on a plain media file
    (tmp_path / "DISC" / "VIDEO_TS" / "VTS_01_1.VOB").rename(tmp_path / "plain.vob")
    manifest.write_text(text.replace("path: fake.iso", "path: plain.vob\n    title: 1"))
    res = cli("plan", "-f", str(manifest))
    out = res.stdout + res.stderr
    assert res.returncode == 2 and "title:/chapters:/angle: read a DVD-Video disc" in out, out
    assert "Traceback" not in out
