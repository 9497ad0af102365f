"""Working-frame format: what travels beside the frames through a shot's chain."""

from __future__ import annotations

from fractions import Fraction

from pydantic import BaseModel, ConfigDict

MAX_SIDE = 8192
"""Largest output width or height (8K): a bigger raster is a typo, not a deliverable."""


class Colour(BaseModel):
    """Colour metadata, named as ffmpeg names them (e.g. bt709, smpte170m, bt470bg, tv, pc).

    ``matrix`` and ``range`` describe how the RGB working frames were (or will be) derived
    from / encoded to YCbCr; ``primaries`` and ``transfer`` describe the RGB values themselves.
    """

    model_config = ConfigDict(frozen=True)

    primaries: str = "bt709"
    transfer: str = "bt709"
    matrix: str = "bt709"
    range: str = "tv"


class FrameFormat(BaseModel):
    """Size, rate, aspect and colour of a stream of working frames (RGB, 16-bit, full range)."""

    model_config = ConfigDict(frozen=True)

    width: int
    height: int
    frame_rate: str
    """A rational as text, e.g. ``"30000/1001"``."""
    sar: str = "1:1"
    """Sample (pixel) aspect ratio as ``"N:D"``."""
    colour: Colour = Colour()

    @property
    def rate(self) -> Fraction:
        return Fraction(self.frame_rate)

    @property
    def dar(self) -> Fraction:
        """Display aspect ratio: width/height times the pixel aspect."""
        n, d = (int(x) for x in self.sar.split(":"))
        return Fraction(self.width * n, self.height * d)
