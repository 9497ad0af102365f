"""SMPTE timecode and manifest time positions (pure arithmetic, no media access).

A *position* in the manifest is one of:

- an integer: a frame number counted from the source's first frame (0 = first frame);
- ``"HH:MM:SS:FF"``: non-drop-frame source timecode;
- ``"HH:MM:SS;FF"`` (or ``"HH:MM:SS.FF"``): drop-frame source timecode, valid only at
  30000/1001 and 60000/1001;
- ``"12.5s"``: seconds from the source's first frame, rounded to the nearest frame
  (an exact half rounds up).

Timecodes are *source timecode*: a source whose first frame is ``01:00:00;00`` has frame 0 at
``01:00:00;00``. Drop-frame counting skips frame numbers 00 and 01 (00-03 at 59.94) at the start
of every minute except minutes 00, 10, 20, 30, 40 and 50; the frames themselves are all there.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction
from functools import lru_cache

_TC_RE = re.compile(r"^(\d{2}):(\d{2}):(\d{2})([:;.])(\d{2,3})$")
_SECONDS_RE = re.compile(r"^(\d+(?:\.\d+)?)s$")
_DIGITS_RE = re.compile(r"^\d+$")

DROP_FRAME_RATES = (Fraction(30000, 1001), Fraction(60000, 1001))
_DAY_HOURS = 24


def nominal_fps(rate: Fraction) -> int:
    """The integer frame count per timecode second: 30 for 30000/1001, 24 for 24000/1001."""
    try:
        return _nominal_fps(rate)
    except TypeError:  # unhashable: not a rate lru_cache can keep
        return _nominal_fps.__wrapped__(rate)


@lru_cache(maxsize=64)  # (asked for every shot's timecode; rates are few)
def _nominal_fps(rate: Fraction) -> int:
    rate = Fraction(rate)
    if rate <= 0:
        raise ValueError(f"frame rate must be positive, got {rate}")
    return max(1, math.floor(rate + Fraction(1, 2)))


def _drop_per_minute(rate: Fraction) -> int:
    if Fraction(rate) not in DROP_FRAME_RATES:
        raise ValueError(
            f"drop-frame timecode needs a 29.97 or 59.94 fps source, not {_rate_text(rate)} fps; "
            "write HH:MM:SS:FF (with a colon before the frames)"
        )
    return 2 * nominal_fps(rate) // 30


def _rate_text(rate: Fraction) -> str:
    rate = Fraction(rate)
    if rate.denominator == 1:
        return str(rate.numerator)
    return f"{rate.numerator}/{rate.denominator} (~{float(rate):.3f})"


def is_drop_frame(tc: str) -> bool:
    """True when ``tc`` uses the drop-frame separator (``;`` or ``.``) before the frames."""
    m = _TC_RE.match(tc.strip())
    return bool(m and m.group(4) in ";.")


def _split(tc: str) -> tuple[int, int, int, int, bool]:
    m = _TC_RE.match(tc.strip())
    if not m:
        raise ValueError(
            f"invalid timecode {tc!r}: expected HH:MM:SS:FF, or HH:MM:SS;FF for drop-frame"
        )
    hh, mm, ss, sep, ff = m.groups()
    h, mi, s, f = int(hh), int(mm), int(ss), int(ff)
    if h >= _DAY_HOURS or mi >= 60 or s >= 60:
        raise ValueError(f"invalid timecode {tc!r}: hours must be 00-23, minutes and seconds 00-59")
    return h, mi, s, f, sep in ";."


def timecode_to_frames(tc: str, rate: Fraction) -> int:
    """Absolute frame count of timecode ``tc`` at ``rate`` (frames since 00:00:00:00)."""
    h, mi, s, f, drop = _split(tc)
    fps = nominal_fps(rate)
    if f >= fps:
        raise ValueError(
            f"invalid timecode {tc!r}: frames must be 00-{fps - 1:02d} at {_rate_text(rate)} fps"
        )
    total = ((h * 60 + mi) * 60 + s) * fps + f
    if not drop:
        return total
    d = _drop_per_minute(rate)
    if s == 0 and mi % 10 != 0 and f < d:
        raise ValueError(
            f"timecode {tc!r} does not exist in drop-frame counting: frames 00-{d - 1:02d} are "
            f"skipped at the start of each minute not divisible by 10; the minute starts at "
            f"{h:02d}:{mi:02d}:00;{d:02d}"
        )
    minutes = h * 60 + mi
    return total - d * (minutes - minutes // 10)


def frames_to_timecode(n: int, rate: Fraction, drop_frame: bool) -> str:
    """Timecode of absolute frame ``n``; drop-frame uses ``;`` before the frames.

    Timecode wraps at 24 hours, as it does on tape and in every NLE.
    """
    if n < 0:
        raise ValueError(f"frame number must not be negative, got {n}")
    fps = nominal_fps(rate)
    if drop_frame:
        d = _drop_per_minute(rate)
        per_min = fps * 60 - d
        per_10min = fps * 600 - d * 9
        tens, rem = divmod(n, per_10min)
        n += d * 9 * tens
        if rem >= d:
            n += d * ((rem - d) // per_min)
    n %= fps * 86400
    secs, f = divmod(n, fps)
    mins, s = divmod(secs, 60)
    h, mi = divmod(mins, 60)
    sep = ";" if drop_frame else ":"
    return f"{h:02d}:{mi:02d}:{s:02d}{sep}{f:02d}"


def check_syntax(value: object) -> str | None:
    """An error message if ``value`` cannot be a position at any frame rate, else None.

    Load-time check: frame-range limits that depend on the rate are checked later, against
    the probed media.
    """
    if isinstance(value, bool) or not isinstance(value, int | str):
        return (
            f"invalid time position {value!r}: expected a frame number, a timecode "
            'HH:MM:SS:FF (HH:MM:SS;FF for drop-frame) or seconds like "12.5s"'
        )
    if isinstance(value, int):
        return None if value >= 0 else f"frame number must not be negative, got {value}"
    text = value.strip()
    if _DIGITS_RE.match(text) or _SECONDS_RE.match(text):
        return None
    try:
        h, mi, s, f, drop = _split(text)
    except ValueError as exc:
        if ":" not in text and ";" not in text:
            return (
                f"invalid time position {value!r}: expected a frame number, a timecode "
                'HH:MM:SS:FF (HH:MM:SS;FF for drop-frame) or seconds like "12.5s"'
            )
        return str(exc)
    if drop:
        if f >= 60:
            return f"invalid timecode {value!r}: frames must be 00-59 in drop-frame timecode"
        if s == 0 and mi % 10 != 0 and f < 2:
            return (
                f"timecode {value!r} does not exist in drop-frame counting: frames 00 and 01 "
                f"are skipped at the start of each minute not divisible by 10"
            )
    return None


def parse_position(value: str | int, rate: Fraction, *, start_frame: int = 0) -> int:
    """A manifest time position → frame index from the source's first frame.

    Timecodes are source timecode (``start_frame`` is the source's first timecode in absolute
    frames); integers and ``"Ns"`` seconds count from the source's first frame. Seconds round to
    the nearest frame, an exact half up.
    """
    problem = check_syntax(value)
    if problem:
        raise ValueError(problem)
    if isinstance(value, int):
        return value
    text = value.strip()
    if _DIGITS_RE.match(text):
        return int(text)
    sec = _SECONDS_RE.match(text)
    if sec:
        return math.floor(Fraction(sec.group(1)) * Fraction(rate) + Fraction(1, 2))
    frame = timecode_to_frames(text, rate) - start_frame
    if frame < 0:
        first = frames_to_timecode(start_frame, rate, is_drop_frame(text))
        raise ValueError(
            f"timecode {value!r} is before the source's first frame (timecode {first})"
        )
    return frame
