"""``restoro models ls`` (built-ins, their status) and ``restoro models add FILE`` (pin it)."""

from __future__ import annotations

from pathlib import Path  # noqa: TC003 - typer reads the annotations at runtime
from typing import Annotated, Any

import typer

from restoro.cli import options as O  # noqa: N812, TC001 - typer reads annotations


def _store(manifest: Path | None) -> Any:
    """The workspace's store when a manifest is at hand, else None (status without a store)."""
    from restoro.errors import RestoroError
    from restoro.plan.workspace import Workspace, find_manifest

    try:
        return Workspace(find_manifest(manifest))
    except RestoroError:
        return None


def builtin_rows(store: Any) -> list[dict[str, Any]]:
    from restoro.models import builtin

    rows = []
    pkg = builtin.package_dir()
    for b in builtin.BUILTINS.values():
        present = pkg is not None and (pkg / f"{b.file}.bin").is_file()
        digest = builtin.stored_digest(store, b) if (store is not None and present) else None
        status = "converted" if digest else "available" if present else "missing package"
        rows.append(
            {
                "name": b.name,
                "architecture": b.arch,
                "scale": b.scale,
                "status": status,
                "digest": digest,
                "note": b.note,
            }
        )
    return rows


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Models: built-ins and pinned files.", no_args_is_help=True)

    @group.command("ls")
    def ls(manifest: O.Manifest = None, json: O.Json = False) -> None:
        """List the built-in models: architecture, scale, and whether they are converted."""
        import json as _json

        ws = _store(manifest)
        try:
            rows = builtin_rows(ws.store if ws else None)
        finally:
            if ws is not None:
                ws.close()
        if json:
            for r in rows:
                typer.echo(_json.dumps(r, separators=(",", ":")))
            return
        typer.echo(f"{'name':26} {'arch':8} {'scale':5} status")
        for r in rows:
            extra = f" {r['digest']}" if r["digest"] else ""
            typer.echo(
                f"{r['name']:26} {r['architecture']:8} x{r['scale']:<4} {r['status']}{extra}"
            )
        typer.echo("families: realesr-animevideov3 (scale 2, 3 or 4 picks the variant)")

    @group.command("add")
    def add(
        file: Annotated[Path, typer.Argument(help="A .pth, .safetensors or .ckpt model file.")],
        manifest: O.Manifest = None,
        json: O.Json = False,
    ) -> None:
        """Check a model file (spandrel must know its architecture) and pin it in the store."""
        import json as _json
        import os

        from restoro.errors import InputError
        from restoro.models.loader import info_for

        if not file.is_file():
            raise InputError(f"{file} does not exist", hint="give the path of a model file")
        info = info_for(file)
        ws = _store(manifest)
        digest = None
        ref = str(file)
        if ws is not None:
            try:
                import shutil

                tmp = ws.store.temp_path(".model")
                shutil.copyfile(file, tmp)
                digest = ws.store.put_file(tmp).digest
                ref = os.path.relpath(file.resolve(), ws.root)
            finally:
                ws.close()
        row = {**info.__dict__, "file": str(file), "digest": digest, "ref": ref}
        if json:
            typer.echo(_json.dumps(row, separators=(",", ":")))
            return
        typer.echo(f"{file}: {info.architecture}, x{info.scale}, {info.input_channels} channels")
        if digest:
            typer.echo(f"pinned as {digest}")
        typer.echo(f"use it: - {{stage: upscale, model: {ref}, scale: {info.scale}}}")

    app.add_typer(group, name="models")
