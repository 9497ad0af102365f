"""Closed captions embedded in a source's video (CEA-608 in MPEG-2 picture user data).

ffmpeg's MPEG-2 decoder turns both the ATSC A/53 ``cc_data`` and the DVD ``CC`` user-data forms
into A/53 side data on the decoded frames (in display order); ``extract_scc`` reads that side
data with PyAV, keeps one channel's pairs (one per frame; the DVD form's per-GOP blocks are
spread over the GOP's frames) and writes them as SCC text with one timecode label per source
frame. ``title_captions`` reads that SCC with the same reader as a caption file and moves the
cues to the title's programme time (its first source frame at 0), so from there embedded
captions take the path of any caption file: retimed through IVTC, cut to the programme,
written as WebVTT, IMSC or SCC, checked.
"""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING

from restoro.media.cc608 import frame_pairs, has_data, pick_channel, to_scc

if TYPE_CHECKING:
    from pathlib import Path

    from restoro.deliver.captions.io import Cue

EXTRACT_VERSION = 1
NTSC = Fraction(30000, 1001)


def extract_scc(path: Path, channel: int = 1, *, stream: int | None = None) -> str | None:
    """SCC text of ``channel``'s captions, frame ``n`` of the source at label ``n`` (non-drop),
    or None when the channel carries nothing."""
    pairs = pick_channel(frame_pairs(path, stream), channel)
    return to_scc(pairs) if has_data(pairs) else None


def title_captions(
    scc: str, *, start: int, frame_rate: Fraction, end: int | None = None
) -> list[Cue]:
    """Cues of an ``extract_scc`` text in programme time of a title spanning source frames
    [``start``, ``end``): an SCC label counts source frames, so a cue's time is its frame over
    the source's rate, less the title's start. Cues wholly outside the title are dropped and
    one that straddles either end is clipped to it (the captions of a whole disc title, cut to
    an episode)."""
    import io
    import logging

    from ttconv.scc import reader as scc_reader

    from restoro.deliver.captions.io import Cue, model_to_cues

    logging.getLogger("ttconv").setLevel(logging.ERROR)
    doc = scc_reader.to_model(io.StringIO(scc).read())
    # ttconv reads a non-drop label n as n / 29.97 s; back to frames, then to the source's rate.
    offset = Fraction(start) / frame_rate
    last = (Fraction(end) / frame_rate - offset) if end is not None else None
    out = []
    for c in model_to_cues(doc):
        b = _frames(c.begin) / frame_rate - offset
        e = _frames(c.end) / frame_rate - offset
        if last is not None:
            if b >= last:
                continue
            e = min(e, last)
        if e > 0:
            out.append(Cue(max(b, Fraction(0)), e, c.lines))
    return sorted(out, key=lambda c: (c.begin, c.end))


def _frames(t: Fraction) -> int:
    """The SCC frame label of a time ttconv read (millisecond precision through its SRT)."""
    return round(t * NTSC)


def extract_all(path: Path, stream: int | None = None) -> dict[str, str]:
    """SCC text per caption channel that carries data (``"1"``..``"4"``), from one decode."""
    from restoro.media.cc608 import to_scc as write

    frames = frame_pairs(path, stream)
    out = {}
    for ch in (1, 2, 3, 4):
        pairs = pick_channel(frames, ch)
        if has_data(pairs):
            out[str(ch)] = write(pairs)
    return out
