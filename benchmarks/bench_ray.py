"""Ray executor vs local executor: per-action overhead on tiny actions, speed-up on CPU-heavy ones.

    python benchmarks/bench_ray.py [--tiny 500] [--heavy 8]

Both executors run the same frozen specs through the same code the builder uses (``run_spec``
locally, ``RayFarm.run`` on Ray, driven by ``LocalExecutor`` like ``Builder._run_nodes``):

* **tiny**: N ``extract`` actions, each cutting 2 frames of its own 16x16 FFV1 blob (one ffmpeg
  run, tens of milliseconds); local with 2 threads vs a local Ray instance with 2 CPUs. The
  difference per action is the Ray executor's overhead (batching included).
* **heavy**: M ``chain`` actions (bicubic x2 upscale of 12 frames, 160x120 → 320x240); a
  Ray instance with 1 worker CPU vs 2 worker CPUs (two worker processes), and local jobs=1.

Each run uses a fresh store seeded with the same input blobs; prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from restoro.engine.events import EventBus
from restoro.engine.execute import run_spec
from restoro.engine.executor import LocalExecutor, Task
from restoro.engine.graph import ActionSpec
from restoro.engine.records import BuildOptions
from restoro.engine.store import Store
from restoro.media.frameio import FrameWriter
from restoro.media.frames import FrameFormat


def _blob(store: Store, w: int, h: int, frames: int, seed: int) -> tuple[str, dict]:
    fmt = FrameFormat(width=w, height=h, frame_rate="24/1")
    rng = np.random.default_rng(seed)
    path = store.temp_path(".mkv")
    with FrameWriter(path, fmt) as wr:
        for _ in range(frames):
            wr.write(rng.integers(0, 65535, (h, w, 3), dtype=np.uint16))
    return store.put_file(path).digest, fmt.model_dump(mode="json")


def _specs(seed_store: Store, kind: str, n: int) -> list[ActionSpec]:
    from restoro.stages.upscale import Upscale

    specs = []
    for i in range(n):
        if kind == "tiny":
            digest, fmt = _blob(seed_store, 16, 16, 2, i)
            specs.append(
                ActionSpec(
                    id=f"bench@{i}/extract",
                    stage="extract",
                    version=1,
                    params={"range": [0, 2], "format": fmt},
                    inputs={"frames": digest},
                    frames=2,
                )
            )
        else:
            digest, fmt = _blob(seed_store, 160, 120, 12, i)
            stage = ["upscale", Upscale.version, {"model": "bicubic", "scale": 2}]
            specs.append(
                ActionSpec(
                    id=f"bench@{i}/chain",
                    stage="chain",
                    version=1,
                    params={"format": fmt, "stages": [stage]},
                    inputs={"frames": digest},
                    frames=12,
                )
            )
    return specs


def _fresh(seed: Path, where: Path) -> Path:
    shutil.rmtree(where, ignore_errors=True)
    shutil.copytree(seed, where, ignore=shutil.ignore_patterns("state.db*"))
    return where


def _run(specs: list[ActionSpec], root: Path, executor: str, cpus: int) -> float:
    store = Store(root)
    node = SimpleNamespace(resources={"cpu": 1}, memory_mb=0, id="bench")
    farm = None
    if executor == "ray":
        import ray

        from restoro.farm.ray_executor import RayFarm

        if ray.is_initialized():
            ray.shutdown()
        ws = SimpleNamespace(
            store=store, store_path=root, store_url=str(root), sources={}, manifest=None
        )
        farm = RayFarm(BuildOptions(executor="ray", jobs=cpus), ws, EventBus())  # type: ignore[arg-type]
        jobs = farm.slots
    else:
        jobs = cpus

    def fn(spec: ActionSpec):  # noqa: ANN202
        if farm is not None:
            return lambda deps: farm.run(node, spec)  # type: ignore[arg-type]
        return lambda deps: run_spec(spec, store, {}, "cpu")

    tasks = [Task(id=s.id, fn=fn(s)) for s in specs]
    t0 = time.perf_counter()
    out = LocalExecutor(jobs).run(tasks)
    seconds = time.perf_counter() - t0
    bad = [k for k, v in out.items() if v.status != "ok" or not v.result.ran]
    if bad:
        raise SystemExit(f"{executor}: {len(bad)} actions did not run: {out[bad[0]].error!r}")
    store.close()
    if farm is not None:
        import ray

        ray.shutdown()
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tiny", type=int, default=500)
    ap.add_argument("--heavy", type=int, default=8)
    args = ap.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    tmp = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    rows = []
    try:
        for kind, n, runs in (
            ("tiny", args.tiny, [("local", 2), ("ray", 2)]),
            ("heavy", args.heavy, [("local", 1), ("ray", 1), ("ray", 2)]),
        ):
            if not n:
                continue
            seed = Store(tmp / f"seed-{kind}")
            specs = _specs(seed, kind, n)
            seed.close()
            for executor, cpus in runs:
                root = _fresh(tmp / f"seed-{kind}", tmp / f"run-{kind}-{executor}-{cpus}")
                s = _run(specs, root, executor, cpus)
                rows.append((kind, n, executor, cpus, s))
                print(f"{kind} {executor} cpus={cpus}: {s:.2f} s", file=sys.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(
        f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}"
    )
    print("| actions | n | executor | CPUs | wall s | ms/action |")
    print("|---|---|---|---|---|---|")
    for kind, n, ex, cpus, s in rows:
        print(f"| {kind} | {n} | {ex} | {cpus} | {s:.2f} | {1000 * s / n:.1f} |")


if __name__ == "__main__":
    main()
