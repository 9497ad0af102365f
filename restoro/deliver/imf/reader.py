"""Read an MXF track file back: partitions, primer, header metadata sets, essence and index.

Enough of ST 377-1 to check what restoro writes and to inspect other tools' IMF track files
(properties are named through the primer pack, so dynamic tags are resolved per file).
"""

from __future__ import annotations

import mmap
import struct
import uuid
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

from restoro.deliver.imf import klv as K
from restoro.deliver.imf import ul as U
from restoro.deliver.imf.props import BY_UL, STATIC

_STATIC_TAGS = {tag: name for name, (tag, _ul) in STATIC.items()}

if TYPE_CHECKING:
    from collections.abc import Iterator


@dataclass
class Set:
    kind: str
    key: bytes
    props: dict[str, bytes]

    def u32(self, name: str) -> int | None:
        v = self.props.get(name)
        return struct.unpack(">I", v)[0] if v is not None and len(v) == 4 else None

    def text(self, name: str) -> str | None:
        v = self.props.get(name)
        return v.decode("utf-16-be") if v is not None else None

    def rational(self, name: str) -> Fraction | None:
        v = self.props.get(name)
        if v is None or len(v) != 8:
            return None
        n, d = struct.unpack(">ii", v)
        return Fraction(n, d) if d else None


@dataclass
class Partition:
    offset: int
    kind: int  # 2 header, 3 body, 4 footer
    status: int
    body_sid: int
    index_sid: int
    header_bytes: int
    index_bytes: int
    operational_pattern: bytes


@dataclass
class TrackFile:
    path: Path
    partitions: list[Partition] = field(default_factory=list)
    sets: list[Set] = field(default_factory=list)
    essence: list[tuple[bytes, int, int]] = field(default_factory=list)
    """(key, value offset, length) of each essence element."""
    index_segments: list[Set] = field(default_factory=list)
    rip: list[tuple[int, int]] = field(default_factory=list)

    def by_kind(self, kind: str) -> list[Set]:
        return [s for s in self.sets if s.kind == kind]

    def by_uid(self, uid: bytes) -> Set | None:
        for s in self.sets:
            if s.props.get("InstanceUID") == uid:
                return s
        return None

    @property
    def preface(self) -> Set:
        return self.by_kind("Preface")[0]

    @property
    def file_package(self) -> Set:
        primary = self.preface.props.get("PrimaryPackage")
        found = self.by_uid(primary) if primary else None
        return found or self.by_kind("SourcePackage")[0]

    @property
    def id(self) -> uuid.UUID:
        """The track file id: the material number of the file package UMID."""
        return uuid.UUID(bytes=self.file_package.props["PackageUID"][16:32])

    @property
    def descriptor(self) -> Set:
        d = self.by_uid(self.file_package.props["Descriptor"])
        if d is None:
            raise ValueError(f"{self.path}: the file package's descriptor is missing")
        return d

    def sub_descriptors(self) -> list[Set]:
        refs = self.descriptor.props.get("SubDescriptors")
        if not refs:
            return []
        return [s for r in K.parse_batch(refs) if (s := self.by_uid(r)) is not None]

    @property
    def edit_rate(self) -> Fraction:
        rate = self.descriptor.rational("SampleRate")
        if rate is None:
            raise ValueError(f"{self.path}: the descriptor has no SampleRate")
        return rate

    @property
    def duration(self) -> int:
        v = self.descriptor.props.get("ContainerDuration")
        return struct.unpack(">q", v)[0] if v else 0

    @property
    def essence_tracks(self) -> list[Set]:
        """Tracks of the file package that carry essence (picture/sound/data, not timecode)."""
        out = []
        for r in K.parse_batch(self.file_package.props["Tracks"]):
            t = self.by_uid(r)
            if t is not None and (t.u32("TrackNumber") or 0) != 0:
                out.append(t)
        return out

    def frames(self) -> Iterator[bytes]:
        """The payload of every essence element, in file order."""
        with open(self.path, "rb") as fh:
            for _key, off, length in self.essence:
                fh.seek(off)
                yield fh.read(length)


def _is_partition(key: bytes) -> bool:
    return key[:13] == U.PARTITION_PREFIX and key[13] in (2, 3, 4)


def read_track_file(path: Path) -> TrackFile:
    """Parse ``path``; raise ValueError when it is not a well-formed MXF file."""
    tf = TrackFile(Path(path))
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        if buf[:13] != U.PARTITION_PREFIX or buf[13] != 2:
            raise ValueError(f"{path}: does not start with an MXF header partition pack")
        primer: dict[int, bytes] = {}
        for p in K.iter_packets(buf):
            key = p.key
            value = buf[p.value_offset : p.end]
            if _is_partition(key):
                (_maj, _min, _kag, _this, _prev, _foot, hb, ib, isid, _bo, bsid) = struct.unpack(
                    ">HHIQQQQQIQI", value[:64]
                )
                tf.partitions.append(
                    Partition(p.offset, key[13], key[14], bsid, isid, hb, ib, value[64:80])
                )
            elif key == U.PRIMER:
                primer = {int.from_bytes(i[:2], "big"): i[2:] for i in K.parse_batch(value)}
            elif key[:13] == U.SET_PREFIX and key[13] == 0x01:
                items = K.parse_local_set(value)
                props = {BY_UL.get(primer.get(t, b""), f"tag_{t:04x}"): v for t, v in items}
                tf.sets.append(Set(U.SET_NAMES.get(key[14], f"set_{key[14]:02x}"), key, props))
            elif key == U.INDEX_SEGMENT:
                items = K.parse_local_set(value)
                props = {_STATIC_TAGS.get(t, f"tag_{t:04x}"): v for t, v in items}
                tf.index_segments.append(Set("IndexTableSegment", key, props))
            elif key == U.RIP:
                n = (len(value) - 4) // 12
                tf.rip = [struct.unpack(">IQ", value[12 * i : 12 * i + 12]) for i in range(n)]
            elif key[:12] == U.ELEMENT_J2K[:12]:
                tf.essence.append((key, p.value_offset, p.length))
    if not tf.by_kind("Preface"):
        raise ValueError(f"{path}: no Preface in the header metadata")
    return tf
