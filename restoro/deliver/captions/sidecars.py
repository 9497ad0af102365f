"""Caption sidecars for a master: SRT (programme time, from 0) and SCC aligned to the master's
timecode (the SCC's first timecode label is the master's first-frame timecode)."""

from __future__ import annotations

import re
from fractions import Fraction
from typing import TYPE_CHECKING

from restoro.deliver.captions.io import title_cues, to_scc, to_srt

if TYPE_CHECKING:
    from pathlib import Path

NTSC = Fraction(30000, 1001)


def scc_timing(timecode: str, frame_rate: str) -> tuple[str, str]:
    """The SCC frame rate (a ttconv label) and start timecode matching a master that starts at
    ``timecode`` and runs at ``frame_rate``.

    A 29.97 master keeps its own timecode and drop-frame mode; any other rate (23.976 after
    IVTC, 24, 25) maps to 29.97 drop-frame with hours, minutes and seconds kept and frames
    scaled to 30 (as edit systems convert), so the SCC's labels start where the master's do and
    advance in wall-clock time.
    """
    m = re.fullmatch(r"(\d{2}):(\d{2}):(\d{2})([:;.])(\d{2})", timecode.strip())
    if not m:
        raise ValueError(f"invalid timecode {timecode!r}")
    h, mi, s, ff = (int(m.group(i)) for i in (1, 2, 3, 5))
    rate = Fraction(frame_rate)
    if rate == NTSC:
        drop = m.group(4) in ";."
        sep = ";" if drop else ":"
        return ("29.97DF" if drop else "29.97NDF"), f"{h:02d}:{mi:02d}:{s:02d}{sep}{ff:02d}"
    if rate == 30:
        return "30NDF", f"{h:02d}:{mi:02d}:{s:02d}:{ff:02d}"
    nominal = max(1, round(rate))
    f30 = min(29, ff * 30 // nominal)
    if s == 0 and f30 < 2 and mi % 10:  # labels dropped in 29.97 DF
        f30 = 2
    return "29.97DF", f"{h:02d}:{mi:02d}:{s:02d};{f30:02d}"


def master_sidecars(
    path: Path,
    *,
    name: str,
    offset_ms: int,
    frames: int,
    frame_rate: str,
    timecode: str,
    trim: str | None = None,
    notices: list[str] | None = None,
) -> tuple[str, str]:
    """(SRT, SCC) text for one caption file of a master of ``frames`` frames at ``frame_rate``
    starting at ``timecode``: retimed by ``offset_ms``, cut at the programme's end (a cue
    starting after it is an error), or with ``trim`` (a title cut from its source) cut to the
    title's range, the dropped cues counted in ``notices``."""
    end = frames / Fraction(frame_rate)
    cues = title_cues(path, offset_ms=offset_ms, end=end, name=name, trim=trim, notices=notices)
    scc_rate, start = scc_timing(timecode, frame_rate)
    return to_srt(cues), to_scc(cues, frame_rate=scc_rate, start_tc=start)
