"""KLV coding (SMPTE ST 336): universal labels, BER lengths, local sets and batches.

Everything MXF is a sequence of Key (16-byte UL), Length (BER) and Value triplets. Header
metadata sets use 2-byte local tags with 2-byte lengths; the primer pack maps each tag to the
property's UL. Lengths are written in the 4-byte long form (``0x83 xx xx xx``) or as wide as
needed, never the short form, because IMF readers expect fixed-width lengths in partitions.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import uuid
    from collections.abc import Iterator


def ul(text: str) -> bytes:
    """A UL from its dotted hex form ``060e2b34.0401010d.0d010301.020c0600``."""
    raw = bytes.fromhex(text.replace(".", ""))
    if len(raw) != 16:
        raise ValueError(f"a UL has 16 bytes, got {len(raw)}: {text}")
    return raw


def ul_text(raw: bytes) -> str:
    """``urn:smpte:ul:060e2b34.0401010d.0d010301.020c0600`` as CPLs write ULs."""
    h = raw.hex()
    return "urn:smpte:ul:" + ".".join(h[i : i + 8] for i in range(0, 32, 8))


def ber(length: int, width: int = 4) -> bytes:
    """BER long-form length: ``0x80 | n`` then n big-endian bytes (n >= width - 1)."""
    n = max(width - 1, (length.bit_length() + 7) // 8)
    return bytes([0x80 | n]) + length.to_bytes(n, "big")


def read_ber(buf: bytes | memoryview, pos: int) -> tuple[int, int]:
    """Decode a BER length at ``pos``; return (length, position after it)."""
    first = buf[pos]
    if first < 0x80:
        return first, pos + 1
    n = first & 0x7F
    if n == 0 or n > 8:
        raise ValueError(f"bad BER length byte 0x{first:02x} at {pos}")
    return int.from_bytes(buf[pos + 1 : pos + 1 + n], "big"), pos + 1 + n


def klv(key: bytes, value: bytes, width: int = 4) -> bytes:
    return key + ber(len(value), width) + value


@dataclass(frozen=True)
class Packet:
    key: bytes
    offset: int
    """Offset of the key in the file."""
    value_offset: int
    length: int

    @property
    def end(self) -> int:
        return self.value_offset + self.length


def iter_packets(buf: bytes | memoryview, start: int = 0) -> Iterator[Packet]:
    """Every KLV packet of ``buf`` from ``start`` (raises on truncation)."""
    pos = start
    size = len(buf)
    while pos + 17 <= size:
        key = bytes(buf[pos : pos + 16])
        length, vpos = read_ber(buf, pos + 16)
        if vpos + length > size:
            raise ValueError(f"KLV at {pos} runs past the end of the file")
        yield Packet(key, pos, vpos, length)
        pos = vpos + length
    if pos != size:
        raise ValueError(f"{size - pos} trailing bytes after the last KLV packet")


# -- value coding ------------------------------------------------------------------------------


def u8(v: int) -> bytes:
    return struct.pack(">B", v)


def u16(v: int) -> bytes:
    return struct.pack(">H", v)


def u32(v: int) -> bytes:
    return struct.pack(">I", v)


def i32(v: int) -> bytes:
    return struct.pack(">i", v)


def u64(v: int) -> bytes:
    return struct.pack(">Q", v)


def i64(v: int) -> bytes:
    return struct.pack(">q", v)


def rational(num: int, den: int) -> bytes:
    return struct.pack(">ii", num, den)


def utf16(text: str) -> bytes:
    return text.encode("utf-16-be")


def batch(items: list[bytes], item_size: int | None = None) -> bytes:
    """A batch or array: count, item size, then the items."""
    size = item_size if item_size is not None else (len(items[0]) if items else 0)
    return u32(len(items)) + u32(size) + b"".join(items)


def parse_batch(value: bytes) -> list[bytes]:
    count, size = struct.unpack(">II", value[:8])
    return [value[8 + i * size : 8 + (i + 1) * size] for i in range(count)]


def uuid_bytes(u: uuid.UUID) -> bytes:
    return u.bytes


def umid(package: uuid.UUID) -> bytes:
    """A 32-byte basic UMID in the IMF form (ST 2067-2 5.3.2): the SMPTE UMID label for
    "material type not identified, UUID/UL number", length 0x13, instance 0, the UUID as the
    material number."""
    return bytes.fromhex("060a2b340101010501010f20") + b"\x13\x00\x00\x00" + package.bytes


def local_set(items: list[tuple[int, bytes]]) -> bytes:
    """The value of a local set: tag, 2-byte length, value for each property."""
    out = bytearray()
    for tag, value in items:
        if len(value) > 0xFFFF:
            raise ValueError(f"local tag 0x{tag:04x} value is too long ({len(value)} bytes)")
        out += u16(tag) + u16(len(value)) + value
    return bytes(out)


def parse_local_set(value: bytes | memoryview) -> list[tuple[int, bytes]]:
    items = []
    pos = 0
    while pos + 4 <= len(value):
        tag, length = struct.unpack(">HH", value[pos : pos + 4])
        items.append((tag, bytes(value[pos + 4 : pos + 4 + length])))
        pos += 4 + length
    return items
