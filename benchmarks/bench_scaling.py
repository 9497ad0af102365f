"""1 → 2 core scaling of a single long shot: the same first build pinned to one core, then two.

    python benchmarks/bench_scaling.py [--dir DIR] [--frames 600] [--cores 1,2] [--repeat 2]

One progressive 720x480 source of ``--frames`` frames and one shot (``detector: none``):
ingest → lanczos x2 → a 1920x1080 ProRes 422 HQ master. Each run is a fresh store and a fresh
``restoro build --no-qc --jobs N`` process pinned with ``taskset`` to the first N cores; the
table gives wall seconds (best of ``--repeat``), CPU seconds of all processes, and the speed-up
against one core. A single shot cannot spread over shots, so what scales here is inside the
actions: ffmpeg's threads (FFVHuff and ProRes slices, decoder frame threads, zscale slices),
and decode → stages → encode overlapping in a chain.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_qc import cpu_children  # noqa: E402

from restoro.media.ffmpeg import run_ffmpeg  # noqa: E402

MANIFEST = """\
restoro: 1
project: scaling
sources:
  tape: {path: media/long.mkv}
pipelines:
  main:
    - {stage: ingest, mode: progressive}
    - {stage: upscale, model: lanczos, scale: 2}
titles:
  reel:
    source: tape
    pipeline: main
    shots: {detector: none}
deliverables:
  master: {kind: prores, profile: 422hq, raster: 1920x1080, fit: pillarbox}
"""


def make_source(path: Path, frames: int) -> None:
    """A moving test picture with grain, 720x480 at 24 fps, 8-bit 4:2:0 FFV1 (lossless)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    run_ffmpeg([
        "-f", "lavfi", "-i", "testsrc2=size=720x480:rate=24,noise=alls=8:allf=t",
        "-frames:v", str(frames), "-c:v", "ffv1", "-pix_fmt", "yuv420p", str(path),
    ])  # fmt: skip


def run(root: Path, cores: int) -> tuple[float, float]:
    """Wall and CPU seconds (all processes) of one first build on ``cores`` cores."""
    for name in (".restoro", "out", "restoro.lock"):
        p = root / name
        shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
    cpus = ",".join(str(c) for c in sorted(os.sched_getaffinity(0))[:cores])
    argv = ["taskset", "-c", cpus, sys.executable, "-m", "restoro.cli.app", "build",
            "--no-qc", "--jobs", str(cores)]  # fmt: skip
    before = cpu_children()
    t0 = time.perf_counter()
    subprocess.run(argv, cwd=root, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    return wall, cpu_children() - before


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, default=None)
    ap.add_argument("--frames", type=int, default=600)
    ap.add_argument("--cores", default="1,2")
    ap.add_argument("--repeat", type=int, default=2)
    a = ap.parse_args()
    root = a.dir or Path(tempfile.mkdtemp(prefix="restoro-scaling-"))
    if a.dir is None:  # its stores are gigabytes: gone at exit unless --dir keeps them
        atexit.register(shutil.rmtree, root, True)
    root.mkdir(parents=True, exist_ok=True)
    src = root / "media" / "long.mkv"
    if not src.exists():
        make_source(src, a.frames)
    (root / "restoro.yaml").write_text(MANIFEST)
    rows = []
    for cores in (int(c) for c in a.cores.split(",")):
        if cores > len(os.sched_getaffinity(0)):
            continue
        runs = [run(root, cores) for _ in range(a.repeat)]
        wall, cpu = min(runs)
        rows.append({"cores": cores, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
                     "load": os.getloadavg()[0]})  # fmt: skip
    base = rows[0]["wall_s"] if rows else 1.0
    print(f"{a.frames} frames, one shot, 720x480 -> lanczos x2 -> 1920x1080 ProRes 422 HQ")
    print("| cores | wall s | CPU s | speed-up | load avg |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['cores']} | {r['wall_s']} | {r['cpu_s']} | {base / r['wall_s']:.2f}x "
              f"| {r['load']:.1f} |")  # fmt: skip
    print(json.dumps({"machine": platform.platform(), "cpus": os.cpu_count(), "rows": rows}))


if __name__ == "__main__":
    main()
