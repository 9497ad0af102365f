"""``restoro captions check FILE``: read a caption file in any supported format and report style
violations (exit 1 when there are any, 2 when the file cannot be read)."""

from __future__ import annotations

from pathlib import Path  # noqa: TC003 - typer reads the annotations at runtime
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Caption files: checks and conversions.", no_args_is_help=True)

    @group.command("check")
    def check(
        file: Annotated[Path, typer.Argument(help="SCC, SRT, WebVTT or TTML/IMSC1 file.")],
        duration: Annotated[
            float | None, typer.Option(help="Programme duration in seconds (cues past it fail).")
        ] = None,
        max_cps: Annotated[float, typer.Option(help="Maximum characters per second.")] = 20.0,
        max_chars: Annotated[int, typer.Option(help="Maximum characters per line.")] = 42,
        max_lines: Annotated[int, typer.Option(help="Maximum lines per event.")] = 2,
        min_duration: Annotated[float, typer.Option(help="Minimum cue duration (s).")] = 5 / 6,
        min_gap: Annotated[float, typer.Option(help="Minimum gap between cues (s).")] = 2 / 24,
        json_out: Annotated[bool, typer.Option("--json", help="Findings as JSON.")] = False,
    ) -> None:
        """Check a caption file: overlaps, timing, reading rate, line length and count."""
        import json
        from dataclasses import asdict

        from restoro.deliver.captions.checks import Thresholds, check_cues
        from restoro.deliver.captions.io import read_cues

        cues = read_cues(file)
        limits = Thresholds(max_cps, max_chars, max_lines, min_duration, min_gap)
        findings = check_cues(cues, programme=duration, limits=limits)
        if json_out:
            typer.echo(json.dumps([asdict(f) for f in findings], indent=2))
        else:
            for f in findings:
                typer.echo(f"{file}: cue {f.cue} at {f.at:.3f} s: {f.check}: {f.message}")
            typer.echo(f"{len(cues)} cues, {len(findings)} findings")
        if findings:
            from restoro.errors import RestoroError

            raise RestoroError(
                f"{file}: {len(findings)} caption findings",
                code="E321",
                hint="fix the cues, or loosen the thresholds with the options",
            )

    app.add_typer(group, name="captions")
