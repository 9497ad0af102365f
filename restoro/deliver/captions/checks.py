"""Caption checks: overlaps, cues outside the programme, reading rate, line length, lines per
event, minimum duration and minimum gap. Defaults follow common broadcast/streaming style guides
(42 characters per line, 2 lines, 20 characters per second, 5/6 s minimum duration, 2 frames at
24 fps minimum gap)."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from restoro.deliver.captions.io import Cue


@dataclass(frozen=True)
class Thresholds:
    max_cps: float = 20.0
    max_chars_per_line: int = 42
    max_lines: int = 2
    min_duration: float = 5 / 6
    min_gap: float = 2 / 24


@dataclass(frozen=True)
class Finding:
    check: str
    cue: int
    """1-based index of the cue."""
    at: float
    message: str


def check_cues(
    cues: list[Cue], *, programme: float | None = None, limits: Thresholds | None = None
) -> list[Finding]:
    """Every violation in ``cues`` (sorted by time); ``programme`` is the duration in seconds."""
    lim = limits or Thresholds()
    out: list[Finding] = []
    for i, c in enumerate(cues, 1):
        at = float(c.begin)
        dur = c.end - c.begin
        if dur <= 0:
            out.append(Finding("duration", i, at, "ends before it begins"))
            continue
        if float(dur) < lim.min_duration:
            out.append(Finding("duration", i, at, f"shown {float(dur):.3f} s, under "
                                f"{lim.min_duration:.3f} s"))  # fmt: skip
        chars = sum(len(line) for line in c.lines)
        cps = chars / float(dur)
        if cps > lim.max_cps:
            out.append(Finding("reading-rate", i, at, f"{cps:.1f} characters/s, over "
                                f"{lim.max_cps:g}"))  # fmt: skip
        for line in c.lines:
            if len(line) > lim.max_chars_per_line:
                out.append(Finding("line-length", i, at, f"{len(line)} characters in a line, "
                                    f"over {lim.max_chars_per_line}"))  # fmt: skip
        if len(c.lines) > lim.max_lines:
            out.append(Finding("lines", i, at, f"{len(c.lines)} lines, over {lim.max_lines}"))
        if programme is not None and c.end > Fraction(programme).limit_denominator(10**6):
            out.append(Finding("outside-programme", i, at, f"ends at {float(c.end):.3f} s, "
                                f"after the programme's end ({programme:.3f} s)"))  # fmt: skip
        if i > 1:
            prev = cues[i - 2]
            if c.begin < prev.end:
                out.append(Finding("overlap", i, at, f"overlaps cue {i - 1} by "
                                    f"{float(prev.end - c.begin):.3f} s"))  # fmt: skip
            elif float(c.begin - prev.end) < lim.min_gap and c.begin != prev.end:
                out.append(Finding("gap", i, at, f"{float(c.begin - prev.end):.3f} s after cue "
                                    f"{i - 1}, under {lim.min_gap:.3f} s"))  # fmt: skip
    return out
