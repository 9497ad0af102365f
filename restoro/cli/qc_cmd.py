"""``restoro qc [--variant V] [--compare V2]``: run QC (cached like any action) and write the
report, ``OUTPUT/qc/report.html`` and ``report.json`` (docs/qc.md)."""

from __future__ import annotations

from pathlib import Path  # noqa: TC003 - typer reads the annotations at runtime
from typing import Annotated, Any

import typer

from restoro.cli import options as O  # noqa: N812, TC001 - typer reads annotations


def qc_build(ws: Any, variant: str | None, jobs: int, device: str) -> tuple[Any, Any]:
    """Build ``variant`` with QC; returns the builder and the QcFailed error (or None)."""
    import sys

    from restoro.plan.approvals import ApprovalRefused
    from restoro.plan.build import Builder, BuildOptions
    from restoro.qc.verdict import QcFailed

    b = Builder(ws, BuildOptions(variant=variant, jobs=jobs, device=device, qc=True))
    try:
        b.build()
    except QcFailed as exc:
        return b, exc
    except ApprovalRefused as exc:  # a master waiting for approvals is no QC finding
        print(f"warning: {exc.message}", file=sys.stderr)
    return b, None


def run_qc_report(
    ws: Any,
    *,
    variant: str | None = None,
    compare: str | None = None,
    out: Path | None = None,
    jobs: int = 2,
    device: str = "auto",
) -> tuple[Path, Path, Any]:
    """Build with QC, write the report; returns (html, json, QcFailed or None)."""
    from restoro.plan.qc import collect
    from restoro.qc.compare import compare_shot
    from restoro.qc.report import _safe, write_report

    out = out or ws.output_dir / "qc"
    b, failed = qc_build(ws, variant, jobs, device)
    shots, delivs = collect(b)
    cmp = None
    if compare is not None:
        b2, _ = qc_build(ws, compare, jobs, device)
        other = {r.id: r for r in collect(b2)[0]}
        rows: dict[str, dict[str, Any]] = {}
        (out / "img").mkdir(parents=True, exist_ok=True)
        for r in shots:
            if r.id in other:
                rel = f"img/{_safe(r.id)}-vs-{_safe(compare)}.png"
                info = compare_shot(ws.store, r, other[r.id], out / rel)
                if "crop" in info:
                    info["image"] = rel
                rows[r.id] = info
        cmp = (compare, rows)
    from restoro.review.summary import review_statuses

    by_title: dict[str, list[str]] = {}
    for r in shots:
        by_title.setdefault(r.title, []).append(r.id)
    review = review_statuses(ws, by_title, device=device)
    html_path, json_path = write_report(
        out,
        ws.store,
        project=ws.manifest.project,
        variant=variant,
        shots=shots,
        delivs=delivs,
        compare=cmp,
        review={sid: st for row in review.values() for sid, st in row.items()},
    )
    return html_path, json_path, failed


def register(app: typer.Typer) -> None:
    @app.command("qc")
    def qc(
        manifest: O.Manifest = None,
        variant: O.Variant = None,
        compare: Annotated[
            str | None,
            typer.Option("--compare", help="A second variant to show side by side."),
        ] = None,
        out: Annotated[
            Path | None, typer.Option("--out", help="Report folder (default: OUTPUT/qc).")
        ] = None,
        jobs: O.Jobs = 2,
        device: O.Device = "auto",
    ) -> None:
        """Run the QC checks (cached) and write qc/report.html and qc/report.json."""
        from restoro.plan.workspace import Workspace, find_manifest

        ws = Workspace(find_manifest(manifest))
        try:
            html_path, _json, failed = run_qc_report(
                ws, variant=variant, compare=compare, out=out, jobs=jobs, device=device
            )
        finally:
            ws.close()
        print(f"QC report: {html_path}")
        if failed is not None:
            raise failed
