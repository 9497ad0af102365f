"""Deliverables leave the store: copied into the output folder with a provenance sidecar.

Outputs are copies, never links into the CAS (an edited output must not corrupt the cache), and
are written temp → rename, so a crash never leaves a half-written deliverable.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from restoro import __version__
from restoro.engine.keys import pretty_json

if TYPE_CHECKING:
    from pathlib import Path

    from restoro.engine.nodes import ShotEntry
    from restoro.engine.store import ActionResult
    from restoro.engine.workspace import Workspace


def export(ws: Workspace, digest: str, out: Path) -> Path:
    """Copy a blob to ``out`` unless ``out`` already holds exactly those bytes."""
    out.parent.mkdir(parents=True, exist_ok=True)
    if not (out.exists() and ws.store.state.file_digest(out) == digest):
        ws.store.export(digest, out)
    return out


def write_text(dst: Path, text: str) -> None:
    """Write a small text file atomically, and only when its content changes."""
    if dst.exists() and dst.read_text(encoding="utf-8") == text:
        return
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, dst)


def write_json(dst: Path, data: Any) -> None:
    write_text(dst, pretty_json(data))


def provenance(
    ws: Workspace,
    deliverable: str,
    title: str,
    result: ActionResult,
    shots: list[ShotEntry],
    variant: str | None,
    *,
    output: str,
) -> dict[str, Any]:
    """What made this deliverable: restoro, the manifest, sources, and every shot's stages."""
    from restoro.engine.nodes import describe_stage

    shot_rows = []
    ai = False
    for shot, _final, rs in shots:
        stages = [describe_stage(st) for st in rs.stages]
        ai = ai or any(s["ai"] for s in stages)
        shot_rows.append(
            {
                "id": shot.id,
                "frames": [shot.start, shot.end],
                "pipeline": rs.pipeline,
                "tags": list(rs.tags),
                "source": rs.source,
                "stages": stages,
            }
        )
    return {
        "restoro_provenance": 1,
        "restoro_version": __version__,
        "project": ws.manifest.project,
        "manifest_digest": ws.loaded.digest,
        "deliverable": deliverable,
        "title": title,
        "variant": variant,
        "digest": result.outputs[output].digest,
        "ai_processed": ai,
        "sources": {n: s.digest for n, s in sorted(ws.sources.items())},
        "tools": result.key_json.get("tools", {}),
        "shots": shot_rows,
    }
