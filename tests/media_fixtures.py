"""Shared helpers for the media tests: cached synthetic sources and small frame utilities."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np

from restoro.media.frames import Colour, FrameFormat
from restoro.testing.synth import make_source

if TYPE_CHECKING:
    from pathlib import Path

    import pytest

_CACHE: dict[str, Path] = {}


def source(factory: pytest.TempPathFactory, name: str, **kw: Any) -> Path:
    """A synthetic source made once per test session for each (name, options)."""
    key = name + json.dumps(kw, sort_keys=True)
    if key not in _CACHE:
        _CACHE[key] = make_source(factory.mktemp("src") / name, **kw)
    return _CACHE[key]


def random_frames(n: int, width: int, height: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 65536, (height, width, 3), dtype=np.uint16) for _ in range(n)]


SD_601 = FrameFormat(
    width=64,
    height=48,
    frame_rate="30000/1001",
    sar="8:9",
    colour=Colour(primaries="smpte170m", transfer="smpte170m", matrix="smpte170m"),
)


def combing(frame: np.ndarray) -> float:
    """Mean |row - mean(neighbour rows)| on luma-ish data: high for woven interlaced motion."""
    g = frame[..., 1].astype(np.float64)
    return float(np.abs(g[1:-1] - (g[:-2] + g[2:]) / 2).mean())
