"""SD → 4K with a model on the GPU: the stage against the bare forward pass, where the time goes,
and a whole build (issue 12).

    python benchmarks/bench_gpu.py [--device cuda|cpu] [--size 720x480] [--frames 16]
        [--models realesrgan-x4plus,realesr-animevideov3] [--precision fp16|auto]
        [--dir DIR] [--json OUT] [--build-frames 48] [--build-model realesr-animevideov3]
        [--raster 3840x2160] [--skip-build]

Per model (x4; a family name such as ``realesr-animevideov3`` means its x4 variant), on frames
already in memory:

* **bare**: the model's forward pass alone, input already on the device in the engine's dtype
  and layout, at batch 1 and at the batch the stage runs, synchronised timing, warm-up excluded;
* **stage**: the code a build runs, ``Upscale().process`` (``run_model`` → ``Engine.run``): uint16
  frames in, tiling and blending, uint16 frames out; the ratio stage / the faster bare figure
  (goal ≥ 0.9 on a GPU). Both are the best of ``--repeat`` timed passes;
* **breakdown** of the stage path, instrumented from outside: the engine's forward is replaced by
  a copy of ``Engine._model_forward`` that synchronises and times each step (host → device, model,
  to float32 + clamp), and ``Engine._to_host`` is timed (rounding to uint16 on the device, the
  copy to the host); the rest of ``Engine.run`` is the uint16 → float32 input (timed alone on the
  same frames) and the tile blend (on the device) with the host's glue around it.
  The instrumented run must give the stage's bytes (checked, reported as ``same_bytes``);
* **cache point**: the ProRes 4444 mezzanine's encode (``FrameWriter``, ``prores-4444``, the
  chain's output after a model) of the stage's output frames, and the decode of the SD input as
  a chain reads it (an FFVHuff intermediate through PyAV); these need ffmpeg and PyAV and are
  skipped without them.

Then a **whole build** (unless ``--skip-build`` or no ffmpeg/PyAV): a progressive SD source of
``--build-frames`` frames in ``--build-shots`` shots (``restoro.testing.synth.make_source``),
``upscale`` with ``--build-model`` x4, a ProRes 422 HQ master pillarboxed into ``--raster``;
``restoro build --device DEVICE --json --jobs JOBS`` as a child process from an empty store (the
model's conversion, CUDA's start and the model's load included). Reported: frames/s of the
build, per action kind (the action events' ``seconds`` and ``cpu_s``; with ``--jobs`` > 1 they
overlap), and the chain actions split into decode, model (frames at the stage's frames/s of that
model) and cache-point encode (frames at the per-frame cost measured above); the rest is the
engine's load, queueing and start-up.

Prints Markdown tables (stdout) and writes everything as JSON (``--json``, default DIR/gpu.json)
with the device's name, torch's version and the precision. With ``--device cpu --size 64x48
--frames 2`` the same code paths run in well under two minutes on a CPU (fp32).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_models import natural_frames  # noqa: E402

CLI = "import sys; from restoro.cli.app import main; sys.exit(main(sys.argv[1:]))"
GROUP = 4
"""Frames per ``Engine.run`` call in a build (``run_model``'s default group)."""

MANIFEST = """\
restoro: 1
project: bench-gpu
sources:
  sd: {{path: {source}}}
pipelines:
  main:
    - {{stage: ingest, mode: progressive}}
    - {{stage: upscale, model: {model}, scale: 4, precision: {precision}}}
titles:
  ep:
    source: sd
    pipeline: main
    shots: {{detector: content, threshold: 27, min_frames: 4}}
deliverables:
  master: {{kind: prores, profile: 422hq, raster: {raster}, fit: pillarbox}}
"""


class Clock:
    """Synchronised wall-clock timing on CUDA (a no-op sync on CPU)."""

    def __init__(self, device: str) -> None:
        import torch

        self.cuda = device.startswith("cuda")
        self._sync = torch.cuda.synchronize if self.cuda else (lambda: None)

    def now(self) -> float:
        self._sync()
        return time.perf_counter()


def have_media_tools() -> str | None:
    """None when ffmpeg and PyAV are usable, else why not."""
    try:
        import av  # noqa: F401

        from restoro.media.ffmpeg import ffmpeg_exe

        exe = ffmpeg_exe()
        subprocess.run([exe, "-version"], capture_output=True, check=True, timeout=30)
    except Exception as exc:  # any missing piece means: skip the parts that need them
        return f"{type(exc).__name__}: {exc}"
    return None


def model_file(name: str, d: Path) -> tuple[Any, Path]:
    from restoro.models import builtin

    b = builtin.resolve(name, 4)
    if b is None:
        sys.exit(f"{name!r} is not a built-in model")
    path = d / f"{b.name}.safetensors"
    if not path.exists():
        path.write_bytes(builtin.convert(b))
    return b, path


def stage_run(frames: list[np.ndarray], name: str, path: Path, args: argparse.Namespace) -> Any:
    """The upscale stage as a chain runs it; returns (output frames, stage meta)."""
    from restoro.media.frames import FrameFormat
    from restoro.stages.base import StageContext
    from restoro.stages.upscale import MODEL_INPUT, Upscale, UpscaleParams

    h, w = frames[0].shape[:2]
    params = UpscaleParams(model=name, scale=4, precision=args.precision)
    ctx = StageContext(
        fmt=FrameFormat(width=w, height=h, frame_rate="30000/1001"),
        shot_id="bench@0",
        work_dir=Path(args.dir),
        device=args.device,
        inputs={MODEL_INPUT: path},
    )
    out = list(Upscale().process(iter(frames), params, ctx))
    return out, ctx.extra.get("meta", {})


def timed_forward(eng: Any, clock: Clock, parts: dict[str, float], calls: list) -> Any:
    """``Engine._model_forward`` step by step, each step synchronised and timed into ``parts``.

    ``calls`` gets (entry, exit) times of every call, so the host work between calls is known."""
    import torch
    import torch.nn.functional as F

    def forward(x: Any) -> Any:
        t0 = clock.now()
        with torch.inference_mode():
            if eng.device.startswith("cuda"):
                x = x.to(eng.device, eng.dtype).contiguous(memory_format=torch.channels_last)
            t1 = clock.now()
            y = eng.model(x)
            t2 = clock.now()
            y = y.float()
            if eng.post != 1.0:
                size = (round(x.shape[2] * eng.scale), round(x.shape[3] * eng.scale))
                y = F.interpolate(y, size=size, mode="bicubic", align_corners=False)
            y = y.clamp_(0, 1)
            t3 = clock.now()
        parts["host_to_device"] += t1 - t0
        parts["model"] += t2 - t1
        parts["to_float_clamp"] += t3 - t2
        calls.append((t0, t3))
        return y

    return forward


def timed_to_host(eng: Any, clock: Clock, parts: dict[str, float], calls: list) -> Any:
    """``Engine._to_host`` (rounding to uint16 where the frame lies, the copy to the host),
    synchronised and timed into ``parts``; the tile blend before it runs on the device and is
    what remains between the timed calls."""
    plain = eng._to_host

    def to_host(a: Any) -> Any:
        t0 = clock.now()
        out = plain(a)
        t1 = clock.now()
        parts["round_device_to_host"] += t1 - t0
        calls.append((t0, t1))
        return out

    return to_host


def bare_fps(
    eng: Any, frames: list[np.ndarray], batch: int, clock: Clock, repeat: int
) -> float | None:
    """Frames/s of the model alone on whole frames already on the device, the best of
    ``repeat`` passes (None if it runs out of memory)."""
    import torch

    from restoro.models.infer import is_oom

    x = torch.from_numpy(np.stack(frames).astype(np.float32) / 65535).permute(0, 3, 1, 2)
    if eng.device.startswith("cuda"):  # as the engine: channels-last on CUDA only
        x = x.to(eng.device, eng.dtype).contiguous(memory_format=torch.channels_last)
    else:
        x = x.contiguous()
    n = len(frames) - len(frames) % batch or len(frames)
    try:
        with torch.inference_mode():
            for _ in range(2):  # warm-up (kernels chosen, memory pooled)
                eng.model(x[:batch])
            best = float("inf")
            for _ in range(repeat):
                t = clock.now()
                for i in range(0, n, batch):
                    eng.model(x[i : i + batch])
                best = min(best, clock.now() - t)
            return n / best
    except Exception as exc:
        if not is_oom(exc):
            raise
        eng._empty_cache()
        return None


def bench_model(name: str, frames: list[np.ndarray], args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from restoro.models.infer import engine_for
    from restoro.stages.upscale import UpscaleParams, inference_options

    b, path = model_file(name, Path(args.dir))
    h, w = frames[0].shape[:2]
    n = len(frames)
    opts = inference_options(
        UpscaleParams(model=name, scale=4, precision=args.precision), args.device
    )
    eng = engine_for(path, opts)  # the engine the stage below uses (cached per process)
    clock = Clock(eng.device)
    plan = eng.choose(h, w)
    stage_batch = max(1, min(plan.batch, GROUP))
    res: dict[str, Any] = {
        "model": b.name,
        "precision": eng.precision,
        "size": f"{w}x{h}",
        "out_size": f"{w * 4}x{h * 4}",
        "frames": n,
    }
    print(f"[{b.name}] bare forward ...", file=sys.stderr, flush=True)
    res["bare_fps_b1"] = bare_fps(eng, frames, 1, clock, args.repeat)
    res["bare_fps_stage_batch"] = (
        res["bare_fps_b1"]
        if stage_batch == 1
        else bare_fps(eng, frames, stage_batch, clock, args.repeat)
    )
    print(f"[{b.name}] stage path ...", file=sys.stderr, flush=True)
    stage_run(frames[: min(n, GROUP)], name, path, args)  # warm-up
    stage_s = float("inf")
    for _ in range(args.repeat):  # the best of ``repeat`` passes, as for the bare pass
        t = clock.now()
        out, meta = stage_run(frames, name, path, args)
        stage_s = min(stage_s, clock.now() - t)
    assert out[0].shape == (h * 4, w * 4, 3) and out[0].dtype == np.uint16
    res["stage_fps"] = n / stage_s
    res["tile"], res["batch"] = meta.get("tile"), meta.get("batch")
    bare = [v for v in (res["bare_fps_b1"], res["bare_fps_stage_batch"]) if v]
    res["ratio"] = res["stage_fps"] / max(bare) if bare else None

    print(f"[{b.name}] breakdown ...", file=sys.stderr, flush=True)
    parts: dict[str, float] = defaultdict(float)
    calls: list[tuple[float, float]] = []
    plain = eng._forward
    eng._forward = timed_forward(eng, clock, parts, calls)
    eng._to_host = timed_to_host(eng, clock, parts, calls)
    try:
        got: list[np.ndarray] = []
        t0 = clock.now()
        for i in range(0, n, GROUP):  # as run_model feeds the engine
            got += eng.run(frames[i : i + GROUP])
        total = clock.now() - t0
    finally:
        eng._forward = plain
        del eng._to_host  # the method again
    res["same_bytes"] = all(a.tobytes() == b_.tobytes() for a, b_ in zip(out, got, strict=True))
    inside = sum(e - s for s, e in calls)
    # The uint16 → float32 input conversion of Engine._run, alone on the same frames.
    tc = clock.now()
    for i in range(0, n, GROUP):
        arr = np.stack(frames[i : i + GROUP]).astype(np.float32)
        torch.from_numpy(arr / 65535.0).permute(0, 3, 1, 2).contiguous()
    to_float = clock.now() - tc
    per = {k: v / n * 1000 for k, v in parts.items()}
    per["uint16_to_float_in"] = to_float / n * 1000
    per["blend"] = max(0.0, (total - inside - to_float)) / n * 1000
    per["stage_total"] = total / n * 1000
    res["ms_per_frame"] = {k: round(v, 3) for k, v in per.items()}
    res["out_frames"] = out
    return res


def cache_point(res: dict[str, Any], frames: list[np.ndarray], d: Path) -> None:
    """Per-frame cost of the chain's cache point (the ProRes 4444 mezzanine) and of decoding its
    SD input."""
    from restoro.media.frameio import MEZZANINE, FrameWriter, read_frames, write_frames
    from restoro.media.frames import FrameFormat

    out = res.pop("out_frames")
    h, w = out[0].shape[:2]
    fmt = FrameFormat(width=w, height=h, frame_rate="30000/1001")
    path = d / f"{res['model']}.mezzanine.mkv"
    t = time.perf_counter()
    with FrameWriter(path, fmt, MEZZANINE) as writer:
        for f in out:
            writer.write(f)
    enc = (time.perf_counter() - t) / len(out)
    sh, sw = frames[0].shape[:2]
    src = d / "sd.mkv"
    if not src.exists():
        write_frames(src, FrameFormat(width=sw, height=sh, frame_rate="30000/1001"), iter(frames))
    t = time.perf_counter()
    count = sum(1 for _ in read_frames(src))
    dec = (time.perf_counter() - t) / count
    res["ms_per_frame"]["cache_point_encode"] = round(enc * 1000, 3)
    res["ms_per_frame"]["sd_decode"] = round(dec * 1000, 3)
    res["cache_point_mb_per_frame"] = round(path.stat().st_size / len(out) / 1e6, 3)


def whole_build(args: argparse.Namespace, models: list[dict[str, Any]]) -> dict[str, Any]:
    from restoro.testing.synth import make_source

    root = Path(args.dir) / "build"
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    w, h = args.w, args.h
    shots = [args.build_frames // args.build_shots] * args.build_shots
    shots[-1] += args.build_frames - sum(shots)
    src = make_source(
        root / "sd.mkv", width=w, height=h, shots=len(shots), shot_frames=shots, audio_channels=0
    )
    manifest = root / "restoro.yaml"
    raster = args.raster or f"{w * 4}x{h * 4}"
    manifest.write_text(
        MANIFEST.format(
            source=src, model=args.build_model, precision=args.precision, raster=raster
        ),
        encoding="utf-8",
    )
    cmd = [sys.executable, "-c", CLI, "build", "-f", str(manifest), "--json"]
    cmd += ["--jobs", str(args.jobs), "--device", args.device]
    print(f"[build] {args.build_frames} frames → {raster} ...", file=sys.stderr, flush=True)
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=root, timeout=args.build_timeout)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        return {"error": f"exit {proc.returncode}", "stderr": proc.stderr[-3000:]}
    events = [json.loads(ln) for ln in proc.stdout.splitlines() if ln.strip()]
    acts = [e for e in events if e.get("event") == "action" and e.get("status") == "executed"]
    kinds: dict[str, dict[str, float]] = defaultdict(lambda: {"n": 0, "seconds": 0.0, "cpu_s": 0.0})
    for e in acts:
        k = kinds[e["stage"]]
        k["n"] += 1
        k["seconds"] += e.get("seconds", 0.0)
        k["cpu_s"] += e.get("cpu_s", 0.0)
    frames = args.build_frames
    res: dict[str, Any] = {
        "frames": frames,
        "source": f"{w}x{h} progressive MPEG-2, {len(shots)} shots",
        "jobs": args.jobs,
        "model": args.build_model,
        "raster": raster,
        "wall_s": round(wall, 3),
        "fps": round(frames / wall, 4),
        "per_kind": {k: {kk: round(vv, 3) for kk, vv in v.items()} for k, v in kinds.items()},
    }
    chain = kinds.get("chain")
    same = next((m for m in models if m["model"].startswith(args.build_model)), None)
    if chain and same and "cache_point_encode" in same["ms_per_frame"]:
        ms = same["ms_per_frame"]
        split = {
            "decode": frames * ms["sd_decode"] / 1000,
            "model_stage": frames / same["stage_fps"],
            "cache_point_encode": frames * ms["cache_point_encode"] / 1000,
        }
        split["rest"] = chain["seconds"] - sum(split.values())
        res["chain_split_s"] = {k: round(v, 3) for k, v in split.items()}
        res["chain_split_note"] = (
            "decode, model and encode at the per-frame costs measured above on the same "
            "sizes (in the chain they overlap in threads, so 'rest' can be negative)"
        )
    return res


def device_info(device: str) -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {
        "device": device,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
    }
    if device.startswith("cuda"):
        info["device_name"] = torch.cuda.get_device_name()
        info["cuda"] = torch.version.cuda
        info["cudnn"] = torch.backends.cudnn.version()
    else:
        info["device_name"] = platform.processor() or platform.machine()
    return info


def fmt(v: Any, nd: int = 2) -> str:
    return "—" if v is None else f"{v:.{nd}f}" if isinstance(v, float) else str(v)


def report(result: dict[str, Any]) -> str:
    info = result["info"]
    lines = [
        f"Device: {info['device_name']} ({info['device']}), torch {info['torch']}, "
        f"Python {info['python']}, {info['cpu_count']} CPUs",
        "",
        "| model | precision | size → out | tile / batch | bare b1 fps | bare fps (stage batch) "
        "| stage fps | **ratio** | same bytes |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for m in result["models"]:
        lines.append(
            f"| {m['model']} | {m['precision']} | {m['size']} → {m['out_size']} "
            f"| {m['tile']} / {m['batch']} | {fmt(m['bare_fps_b1'])} "
            f"| {fmt(m['bare_fps_stage_batch'])} | {fmt(m['stage_fps'])} "
            f"| **{fmt(m['ratio'], 3)}** | {m['same_bytes']} |"
        )
    keys = sorted({k for m in result["models"] for k in m["ms_per_frame"]})
    lines += ["", "ms per frame | " + " | ".join(m["model"] for m in result["models"]) + " |"]
    lines.append("|---" * (len(result["models"]) + 1) + "|")
    lines[-2] = "| " + lines[-2]
    for k in keys:
        lines.append(
            f"| {k} | " + " | ".join(fmt(m["ms_per_frame"].get(k)) for m in result["models"]) + " |"
        )
    b = result.get("build")
    if b and "per_kind" in b:
        lines += [
            "",
            f"Whole build (--jobs {b['jobs']}): {b['frames']} frames {b['source']} → "
            f"{b['model']} x4 → ProRes {b['raster']}: {b['wall_s']} s, **{b['fps']} frames/s**",
            "",
            "| action | n | seconds | CPU-s |",
            "|---|---|---|---|",
        ]
        for k, v in sorted(b["per_kind"].items(), key=lambda kv: -kv[1]["seconds"]):
            lines.append(f"| {k} | {int(v['n'])} | {v['seconds']:.2f} | {v['cpu_s']:.2f} |")
        if "chain_split_s" in b:
            lines += ["", "chain split (s): " + ", ".join(
                f"{k} {v:.2f}" for k, v in b["chain_split_s"].items()
            )]  # fmt: skip
    elif b:
        lines += ["", f"Whole build: {b}"]
    if result.get("skipped"):
        lines += ["", "Skipped: " + "; ".join(result["skipped"])]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--size", default="720x480")
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--models", default="realesrgan-x4plus,realesr-animevideov3")
    ap.add_argument("--precision", default="fp16", choices=("fp16", "bf16", "fp32", "auto"))
    ap.add_argument("--repeat", type=int, default=3, help="timed passes (the best is kept)")
    ap.add_argument("--dir", default=None, help="work folder (default: a temporary one)")
    ap.add_argument("--json", default=None, help="results file (default: DIR/gpu.json)")
    ap.add_argument("--build-frames", type=int, default=48)
    ap.add_argument("--build-shots", type=int, default=4)
    ap.add_argument("--build-model", default="realesr-animevideov3")
    ap.add_argument("--jobs", type=int, default=4, help="the build's --jobs")
    ap.add_argument("--raster", default=None, help="master raster (default: 3840x2160 on CUDA)")
    ap.add_argument("--build-timeout", type=float, default=300)
    ap.add_argument("--skip-build", action="store_true")
    args = ap.parse_args()
    args.w, args.h = (int(v) for v in args.size.split("x"))
    if args.device == "cpu" and args.precision != "fp32":
        args.precision = "auto"  # CPU is fp32 whatever is asked; auto says so in the manifest
    if args.raster is None and args.device.startswith("cuda"):
        args.raster = "3840x2160"
    tmp = None
    if args.dir is None:
        tmp = tempfile.mkdtemp(prefix="bench-gpu-")
        args.dir = tmp
    Path(args.dir).mkdir(parents=True, exist_ok=True)
    out_json = Path(args.json or Path(args.dir) / "gpu.json")
    try:
        result: dict[str, Any] = {"info": device_info(args.device), "skipped": []}
        frames = natural_frames(args.frames, args.w, args.h)
        no_media = have_media_tools()
        result["info"]["precision_asked"] = args.precision
        result["models"] = models = []
        if no_media is not None:
            result["skipped"].append(f"cache point and whole build: no ffmpeg/PyAV ({no_media})")

        def save() -> None:  # after each part, so a step cut short by its timeout leaves some
            out_json.write_text(json.dumps(result, indent=1, default=str), encoding="utf-8")

        for name in args.models.split(","):
            m = bench_model(name, frames, args)
            if no_media is None:
                cache_point(m, frames, Path(args.dir))
            else:
                m.pop("out_frames")
            models.append(m)
            print(json.dumps(m), file=sys.stderr, flush=True)
            save()
        if no_media is None and not args.skip_build:
            result["build"] = whole_build(args, models)
            save()
        print(report(result), flush=True)
        print(f"\nJSON: {out_json}", file=sys.stderr)
    finally:
        if tmp is not None and out_json.parent != Path(tmp):
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
