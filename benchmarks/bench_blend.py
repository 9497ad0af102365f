"""What the model stage costs around the model: ``Engine.run`` with an instant forward pass.

    python benchmarks/bench_blend.py [--device cpu|cuda] [--size 720x480] [--scale 4]
        [--frames 4] [--repeat 3] [--threads 2] [--before REV]

The forward pass returns a precomputed output of the right shape (a view: no work), so what is
timed is everything ``Engine.run`` does besides the model: the uint16 → float input, the tile
blend, the rounding to uint16 and the copy to the host. On a GPU that is the work that decides
whether the stage keeps up with the model (issue 12: stage ≥ 0.9x the bare forward pass). Two
plans: the whole frame as one tile (what CUDA chooses at SD sizes) and 256-pixel tiles (what
the CPU uses for frames over 256x256). ``--before REV`` loads ``restoro/models/infer.py`` of a
git revision beside the current one and times both in the same run, interleaved. Prints ms per
frame (the best of ``--repeat`` passes) and checks that both give the same bytes.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def module_at(rev: str, tmp: Path) -> ModuleType:
    """``restoro.models.infer`` as it was at git revision ``rev``."""
    text = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{rev}:restoro/models/infer.py"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    path = tmp / "infer_before.py"
    path.write_text(text, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("infer_before", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["infer_before"] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def engine(mod: ModuleType, device: str, scale: int, out: Any) -> Any:
    """An engine of ``mod`` without weights whose forward pass returns a view of ``out``."""

    class Instant(mod.Engine):  # type: ignore[name-defined,misc]
        def __init__(self) -> None:  # no model file: only the code around the model runs
            self.scale, self.device, self.plan_cache, self.events = scale, device, {}, []
            self.opts = mod.Options(device=device)
            self._forward = lambda x: out[: x.shape[0], :, : x.shape[2] * scale,
                                          : x.shape[3] * scale]  # fmt: skip

    return Instant()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--size", default="720x480")
    ap.add_argument("--scale", type=int, default=4)
    ap.add_argument("--frames", type=int, default=4, help="frames per Engine.run (a group)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2, help="torch threads (CPU)")
    ap.add_argument("--before", default=None, help="git revision to time beside this tree")
    args = ap.parse_args()
    import torch

    from restoro.models import infer

    torch.set_num_threads(args.threads)
    w, h = (int(v) for v in args.size.split("x"))
    s, n = args.scale, args.frames
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 65536, (h, w, 3), dtype=np.uint16) for _ in range(n)]
    g = torch.Generator().manual_seed(1)
    out = torch.rand((n, 3, (h + 64) * s, (w + 64) * s), generator=g).to(args.device)
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    with tempfile.TemporaryDirectory(prefix="bench-blend-") as tmp:
        trees = {"now": infer}
        if args.before:
            trees = {f"before ({args.before})": module_at(args.before, Path(tmp)), **trees}
        print(f"{args.size} x{s} → {w * s}x{h * s}, {n} frames a run, device {args.device}, "
              f"{args.threads} torch threads; ms per frame, best of {args.repeat}")  # fmt: skip
        print("\n| plan | " + " | ".join(trees) + " |\n|---|" + "---|" * len(trees))
        for tile in (-1, 256):
            best: dict[str, float] = dict.fromkeys(trees, float("inf"))
            results: dict[str, list[bytes]] = {}
            for _ in range(args.repeat):  # interleaved, so both see the same load
                for name, mod in trees.items():
                    eng = engine(mod, args.device, s, out)
                    plan = mod.Plan(tile=max(tile, 0), batch=n)
                    sync()
                    t = time.perf_counter()
                    got = eng._run(frames, plan)
                    sync()
                    best[name] = min(best[name], (time.perf_counter() - t) / n * 1000)
                    results[name] = [f.tobytes() for f in got]
            same = len({tuple(v) for v in results.values()}) == 1
            tiles = len(infer.tiles(h, w, max(tile, 0), infer.Options().tile_pad))
            label = "whole frame" if tile < 0 else f"tiles of {tile} ({tiles})"
            cells = " | ".join(f"{best[k]:.1f}" for k in trees)
            print(f"| {label} | {cells} |" + ("" if same else " **bytes differ** |"))


if __name__ == "__main__":
    main()
