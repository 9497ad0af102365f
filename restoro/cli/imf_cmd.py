"""``restoro check-imf DIR``: check an IMF package (exit 1 when there are errors)."""

from __future__ import annotations

from pathlib import Path  # noqa: TC003 - typer reads the annotation at run time
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    @app.command("check-imf")
    def check_imf(
        folder: Annotated[Path, typer.Argument(help="Package folder (holding ASSETMAP.xml).")],
        json_out: Annotated[bool, typer.Option("--json", help="Findings as JSON.")] = False,
    ) -> None:
        """Check an IMF package: hashes, ids, edit rates, durations, descriptors, MCA, App 2E."""
        import json
        from dataclasses import asdict

        from restoro.deliver.imf.checks import check_package
        from restoro.errors import InputError, RestoroError

        if not folder.is_dir():
            raise InputError(f"{folder} is not a folder", code="E153")
        findings = check_package(folder)
        if json_out:
            typer.echo(json.dumps([asdict(f) for f in findings], indent=2))
        else:
            for f in findings:
                typer.echo(str(f))
        errors = sum(f.severity == "error" for f in findings)
        if not json_out:
            typer.echo(f"{folder}: {errors} errors, {len(findings) - errors} other findings")
        if errors:
            raise RestoroError(f"{folder}: {errors} IMF errors", code="E154",
                               hint="see the findings above")  # fmt: skip
