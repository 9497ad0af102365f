"""VMAF and PSNR of one picture against a reference, with ffmpeg's libvmaf filter.

The static ffmpeg restoro runs carries libvmaf with its models built in, so nothing is read from
disk but the two pictures: ``vmaf_v0.6.1`` (HD viewing) and ``vmaf_4k_v0.6.1`` for references
3840 pixels wide or more. The distorted picture is scaled to the reference's raster (bicubic,
as a player would upscale it) and both are compared as 10-bit Y'CbCr 4:2:0. On long titles only
every ``n_subsample``-th frame is scored (``subsample_for``), which keeps a 4K season affordable;
libvmaf's integer features make the scores independent of ``n_threads``.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from restoro.media.ffmpeg import run_ffmpeg

MODEL_HD = "vmaf_v0.6.1"
MODEL_4K = "vmaf_4k_v0.6.1"
SCORED_FRAMES = 2000
"""About this many frames are scored per comparison; longer titles are subsampled evenly."""


def subsample_for(frames: int) -> int:
    """Score every n-th frame so at most about ``SCORED_FRAMES`` are scored."""
    return max(1, -(-frames // SCORED_FRAMES))


def threads() -> int:
    return max(1, min(8, os.cpu_count() or 1))


@dataclass(frozen=True)
class Vmaf:
    mean: float
    min: float
    p5: float
    """5th percentile of the per-frame scores: how bad the worst stretch gets."""
    psnr: float
    """Mean luma PSNR (dB)."""
    frames: int
    """Frames scored."""
    worst_frame: int
    model: str

    def to_json(self) -> dict[str, Any]:
        return {
            "vmaf_mean": self.mean,
            "vmaf_min": self.min,
            "vmaf_p5": self.p5,
            "psnr": self.psnr,
            "vmaf_frames": self.frames,
            "vmaf_worst_frame": self.worst_frame,
            "vmaf_model": self.model,
        }


def vmaf(
    distorted: list[str],
    reference: list[str],
    *,
    size: tuple[int, int],
    distorted_chain: str = "",
    reference_chain: str = "",
    n_subsample: int = 1,
) -> Vmaf:
    """Score ``distorted`` against ``reference`` (each the ffmpeg input options ending with
    ``-i PATH``). ``size`` is the reference's raster after ``reference_chain`` (e.g. a crop to
    its active picture); the distorted picture is scaled to it after ``distorted_chain``."""
    model = MODEL_4K if size[0] >= 3840 else MODEL_HD
    with tempfile.TemporaryDirectory(prefix="restoro-vmaf-") as tmp:
        # The log path goes into a filter graph: a plain temporary path needs no escaping.
        log = Path(tmp) / "vmaf.json"
        graph = _graph(size, model, log, distorted_chain, reference_chain, n_subsample)
        run_ffmpeg([*distorted, *reference, "-filter_complex", graph, "-an", "-f", "null", "-"])
        frames = json.loads(log.read_text(encoding="utf-8")).get("frames", [])
    if not frames:
        return Vmaf(0.0, 0.0, 0.0, 0.0, 0, 0, model)
    scores = np.array([f["metrics"]["vmaf"] for f in frames], dtype=np.float64)
    psnr = np.array([f["metrics"].get("psnr_y", 0.0) for f in frames], dtype=np.float64)
    worst = int(frames[int(np.argmin(scores))]["frameNum"])
    return Vmaf(
        mean=round(float(scores.mean()), 2),
        min=round(float(scores.min()), 2),
        p5=round(float(np.percentile(scores, 5)), 2),
        psnr=round(min(float(psnr.mean()), 99.0), 2),
        frames=len(frames),
        worst_frame=worst,
        model=model,
    )


def _graph(
    size: tuple[int, int],
    model: str,
    log: Path,
    distorted_chain: str,
    reference_chain: str,
    n_subsample: int,
) -> str:
    w, h = size
    pre_d = f"{distorted_chain}," if distorted_chain else ""
    pre_r = f"{reference_chain}," if reference_chain else ""
    # Frames are paired by their order, not their timestamps: demuxers place the first
    # picture of a B-frame track differently (edit lists, negative composition offsets), and
    # a pairing by time then drops or shifts a frame. A lost frame is the frame count's finding.
    order = "setpts=N/(FRAME_RATE*TB)"
    return (
        f"[0:v]{order},{pre_d}scale={w}:{h}:flags=bicubic,format=yuv420p10le,setsar=1[d];"
        f"[1:v]{order},{pre_r}format=yuv420p10le,setsar=1[r];"
        f"[d][r]libvmaf=model=version={model}:feature=name=psnr:n_threads={threads()}:"
        f"n_subsample={n_subsample}:shortest=1:log_fmt=json:log_path={log}"
    )
