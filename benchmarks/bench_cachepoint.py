"""The cache point after a model, on a model's real output: size, CPU to write and read, fidelity.

    python benchmarks/bench_cachepoint.py [--models realesr-animevideov3[,realesrgan-x4plus]]
        [--size 720x480] [--photos 4] [--device cpu|cuda] [--episode 52000]

Photographs that ship inside the scikit-image wheel (astronaut, coffee, chelsea, rocket; read
from the installed package, never downloaded) are area-resized to ``--size`` and upscaled x4
by each built-in model (``Engine.run``, the stage's own engine); each output is then written
as every cache point restoro can make after a model (``frameio.write_frames``: the 12-bit FFV1
of earlier builds, the ProRes 4444 mezzanine that is the default now, 16-bit FFVHuff for
``intermediates: lossless``) and read back (``frameio.read_frames``, as the chunks and QC read
it). Reported per frame: MB and GB per ``--episode`` frames, CPU-seconds of writing and of
reading (this process and its ffmpeg children), and PSNR against the model's output. A
synthetic picture is no stand-in here: a model's output on real pictures carries detail in
every low bit, and lossless sizes on a smooth synthetic picture were several times too small
(docs/performance.md, issue 12's sixth round). ``realesrgan-x4plus`` takes about a minute a
720x480 frame on two CPU cores.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")


def photos(n: int, w: int, h: int) -> list[np.ndarray]:
    """``n`` scikit-image photographs area-resized to w x h, as 16-bit RGB."""
    import cv2
    import skimage.data

    out = []
    for name in PHOTOS[:n]:
        img = getattr(skimage.data, name)()[..., :3]
        img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
        out.append(img.astype(np.uint16) * 257)
    return out


def cpu_s() -> float:
    """CPU-seconds of this process and its finished children."""
    me, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(65535.0**2 / mse)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="realesr-animevideov3")
    ap.add_argument("--size", default="720x480")
    ap.add_argument("--photos", type=int, default=4, choices=range(1, len(PHOTOS) + 1))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--episode", type=int, default=52_000, help="frames in an episode")
    args = ap.parse_args()
    from restoro.media import frameio
    from restoro.media.frames import FrameFormat
    from restoro.models import builtin
    from restoro.models.infer import Engine, Options

    w, h = (int(v) for v in args.size.split("x"))
    sd = photos(args.photos, w, h)
    codecs = {
        "12-bit FFV1 (earlier builds)": frameio.COMPACT,
        "ProRes 4444 mezzanine (default)": frameio.MEZZANINE,
        "16-bit FFVHuff (lossless)": frameio.CODEC,
    }
    print(f"{args.photos} photographs at {args.size}, x4 → {w * 4}x{h * 4}; per frame; "
          f"GB for {args.episode:,} frames\n")  # fmt: skip
    print("| model | cache point | MB | GB / episode | write CPU-s | read CPU-s | PSNR dB |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="bench-cachepoint-") as tmp:
        for name in args.models.split(","):
            b = builtin.resolve(name, 4)
            if b is None:
                sys.exit(f"{name!r} is not a built-in model")
            weights = Path(tmp) / f"{b.name}.safetensors"
            weights.write_bytes(builtin.convert(b))
            t = time.perf_counter()
            out = Engine(weights, Options(device=args.device)).run(sd)
            print(f"({b.name}: {(time.perf_counter() - t) / len(sd):.1f} s a frame on "
                  f"{args.device})", file=sys.stderr)  # fmt: skip
            fmt = FrameFormat(width=w * 4, height=h * 4, frame_rate="24000/1001")
            for label, codec in codecs.items():
                path = Path(tmp) / "cache.mkv"
                c0 = cpu_s()
                frameio.write_frames(path, fmt, iter(out), codec)
                c1 = cpu_s()
                back = list(frameio.read_frames(path))
                c2 = cpu_s()
                n = len(out)
                mb = path.stat().st_size / n / 1e6
                ps = [psnr(a, c) for a, c in zip(out, back, strict=True)]
                fid = "exact" if min(ps) == float("inf") else f"{min(ps):.1f}–{max(ps):.1f}"
                gb = mb * args.episode / 1000
                write, read = (c1 - c0) / n, (c2 - c1) / n
                row = f"| {b.name} | {label} | {mb:.2f} | {gb:,.0f} | {write:.2f} | {read:.2f} |"
                print(f"{row} {fid} |", flush=True)


if __name__ == "__main__":
    main()
