"""A small two-variant project for the review tests: three hard-cut shots of 12 frames, 160x120,
upscaled x2; variant ``safe`` (light grain) and ``clean`` (strong grain) give different frames
for every shot; the middle shot is tagged ``vfx``; a ProRes master at 320x240."""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

MANIFEST = """\
restoro: 1
project: reviewtest
sources:
  tape:
    path: media/source.mkv
pipelines:
  main:
    - {stage: ingest, mode: progressive}
    - {stage: upscale, model: bicubic, scale: 2}
    - {stage: grain, amount: 0.0}
titles:
  ep1:
    source: tape
    pipeline: main
    shots: {detector: content, threshold: 27, min_frames: 4}
    overrides:
      - {shots: ['ep1@00:00:00:12'], tags: [vfx]}
variants:
  safe: {params: {grain: {amount: 0.02}}}
  clean: {params: {grain: {amount: 0.3}}}
deliverables:
  master: {kind: prores, profile: 422hq, raster: 320x240, fit: pillarbox%(extra)s}
"""


def make_review_project(tmp: Path, source: Path, *, deliverable_extra: str = "") -> Path:
    """Write the project into ``tmp`` (with a copy of ``source``); returns the manifest path.

    ``deliverable_extra`` is appended inside the master's flow map, e.g. ``", select: approved"``.
    """
    (tmp / "media").mkdir(parents=True, exist_ok=True)
    shutil.copy(source, tmp / "media" / "source.mkv")
    m = tmp / "restoro.yaml"
    m.write_text(MANIFEST % {"extra": deliverable_extra}, encoding="utf-8")
    return m
