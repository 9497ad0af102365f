"""IMSC1 timed-text track files in IMF packages: the IMSC document against the TTML/IMSC1
schemas, the MXF (ST 429-5 layout) read back, the CPL's subtitle/caption sequences against the
CPL schema, check-imf, ffmpeg's IMF demuxer, and a caption file that is not IMSC-convertible."""

from __future__ import annotations

import subprocess
import uuid
import xml.etree.ElementTree as ET
from fractions import Fraction
from typing import TYPE_CHECKING

import av
import pytest
from test_imf_package import _package, tracks  # noqa: F401 (fixture)
from xml_validator import IMF_DOCS, assert_valid

from restoro.deliver.imf import ul as U
from restoro.deliver.imf.checks import check_package
from restoro.deliver.imf.reader import read_track_file
from restoro.deliver.imf.timedtext import NotImscConvertible, imsc_document, text_track
from restoro.media.ffmpeg import ffmpeg_exe

if TYPE_CHECKING:
    from pathlib import Path

ISSUED = "2024-05-01T12:00:00Z"
SRT = "1\n00:00:00,040 --> 00:00:00,200\nHello\n\n2\n00:00:00,210 --> 00:00:00,290\nWorld\n"


def _text(tmp: Path, name: str = "t.srt", offset_ms: int = 0, dur: int = 7) -> Path:
    (tmp / name).write_text(SRT)
    out = tmp / f"TEXT_{name}.mxf"
    n, doc = text_track(tmp / name, out, offset_ms=offset_ms, language="en", frame_rate="24",
                        duration=dur, issued=ISSUED, where="titles.ep1.captions[0]")  # fmt: skip
    assert n == dur
    (tmp / f"{name}.ttml").write_bytes(doc)
    return out


def test_imsc_document_validates_and_is_retimed(tmp_path: Path, shared_dir: Path) -> None:
    (tmp_path / "c.srt").write_text(SRT)
    doc = imsc_document(tmp_path / "c.srt", offset_ms=1000, language="fr", where="x")
    (tmp_path / "c.ttml").write_bytes(doc)
    assert_valid(shared_dir, tmp_path / "c.ttml", kinds=["TTML1/IMSC1"])
    root = ET.fromstring(doc)
    assert root.get("{http://www.w3.org/XML/1998/namespace}lang") == "fr"
    begins = [p.get("begin") for p in root.iter() if p.get("begin")]
    assert begins and begins[0].startswith("00:00:01.04")  # 40 ms + the 1 s offset


def test_timed_text_track_file(tmp_path: Path) -> None:
    a = _text(tmp_path)
    tf = read_track_file(a)
    d = tf.descriptor
    assert d.kind == "DCTimedTextDescriptor" and tf.edit_rate == 24 and tf.duration == 7
    assert d.text("NamespaceURI") == "http://www.w3.org/ns/ttml"
    assert d.text("UCSEncoding") == "UTF-8" and d.text("RFC5646LanguageTagList") == "en"
    assert d.props["EssenceContainer"] == U.EC_TIMED_TEXT
    [doc] = list(tf.frames())
    assert doc == (tmp_path / "t.srt.ttml").read_bytes()  # the document, whole, in one KLV
    assert len(tf.essence_tracks) == 1
    with av.open(str(a)) as c:  # PyAV (libavformat's MXF demuxer) opens it too
        assert len(c.streams) == 1
    # Deterministic: the same captions give the same bytes (and the same UUID).
    (tmp_path / "again").mkdir()
    b = _text(tmp_path / "again")
    assert a.read_bytes() == b.read_bytes()


def test_package_with_subtitles_and_captions(tracks: Path, tmp_path: Path,  # noqa: F811
                                             shared_dir: Path) -> None:  # fmt: skip
    sub, cc = _text(tracks, "sub.srt"), _text(tracks, "cc.srt", offset_ms=40)
    pkg = _package(tracks, tmp_path / "pkg", text=[
        (tmp_path / "pkg" / sub.name, "SubtitlesSequence"),
        (tmp_path / "pkg" / cc.name, "HearingImpairedCaptionsSequence"),
    ])  # fmt: skip
    docs = [getattr(pkg, n) for n in ("cpl", "pkl", "assetmap", "opl")]
    assert_valid(shared_dir, *docs, kinds=IMF_DOCS)
    cpl = ET.parse(docs[0]).getroot()
    kinds = [el.tag.split("}")[1] for el in cpl.iter() if el.tag.endswith("Sequence")]
    assert kinds == ["MainImageSequence", "MainAudioSequence", "SubtitlesSequence",
                     "HearingImpairedCaptionsSequence"]  # fmt: skip
    tt = [el for el in cpl.iter() if el.tag.endswith("DCTimedTextDescriptor")]
    assert len(tt) == 2
    pkl = docs[1].read_text()
    assert str(read_track_file(sub).id) in pkl and str(read_track_file(cc).id) in pkl
    # Only the 64x48 unit-test pictures' raster is reported; the text tracks pass every check.
    assert {f.code for f in check_package(tmp_path / "pkg")} == {"app2e-raster"}
    video = subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-f", "imf", "-i", str(docs[0]), "-map", "0:v", "-f",
         "framecrc", "-"], capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert sum(1 for line in video.stdout.splitlines() if line.startswith("0,")) == 7


@pytest.mark.parametrize(
    "content",
    ["this is not a caption file\n", "<tt xmlns='http://www.w3.org/ns/ttml'><body><div>"],
)
def test_not_imsc_convertible_is_a_clear_error(tmp_path: Path, content: str) -> None:
    bad = tmp_path / "bad.srt"
    bad.write_text(content)
    with pytest.raises(NotImscConvertible, match="not IMSC-convertible .bad input.") as exc:
        imsc_document(bad, offset_ms=0, language="en", where="titles.ep1.captions[0]")
    assert exc.value.location == "titles.ep1.captions[0]" and exc.value.exit_code == 2


def test_track_file_ids_differ_by_content(tmp_path: Path) -> None:
    a = read_track_file(_text(tmp_path, "a.srt"))
    b = read_track_file(_text(tmp_path, "b.srt", offset_ms=500))
    assert a.id != b.id and isinstance(a.id, uuid.UUID)
    assert Fraction(a.edit_rate) == 24


def test_check_imf_reports_a_non_ttml_timed_text_track(tmp_path: Path) -> None:
    from restoro.deliver.imf import klv as K
    from restoro.deliver.imf.checks import _check_track_file

    a = _text(tmp_path)
    data = a.read_bytes()
    ns = K.utf16("http://www.w3.org/ns/ttml")
    bad = tmp_path / "bad.mxf"
    bad.write_bytes(data.replace(ns, K.utf16("http://www.w3.org/ns/ttmX")))
    tf = read_track_file(a)
    findings: list = []
    _check_track_file(bad, str(tf.id), findings)
    assert [f.code for f in findings] == ["timed-text"]
    assert "is not TTML" in findings[0].message
