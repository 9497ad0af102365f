"""Reversible (5-3) JPEG 2000 in the IMF reversible profiles, through glymur and OpenJPEG.

ffmpeg's OpenJPEG wrapper cannot set the code-block size outside its digital-cinema (9-7)
setup, and ffmpeg's own ``jpeg2000`` encoder writes 16x16 code blocks without precincts, so
neither can make an IMF 2K/4K *R* codestream. glymur drives the OpenJPEG library directly
(``libopenjp2``, found by glymur on the system) and exposes code-block size, precincts and
progression order: one tile, CPRL, 32x32 code blocks, 128x128 precincts at the lowest
resolution and 256x256 above it, one layer, 5 (2K) or 6 (4K) decomposition levels, RCT.

glymur writes 8- or 16-bit component precision only; the IMF path needs 12-bit SIZ precision
(the DC level shift and the bit-plane count follow it), so the component parameters are set to
12 bits after glymur fills them in (``_Jp2k12``, the one place restoro relies on glymur's
internals). Without glymur or libopenjp2, ``available()`` is False and restoro falls back to
ffmpeg (64x64 code blocks, Rsiz 0, a ``j2k-profile`` warning from check-imf).
"""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

BIT_DEPTH = 12


@functools.cache
def available() -> str | None:
    """``glymur <v>/openjp2 <v>`` when the encoder works here, else None."""
    try:
        import glymur  # type: ignore[import-untyped]

        version = glymur.version.openjpeg_version
        if not version or tuple(int(x) for x in version.split(".")[:2]) < (2, 3):
            return None
        return f"glymur {glymur.__version__}/openjp2 {version}"
    except Exception:  # ImportError, or glymur without a usable libopenjp2
        return None


def _writer() -> Any:
    import glymur

    class _Jp2k12(glymur.Jp2k):  # type: ignore[misc]
        def _populate_comptparms(self, img_array: Any) -> None:
            super()._populate_comptparms(img_array)
            for c in self._comptparms:
                c.prec = c.bpp = BIT_DEPTH

    return _Jp2k12


def encode_frame(rgb: np.ndarray, *, four_k: bool) -> bytes:
    """One (H, W, 3) uint16 frame of 12-bit R'G'B' → an IMF reversible-profile codestream
    (Rsiz still 0: the caller sets profile and level)."""
    if rgb.dtype != np.uint16 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError("expected an (H, W, 3) uint16 frame")
    numres = 7 if four_k else 6
    writer = _writer()
    with tempfile.TemporaryDirectory(prefix="restoro-j2kr-") as tmp:
        path = Path(tmp) / "f.j2k"  # .j2k: a raw codestream, no JP2 boxes
        writer(path, data=np.ascontiguousarray(rgb), cbsize=(32, 32), irreversible=False,
               numres=numres, prog="CPRL", psizes=[(256, 256)] * (numres - 1),
               mct=True)  # fmt: skip
        return path.read_bytes()


def read_frames(raw: Path, width: int, height: int) -> Any:
    """Frames of a ``gbrp12le`` raw file as (H, W, 3) uint16 R'G'B' arrays."""
    size = width * height * 3 * 2
    with open(raw, "rb") as fh:
        while chunk := fh.read(size):
            if len(chunk) != size:
                raise ValueError(f"{raw}: truncated frame")
            g, b, r = np.frombuffer(chunk, "<u2").reshape(3, height, width)
            yield np.stack([r, g, b], axis=-1)
