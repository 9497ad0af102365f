"""No-op build and status on a 2,000-shot project, fully cached.

    python benchmarks/bench_noop.py [--dir DIR] [--shots 2000] [--repeat 5]

Makes a tiny 2-frames-per-shot source (ffmpeg lavfi), a manifest that cuts it into N shots
(``detector: none`` plus explicit ``cuts``, so the graph has exactly N shots), builds it once (slow:
every action really runs), then times `restoro build` and `restoro status` as a user runs them —
a fresh process each time, Python start-up and imports included. Prints a JSON summary.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from restoro.media.ffmpeg import ffmpeg_exe

MANIFEST = """\
restoro: 1
project: bench-{shots}
sources:
  tape: {{path: media/source.mkv}}
pipelines:
  main:
    - {{stage: ingest, mode: progressive}}
    - {{stage: upscale, model: bicubic, scale: 1, cache: true}}
titles:
  reel:
    source: tape
    pipeline: main
    shots:
      detector: none
      cuts: [{cuts}]
deliverables:
  master: {{kind: prores, profile: 422hq, raster: 128x96, fit: fit}}
"""


def make_project(root: Path, shots: int) -> Path:
    media = root / "media"
    media.mkdir(parents=True, exist_ok=True)
    src = media / "source.mkv"
    frames = shots * 2
    if not src.exists():
        subprocess.run(
            [
                ffmpeg_exe(),
                "-hide_banner",
                "-loglevel",
                "error",
                "-y",
                "-f",
                "lavfi",
                "-i",
                f"testsrc2=size=64x48:rate=25:duration={frames / 25}",
                "-f",
                "lavfi",
                "-i",
                f"sine=frequency=440:sample_rate=48000:duration={frames / 25}",
                "-c:v",
                "ffv1",
                "-c:a",
                "pcm_s16le",
                "-fflags",
                "+bitexact",
                str(src),
            ],
            check=True,
        )
    cuts = ", ".join(str(i) for i in range(2, frames, 2))
    manifest = root / "restoro.yaml"
    manifest.write_text(MANIFEST.format(shots=shots, cuts=cuts), encoding="utf-8")
    return manifest


def run(*args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    code = "import sys; from restoro.cli.app import main; sys.exit(main(sys.argv[1:]))"
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    return time.perf_counter() - t0, res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", type=Path, default=None)
    ap.add_argument("--shots", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    root = args.dir or Path(tempfile.mkdtemp(prefix="restoro-bench-"))
    if args.dir is None:  # its stores are gigabytes: gone at exit unless --dir keeps them
        atexit.register(shutil.rmtree, root, True)
    manifest = make_project(root, args.shots)
    first, res = run("build", "-f", str(manifest), "--json", "--jobs", str(args.jobs))
    if res.returncode != 0:
        sys.exit(f"first build failed:\n{res.stderr}")
    summary = json.loads(res.stdout.splitlines()[-1])
    timings: dict[str, list[float]] = {"build": [], "status": []}
    for _ in range(args.repeat):
        t, res = run("build", "-f", str(manifest), "--json")
        last = json.loads(res.stdout.splitlines()[-1])
        assert res.returncode == 0 and last["executed"] == 0, res.stderr
        timings["build"].append(t)
        t, res = run("status", "-f", str(manifest), "--json")
        assert res.returncode == 0 and json.loads(res.stdout)["up_to_date"], res.stdout
        timings["status"].append(t)
    t, _ = run("--help")
    print(
        json.dumps(
            {
                "shots": args.shots,
                "actions": summary["executed"] + summary["cached"],
                "first_build_s": round(first, 1),
                "noop_build_s": {
                    "median": round(statistics.median(timings["build"]), 3),
                    "max": round(max(timings["build"]), 3),
                },
                "status_s": {
                    "median": round(statistics.median(timings["status"]), 3),
                    "max": round(max(timings["status"]), 3),
                },
                "python_startup_and_help_s": round(t, 3),
                "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                f"Python {platform.python_version()}",
                "dir": str(root),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
