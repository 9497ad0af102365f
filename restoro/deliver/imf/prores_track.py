"""App ProRes (RDD 45) picture track files: ProRes frames (RDD 44) frame-wrapped in MXF."""

from __future__ import annotations

from typing import TYPE_CHECKING

from restoro.deliver.imf import ul as U
from restoro.deliver.imf.descriptors import prores_descriptors
from restoro.deliver.imf.mxf import Essence, write_track_file
from restoro.deliver.imf.tracks import PRODUCT

if TYPE_CHECKING:
    import uuid
    from collections.abc import Iterator
    from fractions import Fraction
    from pathlib import Path


def _packets(mov: Path) -> Iterator[bytes]:
    import av

    with av.open(str(mov)) as c:
        for pkt in c.demux(video=0):
            if pkt.size:
                yield bytes(pkt)


def write_prores_track(
    mov: Path,
    out: Path,
    track_id: uuid.UUID,
    edit_rate: Fraction,
    *,
    raster: tuple[int, int],
    profile: str,
    issued: str,
) -> int:
    """Re-wrap the ProRes frames of a MOV chunk (no re-encode) into an OP1a track file."""
    count = sum(1 for _ in _packets(mov))
    ess = Essence("picture", edit_rate, count, U.EC_PRORES, U.ELEMENT_PRORES, clip_wrapped=False)
    descs = prores_descriptors(ess, track_id, raster[0], raster[1], profile)
    with open(out, "wb") as fh:
        return write_track_file(fh, track_id, ess, descs, _packets(mov), issued=issued,
                                product=PRODUCT)  # fmt: skip
