"""IMF track files from restoro's per-shot encodes and PCM audio."""

from __future__ import annotations

import struct
from fractions import Fraction
from typing import TYPE_CHECKING

from restoro.deliver.imf import ul as U
from restoro.deliver.imf.descriptors import j2k_descriptors, parse_j2k, pcm_descriptors
from restoro.deliver.imf.mxf import Essence, write_track_file
from restoro.errors import MediaError

if TYPE_CHECKING:
    import uuid
    from collections.abc import Iterator
    from pathlib import Path

PRODUCT = ("restoro", "restoro IMF writer", "1")


def write_j2k_track(
    shots: list[Path], out: Path, track_id: uuid.UUID, edit_rate: Fraction, *, issued: str
) -> int:
    """Frame-wrap the codestreams of ``shots`` (restoro J2K shot files) into one track file."""
    from restoro.deliver.imf.j2k import read_shot, shot_count

    total = sum(shot_count(s) for s in shots)
    first = next(read_shot(shots[0]))
    params = parse_j2k(first)
    ess = Essence("picture", edit_rate, total, U.EC_J2K, U.ELEMENT_J2K, clip_wrapped=False)

    def frames() -> Iterator[bytes]:
        for s in shots:
            for cs in read_shot(s):
                p = parse_j2k(cs)
                if (p.width, p.height, p.cod, p.rsiz) != (
                    params.width, params.height, params.cod, params.rsiz,
                ):  # fmt: skip
                    raise MediaError(f"{s}: a codestream's SIZ/COD differs from the first one")
                yield cs

    with open(out, "wb") as fh:
        return write_track_file(
            fh, track_id, ess, j2k_descriptors(ess, track_id, params), frames(),
            issued=issued, product=PRODUCT,
        )  # fmt: skip


def wav_info(path: Path) -> tuple[int, int, int, int, int]:
    """(channels, rate, bits, data offset, data size) of a PCM WAV file."""
    with open(path, "rb") as fh:
        head = fh.read(12)
        if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            raise MediaError(f"{path} is not a WAV file")
        fmt: tuple[int, int, int] | None = None
        while True:
            ck = fh.read(8)
            if len(ck) < 8:
                raise MediaError(f"{path} has no data chunk")
            cid, size = ck[:4], struct.unpack("<I", ck[4:])[0]
            if cid == b"fmt ":
                raw = fh.read(size)
                _tag, ch, rate, _bps, _align, bits = struct.unpack("<HHIIHH", raw[:16])
                fmt = (ch, rate, bits)
                fh.seek(size % 2, 1)
            elif cid == b"data":
                if fmt is None:
                    raise MediaError(f"{path}: data before fmt")
                return (*fmt, fh.tell(), size)
            else:
                fh.seek(size + size % 2, 1)


def write_pcm_track(
    wav: Path,
    out: Path,
    track_id: uuid.UUID,
    *,
    layout: str,
    language: str,
    title: str,
    issued: str,
) -> int:
    """Clip-wrap 24-bit 48 kHz PCM from ``wav`` with MCA labels; return the sample count."""
    ch, rate, bits, off, size = wav_info(wav)
    if rate != 48000 or bits != 24:
        raise MediaError(f"{wav}: IMF audio must be 24-bit 48 kHz PCM, got {bits}-bit {rate} Hz")
    samples = size // (3 * ch)
    ess = Essence("sound", Fraction(48000), samples, U.EC_WAVE_CLIP, U.ELEMENT_WAVE_CLIP,
                  clip_wrapped=True, bytes_per_unit=3 * ch)  # fmt: skip
    descs = pcm_descriptors(ess, track_id, channels=ch, layout=layout, language=language,
                            title=title)  # fmt: skip

    def chunks() -> Iterator[bytes]:
        left = samples * 3 * ch
        with open(wav, "rb") as fh:
            fh.seek(off)
            while left:
                data = fh.read(min(left, 1 << 20))
                if not data:
                    raise MediaError(f"{wav} is truncated")
                left -= len(data)
                yield data

    with open(out, "wb") as fh:
        return write_track_file(fh, track_id, ess, descs, chunks(), issued=issued,
                                product=PRODUCT)  # fmt: skip
