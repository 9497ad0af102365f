"""Just enough ISO BMFF to package fragmented MP4: split a file into its init segment and its
fragments, read each fragment's timing and first-sample range, and derive RFC 6381 codec strings
from the init segment's sample entry."""

from __future__ import annotations

import struct
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from restoro.errors import StageError

if TYPE_CHECKING:
    from collections.abc import Iterator

_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"moof", b"traf", b"mvex"}


def boxes(data: bytes, start: int = 0, end: int | None = None) -> Iterator[tuple[bytes, int, int]]:
    """(type, offset, size) of the boxes in data[start:end]."""
    end = len(data) if end is None else end
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        header = 8
        if size == 1:
            size = struct.unpack(">Q", data[pos + 8 : pos + 16])[0]
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            raise StageError(f"broken MP4 box {kind!r} at byte {pos}")
        yield kind, pos, size
        pos += size


def find(data: bytes, path: list[bytes], start: int = 0, end: int | None = None) -> tuple[int, int]:
    """(payload offset, payload end) of the first box at ``path`` (e.g. moov/trak/mdia/mdhd)."""
    for kind, pos, size in boxes(data, start, end):
        if kind == path[0]:
            if len(path) == 1:
                return pos + 8, pos + size
            return find(data, path[1:], pos + 8, pos + size)
    raise StageError(f"no {'/'.join(p.decode() for p in path)} box in the MP4")


@dataclass(frozen=True)
class Fragment:
    data: bytes
    """moof + mdat."""
    decode_time: int
    duration: int
    samples: int
    first_sample_end: int
    """Bytes from the fragment's start to the end of its first sample (an I-frame byte range)."""


def split(data: bytes) -> tuple[bytes, list[Fragment]]:
    """(init segment, fragments) of a fragmented MP4 written with default-base-is-moof."""
    tops = list(boxes(data))
    first_moof = next((pos for kind, pos, _ in tops if kind == b"moof"), None)
    if first_moof is None:
        raise StageError("the MP4 is not fragmented (no moof box)")
    init = data[:first_moof]
    frags: list[Fragment] = []
    for i, (kind, pos, size) in enumerate(tops):
        if kind != b"moof":
            continue
        nxt = tops[i + 1] if i + 1 < len(tops) else None
        if nxt is None or nxt[0] != b"mdat":
            raise StageError(f"moof at byte {pos} is not followed by an mdat")
        end = nxt[1] + nxt[2]
        frags.append(_fragment(data[pos:end], size))
    return init, frags


@dataclass(frozen=True)
class _Sample:
    duration: int
    size: int
    cto: int
    """Composition offset (presentation − decode time), in timescale ticks."""
    cto_at: int | None
    """Where the offset is stored in the fragment (None: the trun carries no offsets)."""


def _trun(frag: bytes) -> tuple[int, int | None, list[_Sample]]:
    """The fragment's ``trun``: its payload offset, its data offset (None when absent) and
    its samples, with the ``tfhd`` defaults filled in."""
    tfhd, _ = find(frag, [b"moof", b"traf", b"tfhd"])
    flags = int.from_bytes(frag[tfhd + 1 : tfhd + 4], "big")
    p = tfhd + 8 + (8 if flags & 0x1 else 0) + (4 if flags & 0x2 else 0)
    default_duration = default_size = 0
    if flags & 0x8:
        default_duration = struct.unpack(">I", frag[p : p + 4])[0]
        p += 4
    if flags & 0x10:
        default_size = struct.unpack(">I", frag[p : p + 4])[0]
    trun, _ = find(frag, [b"moof", b"traf", b"trun"])
    version, tflags = frag[trun], int.from_bytes(frag[trun + 1 : trun + 4], "big")
    count = struct.unpack(">I", frag[trun + 4 : trun + 8])[0]
    p = trun + 8
    data_offset = None
    if tflags & 0x1:
        data_offset = struct.unpack(">i", frag[p : p + 4])[0]
        p += 4
    p += 4 if tflags & 0x4 else 0
    samples = []
    for _ in range(count):
        d, s, cto, cto_at = default_duration, default_size, 0, None
        if tflags & 0x100:
            d = struct.unpack(">I", frag[p : p + 4])[0]
            p += 4
        if tflags & 0x200:
            s = struct.unpack(">I", frag[p : p + 4])[0]
            p += 4
        p += 4 if tflags & 0x400 else 0
        if tflags & 0x800:
            cto, cto_at = struct.unpack(">i" if version else ">I", frag[p : p + 4])[0], p
            p += 4
        samples.append(_Sample(d, s, cto, cto_at))
    return trun, data_offset, samples


def _fragment(frag: bytes, moof_size: int) -> Fragment:
    tfdt, _ = find(frag, [b"moof", b"traf", b"tfdt"])
    if frag[tfdt] == 1:
        decode_time = struct.unpack(">Q", frag[tfdt + 4 : tfdt + 12])[0]
    else:
        decode_time = struct.unpack(">I", frag[tfdt + 4 : tfdt + 8])[0]
    _, data_offset, samples = _trun(frag)
    first_size = samples[0].size if samples else 0
    return Fragment(
        frag,
        decode_time,
        sum(s.duration for s in samples),
        len(samples),
        (moof_size + 8 if data_offset is None else data_offset) + first_size,
    )


def timescale(init: bytes) -> int:
    a, _ = find(init, [b"moov", b"trak", b"mdia", b"mdhd"])
    if init[a] == 1:
        return int(struct.unpack(">I", init[a + 20 : a + 24])[0])
    return int(struct.unpack(">I", init[a + 12 : a + 16])[0])


def _sample_entry(init: bytes) -> tuple[bytes, int, int]:
    a, _ = find(init, [b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsd"])
    kind, pos, size = next(boxes(init, a + 8))
    return kind, pos, size


def codec_string(init: bytes) -> str:
    """RFC 6381 ``CODECS`` value of the init segment's track (avc1/hvc1/av01/mp4a/ec-3/ac-3)."""
    kind, pos, size = _sample_entry(init)
    if kind in (b"avc1", b"avc3"):
        c, _ = find(init, [b"avcC"], pos + 8 + 78, pos + size)
        return f"{kind.decode()}.{init[c + 1]:02X}{init[c + 2]:02X}{init[c + 3]:02X}"
    if kind in (b"hvc1", b"hev1"):
        c, _ = find(init, [b"hvcC"], pos + 8 + 78, pos + size)
        b = init[c + 1]
        space = "" if b >> 6 == 0 else "ABC"[(b >> 6) - 1]
        compat = int.from_bytes(init[c + 2 : c + 6], "big")
        compat = int(f"{compat:032b}"[::-1], 2)
        tier = "H" if b & 0x20 else "L"
        constraints = list(init[c + 6 : c + 12])
        while constraints and constraints[-1] == 0:
            constraints.pop()
        tail = "".join(f".{x:X}" for x in constraints)
        return f"{kind.decode()}.{space}{b & 0x1F}.{compat:X}.{tier}{init[c + 12]}{tail}"
    if kind == b"av01":
        c, _ = find(init, [b"av1C"], pos + 8 + 78, pos + size)
        b1, b2 = init[c + 1], init[c + 2]
        depth = 12 if b2 & 0x20 else (10 if b2 & 0x40 else 8)
        return f"av01.{b1 >> 5}.{b1 & 0x1F:02d}{'H' if b2 & 0x80 else 'M'}.{depth:02d}"
    if kind == b"mp4a":
        return "mp4a.40.2"
    if kind == b"ec-3":
        return "ec-3"
    if kind == b"ac-3":
        return "ac-3"
    raise StageError(f"no codec string for sample entry {kind!r}")


def picture_size(init: bytes) -> tuple[int, int]:
    kind, pos, _ = _sample_entry(init)
    w, h = struct.unpack(">HH", init[pos + 8 + 24 : pos + 8 + 28])
    return int(w), int(h)


def earliest_presentation(frags: list[Fragment]) -> int:
    """The track's earliest presentation time in timescale ticks (decode time + composition
    offset, over every sample): with B-frames, the first picture's composition delay."""
    best: int | None = None
    for f in frags:
        t = f.decode_time
        for s in _trun(f.data)[2]:
            best = t + s.cto if best is None else min(best, t + s.cto)
            t += s.duration
    return best or 0


def shift_composition(frag: Fragment, ticks: int) -> Fragment:
    """``frag`` with every sample's composition offset lowered by ``ticks``, as a version 1
    ``trun`` (signed offsets): the CMAF way to make a B-frame track's first picture present at
    its decode time, so picture, sound and captions share one timeline from 0 in players that
    ignore edit lists (MSE). The size does not change (offsets are 4 bytes in both versions),
    so every other field, the I-frame byte ranges included, stays valid."""
    if ticks == 0:
        return frag
    trun, _, samples = _trun(frag.data)
    data = bytearray(frag.data)
    for s in samples:
        if s.cto_at is None:
            raise StageError("a fragment with a composition delay has no composition offsets")
        data[s.cto_at : s.cto_at + 4] = struct.pack(">i", s.cto - ticks)
    data[trun] = 1
    return replace(frag, data=bytes(data))
