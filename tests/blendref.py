"""The model engine's tile blend as it was done on the host (float64 numpy), kept as the
specification the device blend must reproduce bit for bit (CPU and CUDA tests)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from restoro.models.infer import ramp, tiles


def host_blend(
    frames: list[np.ndarray], forward: Any, s: int, tile: int, pad: int
) -> list[np.ndarray]:
    """The blend as the engine did it on the host before it moved to the device: float64
    numpy, tile by tile (the arithmetic the device blend must reproduce bit for bit)."""
    h, w = frames[0].shape[:2]
    acc = [np.zeros((h * s, w * s, 3), np.float64) for _ in frames]
    wsum = np.zeros((h * s, w * s, 1), np.float64)
    for sy, sx in tiles(h, w, tile, pad):
        wt = np.outer(ramp(sy, s), ramp(sx, s))[..., None]
        region = (slice(sy[0] * s, sy[1] * s), slice(sx[0] * s, sx[1] * s))
        for fi, f in enumerate(frames):
            arr = f[sy[0] : sy[1], sx[0] : sx[1]][None].astype(np.float32)
            x = torch.from_numpy(arr / 65535.0).permute(0, 3, 1, 2).contiguous()
            y = forward(x).cpu().permute(0, 2, 3, 1).numpy().astype(np.float64)
            acc[fi][region] += y[0] * wt
            if fi == 0:
                wsum[region] += wt
    return [np.clip(np.rint(a / wsum * 65535.0), 0, 65535).astype(np.uint16) for a in acc]
