"""IMF packages: CPL/PKL/ASSETMAP/OPL against the official schemas, ffmpeg's IMF demuxer,
check-imf on restoro's packages and on the known faults of the shared samples, supplemental
packages, and the disclosure of AI processing."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from fractions import Fraction
from typing import TYPE_CHECKING

import pytest
import typer
from typer.testing import CliRunner
from xml_validator import IMF_DOCS, assert_invalid, assert_valid, run_validator

from restoro.cli import imf_cmd
from restoro.deliver.imf.checks import check_package
from restoro.deliver.imf.cpl import APP_2E
from restoro.deliver.imf.j2k import encode_shot
from restoro.deliver.imf.package import PackageSpec, write_package
from restoro.deliver.imf.tracks import write_j2k_track, write_pcm_track
from restoro.media.ffmpeg import ffmpeg_exe, run_ffmpeg
from restoro.media.frames import FrameFormat

if TYPE_CHECKING:
    from pathlib import Path

ISSUED = "2024-05-01T12:00:00Z"
SANDFLOW = "samples/imf/sandflow_repkl/src/test/resources/imp"
DISCLOSURE = {
    "ai": True,
    "summary": "AI-processed: yes; stages: ingest, upscale",
    "models": [{"stage": "upscale", "name": "realesrgan-x2", "digest": "xxh128:" + "ab" * 16}],
}


@pytest.fixture(scope="module")
def tracks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two picture track files (two shots, 4 + 3 frames of 64x48) and a stereo PCM file."""
    d = tmp_path_factory.mktemp("imftracks")
    fmt = FrameFormat(width=64, height=48, frame_rate="24")
    for i, (n, src) in enumerate(((4, "testsrc2"), (3, "smptebars"))):
        run_ffmpeg(["-f", "lavfi", "-i", f"{src}=s=64x48:r=24", "-frames:v", str(n), "-c:v",
                    "ffv1", "-pix_fmt", "rgb48le", str(d / f"f{i}.mkv")])  # fmt: skip
        encode_shot(d / f"f{i}.mkv", fmt, raster=(64, 48), fit="pillarbox", reversible=False,
                    out=d / f"s{i}.rj2k")  # fmt: skip
        write_j2k_track([d / f"s{i}.rj2k"], d / f"VIDEO_{i}.mxf",
                        uuid.uuid5(uuid.NAMESPACE_URL, f"shot{i}"), Fraction(24),
                        issued=ISSUED)  # fmt: skip
    run_ffmpeg(["-f", "lavfi", "-i", "sine=f=440:r=48000", "-t", str(7 / 24), "-ac", "2",
                "-c:a", "pcm_s24le", str(d / "a.wav")])  # fmt: skip
    write_pcm_track(d / "a.wav", d / "AUDIO_0.mxf", uuid.uuid5(uuid.NAMESPACE_URL, "audio"),
                    layout="stereo", language="en", title="Feature", issued=ISSUED)  # fmt: skip
    return d


def _package(tracks: Path, out: Path, **kw: object) -> object:
    out.mkdir(parents=True, exist_ok=True)
    for f in tracks.glob("*.mxf"):
        shutil.copy(f, out / f.name)
    spec = PackageSpec(
        title="ep1", edit_rate=Fraction(24), application=APP_2E, issued=ISSUED,
        picture=[out / "VIDEO_0.mxf", out / "VIDEO_1.mxf"], audio=[out / "AUDIO_0.mxf"],
        content_version="ep1 restoration (AI-processed: yes)", disclosure=DISCLOSURE,
    )  # fmt: skip
    for k, v in kw.items():
        setattr(spec, k, v)
    return write_package(spec, out)


def test_documents_validate_against_the_schemas(tracks: Path, tmp_path: Path,
                                                shared_dir: Path) -> None:  # fmt: skip
    pkg = _package(tracks, tmp_path / "pkg")
    docs = [pkg.cpl, pkg.pkl, pkg.assetmap, pkg.opl]  # type: ignore[attr-defined]
    assert_valid(shared_dir, *docs, kinds=IMF_DOCS)


def test_validator_rejects_the_known_bad_samples(shared_dir: Path) -> None:
    bad = shared_dir / "samples/imf/photon-tests/ASSETMAP_schemaViolation.xml"
    assert_invalid(shared_dir, bad, "ASSETMAP 429-9")


def test_validator_skip_is_not_a_pass(tmp_path: Path, shared_dir: Path) -> None:
    """The tool SKIPs a namespace it has no schema for and still exits 0: assert_valid, which
    every validation test uses, demands each file's own OK line and so refuses it."""
    doc = tmp_path / "other.xml"
    doc.write_text('<CompositionPlaylist xmlns="urn:example:not-smpte"/>', encoding="utf-8")
    code, lines = run_validator(shared_dir, doc)
    assert code == 0 and lines == {str(doc): [("SKIP", "")]}
    with pytest.raises(AssertionError, match="SKIP"):
        assert_valid(shared_dir, doc)


def test_cpl_content(tracks: Path, tmp_path: Path) -> None:
    import xml.etree.ElementTree as ET

    pkg = _package(tracks, tmp_path / "pkg")
    root = ET.parse(pkg.cpl).getroot()  # type: ignore[attr-defined]
    ns = {"c": "http://www.smpte-ra.org/schemas/2067-3/2016",
          "cc": "http://www.smpte-ra.org/schemas/2067-2/2016",
          "r": "urn:restoro:imf:processing:1"}  # fmt: skip
    assert root.findtext("c:ExtensionProperties/cc:ApplicationIdentification", namespaces=ns) == (
        APP_2E
    )
    proc = root.find("c:ExtensionProperties/r:Processing", ns)
    assert proc is not None and proc.get("aiProcessed") == "true"
    model = proc.find("r:Model", ns)
    assert model is not None and model.text == "realesrgan-x2"
    assert model.get("digest") == "xxh128:" + "ab" * 16
    label = root.findtext("c:ContentVersionList/c:ContentVersion/c:LabelText", namespaces=ns)
    assert label is not None and "AI-processed: yes" in label
    res = root.findall(".//cc:MainImageSequence/c:ResourceList/c:Resource", ns)
    assert [r.findtext("c:SourceDuration", namespaces=ns) for r in res] == ["4", "3"]
    audio = root.find(".//cc:MainAudioSequence/c:ResourceList/c:Resource", ns)
    assert audio is not None and audio.findtext("c:EditRate", namespaces=ns) == "48000 1"
    assert audio.findtext("c:IntrinsicDuration", namespaces=ns) == "14000"
    # The descriptor list carries the MXF descriptors, MCA labels included.
    text = ET.tostring(root, encoding="unicode")
    for needle in ("JPEG2000SubDescriptor", "SoundfieldGroupLabelSubDescriptor", ">sgST<",
                   ">chR<", ">Feature<", ">PRM<", ">FCMP<"):  # fmt: skip
        assert needle in text


def test_package_is_deterministic(tracks: Path, tmp_path: Path) -> None:
    a, b = _package(tracks, tmp_path / "a"), _package(tracks, tmp_path / "b")
    for name in ("cpl", "pkl", "assetmap", "opl"):
        pa, pb = getattr(a, name), getattr(b, name)
        assert pa.name == pb.name and pa.read_bytes() == pb.read_bytes()


def test_ffmpeg_imf_demuxer_plays_the_composition(tracks: Path, tmp_path: Path) -> None:
    pkg = _package(tracks, tmp_path / "pkg")
    cpl = str(pkg.cpl)  # type: ignore[attr-defined]
    video = subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-f", "imf", "-i", cpl, "-map", "0:v", "-f", "framecrc", "-"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert sum(1 for line in video.stdout.splitlines() if line.startswith("0,")) == 7
    audio = subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-f", "imf", "-i", cpl, "-map", "0:a", "-f", "s24le", "-"],
        capture_output=True,
        check=True,
    )
    assert len(audio.stdout) == 14000 * 6


def test_check_imf_passes_on_restoro_packages(tracks: Path, tmp_path: Path) -> None:
    pkg = _package(tracks, tmp_path / "pkg")
    findings = check_package(pkg.dir)  # type: ignore[attr-defined]
    # The only finding: these unit-test pictures are 64x48, not an App 2E raster (the
    # 1920x1080 package of test_imf_build has no finding at all).
    assert {(f.code, f.file) for f in findings} == {
        ("app2e-raster", "VIDEO_0.mxf"), ("app2e-raster", "VIDEO_1.mxf")
    }  # fmt: skip


def test_check_imf_finds_tampering(tracks: Path, tmp_path: Path) -> None:
    pkg = _package(tracks, tmp_path / "pkg")
    d = pkg.dir  # type: ignore[attr-defined]
    with open(d / "VIDEO_1.mxf", "r+b") as fh:  # flip one byte of a codestream
        fh.seek(-400, 2)
        b = fh.read(1)
        fh.seek(-400, 2)
        fh.write(bytes([b[0] ^ 0xFF]))
    codes = {(f.code, f.file) for f in check_package(d) if f.code != "app2e-raster"}
    assert codes == {("hash-mismatch", "VIDEO_1.mxf")}


def test_check_imf_reports_known_faults_of_the_samples(shared_dir: Path) -> None:
    audio = check_package(shared_dir / SANDFLOW / "countdown-audio")
    codes = {(f.code, f.file) for f in audio if f.severity == "error"}
    assert ("hash-mismatch", "CPL_0b976350-bea1-4e62-ba07-f32b28aaaf30.xml") in codes
    assert ("mca-incomplete", "WAV_d01bc6be-ae2f-436b-9705-c402e1d92212.mxf") in codes
    assert ("app2e-raster", "countdown-small.mxf") in codes
    mca = next(f for f in audio if f.code == "mca-incomplete")
    for prop in ("MCATitle", "MCATitleVersion", "MCAAudioContentKind", "MCAAudioElementKind"):
        assert prop in mca.message
    video = check_package(shared_dir / SANDFLOW / "countdown")
    assert ("hash-mismatch", "CPL_bb2ce11c-1bb6-4781-8e69-967183d02b9b.xml") in {
        (f.code, f.file) for f in video
    }
    assert not any(f.code.startswith("mca") for f in video)


def test_check_imf_command_exit_status(tracks: Path, tmp_path: Path, shared_dir: Path) -> None:
    app = typer.Typer()
    imf_cmd.register(app)
    app.command("noop")(lambda: None)  # a group, so the command is addressed by name
    pkg = _package(tracks, tmp_path / "pkg")
    ok = CliRunner().invoke(app, ["check-imf", str(pkg.dir)])  # type: ignore[attr-defined]
    assert ok.exit_code == 1 and "app2e-raster" in ok.output and "hash" not in ok.output
    bad = CliRunner().invoke(app, ["check-imf", str(shared_dir / SANDFLOW / "countdown-audio")])
    assert bad.exit_code == 1 and "mca-incomplete" in bad.output


def test_supplemental_package_references_earlier_track_files(tracks: Path,
                                                             tmp_path: Path) -> None:  # fmt: skip
    import xml.etree.ElementTree as ET

    base = _package(tracks, tmp_path / "ov")
    sup_dir = tmp_path / "sup"
    # The supplement carries only shot 1 (changed); shot 0 and the audio come from the OV.
    sup = _package(tracks, sup_dir, external={sup_dir / "VIDEO_0.mxf", sup_dir / "AUDIO_0.mxf"})
    pkl = ET.parse(sup.pkl).getroot()  # type: ignore[attr-defined]
    names = {e.text for e in pkl.iter() if e.tag.endswith("OriginalFileName")}
    assert "VIDEO_1.mxf" in names and "VIDEO_0.mxf" not in names and "AUDIO_0.mxf" not in names
    for f in ("VIDEO_0.mxf", "AUDIO_0.mxf"):
        (sup_dir / f).unlink()
    findings = [f for f in check_package(sup_dir) if f.code != "app2e-raster"]
    assert {f.severity for f in findings} == {"info"}
    assert {f.code for f in findings} == {"external-track-file"} and len(findings) == 2
    # Same composition, same CPL id, whichever package carries it.
    assert sup.cpl.name == base.cpl.name  # type: ignore[attr-defined]


def test_app_prores_package(tmp_path: Path, shared_dir: Path) -> None:
    from restoro.deliver.imf.cpl import APP_PRORES
    from restoro.deliver.imf.prores_track import write_prores_track
    from restoro.deliver.imf.reader import read_track_file
    from restoro.deliver.prores import encode_chunk

    run_ffmpeg(["-f", "lavfi", "-i", "testsrc2=s=64x48:r=24", "-frames:v", "5", "-c:v", "ffv1",
                "-pix_fmt", "rgb48le", str(tmp_path / "f.mkv")])  # fmt: skip
    fmt = FrameFormat(width=64, height=48, frame_rate="24")
    encode_chunk(tmp_path / "f.mkv", fmt, raster=(64, 48), profile="4444", out=tmp_path / "c.mov")
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    tid = uuid.uuid5(uuid.NAMESPACE_URL, "prores")
    n = write_prores_track(tmp_path / "c.mov", pkg / "VIDEO_0.mxf", tid, Fraction(24),
                           raster=(64, 48), profile="4444", issued=ISSUED)  # fmt: skip
    assert n == 5
    tf = read_track_file(pkg / "VIDEO_0.mxf")
    assert tf.descriptor.kind == "CDCIDescriptor" and tf.descriptor.u32("ComponentDepth") == 10
    assert tf.descriptor.props["PictureEssenceCoding"][13:15] == b"\x06\x05"  # ProRes 4444
    spec = PackageSpec(title="ep1", edit_rate=Fraction(24), application=APP_PRORES,
                       issued=ISSUED, picture=[pkg / "VIDEO_0.mxf"])  # fmt: skip
    docs = write_package(spec, pkg)
    assert_valid(shared_dir, docs.cpl, docs.pkl, docs.assetmap, docs.opl, kinds=IMF_DOCS)
    assert APP_PRORES.encode() in docs.cpl.read_bytes()
    assert check_package(pkg) == []
    video = subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-f", "imf", "-i", str(docs.cpl), "-f", "framecrc", "-"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert sum(1 for line in video.stdout.splitlines() if line.startswith("0,")) == 5


def _check_imf_cli(folder: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """``restoro check-imf FOLDER`` through the real entry point (exit status, all output)."""
    from restoro.cli.app import main

    code = main(["check-imf", str(folder)])
    cap = capsys.readouterr()
    out = cap.out + cap.err
    assert "E999" not in out and "Traceback" not in out, out
    return code, out


@pytest.mark.parametrize("damage", ["truncated-pkl", "garbage-assetmap", "garbage-cpl"])
def test_check_imf_reports_malformed_xml(tracks: Path, tmp_path: Path, damage: str,
                                         capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    """A truncated PKL, a garbage ASSETMAP or CPL: an ``xml-malformed`` finding naming the
    file, exit 1, never an internal error."""
    pkg = _package(tracks, tmp_path / "pkg")
    d = pkg.dir  # type: ignore[attr-defined]
    if damage == "truncated-pkl":
        target = pkg.pkl  # type: ignore[attr-defined]
        target.write_bytes(target.read_bytes()[: target.stat().st_size // 2])
    elif damage == "garbage-assetmap":
        target = d / "ASSETMAP.xml"
        target.write_bytes(b"\x00\xffnot xml <AssetMap><Asset></AssetMap>")
    else:  # the PKL's hash then differs too; the CPL is still reported as malformed
        target = pkg.cpl  # type: ignore[attr-defined]
        target.write_text("<CompositionPlaylist><Id>", encoding="utf-8")
    findings = check_package(d)
    assert ("xml-malformed", target.name) in {(f.code, f.file) for f in findings}
    code, out = _check_imf_cli(d, capsys)
    assert code == 1 and f"xml-malformed: {target.name}: not well-formed XML" in out


def test_check_imf_reports_bad_values(tracks: Path, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    """Well-formed XML with values that are not numbers: findings, not crashes."""
    pkg = _package(tracks, tmp_path / "pkg")
    cpl = pkg.cpl  # type: ignore[attr-defined]
    text = cpl.read_text(encoding="utf-8")
    text = text.replace("IntrinsicDuration>4<", "IntrinsicDuration>four<", 1)
    text = text.replace("EditRate>24 1<", "EditRate>24 0<", 1)
    cpl.write_text(text, encoding="utf-8")
    d = pkg.dir  # type: ignore[attr-defined]
    msgs = [f.message for f in check_package(d) if f.code == "bad-value"]
    assert any("IntrinsicDuration 'four'" in m for m in msgs), msgs
    assert any("EditRate '24 0' is not an edit rate" in m for m in msgs), msgs
    code, out = _check_imf_cli(d, capsys)
    assert code == 1 and "bad-value" in out


@pytest.mark.parametrize("escape", ["dotdot", "absolute", "symlink", "file-uri"])
def test_check_imf_refuses_asset_paths_outside_the_package(
    tracks: Path, tmp_path: Path, escape: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """An ASSETMAP path that leads out of the package (``../x``, an absolute path, a URI, a
    symbolic link pointing outside) is a ``path-outside`` finding and the file there is never
    read, though it is the very track file the PKL describes (hash and size match)."""
    pkg = _package(tracks, tmp_path / "pkg")
    d = pkg.dir  # type: ignore[attr-defined]
    outside = tmp_path / "elsewhere" / "VIDEO_1.mxf"
    outside.parent.mkdir()
    shutil.move(d / "VIDEO_1.mxf", outside)
    path = {
        "dotdot": "../elsewhere/VIDEO_1.mxf",
        "absolute": str(outside),
        "file-uri": outside.as_uri(),
        "symlink": "VIDEO_1.mxf",
    }[escape]
    if escape == "symlink":
        (d / "VIDEO_1.mxf").symlink_to(outside)
    am = d / "ASSETMAP.xml"
    text = am.read_text(encoding="utf-8")
    assert ":Path>VIDEO_1.mxf</" in text
    am.write_text(text.replace(":Path>VIDEO_1.mxf</", f":Path>{path}</"), "utf-8")
    findings = check_package(d)
    bad = [f for f in findings if f.code == "path-outside"]
    assert len(bad) == 1 and bad[0].file == "ASSETMAP.xml" and repr(path) in bad[0].message
    # Not followed: the PKL's asset is reported missing, its MXF was not read.
    assert any(f.code == "missing-asset" for f in findings)
    assert not any(f.file == "VIDEO_1.mxf" for f in findings)
    code, out = _check_imf_cli(d, capsys)
    assert code == 1 and "path-outside: ASSETMAP.xml" in out
