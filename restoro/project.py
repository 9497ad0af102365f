"""``restoro init``: a starter manifest that validates as written."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from restoro.errors import UsageError

if TYPE_CHECKING:
    from pathlib import Path

STARTER = """\
# restoro manifest — reference: docs/manifest.md
restoro: 1
project: {project}
output: out

sources:
  main:
    path: {source}
    field_order: auto        # auto | progressive | tff | bff
    color: auto              # auto | bt601-525 | bt601-625 | bt709

pipelines:
  default:
    - {{stage: ingest, mode: auto}}
    - {{stage: upscale, model: lanczos, scale: 2}}

titles:
  main:
    source: main
    pipeline: default
    shots: {{detector: content, threshold: 27, min_frames: 12}}

deliverables:
  master: {{kind: prores, profile: 422hq, raster: 1920x1080, fit: pillarbox}}
"""


def init_project(directory: Path, *, source: Path | None = None, force: bool = False) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "restoro.yaml"
    if path.exists() and not force:
        raise UsageError(f"{path} already exists", hint="pass --force to overwrite it")
    src = "media/source.mkv"
    if source is not None:
        src = os.path.relpath(source.resolve(), directory.resolve())
    project = (
        "".join(c if c.isalnum() or c in "-_" else "-" for c in directory.resolve().name)
        or "project"
    )
    path.write_text(STARTER.format(project=project.lower(), source=src), encoding="utf-8")
    return path
