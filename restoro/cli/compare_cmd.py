"""``restoro compare SHOT --models a,b``: the same frames through several models, side by side.

Builds the shot's source frames (cached like any build), runs each model on a few frames, and
writes PNG crops (16-bit) plus a small HTML page that shows them next to each other.
"""

from __future__ import annotations

from pathlib import Path  # noqa: TC003 - typer reads the annotations at runtime
from typing import Annotated, Any

import typer

from restoro.cli import options as O  # noqa: N812, TC001 - typer reads annotations


def shot_frames(ws: Any, shot: str, device: str) -> tuple[list[Any], Any]:
    """The shot's working frames (after ingest/extract) and their format."""
    from restoro.errors import UsageError
    from restoro.media.frameio import read_format, read_frames
    from restoro.plan.build import Builder, BuildOptions

    Builder(ws, BuildOptions(targets=[shot], device=device)).build()
    for res in ws.store.iter_actions():
        if res.action_id.split("/")[0] == shot and res.key_json.get("stage") in (
            "extract",
            "ingest",
        ):
            blob = ws.store.blob_path(res.outputs["frames"].digest)
            return list(read_frames(blob)), read_format(blob)
    raise UsageError(f"no frames for shot {shot!r}", hint="see `restoro shots` for shot ids")


def render(
    frames: list[Any], fmt: Any, models: list[str], scale: int, ws: Any, out: Path, device: str
) -> list[dict[str, Any]]:
    import cv2

    from restoro.stages.base import StageContext, StageEnv
    from restoro.stages.upscale import MODEL_INPUT, Upscale, UpscaleParams

    out.mkdir(parents=True, exist_ok=True)
    env = StageEnv(root=ws.root, store=ws.store)
    rows = []
    for name in models:
        params = UpscaleParams(model=name, scale=scale)
        stage = Upscale()
        stage.check(params)
        inputs = {k: ws.store.blob_path(d) for k, d in stage.model_inputs(params, env).items()}
        ctx = StageContext(fmt=fmt, shot_id="compare", work_dir=out, device=device, inputs=inputs)
        files = []
        for i, frame in enumerate(stage.process(iter(frames), params, ctx)):
            h, w = frame.shape[:2]
            crop = frame[h // 4 : h // 4 + h // 2, w // 4 : w // 4 + w // 2]
            safe = name.replace("/", "_")
            path = out / f"{safe}_{i}.png"
            cv2.imwrite(str(path), crop[..., ::-1])
            files.append(path.name)
        rows.append({"model": name, "files": files, "input": MODEL_INPUT in inputs})
    return rows


def html(shot: str, rows: list[dict[str, Any]]) -> str:
    import html as h

    cells = "".join(
        f"<tr><th>{h.escape(r['model'])}</th>"
        + "".join(f'<td><img src="{h.escape(f)}"></td>' for f in r["files"])
        + "</tr>"
        for r in rows
    )
    return (
        "<!doctype html><meta charset=utf-8><title>compare "
        f"{h.escape(shot)}</title><style>img{{image-rendering:pixelated;width:100%}}</style>"
        f"<h1>{h.escape(shot)}</h1><table>{cells}</table>\n"
    )


def register(app: typer.Typer) -> None:
    @app.command("compare")
    def compare(
        shot: Annotated[str, typer.Argument(help="A shot id, e.g. ep1@00:01:02:03.")],
        models: Annotated[str, typer.Option("--models", help="Comma-separated models.")],
        scale: Annotated[int, typer.Option(help="Scale for every model.")] = 4,
        frames: Annotated[int, typer.Option(help="How many frames (from the middle).")] = 1,
        out: Annotated[Path | None, typer.Option("-o", "--out", help="Output folder.")] = None,
        manifest: O.Manifest = None,
        device: O.Device = "auto",
    ) -> None:
        """Render the same frames of SHOT through several models: PNG crops and an HTML page."""
        from restoro.plan.workspace import Workspace, find_manifest

        names = [m.strip() for m in models.split(",") if m.strip()]
        ws = Workspace(find_manifest(manifest))
        try:
            all_frames, fmt = shot_frames(ws, shot, device)
            mid = max(0, len(all_frames) // 2 - frames // 2)
            picked = all_frames[mid : mid + frames]
            dest = out or ws.root / "compare" / shot.replace(":", "-").replace("@", "_")
            rows = render(picked, fmt, names, scale, ws, dest, device)
        finally:
            ws.close()
        (dest / "index.html").write_text(html(shot, rows), encoding="utf-8")
        typer.echo(f"{len(names)} models x {len(picked)} frames: {dest / 'index.html'}")
