"""A title's analysis in pieces: how long before the first shot's chain can start, on 1 and 2
cores, with the title's frames in ingest pieces (and against one tree's whole-title ingest).

    python benchmarks/bench_pieces.py [--dir DIR] [--film 900] [--video 300]
        [--piece-frames 500] [--cores 1,2] [--tree PATH ...]

One DVD-like hybrid source from ``restoro.testing.synth.make_hybrid`` at 720x480 (3:2 film,
true interlaced video, film with its cadence broken; ``--film`` frames of film each side), a
title with ``ingest: auto`` and content shot detection and nothing else (no deliverable), so
the build is the analysis phase and the shots' extracts. Each run is a fresh store and a fresh
process pinned with ``taskset`` to the first N cores at ``--jobs N``; it reports the seconds
from the build's start to the ``shots`` phase (when the first chain could start), the CPU
seconds of the process and its children by then, and the CPU of each action kind. ``--tree``
runs another checkout (e.g. main, whose title ingest is one action) on the same source.
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
from pathlib import Path

MANIFEST = """\
restoro: 1
project: pieces
sources:
  dvd: {path: media/hybrid.mpg}
pipelines:
  main:
    - {stage: ingest}
titles:
  ep:
    source: dvd
    pipeline: main
    shots: {detector: content, threshold: 27, min_frames: 12}
deliverables: {}
"""

DRIVER = r"""
import json, os, sys, time
t0 = time.monotonic()
from pathlib import Path
piece = int(os.environ.get("BENCH_PIECE_FRAMES") or 0)
if piece:
    try:
        import restoro.plan.pieces as P
        P.PIECE_FRAMES = piece
    except ImportError:  # a tree without pieces
        pass
from restoro.engine.events import EventBus
from restoro.engine.records import BuildOptions
from restoro.plan.build import Builder
from restoro.plan.workspace import Workspace
marks, cpu, actions = {}, {}, {}
def cpu_now():
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system
def on(ev):
    if ev.get("event") == "phase" and ev["name"] not in marks:
        marks[ev["name"]] = [round(time.monotonic() - t0, 2), round(cpu_now(), 2)]
    if ev.get("event") == "action" and ev.get("cpu_s"):
        cpu[ev["stage"]] = round(cpu.get(ev["stage"], 0) + ev["cpu_s"], 2)
        actions[ev["stage"]] = actions.get(ev["stage"], 0) + 1
bus = EventBus()
bus.subscribe(on)
ws = Workspace(Path(sys.argv[1]))
try:
    Builder(ws, BuildOptions(jobs=int(sys.argv[2]), qc=False), bus).build()
finally:
    ws.close()
print(json.dumps({"phases": marks, "wall": round(time.monotonic() - t0, 2),
                  "cpu": round(cpu_now(), 2), "cpu_by_stage": cpu, "actions": actions}))
"""


def run(root: Path, cores: int, tree: Path, piece: int) -> dict[str, object]:
    for name in (".restoro", "out", "restoro.lock"):
        p = root / name
        shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
    cpus = ",".join(str(c) for c in sorted(os.sched_getaffinity(0))[:cores])
    env = {**os.environ, "PYTHONPATH": str(tree), "BENCH_PIECE_FRAMES": str(piece)}
    argv = ["taskset", "-c", cpus, sys.executable, "-c", DRIVER, str(root / "restoro.yaml"),
            str(cores)]  # fmt: skip
    out = subprocess.run(argv, cwd=root, env=env, check=True, capture_output=True, text=True).stdout
    row = json.loads(out.strip().splitlines()[-1])
    row.update(cores=cores, tree=str(tree), load=round(os.getloadavg()[0], 1))
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, default=None)
    ap.add_argument("--film", type=int, default=900)
    ap.add_argument("--video", type=int, default=300)
    ap.add_argument("--piece-frames", type=int, default=500)
    ap.add_argument("--cores", default="1,2")
    ap.add_argument("--tree", type=Path, action="append", default=[])
    a = ap.parse_args()
    here = Path(__file__).resolve().parent.parent
    root = a.dir or Path(tempfile.mkdtemp(prefix="restoro-pieces-"))
    if a.dir is None:  # its stores are gigabytes: gone at exit unless --dir keeps them
        atexit.register(shutil.rmtree, root, True)
    src = root / "media" / "hybrid.mpg"
    if not src.exists():
        src.parent.mkdir(parents=True, exist_ok=True)
        sys.path.insert(0, str(here))
        from restoro.testing.synth import make_hybrid

        make_hybrid(src, film=(a.film, a.film), video_frames=a.video)
    (root / "restoro.yaml").write_text(MANIFEST)
    rows = []
    for tree in [here, *a.tree]:
        for cores in (int(c) for c in a.cores.split(",")):
            if cores <= len(os.sched_getaffinity(0)):
                rows.append(run(root, cores, tree.resolve(), a.piece_frames))
    print(f"hybrid 720x480, film {a.film} + video {a.video} + film {a.film}; pieces of "
          f"{a.piece_frames} title frames")  # fmt: skip
    print("| tree | cores | to the shots phase: wall s | CPU s | build wall s | load avg |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        w, c = r["phases"].get("shots", [None, None])  # type: ignore[union-attr]
        print(f"| {Path(str(r['tree'])).name} | {r['cores']} | {w} | {c} | {r['wall']} "
              f"| {r['load']} |")  # fmt: skip
    print(json.dumps({"machine": platform.platform(), "cpus": os.cpu_count(), "rows": rows}))


if __name__ == "__main__":
    main()
