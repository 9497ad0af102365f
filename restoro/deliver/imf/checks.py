"""``restoro check-imf``: restoro's own checks of the rules Photon enforces on an IMF package.

Each finding has a severity (error, warning, info), a code and a message naming the file. The
checks: ASSETMAP/PKL/CPL present and parseable; every PKL asset's size and SHA-1 hash; track
file UUID = PKL/ASSETMAP id; one essence track per track file; edit rates; resource durations
within IntrinsicDuration; every SourceEncoding in the EssenceDescriptorList; audio
clip-wrapped 24-bit 48 kHz with MCA labels (ST 2067-2:2016 5.3.6); App 2E raster/bit depth and
JPEG 2000 profile.
"""

from __future__ import annotations

import struct
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING

from restoro.deliver.imf import ul as U
from restoro.deliver.imf.packing import sha1_b64
from restoro.deliver.imf.reader import TrackFile, read_track_file

if TYPE_CHECKING:
    from pathlib import Path

APP_2E_RASTERS = {(1920, 1080), (2048, 1080), (3840, 2160), (4096, 2160), (1280, 720)}
APP_2E_DEPTHS = {8, 10, 12, 16}
MCA_GROUP_REQUIRED = ("MCATagSymbol", "MCATagName", "MCATitle", "MCATitleVersion",
                      "MCAAudioContentKind", "MCAAudioElementKind")  # fmt: skip


@dataclass(frozen=True)
class Finding:
    severity: str  # "error" | "warning" | "info"
    code: str
    message: str
    file: str = ""

    def __str__(self) -> str:
        where = f"{self.file}: " if self.file else ""
        return f"{self.severity.upper():7} {self.code}: {where}{self.message}"


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _find(el: ET.Element, name: str) -> ET.Element | None:
    return next((c for c in el.iter() if _local(c.tag) == name), None)


def _children(el: ET.Element | None, name: str) -> list[ET.Element]:
    return [c for c in el if _local(c.tag) == name] if el is not None else []


def _text(el: ET.Element, name: str) -> str:
    f = next((c for c in el if _local(c.tag) == name), None)
    return (f.text or "").strip() if f is not None else ""


def _uuid(text: str) -> str:
    return text.strip().lower().removeprefix("urn:uuid:")


def _rate(text: str) -> Fraction:
    n, d = text.split()
    return Fraction(int(n), int(d))


def _parse(path: Path, root: Path, want: str | None, out: list[Finding]) -> ET.Element | None:
    """``path``'s root element when it is well-formed XML whose root is ``want`` (any when
    None); else a finding (malformed, unreadable or another document) and None."""
    rel = _rel(path, root)
    try:
        top = ET.parse(path).getroot()
    except ET.ParseError as exc:
        out.append(Finding("error", "xml-malformed", f"not well-formed XML ({exc})", rel))
        return None
    except (OSError, UnicodeError, ValueError) as exc:
        out.append(Finding("error", "xml-unreadable", f"cannot be read as XML ({exc})", rel))
        return None
    if want is not None and _local(top.tag) != want:
        out.append(
            Finding("error", "xml-document", f"root element is {_local(top.tag)}, not {want}", rel)
        )
        return None
    return top


def _rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.name


def _asset_path(text: str, root: Path, out: list[Finding]) -> Path | None:
    """The file an ASSETMAP ``Path`` names, when it lies inside the package; otherwise a
    finding and None. ST 429-9 paths are relative to the ASSETMAP's folder: an absolute path,
    a URI with a scheme, a ``..`` step or a symbolic link that leads out of the package is
    refused, never opened."""
    import re
    from pathlib import PurePosixPath, PureWindowsPath

    parts = PurePosixPath(text.replace("\\", "/")).parts
    if (
        text.startswith(("/", "\\"))
        or PureWindowsPath(text).drive
        or re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", text)
        or ".." in parts
    ):
        out.append(Finding("error", "path-outside", f"asset path {text!r} is not a relative "
                           "path inside the package", "ASSETMAP.xml"))  # fmt: skip
        return None
    p = root.joinpath(*parts)
    try:
        inside = p.resolve().is_relative_to(root.resolve())
    except (OSError, RuntimeError):  # a symlink loop
        inside = False
    if not inside:
        out.append(Finding("error", "path-outside", f"asset path {text!r} leads out of the "
                           "package (symbolic link)", "ASSETMAP.xml"))  # fmt: skip
        return None
    return p


def _int(el: ET.Element, name: str, default: int | None, file: str,
         out: list[Finding]) -> int | None:  # fmt: skip
    """The integer in child ``name`` (``default`` when absent); a finding when it is not one."""
    text = _text(el, name)
    if not text:
        return default
    try:
        return int(text)
    except ValueError:
        out.append(Finding("error", "bad-value", f"{name} {text[:40]!r} is not an integer", file))
        return None


def _rate_of(el: ET.Element, name: str, file: str, out: list[Finding]) -> Fraction | None:
    """The edit rate ("N D") in child ``name``; a finding when it is not one."""
    text = _text(el, name)
    try:
        return _rate(text)
    except (ValueError, ZeroDivisionError):
        out.append(Finding("error", "bad-value", f"{name} {text[:40]!r} is not an edit rate "
                           "(two integers, the second not 0)", file))  # fmt: skip
        return None


def check_package(root: Path) -> list[Finding]:
    """All findings for the package in ``root`` (a folder holding ASSETMAP.xml). Malformed
    XML, bad values and asset paths leading out of the package are findings: nothing outside
    ``root`` is read."""
    out: list[Finding] = []
    am_path = root / "ASSETMAP.xml"
    if not am_path.is_file():
        return [Finding("error", "no-assetmap", f"no ASSETMAP.xml in {root}")]
    am = _parse(am_path, root, "AssetMap", out)
    if am is None:
        return out
    paths: dict[str, Path] = {}
    pkls: list[Path] = []
    asset_list = _find(am, "AssetList")
    for a in _children(asset_list, "Asset"):
        chunk = _find(a, "Path")
        if chunk is None or not chunk.text:
            continue
        p = _asset_path(chunk.text.strip(), root, out)
        if p is None:
            continue
        paths[_uuid(_text(a, "Id"))] = p
        if _text(a, "PackingList").lower() == "true":
            pkls.append(p)
    if not pkls:
        out.append(Finding("error", "no-pkl", "the ASSETMAP names no packing list", "ASSETMAP.xml"))
    track_files: dict[str, TrackFile] = {}
    cpls: list[tuple[Path, ET.Element]] = []
    for pkl in pkls:
        if not pkl.is_file():
            out.append(Finding("error", "missing-file", "packing list is missing", _rel(pkl, root)))
            continue
        pkl_root = _parse(pkl, root, "PackingList", out)
        if pkl_root is None:
            continue
        pkl_assets = _find(pkl_root, "AssetList")
        for a in pkl_assets if pkl_assets is not None else []:
            aid, name = _uuid(_text(a, "Id")), paths.get(_uuid(_text(a, "Id")))
            if name is None or not name.is_file():
                out.append(
                    Finding(
                        "error",
                        "missing-asset",
                        f"asset {aid} is not in the ASSETMAP or its file is missing",
                        pkl.name,
                    )
                )
                continue
            size = _int(a, "Size", -1, pkl.name, out)
            if size is not None and name.stat().st_size != size:
                out.append(
                    Finding(
                        "error",
                        "size-mismatch",
                        f"size is {name.stat().st_size}, the PKL says {size}",
                        name.name,
                    )
                )
            if sha1_b64(name) != _text(a, "Hash"):
                out.append(
                    Finding(
                        "error", "hash-mismatch", "SHA-1 differs from the PKL's Hash", name.name
                    )
                )
            kind = _text(a, "Type")
            if kind == "application/mxf" or name.suffix.lower() == ".mxf":
                tf = _check_track_file(name, aid, out)
                if tf is not None:
                    track_files[aid] = tf
            elif kind == "text/xml":
                doc = _parse(name, root, None, out)  # a CPL, an OPL or a sidecar
                if doc is not None and _local(doc.tag) == "CompositionPlaylist":
                    cpls.append((name, doc))
    if not cpls:
        out.append(Finding("error", "no-cpl", "no composition playlist in the package"))
    for cpl, doc in cpls:
        _check_cpl(cpl, doc, track_files, out)
    return out


def _check_track_file(path: Path, aid: str, out: list[Finding]) -> TrackFile | None:
    """Check one track file; a truncated or damaged one is an ``mxf-unreadable`` finding."""
    found: list[Finding] = []
    try:
        tf = _track_file_findings(path, aid, found)
    except (ValueError, KeyError, IndexError, struct.error, OSError) as exc:
        out.append(Finding("error", "mxf-unreadable", str(exc) or type(exc).__name__, path.name))
        return None
    out.extend(found)
    return tf


def _track_file_findings(path: Path, aid: str, out: list[Finding]) -> TrackFile:
    tf = read_track_file(path)
    _ = tf.descriptor, tf.essence_tracks
    if str(tf.id) != aid:
        out.append(
            Finding(
                "error",
                "track-file-id",
                f"file package UUID {tf.id} differs from the PKL/ASSETMAP id {aid}",
                path.name,
            )
        )
    if len(tf.essence_tracks) != 1:
        out.append(
            Finding(
                "error",
                "essence-tracks",
                f"{len(tf.essence_tracks)} essence tracks; an IMF track file has exactly one",
                path.name,
            )
        )
    if tf.partitions[0].operational_pattern[12:14] != b"\x01\x01":
        out.append(Finding("error", "not-op1a", "operational pattern is not OP1a", path.name))
    d = tf.descriptor
    if d.kind == "WAVEPCMDescriptor":
        _check_audio(tf, out)
    elif d.kind in ("RGBADescriptor", "CDCIDescriptor"):
        _check_picture(tf, out)
    elif d.kind == "DCTimedTextDescriptor":
        _check_timed_text(tf, out)
    return tf


def _check_timed_text(tf: TrackFile, out: list[Finding]) -> None:
    """ST 2067-2 timed text: a TTML document (NamespaceURI), UTF-8, ST 429-5 container."""
    d, name = tf.descriptor, tf.path.name
    if d.props.get("EssenceContainer") != U.EC_TIMED_TEXT:
        out.append(Finding("error", "timed-text", "not the ST 429-5 timed text container", name))
    if d.text("NamespaceURI") != "http://www.w3.org/ns/ttml":
        out.append(Finding("error", "timed-text", f"NamespaceURI {d.text('NamespaceURI')!r} "
                           "is not TTML (IMSC1)", name))  # fmt: skip
    if (d.text("UCSEncoding") or "").upper() != "UTF-8":
        out.append(Finding("error", "timed-text", "UCSEncoding is not UTF-8", name))


def _check_audio(tf: TrackFile, out: list[Finding]) -> None:
    d, name = tf.descriptor, tf.path.name
    ec = d.props.get("EssenceContainer", b"")
    if len(ec) < 15 or ec[14] != 0x02:
        out.append(Finding("error", "audio-wrapping", "audio is not clip-wrapped", name))
    if d.u32("QuantizationBits") != 24 or d.rational("AudioSamplingRate") != 48000:
        out.append(
            Finding(
                "error",
                "audio-format",
                f"audio is {d.u32('QuantizationBits')}-bit "
                f"{d.rational('AudioSamplingRate')} Hz, not 24-bit 48 kHz",
                name,
            )
        )
    subs = tf.sub_descriptors()
    groups = [s for s in subs if s.kind == "SoundfieldGroupLabelSubDescriptor"]
    chans = [s for s in subs if s.kind == "AudioChannelLabelSubDescriptor"]
    if not groups:
        out.append(Finding("error", "mca-missing", "no soundfield group label", name))
    for g in groups:
        missing = [p for p in MCA_GROUP_REQUIRED if p not in g.props]
        if missing:
            out.append(
                Finding(
                    "error",
                    "mca-incomplete",
                    f"soundfield group {g.text('MCATagSymbol')} lacks {', '.join(missing)}",
                    name,
                )
            )
    if len(chans) != (d.u32("ChannelCount") or 0):
        out.append(
            Finding(
                "error",
                "mca-channels",
                f"{len(chans)} channel labels for {d.u32('ChannelCount')} channels",
                name,
            )
        )


def _check_picture(tf: TrackFile, out: list[Finding]) -> None:
    d, name = tf.descriptor, tf.path.name
    raster = (d.u32("StoredWidth") or 0, d.u32("StoredHeight") or 0)
    j2k = [s for s in tf.sub_descriptors() if s.kind == "JPEG2000SubDescriptor"]
    if not j2k:
        return
    if raster not in APP_2E_RASTERS:
        out.append(
            Finding(
                "error", "app2e-raster", f"{raster[0]}x{raster[1]} is not an App 2E raster", name
            )
        )
    sizing = j2k[0].props.get("PictureComponentSizing", b"")
    depth = (sizing[8] & 0x7F) + 1 if len(sizing) > 8 else 0
    if depth not in APP_2E_DEPTHS:
        out.append(Finding("error", "app2e-depth", f"{depth}-bit components", name))
    rsiz = int.from_bytes(j2k[0].props.get("Rsiz", b"\0\0"), "big")
    if not 0x0400 <= rsiz < 0x0A00:
        out.append(
            Finding(
                "warning",
                "j2k-profile",
                f"codestream Rsiz 0x{rsiz:04x} is not an IMF JPEG 2000 profile",
                name,
            )
        )


def _check_cpl(cpl: Path, root: ET.Element, tfs: dict[str, TrackFile],
               out: list[Finding]) -> None:  # fmt: skip
    rate = _rate_of(root, "EditRate", cpl.name, out)
    edl = _find(root, "EssenceDescriptorList")
    descs = {_uuid(_text(e, "Id")) for e in (edl if edl is not None else [])}
    for res in (r for r in root.iter() if _local(r.tag) == "Resource"):
        tid = _uuid(_text(res, "TrackFileId"))
        enc = _uuid(_text(res, "SourceEncoding"))
        if enc not in descs:
            out.append(
                Finding(
                    "error",
                    "source-encoding",
                    f"resource's SourceEncoding {enc} is not in the EssenceDescriptorList",
                    cpl.name,
                )
            )
        intrinsic = _int(res, "IntrinsicDuration", 0, cpl.name, out)
        entry = _int(res, "EntryPoint", 0, cpl.name, out)
        if intrinsic is None or entry is None:
            continue
        dur = _int(res, "SourceDuration", intrinsic - entry, cpl.name, out)
        if dur is None:
            continue
        if entry + dur > intrinsic:
            out.append(
                Finding(
                    "error",
                    "duration",
                    f"EntryPoint {entry} + SourceDuration {dur} "
                    f"exceeds IntrinsicDuration {intrinsic}",
                    cpl.name,
                )
            )
        tf = tfs.get(tid)
        if tf is None:
            out.append(
                Finding(
                    "info",
                    "external-track-file",
                    f"track file {tid} is not in this package (supplemental package)",
                    cpl.name,
                )
            )
            continue
        res_rate = _rate_of(res, "EditRate", cpl.name, out) if _text(res, "EditRate") else rate
        if res_rate is not None and tf.edit_rate != res_rate:
            out.append(
                Finding(
                    "error",
                    "edit-rate",
                    f"resource EditRate {res_rate} differs from {tf.path.name}'s {tf.edit_rate}",
                    cpl.name,
                )
            )
        if tf.duration != intrinsic:
            out.append(
                Finding(
                    "error",
                    "intrinsic-duration",
                    f"IntrinsicDuration {intrinsic} differs from {tf.path.name}'s {tf.duration}",
                    cpl.name,
                )
            )
