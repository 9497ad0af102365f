"""The Composition Playlist (ST 2067-3:2016, core constraints ST 2067-2:2016).

The EssenceDescriptorList is generated from the track files themselves (read back with
restoro's reader), so it matches the MXF descriptors property for property. Disclosure of AI
processing goes in a ContentVersion label and in a restoro ExtensionProperties element.
"""

from __future__ import annotations

import struct
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from restoro.deliver.imf import klv as K
from restoro.deliver.imf.props import DYNAMIC, STATIC

if TYPE_CHECKING:
    from fractions import Fraction

    from restoro.deliver.imf.reader import Set, TrackFile

NS_CPL = "http://www.smpte-ra.org/schemas/2067-3/2016"
NS_CC = "http://www.smpte-ra.org/schemas/2067-2/2016"
NS_R0 = "http://www.smpte-ra.org/reg/395/2014/13/1/aaf"
NS_R1 = "http://www.smpte-ra.org/reg/335/2012"
NS_R2 = "http://www.smpte-ra.org/reg/2003/2012"
NS_RESTORO = "urn:restoro:imf:processing:1"
NS_XSI = "http://www.w3.org/2001/XMLSchema-instance"
# Every namespace gets a fixed prefix (no default namespace): ElementTree's prefix registry is
# process-wide, and xsi:type values name their type with the "cpl:" prefix registered here.
APP_2E = "http://www.smpte-ra.org/schemas/2067-21/2016"
APP_PRORES = "tag:apple.com,2017:imf:rdd45:2017"
for _p, _n in (("cpl", NS_CPL), ("cc", NS_CC), ("r0", NS_R0), ("r1", NS_R1), ("r2", NS_R2),
               ("rst", NS_RESTORO), ("xsi", NS_XSI)):  # fmt: skip
    ET.register_namespace(_p, _n)


def urn(u: uuid.UUID | bytes) -> str:
    return "urn:uuid:" + str(u if isinstance(u, uuid.UUID) else uuid.UUID(bytes=u))


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrib: str) -> ET.Element:
    el = ET.SubElement(parent, tag, attrib)
    if text is not None:
        el.text = text
    return el


# -- essence descriptors as RegXML -------------------------------------------------------------

_U32 = {"LinkedTrackID", "StoredWidth", "StoredHeight", "ComponentMaxRef", "ComponentMinRef",
        "ChannelCount", "QuantizationBits", "AverageBytesPerSecond", "Xsiz", "Ysiz", "XOsiz",
        "YOsiz", "XTsiz", "YTsiz", "XTOsiz", "YTOsiz", "MCAChannelID", "ComponentDepth",
        "HorizontalSubsampling", "VerticalSubsampling", "BlackRefLevel", "WhiteRefLevel",
        "ColorRange"}  # fmt: skip
_U16 = {"Rsiz", "Csiz", "BlockAlign"}
_I32 = {"DisplayF2Offset"}
_RATIONAL = {"SampleRate", "AspectRatio", "AudioSamplingRate"}
_UL = {"EssenceContainer", "TransferCharacteristic", "PictureEssenceCoding", "ColorPrimaries",
       "ChannelAssignment", "MCALabelDictionaryID", "CodingEquations",
       "DataEssenceCoding"}  # fmt: skip
_UUID = {"InstanceUID", "MCALinkID", "SoundfieldGroupLinkID", "ResourceID"}
_UTF16 = {"MCATagSymbol", "MCATagName", "MCATitle", "MCATitleVersion", "MCAAudioContentKind",
          "MCAAudioElementKind", "UCSEncoding", "NamespaceURI",
          "RFC5646LanguageTagList"}  # fmt: skip
_HEX = {"CodingStyleDefault", "QuantizationDefault"}
_RGBA_CODES = {ord("R"): "CompRed", ord("G"): "CompGreen", ord("B"): "CompBlue", 0: "CompNull"}
KNOWN = _U32 | _U16 | _I32 | _RATIONAL | _UL | _UUID | _UTF16 | _HEX | {
    "ContainerDuration", "FrameLayout", "ScanningDirection", "PixelLayout", "J2CLayout",
    "VideoLineMap", "PictureComponentSizing", "Locked", "RFC5646SpokenLanguage", "SubDescriptors",
}  # fmt: skip
assert KNOWN <= set(STATIC) | set(DYNAMIC)


def _value(parent: ET.Element, name: str, v: bytes, tf: TrackFile) -> None:
    tag = f"{{{NS_R1}}}{'InstanceID' if name == 'InstanceUID' else name}"
    if name in _U32:
        _sub(parent, tag, str(struct.unpack(">I", v)[0]))
    elif name in _U16:
        _sub(parent, tag, str(struct.unpack(">H", v)[0]))
    elif name in _I32:
        _sub(parent, tag, str(struct.unpack(">i", v)[0]))
    elif name == "ContainerDuration":
        _sub(parent, f"{{{NS_R1}}}EssenceLength", str(struct.unpack(">q", v)[0]))
    elif name in _RATIONAL:
        n, d = struct.unpack(">ii", v)
        _sub(parent, tag, f"{n}/{d}")
    elif name in _UL:
        _sub(parent, tag, K.ul_text(v))
    elif name in _UUID:
        _sub(parent, tag, urn(v))
    elif name in _UTF16:
        _sub(parent, tag, v.decode("utf-16-be"))
    elif name in _HEX:
        _sub(parent, tag, v.hex())
    elif name == "RFC5646SpokenLanguage":
        _sub(parent, tag, v.decode("ascii"))
    elif name == "Locked":
        _sub(parent, tag, "True" if v[0] else "False")
    elif name == "FrameLayout":
        _sub(parent, tag, ["FullFrame", "SeparateFields", "OneField", "MixedFields"][v[0]])
    elif name == "ScanningDirection":
        _sub(parent, tag, "ScanningDirection_LeftToRightTopToBottom")
    elif name == "VideoLineMap":
        el = _sub(parent, tag)
        for item in K.parse_batch(v):
            _sub(el, f"{{{NS_R2}}}Int32", str(struct.unpack(">i", item)[0]))
    elif name == "PictureComponentSizing":
        el = _sub(parent, tag)
        for item in K.parse_batch(v):
            c = _sub(el, f"{{{NS_R2}}}J2KComponentSizing")
            for n, b in zip(("Ssiz", "XRSiz", "YRSiz"), item, strict=True):
                _sub(c, f"{{{NS_R2}}}{n}", str(b))
    elif name in ("PixelLayout", "J2CLayout"):
        el = _sub(parent, tag)
        for i in range(0, 16, 2):
            c = _sub(el, f"{{{NS_R2}}}RGBAComponent")
            _sub(c, f"{{{NS_R2}}}Code", _RGBA_CODES.get(v[i], "CompNull"))
            _sub(c, f"{{{NS_R2}}}ComponentSize", str(v[i + 1]))
    elif name == "SubDescriptors":
        el = _sub(parent, tag)
        for ref in K.parse_batch(v):
            sub = tf.by_uid(ref)
            if sub is not None:
                _set_xml(el, sub, tf)


def _set_xml(parent: ET.Element, s: Set, tf: TrackFile) -> ET.Element:
    el = _sub(parent, f"{{{NS_R0}}}{s.kind}")
    for name, v in s.props.items():
        if name in KNOWN:
            _value(el, name, v, tf)
    return el


def descriptor_xml(parent: ET.Element, desc_id: uuid.UUID, tf: TrackFile) -> None:
    ed = _sub(parent, f"{{{NS_CPL}}}EssenceDescriptor")
    _sub(ed, f"{{{NS_CPL}}}Id", urn(desc_id))
    _set_xml(ed, tf.descriptor, tf)


# -- the composition -------------------------------------------------------------------------


@dataclass
class Resource:
    """One track file resource of a sequence."""

    track_file: TrackFile
    descriptor_id: uuid.UUID
    entry: int = 0
    duration: int | None = None


@dataclass
class Sequence:
    kind: str  # "MainImageSequence" | "MainAudioSequence" | "SubtitlesSequence" | ...
    track_id: uuid.UUID
    resources: list[Resource] = field(default_factory=list)


@dataclass
class Composition:
    id: uuid.UUID
    title: str
    issued: str
    edit_rate: Fraction
    application: str
    sequences: list[Sequence]
    timecode: str = "00:00:00:00"
    drop_frame: bool = False
    issuer: str = "restoro"
    content_version: tuple[uuid.UUID, str] | None = None
    disclosure: dict[str, Any] = field(default_factory=dict)


def _rate(r: Fraction) -> str:
    return f"{r.numerator} {r.denominator}"


def cpl_xml(c: Composition) -> bytes:
    """The CPL document (UTF-8, deterministic)."""
    q = lambda t: f"{{{NS_CPL}}}{t}"  # noqa: E731
    root = ET.Element(q("CompositionPlaylist"))
    _sub(root, q("Id"), urn(c.id))
    _sub(root, q("Annotation"), c.title, language="en")
    _sub(root, q("IssueDate"), c.issued)
    _sub(root, q("Issuer"), c.issuer, language="en")
    _sub(root, q("Creator"), "restoro", language="en")
    _sub(root, q("ContentTitle"), c.title, language="en")
    _sub(root, q("ContentKind"), "feature")
    if c.content_version:
        cvl = _sub(root, q("ContentVersionList"))
        cv = _sub(cvl, q("ContentVersion"))
        _sub(cv, q("Id"), urn(c.content_version[0]))
        _sub(cv, q("LabelText"), c.content_version[1], language="en")
    edl = _sub(root, q("EssenceDescriptorList"))
    seen: set[uuid.UUID] = set()
    for seq in c.sequences:
        for r in seq.resources:
            if r.descriptor_id not in seen:
                seen.add(r.descriptor_id)
                descriptor_xml(edl, r.descriptor_id, r.track_file)
    tc = _sub(root, q("CompositionTimecode"))
    _sub(tc, q("TimecodeDropFrame"), "true" if c.drop_frame else "false")
    _sub(tc, q("TimecodeRate"), str(round(c.edit_rate)))
    _sub(tc, q("TimecodeStartAddress"), c.timecode)
    _sub(root, q("EditRate"), _rate(c.edit_rate))
    ext = _sub(root, q("ExtensionProperties"))
    _sub(ext, f"{{{NS_CC}}}ApplicationIdentification", c.application)
    if c.disclosure:
        _disclosure(ext, c.disclosure)
    seg = _sub(_sub(root, q("SegmentList")), q("Segment"))
    _sub(seg, q("Id"), urn(uuid.uuid5(c.id, "segment")))
    seqs = _sub(seg, q("SequenceList"))
    for n, s in enumerate(c.sequences):
        se = _sub(seqs, f"{{{NS_CC}}}{s.kind}")
        _sub(se, q("Id"), urn(uuid.uuid5(c.id, f"sequence{n}")))
        _sub(se, q("TrackId"), urn(s.track_id))
        rl = _sub(se, q("ResourceList"))
        for m, r in enumerate(s.resources):
            kind = {f"{{{NS_XSI}}}type": "cpl:TrackFileResourceType"}
            res = ET.SubElement(rl, q("Resource"), kind)
            _sub(res, q("Id"), urn(uuid.uuid5(c.id, f"resource{n}/{m}")))
            if r.track_file.edit_rate != c.edit_rate:
                _sub(res, q("EditRate"), _rate(r.track_file.edit_rate))
            _sub(res, q("IntrinsicDuration"), str(r.track_file.duration))
            if r.entry:
                _sub(res, q("EntryPoint"), str(r.entry))
            dur = r.duration if r.duration is not None else r.track_file.duration - r.entry
            _sub(res, q("SourceDuration"), str(dur))
            _sub(res, q("SourceEncoding"), urn(r.descriptor_id))
            _sub(res, q("TrackFileId"), urn(r.track_file.id))
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def _disclosure(ext: ET.Element, d: dict[str, Any]) -> None:
    """``<rst:Processing aiProcessed="true">`` with one ``Model`` per AI model used."""
    el = _sub(ext, f"{{{NS_RESTORO}}}Processing", aiProcessed="true" if d.get("ai") else "false")
    _sub(el, f"{{{NS_RESTORO}}}Summary", d.get("summary", ""))
    for m in d.get("models", []):
        _sub(el, f"{{{NS_RESTORO}}}Model", m["name"], stage=m["stage"], digest=m["digest"])
