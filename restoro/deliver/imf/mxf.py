"""An MXF OP1a track-file writer for IMF (ST 377-1, ST 2067-2 5.x).

Layout: a closed, complete header partition holding the header metadata; one body partition
with the essence (BodySID 1: frame-wrapped KLVs, or one clip-wrapped KLV); a body partition
holding the index table (IndexSID 0x81) and nothing else; a footer partition; the RIP. Every
identifier is derived from the track file's UUID, and the timestamp is given, so identical
inputs give identical bytes.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, BinaryIO

from restoro.deliver.imf import klv as K
from restoro.deliver.imf import ul as U
from restoro.deliver.imf.props import DYNAMIC, STATIC

if TYPE_CHECKING:
    from collections.abc import Iterable
    from fractions import Fraction

BODY_SID = 1
INDEX_SID = 0x81
ENTRIES_PER_SEGMENT = 4096
INDEX_PROPS = ("IndexEditRate", "IndexStartPosition", "IndexDuration", "EditUnitByteCount",
               "SliceCount", "PosTableCount", "DeltaEntryArray", "IndexEntryArray")  # fmt: skip


@dataclass
class MxfSet:
    """A header metadata set: its class (a key of ``ul.SETS``) and ordered properties."""

    kind: str
    props: list[tuple[str, bytes]] = field(default_factory=list)

    def add(self, name: str, value: bytes) -> MxfSet:
        self.props.append((name, value))
        return self


def timestamp(iso: str) -> bytes:
    """MXF TimeStamp from ``YYYY-MM-DDTHH:MM:SSZ``."""
    d, t = iso.rstrip("Z").split("T")
    y, mo, da = (int(x) for x in d.split("-"))
    h, mi, s = (int(float(x)) for x in t.split(":"))
    return K.u16(y) + bytes([mo, da, h, mi, s, 0])


class Ids:
    """Deterministic instance UIDs: uuid5 of the track file id and a role name."""

    def __init__(self, track_file: uuid.UUID) -> None:
        self.base = track_file

    def __call__(self, role: str) -> bytes:
        return uuid.uuid5(self.base, role).bytes


@dataclass
class Essence:
    """What the track file carries, besides the descriptor sets."""

    kind: str  # "picture" | "sound" | "data" (timed text)
    edit_rate: Fraction
    duration: int
    container: bytes
    element_key: bytes
    clip_wrapped: bool
    bytes_per_unit: int = 0  # clip-wrapped CBR: bytes per edit unit
    klvs: int | None = None
    """Essence KLVs when they are not one per edit unit (timed text: one document)."""


def _track(ids: Ids, pkg: str, tid: int, number: int, name: str, rate: Fraction,
           seq_uid: bytes) -> MxfSet:  # fmt: skip
    return (
        MxfSet("Track")
        .add("InstanceUID", ids(f"{pkg}/track{tid}"))
        .add("TrackID", K.u32(tid))
        .add("TrackNumber", K.u32(number))
        .add("TrackName", K.utf16(name))
        .add("Sequence", seq_uid)
        .add("EditRate", K.rational(rate.numerator, rate.denominator))
        .add("Origin", K.i64(0))
    )


def header_sets(
    track_file: uuid.UUID,
    essence: Essence,
    descriptors: list[MxfSet],
    *,
    issued: str,
    product: tuple[str, str, str],
) -> list[MxfSet]:
    """Preface, identification, content storage, packages, tracks and the descriptors.

    ``descriptors[0]`` is the file descriptor (its InstanceUID is referenced from the source
    package); the rest are its sub-descriptors. ``product`` is (company, product, version).
    """
    ids = Ids(track_file)
    ts = timestamp(issued)
    rate = essence.edit_rate
    mp_umid = K.umid(uuid.uuid5(track_file, "material-package"))
    fp_umid = K.umid(track_file)
    ddef = {"picture": U.DATA_PICTURE, "sound": U.DATA_SOUND, "data": U.DATA_DATA}[essence.kind]
    tc_base = 24 if essence.kind == "sound" else round(rate)
    sets: list[MxfSet] = []
    ident = (
        MxfSet("Identification")
        .add("InstanceUID", ids("identification"))
        .add("ThisGenerationUID", ids("generation"))
        .add("CompanyName", K.utf16(product[0]))
        .add("ProductName", K.utf16(product[1]))
        .add("ProductVersion", bytes(10))
        .add("VersionString", K.utf16(product[2]))
        .add("ProductUID", uuid.uuid5(uuid.NAMESPACE_URL, "restoro").bytes)
        .add("ModificationDate", ts)
        .add("ToolkitVersion", bytes(10))
        .add("Platform", K.utf16("restoro"))
    )
    packages = []
    for pkg, umid, number, clip_ref in (
        ("material", mp_umid, 0, (fp_umid, 2)),
        ("file", fp_umid, int.from_bytes(essence.element_key[12:16], "big"), (bytes(32), 0)),
    ):
        tc_seq, ess_seq = ids(f"{pkg}/seq1"), ids(f"{pkg}/seq2")
        tc_comp, clip = ids(f"{pkg}/tc"), ids(f"{pkg}/clip")
        set_kind = "MaterialPackage" if pkg == "material" else "SourcePackage"
        p = (
            MxfSet(set_kind)
            .add("InstanceUID", ids(pkg))
            .add("PackageUID", umid)
            .add("Name", K.utf16("restoro " + pkg + " package"))
            .add("PackageCreationDate", ts)
            .add("PackageModifiedDate", ts)
            .add("Tracks", K.batch([ids(f"{pkg}/track1"), ids(f"{pkg}/track2")]))
        )
        if pkg == "file":
            p.add("Descriptor", dict(descriptors[0].props)["InstanceUID"])
        packages.append(p)
        sets += [
            p,
            _track(ids, pkg, 1, 0, "Timecode Track", rate, tc_seq),
            MxfSet("Sequence")
            .add("InstanceUID", tc_seq)
            .add("DataDefinition", U.DATA_TIMECODE)
            .add("Duration", K.i64(essence.duration))
            .add("StructuralComponents", K.batch([tc_comp])),
            MxfSet("TimecodeComponent")
            .add("InstanceUID", tc_comp)
            .add("DataDefinition", U.DATA_TIMECODE)
            .add("Duration", K.i64(essence.duration))
            .add("RoundedTimecodeBase", K.u16(tc_base))
            .add("StartTimecode", K.i64(0))
            .add("DropFrame", b"\x00"),
            _track(ids, pkg, 2, number, essence.kind.title() + " Track", rate, ess_seq),
            MxfSet("Sequence")
            .add("InstanceUID", ess_seq)
            .add("DataDefinition", ddef)
            .add("Duration", K.i64(essence.duration))
            .add("StructuralComponents", K.batch([clip])),
            MxfSet("SourceClip")
            .add("InstanceUID", clip)
            .add("DataDefinition", ddef)
            .add("Duration", K.i64(essence.duration))
            .add("StartPosition", K.i64(0))
            .add("SourcePackageID", clip_ref[0])
            .add("SourceTrackID", K.u32(clip_ref[1])),
        ]
    ecd = (
        MxfSet("EssenceContainerData")
        .add("InstanceUID", ids("ecd"))
        .add("LinkedPackageUID", fp_umid)
        .add("IndexSID", K.u32(INDEX_SID))
        .add("BodySID", K.u32(BODY_SID))
    )
    storage = (
        MxfSet("ContentStorage")
        .add("InstanceUID", ids("storage"))
        .add("Packages", K.batch([ids("material"), ids("file")]))
        .add("EssenceContainerData", K.batch([ids("ecd")]))
    )
    preface = (
        MxfSet("Preface")
        .add("InstanceUID", ids("preface"))
        .add("LastModifiedDate", ts)
        .add("Version", K.u16(0x0103))
        .add("ObjectModelVersion", K.u32(1))
        .add("PrimaryPackage", ids("file"))
        .add("Identifications", K.batch([ids("identification")]))
        .add("ContentStorage", ids("storage"))
        .add("OperationalPattern", U.OP1A)
        .add("EssenceContainers", K.batch([essence.container]))
        .add("DMSchemes", K.batch([], 16))
    )
    return [preface, ident, storage, ecd, *sets, *descriptors]


def encode_header(sets: list[MxfSet]) -> bytes:
    """Primer pack + sets; dynamic tags are numbered down from 0xFFFF in first-use order."""
    tags: dict[str, int] = {}
    next_dynamic = 0xFFFF
    # The index table's properties are listed too, as other IMF writers do.
    index = MxfSet("IndexTableSegment", [(n, b"") for n in INDEX_PROPS])
    for s in [*sets, index]:
        for name, _v in s.props:
            if name in tags:
                continue
            if name in STATIC:
                tags[name] = STATIC[name][0]
            else:
                tags[name] = next_dynamic
                next_dynamic -= 1
    ul_of = {name: STATIC[name][1] if name in STATIC else DYNAMIC[name] for name in tags}
    primer = K.batch([K.u16(t) + ul_of[n] for n, t in tags.items()], 18)
    out = bytearray(K.klv(U.PRIMER, primer))
    for s in sets:
        out += K.klv(U.set_key(U.SETS[s.kind]), K.local_set([(tags[n], v) for n, v in s.props]))
    return bytes(out)


def partition_pack(kind: int, *, this: int, prev: int, footer: int, header_bytes: int,
                   index_bytes: int, index_sid: int, body_sid: int,
                   containers: list[bytes]) -> bytes:  # fmt: skip
    value = (
        K.u16(1) + K.u16(3) + K.u32(1)
        + K.u64(this) + K.u64(prev) + K.u64(footer)
        + K.u64(header_bytes) + K.u64(index_bytes)
        + K.u32(index_sid) + K.u64(0) + K.u32(body_sid)
        + U.OP1A + K.batch(containers, 16)
    )  # fmt: skip
    return K.klv(U.partition_key(kind, 0x04), value)


PARTITION_SIZE = len(partition_pack(2, this=0, prev=0, footer=0, header_bytes=0, index_bytes=0,
                                    index_sid=0, body_sid=0, containers=[U.OP1A]))  # fmt: skip


def index_segments(essence: Essence, ids: Ids, sizes: list[int]) -> bytes:
    """Index table segments: CBR (EditUnitByteCount) for clip-wrapped audio, else one entry
    per frame with its stream offset (every frame is a random-access point)."""
    rate = K.rational(essence.edit_rate.numerator, essence.edit_rate.denominator)
    out = bytearray()
    if essence.clip_wrapped:
        starts = [(0, essence.duration)]
    else:
        starts = [
            (i, min(ENTRIES_PER_SEGMENT, len(sizes) - i))
            for i in range(0, len(sizes), ENTRIES_PER_SEGMENT)
        ]
    offsets = [0]
    for s in sizes:
        offsets.append(offsets[-1] + s)
    for n, (start, count) in enumerate(starts):
        props = [
            ("InstanceUID", ids(f"index{n}")),
            ("IndexEditRate", rate),
            ("IndexStartPosition", K.i64(start)),
            ("IndexDuration", K.i64(count)),
            ("EditUnitByteCount", K.u32(essence.bytes_per_unit if essence.clip_wrapped else 0)),
            ("IndexSID", K.u32(INDEX_SID)),
            ("BodySID", K.u32(BODY_SID)),
            ("SliceCount", b"\x00"),
            ("PosTableCount", b"\x00"),
        ]
        if not essence.clip_wrapped:
            entries = [b"\x00\x00\x80" + K.u64(offsets[i]) for i in range(start, start + count)]
            props.append(("DeltaEntryArray", K.batch([b"\x00\x00" + K.u32(0)], 6)))
            props.append(("IndexEntryArray", K.batch(entries, 11)))
        value = K.local_set([(STATIC[name][0], v) for name, v in props])
        out += K.klv(U.INDEX_SEGMENT, value)
    return bytes(out)


def write_track_file(
    fh: BinaryIO,
    track_file: uuid.UUID,
    essence: Essence,
    descriptors: list[MxfSet],
    payload: Iterable[bytes],
    *,
    issued: str,
    product: tuple[str, str, str] = ("restoro", "restoro", "0"),
) -> int:
    """Write a complete OP1a track file to ``fh``; return the number of edit units written.

    ``payload`` yields one codestream per frame (frame-wrapped) or chunks of interleaved PCM
    (clip-wrapped); the clip KLV length is ``duration × bytes_per_unit``, checked at the end.
    """
    ids = Ids(track_file)
    header = encode_header(header_sets(track_file, essence, descriptors, issued=issued,
                                       product=product))  # fmt: skip
    containers = [essence.container]
    # The header partition pack is rewritten once the footer offset is known.
    fh.write(bytes(PARTITION_SIZE))
    fh.write(header)
    body_at = fh.tell()
    fh.write(partition_pack(3, this=body_at, prev=0, footer=0, header_bytes=0, index_bytes=0,
                            index_sid=0, body_sid=BODY_SID, containers=containers))  # fmt: skip
    sizes: list[int] = []
    if essence.clip_wrapped:
        total = essence.duration * essence.bytes_per_unit
        fh.write(essence.element_key + K.ber(total, 9))
        written = 0
        for chunk in payload:
            fh.write(chunk)
            written += len(chunk)
        if written != total:
            raise ValueError(f"clip payload is {written} bytes, expected {total}")
        units = essence.duration
    else:
        for frame in payload:
            kl = essence.element_key + K.ber(len(frame), 4)
            fh.write(kl)
            fh.write(frame)
            sizes.append(len(kl) + len(frame))
        units = len(sizes)
        expected = essence.duration if essence.klvs is None else essence.klvs
        if units != expected:
            raise ValueError(f"{units} elements written, {expected} expected")
        units = essence.duration
    index = index_segments(essence, ids, sizes)
    index_at = fh.tell()
    footer_at = index_at + PARTITION_SIZE + len(index)
    fh.write(partition_pack(3, this=index_at, prev=body_at, footer=footer_at, header_bytes=0,
                            index_bytes=len(index), index_sid=INDEX_SID, body_sid=0,
                            containers=containers))  # fmt: skip
    fh.write(index)
    fh.write(partition_pack(4, this=footer_at, prev=index_at, footer=footer_at, header_bytes=0,
                            index_bytes=0, index_sid=0, body_sid=0,
                            containers=containers))  # fmt: skip
    rip_pairs = [(0, 0), (BODY_SID, body_at), (0, index_at), (0, footer_at)]
    rip_value = b"".join(K.u32(sid) + K.u64(off) for sid, off in rip_pairs)
    rip_len = 16 + 4 + len(rip_value) + 4
    fh.write(U.RIP + K.ber(len(rip_value) + 4, 4) + rip_value + K.u32(rip_len))
    end = fh.tell()
    fh.seek(0)
    fh.write(partition_pack(2, this=0, prev=0, footer=footer_at, header_bytes=len(header),
                            index_bytes=0, index_sid=0, body_sid=0,
                            containers=containers))  # fmt: skip
    fh.seek(end)
    return units
