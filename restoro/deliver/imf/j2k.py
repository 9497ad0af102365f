"""JPEG 2000 codestreams for App 2E, encoded per shot with OpenJPEG through ffmpeg.

The working frames are placed in the delivery raster (as the ProRes path does) and converted
to full-range R'G'B' BT.709 at 12 bits. Irreversible (9-7) encodes use OpenJPEG's digital
cinema coding setup, which gives exactly the IMF 2K/4K lossy profile's coding style (single
tile, CPRL, 32x32 code blocks, 128/256 precincts, one layer, 5 or 6 decomposition levels); the
SIZ capabilities field is then set to the IMF profile and level. Reversible (5-3) encodes go
through glymur/OpenJPEG in the IMF reversible profile (``j2k_reversible``) when glymur and
libopenjp2 are there; otherwise through ffmpeg with OpenJPEG's default 64x64 code blocks, which
the IMF reversible profile does not allow, so those keep Rsiz 0 and check-imf warns.

A shot's codestreams are stored as one file: ``RJ2K`` + count, then each codestream's length
(u32) and bytes, so the per-shot encode is a single content-addressed blob.
"""

from __future__ import annotations

import struct
import tempfile
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

from restoro.deliver.imf.descriptors import parse_j2k, set_rsiz
from restoro.errors import StageError
from restoro.media.ffmpeg import bitexact_args, run_ffmpeg

if TYPE_CHECKING:
    from collections.abc import Iterator

    from restoro.media.frames import FrameFormat

MAGIC = b"RJ2K"
BIT_DEPTH = 12
# Luma samples per second each IMF main level allows (T.800 Annex A, IMF profiles).
_MAIN_LEVELS = [(1, 65e6), (2, 130e6), (3, 195e6), (4, 260e6), (5, 520e6), (6, 1200e6)]


def imf_rsiz(width: int, height: int, rate: float, reversible: bool) -> int:
    """Rsiz of the IMF profile (2K/4K, lossy or reversible) and main level for a raster."""
    four_k = width > 2048 or height > 1556
    profile = (0x0800 if four_k else 0x0700) if reversible else (0x0500 if four_k else 0x0400)
    samples = width * height * rate
    main = next((m for m, cap in _MAIN_LEVELS if samples <= cap), 7)
    return profile | main


def picture_chain(fmt: FrameFormat, raster: tuple[int, int], fit: str) -> list[str]:
    """The ffmpeg filters from working frames to the package's 12-bit full-range R'G'B'."""
    from restoro.deliver.prores import picture_size

    rw, rh = raster
    w, h = picture_size(fmt, raster, fit)  # type: ignore[arg-type]
    x, y = (rw - w) // 2 // 2 * 2, (rh - h) // 2 // 2 * 2
    c = fmt.colour
    return [
        f"zscale=w={w}:h={h}:filter=spline36:dither=none",
        f"pad={rw}:{rh}:{x}:{y}:black",
        "zscale=dither=none:rangein=full:matrixin=gbr:"
        f"primariesin={c.primaries}:transferin={c.transfer}:"
        "primaries=709:transfer=709:matrix=gbr:range=full",
        f"format=gbrp{BIT_DEPTH}le",
    ]


def encode_shot(
    src: Path,
    fmt: FrameFormat,
    *,
    raster: tuple[int, int],
    fit: str,
    reversible: bool,
    out: Path,
) -> int:
    """Encode the intermediate ``src`` to a shot file of raw codestreams; return frames."""
    from restoro.deliver.imf import j2k_reversible
    from restoro.media.frameio import input_filters

    rw, rh = raster
    chain = [*input_filters(src), *picture_chain(fmt, raster, fit)]
    if reversible and j2k_reversible.available():
        return _encode_reversible(src, fmt, chain, raster, out)
    if reversible:
        coding = ["-irreversible", "0", "-prog_order", "cprl", "-numresolution", "6"]
    else:
        mode = "4k_24" if rw > 2048 else "2k_24"
        coding = ["-cinema_mode", mode, "-prog_order", "cprl"]
    rsiz = 0 if reversible else imf_rsiz(rw, rh, float(Fraction(fmt.frame_rate)), reversible)
    with tempfile.TemporaryDirectory(prefix="restoro-j2k-") as tmp:
        pattern = str(Path(tmp) / "%07d.j2k")
        args = [
            "-r", fmt.frame_rate, "-i", str(src), "-map", "0:v:0", "-an", "-sn", "-dn",
            "-filter_threads", "1", "-vf", ",".join(chain), "-fps_mode", "passthrough",
            "-c:v", "libopenjpeg", "-format", "j2k", *coding, "-threads", "1",
            *bitexact_args(), "-f", "image2", pattern,
        ]  # fmt: skip
        run_ffmpeg(args)
        files = sorted(Path(tmp).glob("*.j2k"))
        if not files:
            raise StageError(f"ffmpeg wrote no JPEG 2000 frames for {src}")
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(out, "wb") as fh:
            fh.write(MAGIC + struct.pack(">I", len(files)))
            for f in files:
                cs = f.read_bytes()
                p = parse_j2k(cs)
                if (p.width, p.height) != raster:
                    raise StageError(f"codestream is {p.width}x{p.height}, expected {rw}x{rh}")
                if rsiz:
                    cs = set_rsiz(cs, rsiz)
                fh.write(struct.pack(">I", len(cs)) + cs)
    return len(files)


def _encode_reversible(
    src: Path, fmt: FrameFormat, chain: list[str], raster: tuple[int, int], out: Path
) -> int:
    """5-3 codestreams in the IMF 2K/4K reversible profile (glymur/OpenJPEG)."""
    from restoro.deliver.imf.j2k_reversible import encode_frame, read_frames

    rw, rh = raster
    rsiz = imf_rsiz(rw, rh, float(Fraction(fmt.frame_rate)), True)
    with tempfile.TemporaryDirectory(prefix="restoro-j2k-") as tmp:
        raw = Path(tmp) / "frames.raw"
        run_ffmpeg(["-r", fmt.frame_rate, "-i", str(src), "-map", "0:v:0", "-an", "-sn", "-dn",
                    "-filter_threads", "1", "-vf", ",".join(chain), "-fps_mode", "passthrough",
                    "-threads", "1", *bitexact_args(), "-f", "rawvideo", str(raw)])  # fmt: skip
        n = 0
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(out, "wb") as fh:
            fh.write(MAGIC + b"\0\0\0\0")
            for frame in read_frames(raw, rw, rh):
                cs = set_rsiz(encode_frame(frame, four_k=rw > 2048 or rh > 1556), rsiz)
                fh.write(struct.pack(">I", len(cs)) + cs)
                n += 1
            if not n:
                raise StageError(f"ffmpeg gave no frames for {src}")
            fh.seek(4)
            fh.write(struct.pack(">I", n))
    return n


def read_shot(path: Path) -> Iterator[bytes]:
    """The codestreams of a shot file, in order."""
    with open(path, "rb") as fh:
        head = fh.read(8)
        if head[:4] != MAGIC:
            raise StageError(f"{path} is not a restoro JPEG 2000 shot file")
        (count,) = struct.unpack(">I", head[4:])
        for _ in range(count):
            (n,) = struct.unpack(">I", fh.read(4))
            yield fh.read(n)


def shot_count(path: Path) -> int:
    with open(path, "rb") as fh:
        head = fh.read(8)
    if head[:4] != MAGIC:
        raise StageError(f"{path} is not a restoro JPEG 2000 shot file")
    return int(struct.unpack(">I", head[4:])[0])
