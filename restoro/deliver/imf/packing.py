"""Packing list (ST 2067-2:2016 PKL), asset map (ST 429-9) and output profile list
(ST 2067-100), and the package directory that holds them."""

from __future__ import annotations

import base64
import hashlib
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import TYPE_CHECKING

from restoro.deliver.imf.cpl import urn

if TYPE_CHECKING:
    import uuid
    from pathlib import Path

NS_PKL = "http://www.smpte-ra.org/schemas/2067-2/2016/PKL"
NS_AM = "http://www.smpte-ra.org/schemas/429-9/2007/AM"
NS_OPL = "http://www.smpte-ra.org/schemas/2067-100/2014"
NS_DS = "http://www.w3.org/2000/09/xmldsig#"
NS_XSI = "http://www.w3.org/2001/XMLSchema-instance"
SHA1 = "http://www.w3.org/2000/09/xmldsig#sha1"
# Fixed prefixes, no default namespace (ElementTree's prefix registry is process-wide).
for _p, _n in (("pkl", NS_PKL), ("am", NS_AM), ("opl", NS_OPL), ("xsi", NS_XSI)):
    ET.register_namespace(_p, _n)


@dataclass(frozen=True)
class Asset:
    id: uuid.UUID
    path: Path
    """Where the file is; its name in the package is ``path.name``."""
    mime: str

    def sha1(self) -> str:
        return sha1_b64(self.path)


def sha1_b64(path: Path) -> str:
    """Base64 SHA-1 of a file, as PKL ``Hash`` elements carry it."""
    h = hashlib.sha1()  # noqa: S324 - SHA-1 is what ST 2067-2 PKLs carry
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return base64.b64encode(h.digest()).decode("ascii")


def _doc(root: ET.Element) -> bytes:
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrib: str) -> ET.Element:
    el = ET.SubElement(parent, tag, attrib)
    if text is not None:
        el.text = text
    return el


def pkl_xml(pkl_id: uuid.UUID, assets: list[Asset], *, issued: str, title: str) -> bytes:
    q = lambda t: f"{{{NS_PKL}}}{t}"  # noqa: E731
    root = ET.Element(q("PackingList"))
    _sub(root, q("Id"), urn(pkl_id))
    _sub(root, q("AnnotationText"), title, language="en")
    _sub(root, q("IssueDate"), issued)
    _sub(root, q("Issuer"), "restoro", language="en")
    _sub(root, q("Creator"), "restoro", language="en")
    al = _sub(root, q("AssetList"))
    for a in assets:
        el = _sub(al, q("Asset"))
        _sub(el, q("Id"), urn(a.id))
        _sub(el, q("Hash"), a.sha1())
        _sub(el, q("Size"), str(a.path.stat().st_size))
        _sub(el, q("Type"), a.mime)
        _sub(el, q("OriginalFileName"), a.path.name, language="en")
        _sub(el, q("HashAlgorithm"), Algorithm=SHA1)
    return _doc(root)


def assetmap_xml(am_id: uuid.UUID, assets: list[Asset], pkl: Asset, *, issued: str) -> bytes:
    q = lambda t: f"{{{NS_AM}}}{t}"  # noqa: E731
    root = ET.Element(q("AssetMap"))
    _sub(root, q("Id"), urn(am_id))
    _sub(root, q("Creator"), "restoro", language="en")
    _sub(root, q("VolumeCount"), "1")
    _sub(root, q("IssueDate"), issued)
    _sub(root, q("Issuer"), "restoro", language="en")
    al = _sub(root, q("AssetList"))
    for a in [*assets, pkl]:
        el = _sub(al, q("Asset"))
        _sub(el, q("Id"), urn(a.id))
        if a is pkl:
            _sub(el, q("PackingList"), "true")
        chunk = _sub(_sub(el, q("ChunkList")), q("Chunk"))
        _sub(chunk, q("Path"), a.path.name)
    return _doc(root)


def opl_xml(opl_id: uuid.UUID, cpl_id: uuid.UUID, *, issued: str, title: str) -> bytes:
    q = lambda t: f"{{{NS_OPL}}}{t}"  # noqa: E731
    root = ET.Element(q("OutputProfileList"))
    _sub(root, q("Id"), urn(opl_id))
    _sub(root, q("Annotation"), f"{title}: play the composition as is")
    _sub(root, q("IssueDate"), issued)
    _sub(root, q("Issuer"), "restoro")
    _sub(root, q("Creator"), "restoro")
    _sub(root, q("CompositionPlaylistId"), urn(cpl_id))
    _sub(root, q("AliasList"))
    macro = ET.SubElement(
        _sub(root, q("MacroList")), q("Macro"), {f"{{{NS_XSI}}}type": "opl:PresetMacroType"}
    )
    _sub(macro, q("Name"), "preset-macro")
    _sub(macro, q("Preset"), "playback_cpl")
    return _doc(root)
