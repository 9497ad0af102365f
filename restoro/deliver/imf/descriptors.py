"""Essence descriptors of IMF track files: RGBA + JPEG 2000 sub-descriptor (App 2E), CDCI for
ProRes (RDD 44/45), WAVE PCM with MCA labels (ST 382, ST 377-4, ST 2067-2 5.3.6)."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING

from restoro.deliver.imf import klv as K
from restoro.deliver.imf import ul as U
from restoro.deliver.imf.mxf import Essence, Ids, MxfSet

if TYPE_CHECKING:
    import uuid


@dataclass(frozen=True)
class J2kParams:
    """The main-header parameters of a JPEG 2000 codestream (SIZ, COD, QCD)."""

    rsiz: int
    width: int
    height: int
    tile: tuple[int, int]
    components: list[tuple[int, int, int]]  # (Ssiz, XRsiz, YRsiz)
    cod: bytes  # SPcod/SGcod as the sub-descriptor stores them (Scod onwards)
    qcd: bytes

    @property
    def bit_depth(self) -> int:
        return (self.components[0][0] & 0x7F) + 1

    @property
    def reversible(self) -> bool:
        return self.cod[9] == 1  # transformation: 0 = 9-7 irreversible, 1 = 5-3 reversible

    @property
    def progression(self) -> int:
        return self.cod[1]

    @property
    def levels(self) -> int:
        return self.cod[5]

    @property
    def codeblock(self) -> tuple[int, int]:
        return 1 << (self.cod[6] + 2), 1 << (self.cod[7] + 2)


def parse_j2k(cs: bytes) -> J2kParams:
    """Read SIZ, COD and QCD from a raw codestream (which must start with SOC, not a JP2 box)."""
    if cs[:4] != b"\xff\x4f\xff\x51":
        raise ValueError("not a raw JPEG 2000 codestream (SOC + SIZ expected)")
    pos = 2
    found: dict[int, bytes] = {}
    while pos + 4 <= len(cs):
        marker, length = struct.unpack(">HH", cs[pos : pos + 4])
        if marker == 0xFF90:  # SOT: end of the main header
            break
        found.setdefault(marker, cs[pos + 4 : pos + 2 + length])
        pos += 2 + length
    siz = found[0xFF51]
    rsiz, xs, ys, xo, yo, xt, yt, _xto, _yto, csiz = struct.unpack(">HIIIIIIIIH", siz[:36])
    comps = [tuple(siz[36 + 3 * i : 39 + 3 * i]) for i in range(csiz)]
    return J2kParams(
        rsiz=rsiz,
        width=xs - xo,
        height=ys - yo,
        tile=(xt, yt),
        components=[(c[0], c[1], c[2]) for c in comps],
        cod=found[0xFF52],
        qcd=found[0xFF5C],
    )


def set_rsiz(cs: bytes, rsiz: int) -> bytes:
    """The codestream with its SIZ capabilities field replaced (decoding is unaffected)."""
    return cs[:6] + K.u16(rsiz) + cs[8:]


def _ratio(w: int, h: int) -> bytes:
    f = Fraction(w, h)
    return K.rational(f.numerator, f.denominator)


def _common_picture(
    s: MxfSet, ess: Essence, ids: Ids, w: int, h: int, coding: bytes, sub: list[bytes]
) -> None:
    s.add("InstanceUID", ids("descriptor"))
    if sub:
        s.add("SubDescriptors", K.batch(sub))
    s.add("LinkedTrackID", K.u32(2))
    s.add("SampleRate", K.rational(ess.edit_rate.numerator, ess.edit_rate.denominator))
    s.add("ContainerDuration", K.i64(ess.duration))
    s.add("EssenceContainer", ess.container)
    s.add("FrameLayout", b"\x00")
    s.add("StoredWidth", K.u32(w))
    s.add("StoredHeight", K.u32(h))
    s.add("DisplayF2Offset", K.i32(0))
    s.add("AspectRatio", _ratio(w, h))
    s.add("TransferCharacteristic", U.TRANSFER_709)
    s.add("PictureEssenceCoding", coding)
    s.add("ColorPrimaries", U.PRIMARIES_709)
    s.add("VideoLineMap", K.batch([K.i32(0), K.i32(0)], 4))


def j2k_descriptors(ess: Essence, track_file: uuid.UUID, p: J2kParams) -> list[MxfSet]:
    """RGBA descriptor (full-range RGB 4:4:4) with its JPEG 2000 sub-descriptor."""
    ids = Ids(track_file)
    depth = p.bit_depth
    rgba = MxfSet("RGBADescriptor")
    _common_picture(rgba, ess, ids, p.width, p.height, U.j2k_coding(p.rsiz), [ids("j2k")])
    rgba.add("ComponentMaxRef", K.u32((1 << depth) - 1))
    rgba.add("ComponentMinRef", K.u32(0))
    rgba.add("ScanningDirection", b"\x00")
    layout = bytes([ord("R"), depth, ord("G"), depth, ord("B"), depth]) + bytes(10)
    rgba.add("PixelLayout", layout)
    sub = (
        MxfSet("JPEG2000SubDescriptor")
        .add("InstanceUID", ids("j2k"))
        .add("Rsiz", K.u16(p.rsiz))
        .add("Xsiz", K.u32(p.width))
        .add("Ysiz", K.u32(p.height))
        .add("XOsiz", K.u32(0))
        .add("YOsiz", K.u32(0))
        .add("XTsiz", K.u32(p.tile[0]))
        .add("YTsiz", K.u32(p.tile[1]))
        .add("XTOsiz", K.u32(0))
        .add("YTOsiz", K.u32(0))
        .add("Csiz", K.u16(len(p.components)))
        .add("PictureComponentSizing", K.batch([bytes(c) for c in p.components], 3))
        .add("CodingStyleDefault", p.cod)
        .add("QuantizationDefault", p.qcd)
        .add("J2CLayout", layout)
    )
    return [rgba, sub]


def prores_descriptors(
    ess: Essence, track_file: uuid.UUID, width: int, height: int, profile: str
) -> list[MxfSet]:
    """CDCI descriptor for a ProRes track file (10-bit Y'CbCr BT.709 narrow range)."""
    ids = Ids(track_file)
    coding = U.PRORES_CODING[:14] + bytes([U.PRORES_PROFILE_BYTE[profile], 0])
    cdci = MxfSet("CDCIDescriptor")
    _common_picture(cdci, ess, ids, width, height, coding, [])
    cdci.add("CodingEquations", U.CODING_709)
    cdci.add("ComponentDepth", K.u32(10))
    cdci.add("HorizontalSubsampling", K.u32(2 if profile == "422hq" else 1))
    cdci.add("VerticalSubsampling", K.u32(1))
    cdci.add("BlackRefLevel", K.u32(64))
    cdci.add("WhiteRefLevel", K.u32(940))
    cdci.add("ColorRange", K.u32(897))
    return [cdci]


def pcm_descriptors(
    ess: Essence,
    track_file: uuid.UUID,
    *,
    channels: int,
    layout: str,
    language: str,
    title: str,
) -> list[MxfSet]:
    """WAVE PCM descriptor (24-bit, 48 kHz) with a soundfield group and one channel label per
    channel (ST 2067-2:2016 5.3.6: MCATitle, MCATitleVersion, content and element kind)."""
    if layout not in U.LAYOUT_CHANNELS or len(U.LAYOUT_CHANNELS[layout]) != channels:
        raise ValueError(f"no MCA labels for a {channels}-channel {layout!r} layout")
    ids = Ids(track_file)
    sg_symbol, sg_name, sg_ul = U.MCA_SOUNDFIELD[layout]
    sg_link = ids("mca/soundfield/link")
    subs: list[MxfSet] = [
        MxfSet("SoundfieldGroupLabelSubDescriptor")
        .add("InstanceUID", ids("mca/soundfield"))
        .add("MCALabelDictionaryID", sg_ul)
        .add("MCALinkID", sg_link)
        .add("MCATagSymbol", K.utf16(sg_symbol))
        .add("MCATagName", K.utf16(sg_name))
        .add("RFC5646SpokenLanguage", language.encode("ascii"))
        .add("MCATitle", K.utf16(title))
        .add("MCATitleVersion", K.utf16("OV"))
        .add("MCAAudioContentKind", K.utf16("PRM"))
        .add("MCAAudioElementKind", K.utf16("FCMP"))
    ]
    for i, ch in enumerate(U.LAYOUT_CHANNELS[layout], start=1):
        symbol, name, label = U.MCA_CHANNELS[ch]
        subs.append(
            MxfSet("AudioChannelLabelSubDescriptor")
            .add("InstanceUID", ids(f"mca/ch{i}"))
            .add("MCALabelDictionaryID", label)
            .add("MCALinkID", ids(f"mca/ch{i}/link"))
            .add("MCATagSymbol", K.utf16(symbol))
            .add("MCATagName", K.utf16(name))
            .add("MCAChannelID", K.u32(i))
            .add("RFC5646SpokenLanguage", language.encode("ascii"))
            .add("SoundfieldGroupLinkID", sg_link)
        )
    align = 3 * channels
    wave = (
        MxfSet("WAVEPCMDescriptor")
        .add("InstanceUID", ids("descriptor"))
        .add("SubDescriptors", K.batch([dict(s.props)["InstanceUID"] for s in subs]))
        .add("LinkedTrackID", K.u32(2))
        .add("SampleRate", K.rational(ess.edit_rate.numerator, ess.edit_rate.denominator))
        .add("ContainerDuration", K.i64(ess.duration))
        .add("EssenceContainer", ess.container)
        .add("AudioSamplingRate", K.rational(48000, 1))
        .add("Locked", b"\x00")
        .add("ChannelCount", K.u32(channels))
        .add("QuantizationBits", K.u32(24))
        .add("BlockAlign", K.u16(align))
        .add("AverageBytesPerSecond", K.u32(48000 * align))
        .add("ChannelAssignment", U.MCA_CHANNEL_ASSIGNMENT)
    )
    return [wave, *subs]
