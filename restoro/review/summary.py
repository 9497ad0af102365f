"""Every shot's review status, from ``restoro.review.yaml`` and the variants' cached outputs
(a plan per variant the decisions name; nothing runs): for ``restoro status`` and the QC report.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from restoro.review_file import BASE, iter_counts, load, review_path, status

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from restoro.plan.workspace import Workspace


def review_statuses(
    ws: Workspace, shots: Mapping[str, Sequence[str]], *, device: str = "auto"
) -> dict[str, dict[str, str]]:
    """Per title, each of its ``shots`` (ids) with its review status. An approval of a variant
    that is no longer in the manifest needs review."""
    from restoro.review.outputs import variant_outputs

    decisions = load(review_path(ws.manifest_path))
    wanted = {sid for ids in shots.values() for sid in ids}
    labels = {BASE, *ws.manifest.variants}
    named = {e.variant or "" for s, e in decisions.items() if s in wanted and e.variant in labels}
    digests: dict[str, dict[str, str | None]] = {}
    for label in sorted(named):
        for outs in variant_outputs(ws, label, device=device, titles=sorted(shots)).values():
            for o in outs:
                digests.setdefault(o.shot.id, {})[label] = o.digest
    out: dict[str, dict[str, str]] = {}
    for title, ids in shots.items():
        row = out.setdefault(title, {})
        for sid in ids:
            e = decisions.get(sid)
            if e is not None and e.decision == "approved" and e.variant not in labels:
                row[sid] = "needs review"
            else:
                row[sid] = status(e, digests.get(sid, {}))
    return out


def count_statuses(statuses: Mapping[str, str]) -> dict[str, int]:
    """``{"unreviewed": n, "approved": n, "rejected": n, "needs review": n}``."""
    return dict(iter_counts(statuses))
