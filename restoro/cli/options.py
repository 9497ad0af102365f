"""The common options of the CLI contract, shared by every command that takes them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

Manifest = Annotated[
    Path | None,
    typer.Option(
        "-f", "--manifest", help="The manifest (default: ./restoro.yaml).", show_default=False
    ),
]
Variant = Annotated[str | None, typer.Option("--variant", help="Build a named variant.")]
Jobs = Annotated[int, typer.Option("--jobs", "-j", min=1, help="Actions run in parallel.")]
Device = Annotated[str, typer.Option("--device", help="auto | cpu | cuda:N")]
Json = Annotated[bool, typer.Option("--json", help="JSON Lines on stdout.")]
# Options a project or user config file can also set (restoro.config): None means "not given".
JobsOrConfig = Annotated[
    int | None,
    typer.Option(
        "--jobs", "-j", min=1, help="Actions run in parallel (default 2, or [build] jobs)."
    ),
]
DeviceOrConfig = Annotated[
    str | None, typer.Option("--device", help="auto | cpu | cuda:N (default auto).")
]
