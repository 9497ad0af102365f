"""Model throughput: frames/s per built-in at 720x480 → x4, and the ratio to the bare forward.

    python benchmarks/bench_models.py [--device cpu|cuda] [--frames 4] [--models a,b]
        [--size 720x480] [--precision auto]

For each model it times (1) the bare model forward pass on the whole batch of frames, already
on the device, and (2) the full stage path a build uses: uint16 frames in, tiling/blending,
uint16 frames out (``restoro.models.infer.Engine.run`` via the upscale stage's ``run_model``).
The ratio (2)/(1) in frames/s shows how much of the device time I/O and tiling cost (the target
on a GPU is ≥ 0.9). Prints one JSON object per model, with the device named.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np


def natural_frames(n: int, w: int, h: int) -> list[np.ndarray]:
    import cv2

    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        small = rng.random((h // 16, w // 16, 3)).astype(np.float32)
        f = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
        f += 0.02 * rng.standard_normal(f.shape).astype(np.float32) * (i + 1) / n
        out.append(np.clip(f * 65535, 0, 65535).astype(np.uint16))
    return out


def bench(name: str, args: argparse.Namespace, frames: list[np.ndarray], d: Path) -> dict:
    import torch

    from restoro.models import builtin
    from restoro.models.infer import Engine, Options

    b = builtin.BUILTINS[name]
    path = d / f"{name}.safetensors"
    path.write_bytes(builtin.convert(b))
    eng = Engine(path, Options(device=args.device, precision=args.precision, tile=args.tile))
    h, w = frames[0].shape[:2]
    sync = torch.cuda.synchronize if eng.device.startswith("cuda") else (lambda: None)

    x = torch.from_numpy(np.stack(frames).astype(np.float32) / 65535).permute(0, 3, 1, 2)
    if eng.device.startswith("cuda"):
        x = x.to(eng.device, eng.dtype).contiguous(memory_format=torch.channels_last)
    bare = None
    try:
        with torch.inference_mode():
            eng.model(x[:1])
            sync()
            t = time.perf_counter()
            for i in range(len(frames)):
                eng.model(x[i : i + 1])
            sync()
            bare = len(frames) / (time.perf_counter() - t)
    except RuntimeError as exc:  # the bare pass may not fit untiled; the engine tiles
        if "out of memory" not in str(exc).lower():
            raise
    eng.run(frames[:1])
    t = time.perf_counter()
    out = eng.run(frames)
    sync()
    full = len(frames) / (time.perf_counter() - t)
    assert out[0].shape == (h * b.scale, w * b.scale, 3)
    plan = next(iter(eng.plan_cache.values()))
    return {
        "model": name,
        "device": eng.device,
        "device_name": torch.cuda.get_device_name()
        if eng.device.startswith("cuda")
        else platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "precision": eng.precision,
        "size": f"{w}x{h}",
        "scale": b.scale,
        "frames": len(frames),
        "tile": plan.tile,
        "batch": plan.batch,
        "bare_fps": None if bare is None else round(bare, 4),
        "stage_fps": round(full, 4),
        "ratio": None if bare is None else round(full / bare, 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--frames", type=int, default=2)
    ap.add_argument("--size", default="720x480")
    ap.add_argument("--tile", type=int, default=0)
    ap.add_argument("--models", default="realesr-animevideov3-x4,realesrgan-x4plus")
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    frames = natural_frames(args.frames, w, h)
    with tempfile.TemporaryDirectory() as d:
        for name in args.models.split(","):
            print(json.dumps(bench(name, args, frames, Path(d))), flush=True)


if __name__ == "__main__":
    main()
