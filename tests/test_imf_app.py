"""A full manifest build of an App ProRes (RDD 45) IMF package with captions, from a source with
drop-frame timecode and 44.1 kHz audio: the CPL and the IMSC documents validate, ffmpeg's IMF
demuxer decodes every frame and sample, the composition timecode is drop-frame, and the
resampling notice reaches the provenance sidecar."""

from __future__ import annotations

import json
import subprocess
import xml.etree.ElementTree as ET
from fractions import Fraction
from typing import TYPE_CHECKING

import pytest
from buildkit import build
from xml_validator import IMF_DOCS, assert_valid

from restoro.deliver.imf.checks import check_package
from restoro.deliver.imf.cpl import APP_PRORES
from restoro.deliver.imf.reader import read_track_file
from restoro.media.ffmpeg import ffmpeg_exe, run_ffmpeg

if TYPE_CHECKING:
    from pathlib import Path

MASTER = "  master: {kind: prores, profile: 422hq, raster: 640x360, fit: pillarbox}\n"
IMF = ("  imf: {kind: imf, application: prores, profile: 422hq, raster: 640x360, "
       "fit: pillarbox, issue_date: '2024-05-01T12:00:00Z'}\n")  # fmt: skip
SRT = "1\n00:00:00,100 --> 00:00:00,500\nHello\n\n2\n00:00:00,600 --> 00:00:01,000\nWorld\n"


def _count(cpl: Path, stream: str, fmt: str) -> bytes:
    return subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "imf", "-i", str(cpl), "-map",
                           f"0:{stream}", "-f", fmt, "-"], capture_output=True,
                          check=True).stdout  # fmt: skip


@pytest.mark.slow
def test_app_prores_build_with_captions_df_timecode_and_44k_audio(
    workspace: Path, shared_dir: Path
) -> None:
    media = workspace.parent / "media"
    src = media / "source.mkv"
    run_ffmpeg(["-i", str(src), "-c:v", "copy", "-c:a", "pcm_s16le", "-ar", "44100",
                str(media / "s44.mkv")])  # fmt: skip
    (media / "c.srt").write_text(SRT)
    text = (
        workspace.read_text()
        .replace("path: media/source.mkv", "path: media/s44.mkv\n    timecode: '01:00:00;00'")
        .replace("    shots: {", "    captions:\n      - {path: media/c.srt, kind: subtitles}\n"
                 "      - {path: media/c.srt, kind: cc, language: fr, offset_ms: 200}\n"
                 "    shots: {")
        .replace(MASTER, IMF)
    )  # fmt: skip
    workspace.write_text(text)
    result = build(workspace)
    assert result.failed == 0
    out = workspace.parent / "out" / "imf"
    pkg = out / "ep1"
    cpl = next(pkg.glob("CPL_*.xml"))
    docs = [cpl, next(pkg.glob("PKL_*.xml")), pkg / "ASSETMAP.xml", next(pkg.glob("OPL_*.xml"))]
    assert_valid(shared_dir, *docs, kinds=IMF_DOCS)
    assert check_package(pkg) == []
    body = cpl.read_text()
    assert APP_PRORES in body
    root = ET.fromstring(body)
    ns = {"c": "http://www.smpte-ra.org/schemas/2067-3/2016"}
    tc = root.find("c:CompositionTimecode", ns)
    assert tc is not None
    assert tc.findtext("c:TimecodeDropFrame", namespaces=ns) == "true"
    assert tc.findtext("c:TimecodeRate", namespaces=ns) == "30"
    assert tc.findtext("c:TimecodeStartAddress", namespaces=ns) == "01:00:00;00"
    assert root.findtext("c:EditRate", namespaces=ns) == "30000 1001"
    # Two timed-text track files, each as long as the picture, in their own sequences.
    texts = sorted(pkg.glob("TEXT_*.mxf"))
    assert len(texts) == 2
    kinds = {el.tag.split("}")[1] for el in root.iter() if el.tag.endswith("Sequence")}
    assert {"SubtitlesSequence", "HearingImpairedCaptionsSequence"} <= kinds
    for t in texts:
        tf = read_track_file(t)
        assert tf.duration == 36 and tf.edit_rate == Fraction(30000, 1001)
        (workspace.parent / f"{t.stem}.ttml").write_bytes(next(tf.frames()))
    ttmls = sorted(workspace.parent.glob("TEXT_*.ttml"))
    assert_valid(shared_dir, *ttmls, kinds=["TTML1/IMSC1"] * 2)
    # ffmpeg decodes the whole composition: 36 ProRes frames, 48 kHz audio of the same length.
    frames = _count(cpl, "v", "framecrc").decode()
    assert sum(1 for line in frames.splitlines() if line.startswith("0,")) == 36
    samples = len(_count(cpl, "a", "s24le")) // 6
    assert abs(samples - 36 * 48000 * 1001 / 30000) <= 1600  # within one frame
    # The resampling notice is in the provenance sidecar.
    meta = json.loads((out / "ep1.provenance.json").read_text())
    assert any("44100 Hz: resampled to 48 kHz" in n for n in meta["notices"])
