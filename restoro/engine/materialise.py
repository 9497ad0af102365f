"""Deliverables leave the store: copied into the output folder with a provenance sidecar.

Outputs are copies, never links into the CAS (an edited output must not corrupt the cache), and
are written temp → fsync → rename, so a crash never leaves a half-written deliverable.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

from restoro import __version__

if TYPE_CHECKING:
    from pathlib import Path

    from restoro.engine.nodes import Shot
    from restoro.engine.store import ActionResult
    from restoro.engine.workspace import Workspace
    from restoro.manifest.resolve import ResolvedShot


def _atomic_text(dst: Path, text: str) -> None:
    if dst.exists() and dst.read_text(encoding="utf-8") == text:
        return
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, dst)


def provenance(
    ws: Workspace,
    deliverable: str,
    title: str,
    result: ActionResult,
    shots: list[tuple[Shot, str, ResolvedShot]],
    variant: str | None,
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
        "digest": result.outputs["master"].digest,
        "ai_processed": ai,
        "sources": {n: s.digest for n, s in sorted(ws.sources.items())},
        "tools": result.key_json.get("tools", {}),
        "shots": shot_rows,
    }


def materialise_master(
    ws: Workspace,
    deliverable: str,
    title: str,
    result: ActionResult,
    out_dir: Path,
    shots: list[tuple[Shot, str, ResolvedShot]],
    *,
    variant: str | None,
) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"{title}.mov"
    out_digest = result.outputs["master"].digest
    if not (out.exists() and ws.store.state.file_digest(out) == out_digest):
        ws.store.export(out_digest, out)
    meta = provenance(ws, deliverable, title, result, shots, variant)
    _atomic_text(
        out_dir / f"{title}.provenance.json", json.dumps(meta, indent=2, sort_keys=True) + "\n"
    )
    return out
