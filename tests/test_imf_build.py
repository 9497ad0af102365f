"""The ``imf`` deliverable end to end: a 1920x1080 App 2E package built from a 3-shot project,
played by ffmpeg's IMF demuxer against the ProRes master, checked, and rebuilt incrementally
and as a supplemental package."""

from __future__ import annotations

import re
import subprocess
from typing import TYPE_CHECKING

import av
import pytest
from buildkit import build, executed
from xml_validator import IMF_DOCS, assert_valid

from restoro.deliver.imf.checks import check_package
from restoro.deliver.imf.reader import read_track_file
from restoro.errors import InputError
from restoro.media.ffmpeg import ffmpeg_exe

if TYPE_CHECKING:
    from pathlib import Path

IMF = "  imf: {kind: imf, raster: 1920x1080, issue_date: '2024-05-01T12:00:00Z'}\n"
MASTER = "  master: {kind: prores, profile: 422hq, raster: 640x360, fit: pillarbox}\n"
MASTER_HD = "  master: {kind: prores, profile: 422hq, raster: 1920x1080, fit: pillarbox}\n"


def _frames_and_psnr(cpl: Path, master: Path) -> tuple[int, float]:
    """Frames ffmpeg's IMF demuxer decodes, and the PSNR against the master (both converted
    to the master's 10-bit 4:2:2 Y'CbCr BT.709)."""
    graph = ("[0:v]zscale=matrix=709:range=limited:dither=none,format=yuv422p10le[a];"
             "[1:v]format=yuv422p10le[b];[a][b]psnr")  # fmt: skip
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-f", "imf", "-i", str(cpl), "-i",
                           str(master), "-filter_complex", graph, "-f", "null", "-"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    frames = int(re.findall(r"frame=\s*(\d+)", proc.stderr)[-1])
    average = re.search(r"PSNR .* average:(\S+)", proc.stderr)
    assert average is not None, proc.stderr[-2000:]
    return frames, float(average.group(1))


def _samples(path: Path, fmt: str | None = None) -> int:
    args = [ffmpeg_exe(), "-v", "error", *(["-f", fmt] if fmt else []), "-i", str(path),
            "-map", "0:a:0", "-f", "s24le", "-c:a", "pcm_s24le", "-"]  # fmt: skip
    return len(subprocess.run(args, capture_output=True, check=True).stdout) // 6


@pytest.mark.slow
def test_imf_package_end_to_end(workspace: Path, shared_dir: Path) -> None:
    text = workspace.read_text().replace(MASTER, MASTER_HD + IMF)
    workspace.write_text(text)
    first = build(workspace)
    assert first.failed == 0
    assert sum(r.stage == "imf-track" for r in first.records) == 3  # one per shot
    out = workspace.parent / "out" / "imf" / "ep1"
    master = workspace.parent / "out" / "master" / "ep1.mov"
    cpl = next(out.glob("CPL_*.xml"))
    docs = [cpl, next(out.glob("PKL_*.xml")), out / "ASSETMAP.xml", next(out.glob("OPL_*.xml"))]
    assert_valid(shared_dir, *docs, kinds=IMF_DOCS)
    assert check_package(out) == []
    mxfs = sorted(out.glob("*.mxf"))
    assert len(mxfs) == 4  # three shots + one audio track
    for f in mxfs:
        tf = read_track_file(f)
        assert f.name.endswith(f"_{tf.id}.mxf")
        with av.open(str(f)) as c:
            assert len(c.streams) == 1
    frames, psnr = _frames_and_psnr(cpl, master)
    print(f"IMF vs ProRes master: {frames} frames, PSNR {psnr:.2f} dB")
    assert frames == 36 and psnr >= 45.0
    assert _samples(cpl, "imf") == _samples(master) > 0
    assert b'aiProcessed="false"' in cpl.read_bytes()  # bicubic: not AI

    # One shot changes: only its picture track file is re-encoded.
    second_shot = sorted({r.shot for r in first.records if r.shot})[1]
    workspace.write_text(text.replace(
        "    shots: {detector: content, threshold: 27, min_frames: 4}\n",
        "    shots: {detector: content, threshold: 27, min_frames: 4}\n"
        f'    overrides:\n      - shots: ["{second_shot}"]\n'
        "        params: {upscale: {model: lanczos}}\n",
    ))  # fmt: skip
    again = build(workspace)
    ran = {k for k, v in executed(again).items() if "imf" in k}
    assert ran == {f"{second_shot}/imf", "ep1/imf"}
    new_mxfs = sorted(out.glob("*.mxf"))
    assert len(set(new_mxfs) - set(mxfs)) == 1  # one new track file, the others unchanged


@pytest.mark.slow
def test_supplemental_package_carries_only_changed_track_files(workspace: Path) -> None:
    text = workspace.read_text().replace(MASTER, IMF)
    workspace.write_text(text)
    assert build(workspace).failed == 0
    ov = workspace.parent / "out" / "imf" / "ep1"
    first_shot = sorted(p.name for p in ov.glob("VIDEO_*.mxf"))
    sup = IMF.replace("imf:", "sup:").replace("}", ", supplemental_to: out/imf}")
    workspace.write_text(text.replace(
        "    shots: {detector: content, threshold: 27, min_frames: 4}\n",
        "    shots: {detector: content, threshold: 27, min_frames: 4}\n"
        "    overrides:\n      - {range: ['00:00:00;00', '00:00:00;12'], "
        "params: {upscale: {model: lanczos}}}\n",
    ) + sup)  # fmt: skip
    assert build(workspace).failed == 0
    sp = workspace.parent / "out" / "sup" / "ep1"
    carried = sorted(p.name for p in sp.glob("*.mxf"))
    assert len(carried) == 1 and carried[0] not in first_shot
    findings = check_package(sp)
    assert {f.code for f in findings} == {"external-track-file"} and len(findings) == 3


def test_app2e_forbidden_raster_is_a_clear_error() -> None:
    from restoro.plan.imf import check_raster

    with pytest.raises(InputError, match="App 2E does not allow a 1000x500 raster") as exc:
        check_raster("imf", "1000x500", "2e")
    assert exc.value.location == "deliverables.imf.raster" and "1920x1080" in (exc.value.hint or "")
    assert check_raster("imf", "1000x500", "prores") == (1000, 500)
    assert check_raster("imf", "3840x2160", "2e") == (3840, 2160)


def test_a_44k_source_is_resampled_with_a_build_warning(workspace: Path) -> None:
    """IMF audio is 48 kHz: a 44.1 kHz source is resampled, and the build says so as an event
    (not only in the provenance file), on the first build and on a cached one alike."""
    from restoro.engine.events import EventBus
    from restoro.plan.build import Builder, BuildOptions
    from restoro.plan.workspace import Workspace

    src = workspace.parent / "media" / "source.mkv"
    tmp = src.with_name("s44.mkv")
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-i", str(src), "-map", "0", "-c:v", "copy",
         "-c:a", "pcm_s16le", "-ar", "44100", str(tmp)],
        check=True,
    )  # fmt: skip
    tmp.replace(src)
    workspace.write_text(workspace.read_text().replace(MASTER, MASTER + IMF))
    for _ in range(2):
        seen: list[dict[str, object]] = []
        bus = EventBus()
        bus.subscribe(seen.append)
        ws = Workspace(workspace)
        try:
            report = Builder(ws, BuildOptions(), bus).build()
        finally:
            ws.close()
        assert report.failed == 0
        warnings = [str(e["message"]) for e in seen if e["event"] == "warning"]
        assert any("44100 Hz" in w and "48 kHz" in w and w.startswith("ep1/imf") for w in warnings)
