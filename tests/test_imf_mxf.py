"""restoro's MXF writer and reader: KLV coding, J2K and PCM track files, read back by restoro
and by PyAV (FFmpeg's MXF demuxer), byte-deterministic, and real IMF-Tool files read back."""

from __future__ import annotations

import struct
import subprocess
import uuid
from fractions import Fraction
from typing import TYPE_CHECKING

import av
import pytest

from restoro.deliver.imf import klv as K
from restoro.deliver.imf import ul as U
from restoro.deliver.imf.descriptors import parse_j2k
from restoro.deliver.imf.j2k import encode_shot, picture_chain, read_shot
from restoro.deliver.imf.mxf import PARTITION_SIZE
from restoro.deliver.imf.reader import read_track_file
from restoro.deliver.imf.tracks import write_j2k_track, write_pcm_track
from restoro.media.ffmpeg import ffmpeg_exe, run_ffmpeg
from restoro.media.frames import FrameFormat

if TYPE_CHECKING:
    from pathlib import Path

ISSUED = "2024-05-01T12:00:00Z"
SANDFLOW = "samples/imf/sandflow_repkl/src/test/resources/imp"


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six 64x48 16-bit RGB frames and 0.25 s of 24-bit stereo and 5.1 PCM."""
    d = tmp_path_factory.mktemp("imfmedia")
    run_ffmpeg(["-f", "lavfi", "-i", "testsrc2=s=64x48:r=24", "-frames:v", "6", "-c:v", "ffv1",
                "-pix_fmt", "rgb48le", str(d / "frames.mkv")])  # fmt: skip
    for name, layout in (("stereo", "stereo"), ("51", "5.1"), ("71", "7.1")):
        run_ffmpeg(["-f", "lavfi", "-i", f"sine=f=440:r=44100,aformat=channel_layouts={layout}",
                    "-t", "0.25", "-ar", "48000", "-c:a", "pcm_s24le",
                    str(d / f"{name}.wav")])  # fmt: skip
    fmt = FrameFormat(width=64, height=48, frame_rate="24")
    for rev in (False, True):
        encode_shot(d / "frames.mkv", fmt, raster=(64, 48), fit="pillarbox", reversible=rev,
                    out=d / f"shot{int(rev)}.rj2k")  # fmt: skip
    return d


def test_ber_and_klv_roundtrip() -> None:
    for n in (0, 1, 127, 128, 65535, 1 << 24, 1 << 40):
        enc = K.ber(n)
        assert enc[0] & 0x80 and len(enc) >= 4  # always the long form
        assert K.read_ber(enc, 0) == (n, len(enc))
    assert K.read_ber(b"\x05", 0) == (5, 1)
    data = K.klv(U.FILL, b"abc") + K.klv(U.PRIMER, b"")
    packets = list(K.iter_packets(data))
    assert [(p.key, p.length) for p in packets] == [(U.FILL, 3), (U.PRIMER, 0)]
    with pytest.raises(ValueError, match="past the end"):
        list(K.iter_packets(data + K.klv(U.FILL, b"xyz")[:-1]))


def test_imf_umid_carries_the_track_file_uuid() -> None:
    u = uuid.uuid4()
    umid = K.umid(u)
    assert len(umid) == 32 and umid[:12] == bytes.fromhex("060a2b340101010501010f20")
    assert umid[12] == 0x13 and umid[16:] == u.bytes


def test_j2k_coding_labels_follow_rsiz() -> None:
    # Values seen in real App 2E CPLs (Photon test material): Rsiz → PictureEssenceCoding.
    assert U.j2k_coding(0x0706)[13:] == bytes([0x01, 0x05, 0x0F])
    assert U.j2k_coding(0x0516)[13:] == bytes([0x01, 0x03, 0x10])
    assert U.j2k_coding(0x0536)[13:] == bytes([0x01, 0x03, 0x12])
    assert U.j2k_coding(0x0557)[13:] == bytes([0x01, 0x03, 0x19])


def test_codestreams_are_raw_and_in_the_lossy_imf_profile(media: Path) -> None:
    streams = list(read_shot(media / "shot0.rj2k"))
    assert len(streams) == 6
    for cs in streams:
        assert cs[:2] == b"\xff\x4f"  # SOC: a raw codestream, no JP2 boxes
    p = parse_j2k(streams[0])
    assert (p.width, p.height, p.tile) == (64, 48, (64, 48))  # single tile
    assert p.bit_depth == 12 and len(p.components) == 3
    assert p.progression == 4 and p.codeblock == (32, 32) and not p.reversible  # CPRL
    assert p.rsiz >> 8 == 0x04  # IMF 2K lossy profile
    assert parse_j2k(next(read_shot(media / "shot1.rj2k"))).reversible


def test_reversible_codestreams_are_in_the_imf_reversible_profile(media: Path) -> None:
    from restoro.deliver.imf import j2k_reversible

    if j2k_reversible.available() is None:
        pytest.skip("glymur/libopenjp2 not available: reversible J2K falls back to ffmpeg")
    streams = list(read_shot(media / "shot1.rj2k"))
    assert len(streams) == 6 and all(cs[:2] == b"\xff\x4f" for cs in streams)
    p = parse_j2k(streams[0])
    assert p.reversible and p.bit_depth == 12 and p.tile == (64, 48)
    assert p.progression == 4 and p.codeblock == (32, 32) and p.levels == 5
    assert p.cod[0] & 1 and p.cod[10:] == bytes([0x77]) + bytes([0x88]) * 5  # precincts
    assert p.rsiz >> 8 == 0x07  # IMF 2K reversible profile
    again = media / "again.rj2k"  # deterministic: the same frames give the same bytes
    encode_shot(media / "frames.mkv", FrameFormat(width=64, height=48, frame_rate="24"),
                raster=(64, 48), fit="pillarbox", reversible=True, out=again)  # fmt: skip
    assert again.read_bytes() == (media / "shot1.rj2k").read_bytes()


def _write_picture(media: Path, out: Path, rev: int = 0) -> uuid.UUID:
    tid = uuid.uuid5(uuid.NAMESPACE_URL, f"pic{rev}")
    n = write_j2k_track([media / f"shot{rev}.rj2k"] * 2, out, tid, Fraction(24), issued=ISSUED)
    assert n == 12
    return tid


def test_j2k_track_file_reads_back(media: Path, tmp_path: Path) -> None:
    out = tmp_path / "v.mxf"
    tid = _write_picture(media, out)
    tf = read_track_file(out)
    assert tf.id == tid and tf.edit_rate == 24 and tf.duration == 12
    assert tf.descriptor.kind == "RGBADescriptor" and len(tf.essence) == 12
    assert [s.kind for s in tf.sub_descriptors()] == ["JPEG2000SubDescriptor"]
    assert len(tf.essence_tracks) == 1
    assert tf.preface.props["PrimaryPackage"] == tf.file_package.props["InstanceUID"]
    assert tf.preface.props["OperationalPattern"] == U.OP1A
    # Header, essence, index and footer in separate partitions; the RIP points at each.
    assert [(p.kind, p.body_sid, p.index_sid) for p in tf.partitions] == [
        (2, 0, 0), (3, 1, 0), (3, 0, 0x81), (4, 0, 0)
    ]  # fmt: skip
    assert [off for _sid, off in tf.rip] == [p.offset for p in tf.partitions]
    # Index entries: stream offsets of each frame's KLV within the body partition's essence.
    entries = K.parse_batch(tf.index_segments[0].props["IndexEntryArray"])
    body = tf.partitions[1].offset + PARTITION_SIZE  # after the body partition pack
    assert [struct.unpack(">Q", e[3:])[0] for e in entries] == [
        off - 20 - body for _k, off, _n in tf.essence
    ]
    codestreams = list(read_shot(media / "shot0.rj2k")) * 2
    assert list(tf.frames()) == codestreams
    with av.open(str(out)) as c:
        s = c.streams.video[0]
        assert (s.codec_context.name, s.width, s.height) == ("jpeg2000", 64, 48)
        assert sum(1 for _ in c.decode(video=0)) == 12


def _raw12(path: Path) -> bytes:
    """Every frame of ``path`` as planar 12-bit R'G'B', decoded by ffmpeg."""
    proc = subprocess.run(
        [
            ffmpeg_exe(),
            "-v",
            "error",
            "-i",
            str(path),
            "-f",
            "rawvideo",
            "-pix_fmt",
            "gbrp12le",
            "-",
        ],
        capture_output=True,
        check=True,
    )
    return proc.stdout


def test_reversible_track_decodes_losslessly(media: Path, tmp_path: Path) -> None:
    out = tmp_path / "v.mxf"
    _write_picture(media, out, rev=1)
    fmt = FrameFormat(width=64, height=48, frame_rate="24")
    chain = ",".join(picture_chain(fmt, (64, 48), "pillarbox"))
    run_ffmpeg(["-i", str(media / "frames.mkv"), "-vf", chain, "-c:v", "ffv1",
                str(tmp_path / "ref.mkv")])  # fmt: skip
    frame = 64 * 48 * 3 * 2
    got, ref = _raw12(out), _raw12(tmp_path / "ref.mkv")
    assert len(got) == 12 * frame and len(ref) == 6 * frame
    assert got == ref * 2  # the shot twice, bit for bit


@pytest.mark.parametrize(("name", "layout", "labels"), [
    ("stereo", "stereo", ["chL", "chR"]),
    ("51", "5.1", ["chL", "chR", "chC", "chLFE", "chLs", "chRs"]),
    ("71", "7.1", ["chL", "chR", "chC", "chLFE", "chLrs", "chRrs", "chLss", "chRss"]),
])  # fmt: skip
def test_pcm_track_file_with_mca(media: Path, tmp_path: Path, name: str, layout: str,
                                 labels: list[str]) -> None:  # fmt: skip
    out = tmp_path / "a.mxf"
    tid = uuid.uuid5(uuid.NAMESPACE_URL, name)
    n = write_pcm_track(media / f"{name}.wav", out, tid, layout=layout, language="fr-CA",
                        title="Feature", issued=ISSUED)  # fmt: skip
    assert n == 12000
    tf = read_track_file(out)
    d = tf.descriptor
    assert tf.id == tid and d.kind == "WAVEPCMDescriptor" and tf.duration == 12000
    assert d.u32("QuantizationBits") == 24 and d.rational("AudioSamplingRate") == 48000
    assert d.props["EssenceContainer"][14] == 0x02  # clip-wrapped
    assert len(tf.essence) == 1 and tf.essence[0][2] == 12000 * 3 * len(labels)
    subs = tf.sub_descriptors()
    group = subs[0]
    assert group.kind == "SoundfieldGroupLabelSubDescriptor"
    assert group.text("MCATitle") == "Feature" and group.text("MCAAudioContentKind") == "PRM"
    assert [s.text("MCATagSymbol") for s in subs[1:]] == labels
    assert group.props["MCALabelDictionaryID"] == U.MCA_SOUNDFIELD[layout][2]
    assert all(s.props["SoundfieldGroupLinkID"] == group.props["MCALinkID"] for s in subs[1:])
    assert {s.props["RFC5646SpokenLanguage"] for s in subs} == {b"fr-CA"}
    with av.open(str(out)) as c:
        s = c.streams.audio[0]
        assert (s.codec_context.name, s.rate, s.channels) == ("pcm_s24le", 48000, len(labels))
        assert sum(f.samples for f in c.decode(audio=0)) == 12000


def test_writers_are_deterministic(media: Path, tmp_path: Path) -> None:
    for i in (1, 2):
        _write_picture(media, tmp_path / f"v{i}.mxf")
        write_pcm_track(media / "stereo.wav", tmp_path / f"a{i}.mxf", uuid.UUID(int=7),
                        layout="stereo", language="en", title="t", issued=ISSUED)  # fmt: skip
    assert (tmp_path / "v1.mxf").read_bytes() == (tmp_path / "v2.mxf").read_bytes()
    assert (tmp_path / "a1.mxf").read_bytes() == (tmp_path / "a2.mxf").read_bytes()


def test_pcm_rejects_non_48k(tmp_path: Path) -> None:
    from restoro.errors import MediaError

    wav = tmp_path / "a.wav"
    run_ffmpeg(["-f", "lavfi", "-i", "sine=r=44100", "-t", "0.1", "-c:a", "pcm_s24le",
                str(wav)])  # fmt: skip
    with pytest.raises(MediaError, match="48 kHz"):
        write_pcm_track(wav, tmp_path / "a.mxf", uuid.uuid4(), layout="stereo", language="en",
                        title="t", issued=ISSUED)  # fmt: skip


def test_reads_imf_tool_track_files(shared_dir: Path) -> None:
    pkg = shared_dir / SANDFLOW / "countdown-audio"
    pic = read_track_file(pkg / "countdown-small.mxf")
    assert str(pic.id) == "35e05073-878e-4b2f-b69d-2369f25adfc9"
    assert pic.duration == 24 and len(pic.essence) == 24 and pic.edit_rate == 24
    j2k = pic.sub_descriptors()[0]
    assert j2k.kind == "JPEG2000SubDescriptor" and j2k.props["Rsiz"] == b"\x07\x06"
    assert parse_j2k(next(pic.frames())).rsiz == 0x0706
    snd = read_track_file(pkg / "WAV_d01bc6be-ae2f-436b-9705-c402e1d92212.mxf")
    assert snd.descriptor.kind == "WAVEPCMDescriptor" and snd.duration == 48000
    assert "MCATitle" not in snd.sub_descriptors()[0].props  # the known fault


def test_mca_labels_match_the_imf_samples(shared_dir: Path) -> None:
    """Every soundfield/channel label restoro writes that the shared IMF samples also use has
    the samples' dictionary UL (sg51 is ST 428-12's 03020201, not an ST 2067-8 label)."""
    import re

    seen: dict[str, str] = {}
    for cpl in (shared_dir / "samples/imf").rglob("CPL*.xml"):
        text = cpl.read_text(errors="replace")
        pairs = re.findall(r"MCALabelDictionaryID>(?:urn:smpte:ul:)?([0-9a-fA-F.\-]+)<.*?"
                           r"MCATagSymbol>(\w+)<", text, flags=re.S)  # fmt: skip
        for ul, symbol in pairs:
            seen.setdefault(symbol, re.sub(r"[.\-]", "", ul).lower())
    ours = {sym: label.hex() for sym, _n, label in U.MCA_SOUNDFIELD.values()}
    ours |= {sym: label.hex() for sym, _n, label in U.MCA_CHANNELS.values()}
    common = set(seen) & set(ours)
    assert {"sg51", "sgST", "chL", "chLs"} <= common
    assert {s: ours[s] for s in common} == {s: seen[s] for s in common}
