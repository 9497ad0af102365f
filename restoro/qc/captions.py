"""Caption checks of a caption track a deliverable carries (restoro/deliver/captions/checks.py:
overlaps, reading rate, line length and count, minimum duration and gap, cues past the
programme's end), as QC findings located by title frame and timecode.

The track is checked as authored, retimed by its ``offset_ms``: the delivered files are written
through ttconv, whose model splits overlapping cues into consecutive ones, so an overlap would
no longer show there. SRT and WebVTT are read cue by cue for that reason; SCC and TTML (whose
cues cannot overlap as written) through ttconv.
"""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING, Any

from restoro.qc.base import Finding

if TYPE_CHECKING:
    from pathlib import Path

    from restoro.deliver.captions.io import Cue

CHECK_ID = "captions"
CHECK_VERSION = 1


def title_timecode_at(timecode: str, frame_rate: str, frame: int) -> str:
    """Timecode of title frame ``frame`` when frame 0 is at ``timecode``."""
    from restoro.media.timecode import frames_to_timecode, is_drop_frame, timecode_to_frames

    rate = Fraction(frame_rate)
    drop = is_drop_frame(timecode)
    return frames_to_timecode(timecode_to_frames(timecode, rate) + frame, rate, drop)


def authored_cues(path: Path) -> list[Cue]:
    """The cues as written (overlaps kept), sorted by start."""
    from restoro.deliver.captions.io import detect_format, parse_srt, parse_vtt, read_cues

    text = path.read_text(encoding="utf-8-sig")
    fmt = detect_format(path, text[:4096])
    if fmt not in ("srt", "vtt"):
        return read_cues(path)
    cues = parse_srt(text) if fmt == "srt" else parse_vtt(text)
    return sorted(cues, key=lambda c: (c.begin, c.end))


def check_caption_file(
    path: Path,
    *,
    label: str,
    frames: int,
    frame_rate: str,
    timecode: str,
    offset_ms: int = 0,
    error: bool = False,
    trim: str | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Metrics (cue count, findings per check) and findings for the caption file at ``path``
    (programme time, 0 = the title's first frame); ``label`` names the track in messages.
    Findings (as JSON, each with its ``timecode``) are warnings, errors with ``error`` (the
    manifest's ``fail_on_captions``). ``trim``: the title is cut from its source with
    ``range:`` (its start in source seconds); the cues are checked as delivered, moved and cut
    to the title (``restoro.deliver.captions.io.cut_to_title``)."""
    from restoro.deliver.captions.checks import check_cues
    from restoro.deliver.captions.io import cut_to_title, retime

    rate = Fraction(frame_rate)
    try:
        cues = retime(authored_cues(path), offset_ms)
        if trim is not None:
            cues = cut_to_title(cues, Fraction(trim), frames / rate)[0]
    except Exception as exc:  # noqa: BLE001 - an unreadable delivered file is the finding
        bad = Finding(CHECK_ID, "error", f"{label}: does not parse: {exc}")
        return {"cues": 0}, [bad.to_json()]
    found = check_cues(cues, programme=float(frames / rate))
    counts: dict[str, int] = {}
    out: list[dict[str, Any]] = []
    for f in found:
        counts[f.check] = counts.get(f.check, 0) + 1
        frame = int(Fraction(f.at).limit_denominator(10**6) * rate)
        tc = title_timecode_at(timecode, frame_rate, min(frame, max(frames - 1, 0)))
        finding = Finding(
            CHECK_ID,
            "error" if error else "warning",
            f"{label} cue {f.cue} at {tc}: {f.check}: {f.message}",
            frames=[frame],
        )
        out.append({**finding.to_json(), "timecode": tc, "cue": f.cue, "kind": f.check})
    return {"cues": len(cues), **({"issues": counts} if counts else {})}, out
