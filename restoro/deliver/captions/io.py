"""Caption files in and out: SCC (CEA-608), SRT, WebVTT, TTML/IMSC1, read and written with ttconv.

Everything passes through a flat list of ``Cue`` (begin, end in wall-clock seconds as exact
fractions, text lines): ttconv reads any format into its model, its SRT writer flattens the model
into timed cues, and writers build the output from the cues (WebVTT and SRT directly, IMSC1 and
SCC through ttconv's model). Retiming works on cues; times never scale with a frame-rate change
that keeps wall-clock time (IVTC), only with ``scale`` when a caller asks for it.
"""

from __future__ import annotations

import io
import logging
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from restoro.errors import InputError

if TYPE_CHECKING:
    from pathlib import Path

FORMATS = {".scc": "scc", ".srt": "srt", ".vtt": "vtt", ".ttml": "ttml", ".xml": "ttml",
           ".dfxp": "ttml", ".imsc": "ttml"}  # fmt: skip


class CaptionError(InputError):
    """A caption file restoro cannot read (unknown format, broken content)."""

    code = "E320"


@dataclass(frozen=True)
class Cue:
    begin: Fraction
    end: Fraction
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def detect_format(path: Path, head: str) -> str:
    """The format of a caption file, from its content first and its suffix second."""
    h = head.lstrip("\ufeff").lstrip()
    if h.startswith("Scenarist_SCC"):
        return "scc"
    if h.startswith("WEBVTT"):
        return "vtt"
    if h.startswith("<") and ("<tt" in h[:2000] or "ttml" in h[:2000]):
        return "ttml"
    if re.match(r"\d+\s*\n\s*\d{1,2}:\d{2}:\d{2}[,.]\d{3}\s*-->", h):
        return "srt"
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise CaptionError(
            f"{path}: unknown caption format",
            hint="use SCC, SRT, WebVTT or TTML/IMSC1 (.scc, .srt, .vtt, .ttml/.xml)",
        )
    return fmt


def _broken(path: Path, fmt: str, detail: str) -> CaptionError:
    return CaptionError(
        f"{path}: not a readable {fmt.upper()} caption file ({detail})",
        hint="check the file opens in a caption editor; re-export it",
    )


_SCC_LINE = re.compile(r"^(\d{2}):(\d{2}):(\d{2})([:;.,])(\d{2})\s+([0-9a-fA-F]{4}\s*)+$")


def check_scc(path: Path, text: str) -> None:
    """Every SCC caption line is ``HH:MM:SS:FF`` (a valid 29.97 fps timecode) then hex words:
    ttconv skips a line it cannot time, so a file of broken timecodes would read as no cues."""
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or n == 1 and line.lstrip("\ufeff").startswith("Scenarist_SCC"):
            continue
        m = _SCC_LINE.match(line)
        if m is None:
            raise CaptionError(
                f"{path}:{n}: not an SCC caption line: {line[:40]!r}",
                hint="an SCC line is a timecode, a tab, then 4-digit hex words (9420 9420 ...)",
            )
        _hh, mm, ss, _sep, ff = m.groups()[:5]
        if int(mm) > 59 or int(ss) > 59 or int(ff) > 29:
            raise CaptionError(
                f"{path}:{n}: invalid SCC timecode {line.split()[0]!r}",
                hint="minutes and seconds run 00-59 and frames 00-29 (SCC is 29.97 fps)",
            )


def read_model(path: Path) -> Any:
    """ttconv's model of a caption file."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise CaptionError(
            f"{path}: cannot read caption file ({reason})",
            hint="caption files are UTF-8 text (SCC, SRT, WebVTT, TTML)",
        ) from exc
    fmt = detect_format(path, text[:4096])
    if fmt == "scc":
        check_scc(path, text)
    logging.getLogger("ttconv").setLevel(logging.CRITICAL)
    try:
        if fmt == "scc":
            from ttconv.scc import reader as scc

            doc = scc.to_model(text)
        elif fmt == "srt":
            from ttconv.srt import reader as srt

            doc = srt.to_model(io.StringIO(text))
        elif fmt == "vtt":
            from ttconv.vtt import reader as vtt

            doc = vtt.to_model(io.StringIO(text))
        else:
            from ttconv.imsc import reader as imsc

            doc = imsc.to_model(ET.ElementTree(ET.fromstring(text.encode("utf-8"))))
    except Exception as exc:  # ttconv raises many kinds on bad content
        raise _broken(path, fmt, f"{type(exc).__name__}: {exc}") from exc
    if doc is None:
        raise _broken(path, fmt, "no document")
    return doc


_SRT_TIME = r"(\d+):(\d{2}):(\d{2}),(\d{3})"
_VTT_TIME = r"(?:(\d+):)?(\d{2}):(\d{2})\.(\d{3})"


def _seconds(m: tuple[str | None, ...]) -> Fraction:
    h, mi, s, ms = (int(x or 0) for x in m)
    return Fraction(h * 3600 + mi * 60 + s) + Fraction(ms, 1000)


def model_to_cues(doc: Any) -> list[Cue]:
    """Flatten a ttconv model into timed cues (through its SRT writer)."""
    from ttconv.srt import writer as srt

    return parse_srt(srt.from_model(doc))


def _parse_timed_blocks(text: str, time_re: str) -> list[Cue]:
    """Cues of SRT or WebVTT text as written, block by block (overlaps kept, nothing merged):
    the first ``start --> end`` line of a block, then its text lines."""
    cues = []
    for block in re.split(r"\n\s*\n", text.replace("\r\n", "\n").strip()):
        lines = block.split("\n")
        for i, line in enumerate(lines):
            m = re.match(rf"\s*{time_re}\s*-->\s*{time_re}", line)
            if m:
                g = m.groups()
                body = tuple(x.strip() for x in lines[i + 1 :] if x.strip())
                cues.append(Cue(_seconds(g[:4]), _seconds(g[4:]), body))
                break
    return cues


def parse_srt(text: str) -> list[Cue]:
    return _parse_timed_blocks(text, _SRT_TIME)


def parse_vtt(text: str) -> list[Cue]:
    """WebVTT cues as written (hours optional; cue settings after the end time ignored)."""
    return _parse_timed_blocks(text, _VTT_TIME)


def read_cues(path: Path) -> list[Cue]:
    """The cues of a caption file in any supported format; a file without any is an error
    (a caption track that shows nothing is a mistake, not a choice)."""
    cues = sorted(model_to_cues(read_model(path)), key=lambda c: (c.begin, c.end))
    if not cues:
        raise CaptionError(
            f"{path}: no captions found in the file",
            hint="check it is the right file and that it opens in a caption editor",
        )
    return cues


def retime(cues: list[Cue], offset_ms: int = 0, scale: Fraction = Fraction(1)) -> list[Cue]:
    """Cues delayed by ``offset_ms`` (positive delays); times multiplied by ``scale`` first.

    A frame-rate change by ingest that keeps wall-clock time (IVTC 29.97 → 23.976) needs
    ``scale`` 1: cue times are seconds, not frames.
    """
    off = Fraction(offset_ms, 1000)
    out = []
    for c in cues:
        b, e = c.begin * scale + off, c.end * scale + off
        if e > 0:
            out.append(Cue(max(b, Fraction(0)), e, c.lines))
    return out


def fit_to_programme(cues: list[Cue], end: Fraction, name: str) -> list[Cue]:
    """Cues cut at the programme's ``end`` (seconds); a cue starting at or after it is an
    error naming the caption file, the cue and the programme length."""
    late = [c for c in cues if c.begin >= end]
    if late:
        raise CaptionError(
            f"caption {name}: cue at {float(late[0].begin):.3f} s "
            f'("{late[0].text[:40]}") is beyond the programme end ({float(end):.3f} s)',
            hint="check the caption file belongs to this title, or its offset_ms",
        )
    return [c if c.end <= end else Cue(c.begin, end, c.lines) for c in cues]


def cut_to_title(cues: list[Cue], start: Fraction, end: Fraction) -> tuple[list[Cue], int]:
    """Cues timed on the source, for a title trimmed to the source's seconds [``start``,
    ``start + end``): moved to the title's time and cut to [0, ``end``) (a cue straddling
    either end is clipped to it); returns (the cues, how many fell outside and were dropped)."""
    out = []
    for c in cues:
        b, e = max(c.begin - start, Fraction(0)), min(c.end - start, end)
        if e > b:
            out.append(Cue(b, e, c.lines))
    return out, len(cues) - len(out)


def place_cues(
    cues: list[Cue], end: Fraction, name: str, trim: str | None = None
) -> tuple[list[Cue], list[str]]:
    """The cues of a title of ``end`` seconds, and notices for the build's warnings.

    ``trim`` (the title's range start in source seconds, a fraction string) says the title
    is cut from its source with ``range:``: the caption file is timed on the source, so its
    cues are moved and cut to the title and those outside it dropped, with a notice counting
    them (never an error). Without it the file is the title's own and a cue starting after
    the end is an error (``fit_to_programme``).
    """
    if trim is None:
        return fit_to_programme(cues, end, name), []
    kept, dropped = cut_to_title(cues, Fraction(trim), end)
    notices = []
    if dropped:
        notices.append(
            f"caption {name}: {dropped} of {len(cues)} cues lie outside the title's range "
            f"(source {float(Fraction(trim)):.3f} s to {float(Fraction(trim) + end):.3f} s) "
            "and were dropped"
        )
    return kept, notices


def title_cues(
    path: Path,
    *,
    offset_ms: int,
    end: Fraction | None,
    name: str,
    trim: str | None = None,
    notices: list[str] | None = None,
) -> list[Cue]:
    """The cues of caption file ``path`` for a title of ``end`` seconds: read, retimed by
    ``offset_ms``, then placed in the title (``place_cues``: cut to it, ``trim`` as there), the
    notices of dropped cues appended to ``notices``. ``end`` None: not placed (read and
    retimed only)."""
    cues = retime(read_cues(path), offset_ms)
    if end is None:
        return cues
    cues, found = place_cues(cues, end, name, trim)
    if notices is not None:
        notices += found
    return cues


def _clock(t: Fraction, sep: str) -> str:
    ms = int(t * 1000 + Fraction(1, 2))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def to_srt(cues: list[Cue]) -> str:
    blocks = [
        f"{i}\n{_clock(c.begin, ',')} --> {_clock(c.end, ',')}\n{c.text}\n"
        for i, c in enumerate(cues, 1)
    ]
    return "\n".join(blocks)


def _vtt_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_vtt(cues: list[Cue], *, timestamp_map: str | None = None) -> str:
    """WebVTT; ``timestamp_map`` adds an ``X-TIMESTAMP-MAP`` header line (HLS)."""
    head = "WEBVTT\n" + (f"X-TIMESTAMP-MAP={timestamp_map}\n" if timestamp_map else "")
    blocks = [
        f"{_clock(c.begin, '.')} --> {_clock(c.end, '.')}\n{_vtt_escape(c.text)}\n" for c in cues
    ]
    return "\n".join([head, *blocks])


def cues_to_model(cues: list[Cue]) -> Any:
    from ttconv.srt import reader as srt

    logging.getLogger("ttconv").setLevel(logging.CRITICAL)
    return srt.to_model(io.StringIO(to_srt(cues)))


def to_imsc(cues: list[Cue], *, language: str = "en") -> bytes:
    """An IMSC1 Text Profile document (ttconv's writer), UTF-8 XML."""
    from ttconv.imsc import writer as imsc

    doc = cues_to_model(cues)
    doc.set_lang(language)
    tree = imsc.from_model(doc)
    return ET.tostring(tree.getroot(), encoding="utf-8", xml_declaration=True)


def to_scc(cues: list[Cue], *, frame_rate: str = "29.97DF", start_tc: str | None = None) -> str:
    """An SCC (CEA-608 pop-on) sidecar, 29.97 drop-frame unless ``frame_rate`` says otherwise
    (``29.97NDF``, ``30NDF``); ``start_tc`` is the timecode of programme time 0."""
    from ttconv.scc import writer as scc
    from ttconv.scc.config import SCCFrameRate, SccWriterConfiguration

    config = SccWriterConfiguration(
        force_popon=True, frame_rate=SCCFrameRate.from_value(frame_rate), start_tc=start_tc
    )
    # A pop-on caption loads (two bytes a frame) before it shows: one shown at programme time 0
    # (a cue clipped at a trimmed title's start) cannot load in time. Its display is delayed
    # by the load time, two frames at a time, as a caption operator would.
    step = Fraction(2002, 30000)
    for tries in range(40):
        try:
            return str(scc.from_model(cues_to_model(cues), config))
        except Exception as exc:
            if "start earlier" not in str(exc) or not cues or tries == 39:
                raise CaptionError(f"cannot write these captions as SCC: {exc}") from exc
            first = cues[0]
            if first.begin + step >= first.end:
                cues = cues[1:]
            else:
                cues = [Cue(first.begin + step, first.end, first.lines), *cues[1:]]
    raise AssertionError("unreachable")


WRITERS = {"srt": to_srt, "vtt": to_vtt, "ttml": to_imsc, "scc": to_scc}
