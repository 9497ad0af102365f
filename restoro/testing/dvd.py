"""DVD-like test media: MPEG-2 with CEA-608 captions in its picture user data, and real
DVD-Video folders made with ``dvdauthor``.

Recipe:

* ``popon_pairs`` turns cues (first frame shown, first frame cleared, text) into one CEA-608
  byte pair per frame: the pop-on sequence (RCL, ENM, a PAC per line, the text, EOC landing on
  the first frame shown, EDM on the first frame cleared), control codes doubled as broadcast.
  ``scc_text`` writes the same pairs as an SCC file, for comparison with what is extracted.
* ``make_mpeg2_cc`` encodes a small MPEG-2 elementary stream with ffmpeg, then splices the pairs
  into its user data in Python: the ATSC A/53 form (``GA94`` ``cc_data`` after each picture's
  headers, placed by temporal reference so B-frames get their own frame's pair) or the DVD form
  (``CC`` user data after each GOP header, one block of both fields per picture of the GOP).
  The elementary stream is muxed with AC-3 audio tracks into an MPEG program stream (``-f dvd``).
* ``make_dvd`` runs ``dvdauthor`` over program streams (a title of one or more, one chapter
  each, audio languages named in the IFO), and can split the title VOBs at a sector boundary
  to make the multi-VOB layout of a real disc without writing a gigabyte.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from restoro.media.cc608 import PAD, odd_parity, to_scc
from restoro.media.ffmpeg import bitexact_args, run_ffmpeg

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

SECTOR = 2048
_MISC = {1: 0x14, 2: 0x1C, 3: 0x15, 4: 0x1D}
# Preamble address codes, indent 0 white, CC1/CC3 first byte and second byte base per row.
_PAC = {
    1: (0x11, 0x40), 2: (0x11, 0x60), 3: (0x12, 0x40), 4: (0x12, 0x60), 5: (0x15, 0x40),
    6: (0x15, 0x60), 7: (0x16, 0x40), 8: (0x16, 0x60), 9: (0x17, 0x40), 10: (0x17, 0x60),
    11: (0x10, 0x40), 12: (0x13, 0x40), 13: (0x13, 0x60), 14: (0x14, 0x40), 15: (0x14, 0x60),
}  # fmt: skip


def _code(channel: int, b1: int, b2: int) -> tuple[int, int]:
    return odd_parity(b1), odd_parity(b2)


def popon_pairs(
    cues: Sequence[tuple[int, int, str]], frames: int, *, channel: int = 1
) -> list[tuple[int, int]]:
    """One CEA-608 pair per frame for pop-on ``cues`` (shown at frame ``a``, cleared at ``b``,
    lines split on ``\\n``); ValueError when two cues' codes would need the same frame."""
    out: list[tuple[int, int] | None] = [None] * frames
    misc = _MISC[channel]
    second = 0x08 if channel in (2, 4) else 0

    def put(at: int, seq: list[tuple[int, int]]) -> None:
        for i, p in enumerate(seq):
            if not 0 <= at + i < frames or out[at + i] is not None:
                raise ValueError(f"caption codes do not fit at frame {at + i}")
            out[at + i] = p

    for shown, cleared, text in cues:
        lines = text.split("\n")
        load = [_code(channel, misc, 0x20)] * 2 + [_code(channel, misc, 0x2E)] * 2
        for k, line in enumerate(lines):
            b1, b2 = _PAC[15 - (len(lines) - 1) + k]
            load += [_code(channel, b1 | second, b2)] * 2
            chars = [odd_parity(ord(c)) for c in line] + ([0x80] if len(line) % 2 else [])
            load += [(chars[i], chars[i + 1]) for i in range(0, len(chars), 2)]
        put(shown - len(load), load)
        put(shown, [_code(channel, misc, 0x2F)] * 2)
        put(cleared, [_code(channel, misc, 0x2C)] * 2)
    return [p or PAD for p in out]


def scc_text(pairs: Sequence[tuple[int, int]]) -> str:
    """The pairs as an SCC file (frame ``i`` at non-drop-frame label ``i``)."""
    return to_scc(pairs)


def _start_codes(es: bytes) -> list[int]:
    """Offsets of every ``00 00 01 xx`` start code."""
    out, i = [], es.find(b"\x00\x00\x01")
    while i >= 0:
        out.append(i)
        i = es.find(b"\x00\x00\x01", i + 3)
    return out


def _a53(pair: tuple[int, int], field2: tuple[int, int]) -> bytes:
    body = bytes([0xFC, *pair, 0xFD, *field2])
    return b"\x00\x00\x01\xb2GA94\x03" + bytes([0x40 | 2, 0xFF]) + body + b"\xff"


def _dvd(pairs: Sequence[tuple[tuple[int, int], tuple[int, int]]]) -> bytes:
    if len(pairs) > 31:
        raise ValueError("a DVD caption block holds at most 31 pictures")
    body = b"".join(bytes([0xFF, *f1, 0xFE, *f2]) for f1, f2 in pairs)
    return b"\x00\x00\x01\xb2CC\x01\xf8" + bytes([0x80 | (len(pairs) << 1)]) + body


def insert_cc(
    es: bytes,
    field1: Sequence[tuple[int, int]],
    field2: Sequence[tuple[int, int]] | None = None,
    *,
    form: str = "a53",
) -> bytes:
    """``es`` (an MPEG-2 video elementary stream) with one pair per displayed frame of each
    field written into its user data (``form``: ``a53`` or ``dvd``)."""
    codes = _start_codes(es)
    pictures: list[tuple[int, int, int]] = []  # (offset of picture header, gop index, tr)
    gops: list[tuple[int, int]] = []  # (offset after the GOP header, display base)
    base = 0
    for off in codes:
        sc = es[off + 3]
        if sc == 0xB8:
            base += sum(1 for p in pictures if p[1] == len(gops) - 1) if gops else 0
            gops.append((off, base))
        elif sc == 0x00:
            tr = (es[off + 4] << 2) | (es[off + 5] >> 6)
            pictures.append((off, len(gops) - 1, tr))
    f2 = field2 or []

    def pair(seq: Sequence[tuple[int, int]], i: int) -> tuple[int, int]:
        return seq[i] if 0 <= i < len(seq) else PAD

    inserts: list[tuple[int, bytes]] = []
    if form == "a53":
        for off, g, tr in pictures:
            frame = gops[g][1] + tr if g >= 0 else tr
            slice_at = next(c for c in codes if c > off and 0x01 <= es[c + 3] <= 0xAF)
            inserts.append((slice_at, _a53(pair(field1, frame), pair(f2, frame))))
    elif form == "dvd":
        for g, (_off, gbase) in enumerate(gops):
            n = sum(1 for p in pictures if p[1] == g)
            first_pic = next(p[0] for p in pictures if p[1] == g)
            blocks = [(pair(field1, gbase + i), pair(f2, gbase + i)) for i in range(n)]
            inserts.append((first_pic, _dvd(blocks)))
    else:
        raise ValueError(f"unknown caption form {form!r}")
    out, last = bytearray(), 0
    for at, data in sorted(inserts):
        out += es[last:at] + data
        last = at
    out += es[last:]
    return bytes(out)


@dataclass
class Track:
    """An AC-3 audio track of a test program stream: a sine at ``pitch`` Hz, silent before
    frame ``onset`` (a sync mark) when given."""

    language: str
    channels: int = 2
    pitch: float = 440.0
    onset: int | None = None


@dataclass
class Programme:
    """A test program stream: its frames, its pop-on cues (frames) and audio tracks."""

    frames: int
    cues: list[tuple[int, int, str]] = field(default_factory=list)
    tracks: list[Track] = field(default_factory=lambda: [Track("en")])
    form: str = "a53"
    channel: int = 1
    pattern: str = "testsrc2"


def make_mpeg2_cc(path: Path, prog: Programme, *, size: str = "352x240") -> list[tuple[int, int]]:
    """An MPEG program stream (NTSC, 29.97 interlaced-coded MPEG-2 + AC-3 tracks) carrying
    ``prog``'s captions in its user data; returns the caption pairs written (one per frame)."""
    rate = "30000/1001"
    pairs = popon_pairs(prog.cues, prog.frames, channel=prog.channel) if prog.cues else []
    f1, f2 = (pairs, None) if prog.channel in (1, 2) else ([], pairs)
    work = path.parent / f".{path.name}.work"
    work.mkdir(parents=True, exist_ok=True)
    es = work / "video.m2v"
    run_ffmpeg(["-f", "lavfi", "-i", f"{prog.pattern}=size={size}:rate={rate}",
                "-frames:v", str(prog.frames), "-c:v", "mpeg2video", "-b:v", "2M",
                "-g", "15", "-bf", "2", "-sc_threshold", "1000000000",
                "-flags:v", "+cgop+bitexact", "-fflags", "+bitexact", "-pix_fmt", "yuv420p",
                "-colorspace", "smpte170m", "-color_primaries", "smpte170m",
                "-color_trc", "smpte170m", "-color_range", "tv",
                "-aspect", "4:3", "-f", "mpeg2video", "-y", str(es)])  # fmt: skip
    es.write_bytes(insert_cc(es.read_bytes(), f1, f2, form=prog.form) if pairs else es.read_bytes())
    seconds = prog.frames * 1001 / 30000
    args = ["-f", "mpegvideo", "-framerate", rate, "-i", str(es)]
    for t in prog.tracks:
        layout = "stereo" if t.channels == 2 else "5.1"
        args += ["-f", "lavfi", "-i",
                 f"sine=frequency={t.pitch}:sample_rate=48000:duration={seconds:.6f},"
                 f"aformat=channel_layouts={layout}"
                 + (f",volume=volume=0:enable='lt(t,{t.onset * 1001 / 30000:.6f})'"
                    if t.onset is not None else "")]  # fmt: skip
    args += ["-map", "0:v"]
    for i, t in enumerate(prog.tracks):
        args += ["-map", f"{i + 1}:a", f"-metadata:s:a:{i}", f"language={t.language}"]
    args += ["-c:v", "copy", "-c:a", "ac3", "-b:a", "192k", *bitexact_args()[:2],
             "-f", "dvd", "-y", str(path)]  # fmt: skip
    run_ffmpeg(args)
    shutil.rmtree(work)
    return pairs


def dvdauthor_available() -> bool:
    return shutil.which("dvdauthor") is not None


def make_dvd(
    folder: Path,
    titles: Sequence[Sequence[Path]],
    *,
    languages: Sequence[str] = ("en",),
    split_parts: int | None = None,
) -> Path:
    """A DVD-Video folder (``folder/VIDEO_TS``) made by dvdauthor, one title set: title ``n``
    plays ``titles[n-1]``'s program streams in order, one chapter each; the audio languages are
    named in the IFO. ``split_parts`` splits the title set's VOB into that many parts
    (VTS_01_1.VOB, VTS_01_2.VOB...; a disc has at most 9), the layout a disc has past 1 GB a
    part (dvdauthor itself splits at 1 GB only). Returns the VIDEO_TS folder."""
    if not dvdauthor_available():
        raise RuntimeError("dvdauthor is not installed")
    folder.mkdir(parents=True, exist_ok=True)
    audio = "".join(f'<audio lang="{lang}"/>' for lang in languages)
    pgcs = "".join(
        "<pgc>" + "".join(f'<vob file="{p}" chapters="0"/>' for p in parts) + "</pgc>"
        for parts in titles
    )
    xml = (
        '<dvdauthor jumppad="0"><vmgm/><titleset><titles>'
        f'<video format="ntsc" aspect="4:3"/>{audio}{pgcs}</titles></titleset></dvdauthor>'
    )
    spec = folder / "dvd.xml"
    spec.write_text(xml, encoding="utf-8")
    env = {"VIDEO_FORMAT": "NTSC", "PATH": "/usr/bin:/bin:/usr/local/bin"}
    proc = subprocess.run(
        ["dvdauthor", "-o", str(folder), "-x", str(spec)], capture_output=True, check=False, env=env
    )
    if proc.returncode != 0:
        raise RuntimeError(f"dvdauthor failed: {proc.stderr.decode(errors='replace')[-2000:]}")
    spec.unlink()
    video_ts = folder / "VIDEO_TS"
    if split_parts:
        split_vobs(video_ts, split_parts)
    return video_ts


def split_vobs(video_ts: Path, parts: int) -> None:
    """Split every title set's title VOB into ``parts`` files cut at sector boundaries (the
    disc reader addresses a title set's parts as one run of sectors, as on a disc)."""
    if not 1 <= parts <= 9:
        raise ValueError("a title set has 1 to 9 VOB parts")
    for vob in sorted(video_ts.glob("VTS_*_1.VOB")):
        data = vob.read_bytes()
        sectors = -(-len(data) // SECTOR)
        limit = -(-sectors // parts) * SECTOR
        stem = vob.name[: -len("1.VOB")]
        for n, at in enumerate(range(0, len(data), limit), start=1):
            (video_ts / f"{stem}{n}.VOB").write_bytes(data[at : at + limit])


def iso_tool() -> str | None:
    """genisoimage or mkisofs, when installed (for ``make_iso``)."""
    return shutil.which("genisoimage") or shutil.which("mkisofs")


def make_iso(folder: Path, iso: Path) -> Path:
    """A DVD-Video image (UDF bridge, as discs are) of ``folder`` (the one holding VIDEO_TS)."""
    tool = iso_tool()
    if tool is None:
        raise RuntimeError("genisoimage/mkisofs is not installed")
    proc = subprocess.run(
        [tool, "-quiet", "-dvd-video", "-udf", "-V", "RESTORO_TEST", "-o", str(iso), str(folder)],
        capture_output=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{tool} failed: {proc.stderr.decode(errors='replace')[-2000:]}")
    return iso
