"""Assemble an IMF package directory: track files + CPL + OPL + PKL + ASSETMAP.

Every id is a uuid5 over content (track file ids, the title, the application), and the issue
date is given by the caller, so the same inputs give the same package byte for byte. A
*supplemental* package lists in its PKL and ASSETMAP only the files it carries; its CPL may
reference track files of an earlier package (``external``), which IMF allows.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from restoro.deliver.imf.cpl import Composition, Resource, Sequence, cpl_xml
from restoro.deliver.imf.packing import Asset, assetmap_xml, opl_xml, pkl_xml
from restoro.deliver.imf.reader import TrackFile, read_track_file

if TYPE_CHECKING:
    from fractions import Fraction
    from pathlib import Path

NAMESPACE = uuid.UUID("5b0f1d5e-7a43-5c1e-9b1f-2f7e1c0a0e21")


@dataclass
class PackageSpec:
    title: str
    edit_rate: Fraction
    application: str
    issued: str
    picture: list[Path]
    """Picture track files in composition order (one per segment of the timeline)."""
    audio: list[Path] = field(default_factory=list)
    text: list[tuple[Path, str]] = field(default_factory=list)
    """Timed-text track files with their CPL sequence kind (``SubtitlesSequence`` ...)."""
    external: set[Path] = field(default_factory=set)
    """Track files referenced by the CPL but carried by an earlier package."""
    timecode: str = "00:00:00:00"
    drop_frame: bool = False
    """Drop-frame composition timecode (30000/1001 and 60000/1001 only)."""
    content_version: str | None = None
    disclosure: dict[str, Any] = field(default_factory=dict)


@dataclass
class Package:
    dir: Path
    cpl: Path
    pkl: Path
    assetmap: Path
    opl: Path
    track_files: list[Path]


def write_package(spec: PackageSpec, out: Path) -> Package:
    """Write the XML documents beside the track files in ``out`` (track files already there,
    or listed in ``spec.external``)."""
    out.mkdir(parents=True, exist_ok=True)
    pics = [read_track_file(p) for p in spec.picture]
    auds = [read_track_file(p) for p in spec.audio]
    texts = [read_track_file(p) for p, _k in spec.text]
    key = "|".join([spec.title, spec.application, *(str(t.id) for t in pics + auds + texts)])
    cpl_id = uuid.uuid5(NAMESPACE, "cpl:" + key)

    def res(tf: TrackFile) -> Resource:
        return Resource(tf, uuid.uuid5(tf.id, "essence-descriptor"))

    seqs = [Sequence("MainImageSequence", uuid.uuid5(cpl_id, "track/picture"),
                     [res(t) for t in pics])]  # fmt: skip
    for i, a in enumerate(auds):
        seqs.append(Sequence("MainAudioSequence", uuid.uuid5(cpl_id, f"track/audio{i}"), [res(a)]))
    for i, (t, (_p, kind)) in enumerate(zip(texts, spec.text, strict=True)):
        seqs.append(Sequence(kind, uuid.uuid5(cpl_id, f"track/text{i}"), [res(t)]))
    cv = None
    if spec.content_version:
        cv = (uuid.uuid5(cpl_id, "content-version"), spec.content_version)
    comp = Composition(
        id=cpl_id,
        title=spec.title,
        issued=spec.issued,
        edit_rate=spec.edit_rate,
        application=spec.application,
        sequences=seqs,
        timecode=spec.timecode,
        drop_frame=spec.drop_frame,
        content_version=cv,
        disclosure=spec.disclosure,
    )
    cpl = out / f"CPL_{cpl_id}.xml"
    _write(cpl, cpl_xml(comp))
    opl_id = uuid.uuid5(cpl_id, "opl")
    opl = out / f"OPL_{opl_id}.xml"
    _write(opl, opl_xml(opl_id, cpl_id, issued=spec.issued, title=spec.title))
    every = [*spec.picture, *spec.audio, *(p for p, _k in spec.text)]
    carried = [p for p in every if p not in spec.external]
    ids = {p: t.id for p, t in zip(every, pics + auds + texts, strict=True)}
    seen: set[uuid.UUID] = set()
    assets = [Asset(cpl_id, cpl, "text/xml"), Asset(opl_id, opl, "text/xml")]
    for p in carried:
        if ids[p] not in seen:  # a track file used twice is packed once
            seen.add(ids[p])
            assets.append(Asset(ids[p], out / p.name, "application/mxf"))
    pkl_id = uuid.uuid5(cpl_id, "pkl:" + "|".join(a.sha1() for a in assets))
    pkl = out / f"PKL_{pkl_id}.xml"
    _write(pkl, pkl_xml(pkl_id, assets, issued=spec.issued, title=spec.title))
    am = out / "ASSETMAP.xml"
    pkl_asset = Asset(pkl_id, pkl, "text/xml")
    _write(am, assetmap_xml(uuid.uuid5(pkl_id, "assetmap"), assets, pkl_asset,
                            issued=spec.issued))  # fmt: skip
    return Package(out, cpl, pkl, am, opl, [out / p.name for p in carried])


def _write(path: Path, data: bytes) -> None:
    path.write_bytes(data)
