"""What a review looks at: every shot's cached output per variant, from a plan (nothing runs).

``variant_outputs(ws, "safe")`` plans the build of variant ``safe`` (``base`` is the build
without ``--variant``) and returns, per title, each shot with its tags, the id of the node that
holds its final frames, and that node's cached result (None when the variant's shot is not
built yet), plus the shot's SD source frames (its ingest output) when cached.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from restoro.review_file import build_variant

if TYPE_CHECKING:
    from collections.abc import Sequence

    from restoro.engine.store import ActionResult
    from restoro.plan.build import Builder
    from restoro.plan.nodes import Shot
    from restoro.plan.workspace import Workspace


@dataclass(frozen=True)
class ShotOutput:
    """One shot of one variant, as the store holds it."""

    title: str
    shot: Shot
    tags: tuple[str, ...]
    final_id: str
    result: ActionResult | None
    """The final frames' action result; None when this variant's shot is not built."""
    source: ActionResult | None
    """The shot's ingested (SD) frames; None when not built."""

    @property
    def digest(self) -> str | None:
        """The digest of the shot's final frames, or None when not built."""
        return self.result.outputs["frames"].digest if self.result is not None else None


def variant_outputs(
    ws: Workspace, label: str, *, device: str = "auto", titles: Sequence[str] = ()
) -> dict[str, list[ShotOutput]]:
    """Per title (all, or ``titles``), the shots of variant ``label`` with their cached outputs.

    A title whose analysis (ingest, shot detection) is not cached has no shots yet and is left
    out. Raises ``UsageError`` for an unknown variant.
    """
    from restoro.plan.build import Builder, BuildOptions

    opts = BuildOptions(
        targets=tuple(titles), variant=build_variant(label), device=device, qc=False
    )
    b = Builder(ws, opts)
    b.shots_only = True  # no deliverable: nothing of theirs is looked up
    b.plan()
    return outputs_of(b)


def outputs_of(b: Builder) -> dict[str, list[ShotOutput]]:
    """Per title, the shots a finished plan (or build) resolved, with their cached results."""
    return {
        title: [
            ShotOutput(
                title=title,
                shot=shot,
                tags=tuple(rs.tags),
                final_id=final_id,
                result=b.results.get(final_id),
                source=b.results.get(f"{shot.id}/ingest"),
            )
            for shot, final_id, rs in entries
        ]
        for title, entries in b._resolved.items()
    }
