"""A deliverable's provenance sidecar: restoro, the manifest, sources and each shot's stages."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from restoro import __version__
from restoro.plan.nodes import describe_stage

if TYPE_CHECKING:
    from restoro.engine.store import ActionResult
    from restoro.plan.nodes import ShotEntry
    from restoro.plan.workspace import Workspace


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
    shot_rows = []
    ai = False
    described: dict[int, dict[str, Any]] = {}  # shots share their resolved stages
    for shot, _final, rs in shots:
        stages = [
            described.get(id(st)) or described.setdefault(id(st), describe_stage(st))
            for st in rs.stages
        ]
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
