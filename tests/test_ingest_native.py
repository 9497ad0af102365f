"""Ingest's temporary segments in the source's own 8-bit Y'CbCr layout: converted to working
frames as they are read back, by the same zscale on the same samples, so the ingest's bytes are
those of converting inside the segment graph."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from restoro.media.probe import probe
from restoro.stages import ingest_timeline
from restoro.stages.ingest import IngestParams
from restoro.stages.ingest_timeline import run_ingest_action
from restoro.testing.synth import make_hybrid

if TYPE_CHECKING:
    from pathlib import Path


@pytest.mark.parametrize(("mode", "crop"), [("auto", [0, 0, 0, 0]), ("deinterlace", [8, 4, 16, 6])])
def test_native_segments_give_the_same_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str, crop: list[int]
) -> None:
    src, _ = make_hybrid(tmp_path / "h.mpg", width=96, height=64, film=(10, 8), video_frames=10)
    info = probe(src)
    assert info.video.pix_fmt == "yuv420p"
    p = {
        "ingest": IngestParams(mode=mode).model_dump(mode="json"),  # type: ignore[arg-type]
        "span": [0, info.video.frame_count],
        "crop": crop,
        "color": "auto",
        "field_order": "auto",
    }
    native = run_ingest_action(src, info, p, tmp_path / "native.mkv", tmp_path / "w1")
    monkeypatch.setattr(ingest_timeline, "NATIVE_LAYOUTS", ())
    rgb = run_ingest_action(src, info, p, tmp_path / "rgb.mkv", tmp_path / "w2")
    assert native["frames"] == rgb["frames"] > 0 and native["format"] == rgb["format"]
    assert (tmp_path / "native.mkv").read_bytes() == (tmp_path / "rgb.mkv").read_bytes()
