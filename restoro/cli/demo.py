"""``restoro demo``: a whole restoration on a small synthetic source, offline, on the CPU.

It makes an interlaced NTSC-style clip with moving detail, hard cuts and stereo audio (ffmpeg
lavfi), writes a manifest with a per-shot override and a variant, builds a ProRes master, and
says where everything is. Running it again is a no-op build.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

MANIFEST = """\
# The restoro demo: an interlaced 4:3 SD clip restored to a 1080p ProRes master.
restoro: 1
project: restoro-demo
output: out

sources:
  tape:
    path: media/demo-source.mkv
    field_order: auto          # probed: interlaced, top field first
    color: auto                # SD, untagged → BT.601 (525 lines)
    crop: [8, 0, 8, 0]         # overscan

pipelines:
  restore:
    - {stage: ingest, mode: deinterlace, method: bwdif}
    - {stage: upscale, model: spline36, scale: 2}
  gentle:
    - {stage: ingest, mode: deinterlace, method: bwdif}
    - {stage: upscale, model: bicubic, scale: 2}

titles:
  reel1:
    source: tape
    pipeline: restore
    shots: {detector: content, threshold: 27, min_frames: 8}
    overrides:
      - shots: ["reel1@00:00:00:20"]      # the second shot gets the gentle pipeline
        tags: [demo-override]
        pipeline: gentle

variants:
  lanczos:
    params: {upscale: {model: lanczos}}

deliverables:
  master: {kind: prores, profile: 422hq, raster: 1920x1080, fit: pillarbox}
"""


def make_demo(directory: Path) -> Path:
    """Write the demo's source and manifest (idempotent); returns the manifest path."""
    from restoro.testing.synth import make_source

    media = directory / "media"
    media.mkdir(parents=True, exist_ok=True)
    src = media / "demo-source.mkv"
    if not src.exists():
        tmp = media / ".demo-source.tmp.mkv"
        make_source(
            tmp,
            width=360,
            height=240,
            rate="30000/1001",
            shots=3,
            shot_frames=20,
            interlaced=True,
            audio_channels=2,
            codec="ffv1",
            sar="8:9",
        )
        tmp.replace(src)
    manifest = directory / "restoro.yaml"
    if not manifest.exists():
        manifest.write_text(MANIFEST, encoding="utf-8")
    return manifest


def run_demo(directory: Path, *, jobs: int = 2, as_json: bool = False) -> None:
    from restoro.cli.render import JsonLines, summary_line
    from restoro.plan.build import Builder, BuildOptions
    from restoro.plan.workspace import Workspace

    t0 = time.monotonic()
    manifest = make_demo(directory)
    ws = Workspace(manifest)
    b = Builder(ws, BuildOptions(jobs=jobs))
    if as_json:
        b.events.subscribe(JsonLines())
    report = b.build()
    ws.close()
    if as_json:
        return
    out = sys.stdout
    out.write(summary_line(report.executed, report.cached, report.failed, report.outputs) + "\n")
    out.write(f"demo built in {time.monotonic() - t0:.1f} s\n")
    out.write(f"  manifest:   {manifest}\n")
    for f in report.files:
        out.write(f"  master:     {f}\n")
        out.write(f"  provenance: {Path(f).with_suffix('').as_posix()}.provenance.json\n")
    out.write(f"  lockfile:   {directory / 'restoro.lock'}\n")
    out.write(
        f"next: restoro status -f {manifest}   |   restoro build -f {manifest} --variant lanczos\n"
    )
