"""``restoro check``: re-run a sample of cached actions and report stages whose bytes differ."""

from __future__ import annotations

import sys
from pathlib import Path  # noqa: TC003 - typer reads the annotations at runtime
from typing import Annotated, Any

import typer

from restoro.cli import options as O  # noqa: N812, TC001 - typer reads annotations


def run_check(
    manifest: Path | None,
    targets: list[str],
    variant: str | None,
    device: str | None,
    sample: int,
    stages: list[str],
    seed: int,
    as_json: bool,
    no_qc: bool = False,
) -> int:
    from restoro.cli.app import _settings, _workspace
    from restoro.engine.events import EventBus, JsonLinesSink
    from restoro.plan.build import Builder, BuildOptions
    from restoro.plan.check import check_determinism

    # The device and store of restoro.toml (or the user's config), as `restoro build` uses.
    s = _settings(manifest, device=device)
    device = s.device
    ws = _workspace(manifest, s.store)
    try:
        events = EventBus()
        if as_json:
            events.subscribe(JsonLinesSink(sys.stdout))
        # --no-qc: the actions of `restoro build --no-qc` (folded chunks, docs/engine.md).
        kw: dict[str, Any] = {"qc": False} if no_qc else {}
        opts = BuildOptions(targets=targets, variant=variant, device=device, **kw)
        b = Builder(ws, opts, events)
        report = check_determinism(b, sample=sample, stages=stages, seed=seed, events=events)
    finally:
        ws.close()
    bad = report.differing
    if as_json:
        events.emit(
            "check-summary",
            checked=len(report.checked),
            same=sum(1 for c in report.checked if c.status == "same"),
            differs=[c.id for c in bad],
            failed=[c.id for c in report.failed],
            stages=report.stages("differs"),
            not_built=report.not_built,
        )
    else:
        _show(report)
    return 1 if bad or report.failed else 0


def _show(report: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not report.checked:
        console.print(
            "nothing to check: no action of this build is cached"
            + (
                f" ({report.not_built} not built; run `restoro build` first)"
                if report.not_built
                else ""
            )
        )
        return
    table = Table(title=f"re-ran {len(report.checked)} of {report.available} cached actions")
    for col in ("action", "stage", "result", "seconds"):
        table.add_column(col, justify="right" if col == "seconds" else "left")
    for c in report.checked:
        result = {
            "same": "[green]same bytes[/]",
            "differs": f"[red]differs: {', '.join(c.differing)}[/]",
            "failed": f"[yellow]failed: {c.error}[/]",
        }[c.status]
        table.add_row(c.id, c.stage, result, f"{c.seconds:.2f}")
    console.print(table)
    if report.not_built:
        console.print(f"{report.not_built} actions are not built yet and were not checked")
    if report.differing:
        console.print(
            "[red]error[/]: not deterministic: stage(s) "
            + ", ".join(report.stages("differs"))
            + " gave different bytes for the same inputs; their cache entries cannot be trusted "
            "across machines. Pin seeds/threads in the stage, bump its version, and rebuild."
        )
    elif report.failed:
        console.print("[yellow]some actions could not be re-run; see above[/]")
    else:
        console.print("[green]ok[/]: every re-run gave the cached bytes")


def register(app: typer.Typer) -> None:
    @app.command("check")
    def check(
        targets: Annotated[
            list[str] | None, typer.Argument(help="Deliverables, titles or shot ids.")
        ] = None,
        manifest: O.Manifest = None,
        variant: O.Variant = None,
        device: O.DeviceOrConfig = None,
        sample: Annotated[
            int,
            typer.Option(
                "--sample",
                "-n",
                help="How many cached actions to re-run (at least one per stage); 0: all.",
            ),
        ] = 8,
        stage: Annotated[
            list[str] | None,
            typer.Option("--stage", help="Only actions of this stage (repeatable)."),
        ] = None,
        seed: Annotated[
            int, typer.Option("--seed", help="Seed of the random sample (same seed, same picks).")
        ] = 0,
        json: O.Json = False,
        no_qc: Annotated[
            bool, typer.Option("--no-qc", help="Check the actions of `restoro build --no-qc`.")
        ] = False,
    ) -> None:
        """Re-run a sample of cached actions and report stages whose output bytes differ."""
        code = run_check(
            manifest, targets or [], variant, device, sample, stage or [], seed, json, no_qc
        )
        if code:
            raise typer.Exit(code)
