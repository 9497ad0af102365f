"""Per-deliverable QC of packages and caption tracks, on real builds of tiny media: every HLS
rendition decodes through its playlist with the title's frames, a deliberately starved ladder
rung is named by ``min_vmaf`` while a sane one passes, a DASH package plays segment by segment,
an IMF composition plays with the title's frames and samples, and a planted caption overlap and
too-fast cue reach report.json with their timecodes."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
from buildkit import build
from test_qc_build import shot_meta

from restoro.qc.captions import check_caption_file
from restoro.qc.verdict import QcFailed
from restoro.qc.vmaf import subsample_for, vmaf
from restoro.testing.synth import make_source

if TYPE_CHECKING:
    from pathlib import Path

SHOTS = [20, 12, 16]  # 48 frames at 24 fps
# Cue 2 starts before cue 1 ends (overlap) and shows 23 characters for 0.15 s (too fast).
SRT = (
    "1\n00:00:00,500 --> 00:00:01,400\nHello there\n\n"
    "2\n00:00:01,300 --> 00:00:01,450\nBye bye bye bye bye bye\n"
)
MANIFEST = """\
restoro: 1
project: qcpkg
sources:
  tape:
    path: media/source.mkv
pipelines:
  main:
    - {stage: ingest, mode: progressive}
titles:
  ep1:
    source: tape
    pipeline: main
    shots: {detector: content, threshold: 27, min_frames: 4}
    audio:
      - {stream: 1, layout: stereo, loudness: -23, language: en}
    captions:
      - {path: media/en.srt, language: en, kind: subtitles}
deliverables:
%(deliverables)s
qc: {%(qc)s}
"""
MASTER = "  master: {kind: prores, profile: 422hq, raster: 320x240, fit: pillarbox}\n"
LADDER = """\
  web:
    kind: %s
    segment_seconds: 0.5
    ladder:
      - {codec: h264, height: 96, bitrate: 300k}
      - {codec: h264, height: 24, bitrate: 8k}
    audio:
      - {codec: aac, channels: 2, bitrate: 96k}
"""
IMF = (
    "  imf: {kind: imf, application: prores, profile: 422hq, raster: 320x240, fit: pillarbox,"
    " issue_date: '2024-05-01T12:00:00Z'}\n"
)


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("qcpkg-media")
    make_source(
        root / "source.mkv", width=160, height=120, shots=3, shot_frames=SHOTS,
        audio_channels=2, codec="ffv1", sar="1:1", rate="24",
    )  # fmt: skip
    (root / "en.srt").write_text(SRT, encoding="utf-8")
    return root


def _workspace(root: Path, media: Path, deliverables: str, qc: str = "") -> Path:
    (root / "media").mkdir(parents=True)
    for f in media.iterdir():
        (root / "media" / f.name).symlink_to(f)
    m = root / "restoro.yaml"
    m.write_text(MANIFEST % {"deliverables": deliverables.rstrip("\n"), "qc": qc}, "utf-8")
    return m


def test_vmaf_scores_an_upscaled_picture_against_its_reference() -> None:
    src = ["-f", "lavfi", "-i", "testsrc2=s=160x120:r=24:d=0.5"]
    same = vmaf(src, src, size=(160, 120))
    half = vmaf(src, src, size=(160, 120), distorted_chain="scale=80:60")
    tiny = vmaf(src, src, size=(160, 120), distorted_chain="scale=16:12")
    assert same.frames == half.frames == 12
    assert same.mean > 95 > half.mean > tiny.mean and tiny.mean < 20
    assert same.psnr > half.psnr > tiny.psnr and tiny.min <= tiny.p5 <= tiny.mean
    assert subsample_for(48) == 1 and subsample_for(65000) == 33


def test_caption_checks_locate_overlap_and_fast_cue(tmp_path: Path) -> None:
    srt = tmp_path / "x.srt"
    srt.write_text(SRT, encoding="utf-8")
    metrics, found = check_caption_file(
        srt, label="en", frames=48, frame_rate="24", timecode="01:00:00:00", offset_ms=100
    )
    assert metrics == {"cues": 2, "issues": {"duration": 1, "overlap": 1, "reading-rate": 1}}
    by_kind = {f["kind"]: f for f in found}
    # Cue 2 starts at 1.3 s + the 100 ms offset = frame 33 at 24 fps.
    assert by_kind["overlap"]["timecode"] == "01:00:01:09" and by_kind["overlap"]["frames"] == [33]
    assert "overlaps cue 1 by 0.100 s" in by_kind["overlap"]["message"]
    assert by_kind["reading-rate"]["cue"] == 2 and by_kind["reading-rate"]["severity"] == "warning"
    _m, errors = check_caption_file(
        srt, label="en", frames=48, frame_rate="24", timecode="01:00:00:00", error=True
    )
    assert {f["severity"] for f in errors} == {"error"}


@pytest.mark.slow
def test_hls_renditions_checked_and_starved_rung_fails_min_vmaf(
    tmp_path: Path, media: Path
) -> None:
    from restoro.cli.qc_cmd import run_qc_report
    from restoro.plan.workspace import Workspace

    m = _workspace(tmp_path, media, MASTER + LADDER % "hls", qc="min_vmaf: 50")
    with pytest.raises(QcFailed) as info:
        build(m)
    fails = info.value.failures
    assert list(fails) == ["ep1/web"]
    (bad,) = fails["ep1/web"]
    assert bad["check"] == "vmaf" and bad["message"].startswith("v1 (h264 24p 8k): VMAF ")
    assert "ep1/web: vmaf: v1 (h264 24p 8k)" in info.value.message
    meta = shot_meta(m)["ep1/web"]
    rends = meta["metrics"]["renditions"]
    for rid in ("v0", "v1"):
        r = rends[rid]
        assert r["frames"] == 48 and r["duration"] == r["listed"] == 2.0
        assert r["codec"] == "h264" and r["profile"] == "High" and r["bit_depth"] == 8
    assert rends["v0"]["raster"] == "128x96" and rends["v1"]["raster"] == "32x24"
    assert rends["v0"]["vmaf_mean"] >= 50 > rends["v1"]["vmaf_mean"]
    assert rends["v0"]["vmaf_min"] <= rends["v0"]["vmaf_p5"] <= rends["v0"]["vmaf_mean"]
    assert rends["v0"]["psnr"] > rends["v1"]["psnr"] and rends["v0"]["vmaf_frames"] == 48
    assert rends["a0"]["codec"] == "aac" and rends["a0"]["av_diff_frames"] < 1
    assert rends["a0"]["av_offset_ms"] == 0  # sound and picture start together
    checks = ("decode", "frames", "codec", "av-length", "av-sync")
    assert not [f for f in meta["findings"] if f["check"] in checks]

    # The report: the deliverable with its renditions and the planted caption faults.
    ws = Workspace(m)
    try:
        html_path, json_path, failed = run_qc_report(ws, out=tmp_path / "qc")
    finally:
        ws.close()
    assert failed is not None
    data = json.loads(json_path.read_text())
    delivs = {d["id"]: d for d in data["deliverables"]}
    assert delivs["ep1/web"]["status"] == "fail" and delivs["ep1/web"]["kind"] == "hls"
    assert delivs["ep1/master"]["status"] == "warn"  # caption warnings only
    for d in ("ep1/web", "ep1/master"):
        caps = {f["kind"]: f for f in delivs[d]["findings"] if f["check"] == "captions"}
        assert caps["overlap"]["timecode"] == caps["reading-rate"]["timecode"] == "00:00:01:07"
        assert caps["overlap"]["frames"] == [31]
    page = html_path.read_text()
    assert "<table class='renditions'>" in page and "vmaf_mean" in page
    assert "overlaps cue 1 by 0.100 s" in page


@pytest.mark.slow
def test_dash_package_plays_segment_by_segment(tmp_path: Path, media: Path) -> None:
    m = _workspace(tmp_path, media, LADDER % "dash", qc="skip: [captions]")
    assert build(m).failed == 0
    meta = shot_meta(m)["ep1/web"]
    assert meta["kind"] == "dash" and meta["findings"] == []
    rends = meta["metrics"]["renditions"]
    assert [rends[r]["frames"] for r in ("v0", "v1")] == [48, 48]
    assert "vmaf_mean" not in rends["v0"]  # no ProRes master in this build
    # A segment the MPD lists goes missing from the package: the rendition no longer plays.
    from restoro.plan.workspace import Workspace
    from restoro.qc.package import check_streaming, stage

    ws = Workspace(m)
    try:
        res = next(r for r in ws.store.iter_actions() if r.action_id == "ep1/web")
        files = [(n, ws.store.blob_path(o.digest)) for n, o in res.outputs.items()]
    finally:
        ws.close()
    root = tmp_path / "broken"
    stage(root, [(n, p) for n, p in files if n != "v1/seg_00003.m4s"])
    (tmp_path / "work").mkdir()
    params = {"kind": "dash", "frames": 48, "frame_rate": "24", "timecode": "00:00:00:00",
              "ladder": [{"id": "v1", "codec": "h264", "height": 24, "bitrate": "8k",
                          "bit_depth": 8}], "audio": []}  # fmt: skip
    _metrics, found = check_streaming(root, params, None, [], tmp_path / "work")
    assert [f["check"] for f in found] == ["decode"]
    assert "v1/seg_00003.m4s is listed in manifest.mpd" in found[0]["message"]


@pytest.mark.slow
def test_imf_composition_plays_with_the_titles_frames_and_samples(
    tmp_path: Path, media: Path
) -> None:
    m = _workspace(tmp_path, media, IMF)
    report = build(m)
    assert report.failed == 0
    meta = shot_meta(m)["ep1/imf"]
    assert meta["kind"] == "imf"
    mt = meta["metrics"]
    assert mt["frames"] == 48 and mt["duration"] == 2.0 and mt["decode_errors"] == 0
    assert mt["codec"] == "prores" and mt["raster"] == "320x240"
    assert mt["audio_tracks"] == 1 and mt["audio_samples"] == [96000]
    assert [f for f in meta["findings"] if f["check"] != "captions"] == []
    assert {f["kind"] for f in meta["findings"]} == {"overlap", "reading-rate", "duration"}
