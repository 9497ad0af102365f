"""IMSC1 timed-text track files (ST 2067-2:2016 5.4, ST 429-5 layout).

A caption file of the title (any format ``restoro.deliver.captions`` reads) is read, retimed by
its ``offset_ms``, written as an IMSC1 Text Profile document (ttconv) and wrapped: a
DCTimedTextDescriptor (ResourceID, UCSEncoding UTF-8, NamespaceURI of TTML, the language) and
the whole document as one essence KLV in the body partition, indexed by one entry, with the
track's duration in edit units of the composition. Text-only documents have no ancillary
resources, so there is no TimedTextResourceSubDescriptor and no generic stream partition.
"""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from fractions import Fraction
from typing import TYPE_CHECKING

from restoro.deliver.imf import klv as K
from restoro.deliver.imf import ul as U
from restoro.deliver.imf.mxf import Essence, Ids, MxfSet, write_track_file
from restoro.errors import InputError

if TYPE_CHECKING:
    from pathlib import Path

TTML_NS = "http://www.w3.org/ns/ttml"
# The CPL sequence of each manifest caption kind (ST 2067-2:2016 core sequences).
SEQUENCE_OF_KIND = {
    "subtitles": "SubtitlesSequence",
    "cc": "HearingImpairedCaptionsSequence",
    "sdh": "HearingImpairedCaptionsSequence",
}


class NotImscConvertible(InputError):
    """A caption file that cannot become an IMSC1 document."""

    code = "E153"


def imsc_document(
    path: Path,
    *,
    offset_ms: int,
    language: str,
    where: str,
    trim: tuple[Fraction, Fraction] | None = None,
    notices: list[str] | None = None,
) -> bytes:
    """The caption file as an IMSC1 Text Profile document, retimed by ``offset_ms``; with
    ``trim`` (the title's start in source seconds and its length) cut to the title, the cues
    dropped counted in ``notices``."""
    from restoro.deliver.captions.io import CaptionError, title_cues, to_imsc

    try:
        cues = title_cues(
            path,
            offset_ms=offset_ms,
            end=trim[1] if trim else None,
            name=path.name,
            trim=str(trim[0]) if trim else None,
            notices=notices,
        )
        if not cues:
            raise CaptionError(f"{path}: no cue survives (empty file or offset)")
        doc = to_imsc(cues, language=language)
        root = ET.fromstring(doc)
    except (CaptionError, ET.ParseError, ValueError) as exc:
        raise NotImscConvertible(
            f"caption file {path.name} is not IMSC-convertible (bad input): {exc}",
            location=where,
            hint="give an SCC, SRT, WebVTT or TTML file with at least one timed cue",
        ) from exc
    if root.tag != f"{{{TTML_NS}}}tt":
        raise NotImscConvertible(f"{path.name}: the IMSC writer gave no <tt> document",
                                 location=where)  # fmt: skip
    return doc


def timed_text_descriptors(ess: Essence, track_file: uuid.UUID, language: str) -> list[MxfSet]:
    ids = Ids(track_file)
    return [
        MxfSet("DCTimedTextDescriptor")
        .add("InstanceUID", ids("descriptor"))
        .add("LinkedTrackID", K.u32(2))
        .add("SampleRate", K.rational(ess.edit_rate.numerator, ess.edit_rate.denominator))
        .add("ContainerDuration", K.i64(ess.duration))
        .add("EssenceContainer", ess.container)
        .add("DataEssenceCoding", bytes(16))
        .add("ResourceID", uuid.uuid5(track_file, "resource").bytes)
        .add("UCSEncoding", K.utf16("UTF-8"))
        .add("NamespaceURI", K.utf16(TTML_NS))
        .add("RFC5646LanguageTagList", K.utf16(language))
    ]


def write_timed_text_track(
    doc: bytes,
    out: Path,
    track_id: uuid.UUID,
    edit_rate: Fraction,
    duration: int,
    *,
    language: str,
    issued: str,
) -> int:
    """Wrap one IMSC1 document, ``duration`` edit units long, into a track file."""
    from restoro.deliver.imf.tracks import PRODUCT

    ess = Essence("data", edit_rate, duration, U.EC_TIMED_TEXT, U.ELEMENT_TIMED_TEXT,
                  clip_wrapped=False, klvs=1)  # fmt: skip
    with open(out, "wb") as fh:
        return write_track_file(fh, track_id, ess, timed_text_descriptors(ess, track_id, language),
                                [doc], issued=issued, product=PRODUCT)  # fmt: skip


def text_track(
    caption: Path,
    out: Path,
    *,
    offset_ms: int,
    language: str,
    frame_rate: str,
    duration: int,
    issued: str,
    where: str,
    trim: str | None = None,
    notices: list[str] | None = None,
) -> tuple[int, bytes]:
    """Caption file → IMSC1 → track file; returns (duration, the IMSC document). ``trim``: the
    title's range start in source seconds (the caption file is then cut to the title)."""
    import hashlib

    from restoro.deliver.imf.package import NAMESPACE

    cut = (Fraction(trim), duration / Fraction(frame_rate)) if trim is not None else None
    doc = imsc_document(caption, offset_ms=offset_ms, language=language, where=where, trim=cut,
                        notices=notices)  # fmt: skip
    digest = hashlib.sha1(doc).hexdigest()
    tid = uuid.uuid5(NAMESPACE, f"imsc:{digest}:{language}:{frame_rate}:{duration}:{issued}")
    n = write_timed_text_track(doc, out, tid, Fraction(frame_rate), duration, language=language,
                               issued=issued)  # fmt: skip
    return n, doc
