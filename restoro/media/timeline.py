"""A title's timeline: its frames at the title's rate, and the source frame behind each.

Title frame ``k`` (0 = the title's first frame) is shown at ``k / rate`` seconds after the
title's first source frame ``span[0]``; the source frame on screen then is
``span[0] + floor(k * source_rate / rate)``. The mapping depends only on the span and the two
rates, so the planner knows it before any frame is decoded, and it is the same for the title's
ingest and for any shot's own ingest. With equal rates title frame k is source frame
``span[0] + k``.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property, lru_cache
from typing import Any


@dataclass(frozen=True)
class Timeline:
    span: tuple[int, int]
    """[start, end) of the title in source frames."""
    source_rate: Fraction
    rate: Fraction
    """The title's output frame rate."""

    @cached_property  # (asked for every shot: kept in the frozen instance's __dict__)
    def frames(self) -> int:
        """Title frames: the span's duration at the title rate, rounded to the nearest frame
        (halves up), so the picture lasts as long as the source within half a frame."""
        # Integer arithmetic (the planner asks this for every shot): floor(n*R/S + 1/2).
        num = (self.span[1] - self.span[0]) * self.rate.numerator * self.source_rate.denominator
        den = self.rate.denominator * self.source_rate.numerator
        return (2 * num + den) // (2 * den)

    @property
    def identity(self) -> bool:
        return self.rate == self.source_rate

    def time(self, k: int) -> Fraction:
        """Seconds from the title's first frame to title frame ``k``."""
        return Fraction(k) / self.rate

    def source_frame(self, k: int) -> int:
        """The source frame on screen at title frame ``k`` (``frames`` maps to the span end)."""
        if k >= self.frames:
            return self.span[1]
        s, r = self.source_rate, self.rate
        return self.span[0] + (k * s.numerator * r.denominator) // (s.denominator * r.numerator)

    def title_frame(self, source_frame: int) -> int:
        """The first title frame showing ``source_frame`` or a later one (clamped)."""
        s, r = self.source_rate, self.rate
        num = (source_frame - self.span[0]) * r.numerator * s.denominator
        k = -((-num) // (r.denominator * s.numerator))  # ceil division
        return max(0, min(self.frames, k))

    def to_json(self) -> dict[str, Any]:
        return {
            "span": list(self.span),
            "source_rate": f"{self.source_rate.numerator}/{self.source_rate.denominator}",
            "frame_rate": f"{self.rate.numerator}/{self.rate.denominator}",
            "frames": self.frames,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Timeline:
        return _timeline(int(d["span"][0]), int(d["span"][1]), d["source_rate"], d["frame_rate"])


# Rates parsed once (a planner reads a title's timeline for each of its thousands of shots);
# Fractions are immutable, so they are shared.
_fraction = lru_cache(maxsize=256)(Fraction)


@lru_cache(maxsize=64)
def _timeline(start: int, end: int, source_rate: Any, rate: Any) -> Timeline:
    """One shared (frozen) timeline per span and rates: a planner reads its title's timeline
    from the ingest's meta for each shot."""
    return Timeline((start, end), _fraction(source_rate), _fraction(rate))


def rate_text(rate: Fraction) -> str:
    return f"{rate.numerator}/{rate.denominator}"


def choose_rate(
    source_rate: Fraction, film_share: float | None, declared: str | None, mode: str
) -> Fraction:
    """The title's frame rate: the declared one; else 24000/1001 for an NTSC source that is
    mostly film (more than half of its frames telecined, or ``ivtc`` asked for); else the
    source's rate (twice it for field-rate deinterlacing is the caller's business)."""
    if declared:
        return Fraction(declared)
    ntsc = source_rate in (Fraction(30000, 1001), Fraction(30))
    film = mode == "ivtc" or (mode == "auto" and film_share is not None and film_share > 0.5)
    if ntsc and film:
        return source_rate * Fraction(4, 5)
    return source_rate
