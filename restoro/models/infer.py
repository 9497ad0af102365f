"""Tiled, batched model inference on CPU or CUDA, deterministic on one machine.

Frames are split into tiles with a halo of ``tile_pad`` input pixels; overlapping halos are
blended with linear ramps, so seams vanish. Tile and batch sizes come from free device memory
on CUDA (or a fixed pixel budget on CPU, so CPU output never depends on the machine), unless
given. An out-of-memory error halves the batch, then the tile, and retries; below ``MIN_TILE`` it
becomes a StageError. CUDA runs fp16/bf16 where the architecture supports it, channels-last.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from restoro.errors import StageError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

MIN_TILE = 16
CPU_TILE = 256
"""Tile edge used on CPU when a frame has more than CPU_TILE² pixels (machine-independent)."""
CPU_THREADS = 4


@dataclass
class Options:
    device: str = "cpu"
    precision: str = "auto"
    tile: int = 0
    """Tile edge in input pixels; 0 chooses one, -1 disables tiling."""
    tile_pad: int = 16
    batch: int = 0


@dataclass
class Plan:
    tile: int
    batch: int
    events: list[str] = field(default_factory=list)


def is_oom(exc: BaseException) -> bool:
    return "out of memory" in str(exc).lower() or type(exc).__name__ == "OutOfMemoryError"


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise StageError(
            f"device {device!r} was asked for but CUDA is not available",
            hint="use --device cpu (or auto)",
        )
    return device


def resolve_precision(precision: str, device: str, half: bool, bf16: bool) -> str:
    if not device.startswith("cuda"):
        return "fp32"
    if precision == "auto":
        return "fp16" if half else "bf16" if bf16 else "fp32"
    if (precision == "fp16" and not half) or (precision == "bf16" and not bf16):
        raise StageError(f"this architecture does not support {precision}", hint="use fp32")
    return precision


Segment = tuple[int, int, int, int, float, float]
"""One axis of a tile: extended start/end, core start/end, blend half-widths at each end."""


def segments(n: int, tile: int, pad: int) -> list[Segment]:
    """Cut ``n`` pixels into cores of ``tile`` with halos of ``pad``.

    Neighbours blend over ``[b - o, b + o]`` around their shared boundary ``b``, where ``o``
    is at most the pad and half of either core, so the ramps of one tile never overlap and
    the weights of all tiles sum to one everywhere.
    """
    if tile <= 0 or n <= tile:
        return [(0, n, 0, n, 0.0, 0.0)]
    cores = [(c, min(c + tile, n)) for c in range(0, n, tile)]
    half = [
        min(float(pad), (c1 - c0) / 2, (d1 - d0) / 2)
        for (c0, c1), (d0, d1) in zip(cores, cores[1:], strict=False)
    ]
    out = []
    for i, (c0, c1) in enumerate(cores):
        lo = half[i - 1] if i else 0.0
        hi = half[i] if i < len(half) else 0.0
        out.append((max(c0 - pad, 0), min(c1 + pad, n), c0, c1, lo, hi))
    return out


def ramp(seg: Segment, scale: int = 1) -> np.ndarray:
    """Blend weights of one tile along one axis, sampled at output pixel centres."""
    e0, e1, c0, c1, lo, hi = seg
    x = e0 + (np.arange((e1 - e0) * scale, dtype=np.float64) + 0.5) / scale
    w = np.ones_like(x)
    if lo:
        w = np.minimum(w, np.clip((x - (c0 - lo)) / (2 * lo), 0, 1))
    if hi:
        w = np.minimum(w, np.clip((c1 + hi - x) / (2 * hi), 0, 1))
    return w


def tiles(h: int, w: int, tile: int, pad: int) -> list[tuple[Segment, Segment]]:
    """The (vertical, horizontal) segments of every tile of an h x w frame."""
    return [(sy, sx) for sy in segments(h, tile, pad) for sx in segments(w, tile, pad)]


class Engine:
    """A loaded model plus the inference policy; ``run(frames)`` upscales uint16 RGB frames."""

    def __init__(self, model_path: Path, opts: Options, forward: Callable[..., Any] | None = None):
        import torch

        from restoro.models.loader import load_descriptor

        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        desc, meta = load_descriptor(model_path)
        self.device = resolve_device(opts.device)
        self.precision = resolve_precision(
            opts.precision, self.device, desc.supports_half, desc.supports_bfloat16
        )
        self.native = int(desc.scale)
        self.post = float(meta.get("restoro.post_scale", "1.0"))
        self.scale = round(self.native * self.post)
        self.opts = opts
        self.arch = desc.architecture.id
        dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
        self.dtype = dtype[self.precision]
        model = desc.model.eval().to(self.device)
        if self.device.startswith("cuda"):
            model = model.to(dtype=self.dtype, memory_format=torch.channels_last)
        else:
            torch.set_num_threads(min(CPU_THREADS, os.cpu_count() or 1))
        self.model = model
        self._forward = forward or self._model_forward
        self.plan_cache: dict[tuple[int, int], Plan] = {}
        self.events: list[str] = []

    # -- planning ---------------------------------------------------------------------------

    def choose(self, h: int, w: int) -> Plan:
        tile, batch = self.opts.tile, self.opts.batch
        if tile < 0:
            tile = 0
        if self.device.startswith("cuda"):
            import torch

            free, _total = torch.cuda.mem_get_info(torch.device(self.device))
            per_px = (2 if self.precision != "fp32" else 4) * 64 * (12 + 2 * self.native**2)
            budget = free * 0.6
            if tile == 0 and self.opts.tile == 0:
                tile = max(h, w)
                while tile > MIN_TILE and (tile + 2 * self.opts.tile_pad) ** 2 * per_px > budget:
                    tile //= 2
            t = min(tile or max(h, w), max(h, w)) + 2 * self.opts.tile_pad
            batch = batch or max(1, min(8, int(budget // (t * t * per_px))))
        else:
            if tile == 0 and self.opts.tile == 0 and h * w > CPU_TILE * CPU_TILE:
                tile = CPU_TILE
            batch = batch or 1
        return Plan(tile=tile, batch=batch)

    # -- running ----------------------------------------------------------------------------

    def _model_forward(self, x: Any) -> Any:
        import torch
        import torch.nn.functional as F

        with torch.inference_mode():
            if self.device.startswith("cuda"):
                x = x.to(self.device, self.dtype).contiguous(memory_format=torch.channels_last)
            y = self.model(x).float()
            if self.post != 1.0:
                size = (round(x.shape[2] * self.scale), round(x.shape[3] * self.scale))
                y = F.interpolate(y, size=size, mode="bicubic", align_corners=False)
            return y.clamp_(0, 1)  # stays on the device: the blend and rounding run there

    def run(self, frames: list[np.ndarray]) -> list[np.ndarray]:
        if not frames:
            return []
        h, w = frames[0].shape[:2]
        plan = self.plan_cache.get((h, w)) or self.choose(h, w)
        while True:
            try:
                out = self._run(frames, plan)
                self.plan_cache[(h, w)] = plan
                return out
            except Exception as exc:
                if not is_oom(exc):
                    raise
                self._empty_cache()
                if plan.batch > 1:
                    plan = Plan(plan.tile, plan.batch // 2, plan.events)
                else:
                    cur = plan.tile or max(h, w)
                    if cur // 2 < MIN_TILE:
                        raise StageError(
                            f"out of memory on {self.device} even with tile {cur} and batch 1",
                            hint="use --device cpu, a smaller model, or free device memory",
                        ) from None
                    plan = Plan(cur // 2, 1, plan.events)
                msg = f"out of memory: retrying with tile {plan.tile}, batch {plan.batch}"
                plan.events.append(msg)
                self.events.append(msg)

    def _empty_cache(self) -> None:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def _run(self, frames: list[np.ndarray], plan: Plan) -> list[np.ndarray]:
        """Tiles of ``frames`` through the model in batches, blended where the model's output
        lies (the device), each frame rounded to uint16 there and copied to the host once.

        The arithmetic is that of a float64 blend on the host — ``acc += y * w`` per tile,
        then ``rint(acc / wsum * 65535)`` clipped — op for op in IEEE float64, so the bytes do
        not depend on where it runs; a single tile (weight one everywhere) skips the sums,
        which leaves every value as it was. On a GPU this keeps ~0.1-0.25 s of host work a
        2880x1920 frame (float64 passes over 133 MB) off the one thread that feeds it."""
        import torch

        s = self.scale
        h, w = frames[0].shape[:2]
        boxes = tiles(h, w, plan.tile, self.opts.tile_pad)
        whole = len(boxes) == 1
        acc: list[Any] = [None] * len(frames)
        wsum: Any = None
        weights: dict[tuple[Segment, Segment], Any] = {}
        # Group same-shaped tiles (across frames) into batches.
        jobs = [(fi, b) for b in boxes for fi in range(len(frames))]

        def shape(job: tuple[int, tuple[Segment, Segment]]) -> tuple[int, int]:
            (y0, y1, *_), (x0, x1, *_) = job[1]
            return (y1 - y0, x1 - x0)

        for i in range(0, len(jobs), plan.batch):
            chunk = jobs[i : i + plan.batch]
            for sh in sorted({shape(j) for j in chunk}):
                group = [j for j in chunk if shape(j) == sh]
                arr = np.stack(
                    [frames[fi][sy[0] : sy[1], sx[0] : sx[1]] for fi, (sy, sx) in group]
                ).astype(np.float32)
                x = torch.from_numpy(arr / 65535.0).permute(0, 3, 1, 2).contiguous()
                y = self._forward(x)  # (n, 3, H, W) float32 in [0, 1], on the device
                with torch.inference_mode():
                    if whole:
                        for k, (fi, _box) in enumerate(group):
                            acc[fi] = y[k]
                        continue
                    if wsum is None:
                        wsum = torch.zeros((1, h * s, w * s), dtype=torch.float64, device=y.device)
                    term = torch.empty(y.shape[1:], dtype=torch.float64, device=y.device)
                    for k, (fi, (sy, sx)) in enumerate(group):
                        wt = weights.get((sy, sx))
                        if wt is None:
                            wt = np.outer(ramp(sy, s), ramp(sx, s))[None]
                            wt = weights[(sy, sx)] = torch.from_numpy(wt).to(y.device)
                        if acc[fi] is None:
                            acc[fi] = torch.zeros(
                                (3, h * s, w * s), dtype=torch.float64, device=y.device
                            )
                        region = (slice(None), slice(sy[0] * s, sy[1] * s),
                                  slice(sx[0] * s, sx[1] * s))  # fmt: skip
                        # y * w, then the sum: two roundings, as the host blend (no fused op)
                        acc[fi][region] += term.copy_(y[k]).mul_(wt)
                        if fi == 0:
                            wsum[region] += wt
        with torch.inference_mode():  # in place where the buffer is ours: no 133 MB copies
            return [self._to_host(a.double() if whole else a.div_(wsum)) for a in acc]

    def _to_host(self, a: Any) -> np.ndarray:
        """A blended (3, H, W) float64 frame in [0, 1], which this may overwrite → (H, W, 3)
        uint16 on the host: ``rint(a * 65535)`` clipped, where ``a`` lies, carried as int16
        offset by 32768 — half the bytes of int32, and a dtype every device converts to — then
        flipped back (``v - 32768`` as 16 bits is ``v`` with its top bit flipped)."""
        import torch

        v = a.mul_(65535.0).round_().clamp_(0, 65535).sub_(32768).to(torch.int16)
        out = v.permute(1, 2, 0).contiguous().cpu().numpy().view(np.uint16)
        out ^= 0x8000
        return out


_ENGINES: dict[tuple[str, str, str, int, int, int], Engine] = {}
_LOCK = threading.Lock()
_LOADS = [0]


def load_count() -> int:
    """How many times this process has loaded model weights (built an Engine)."""
    return _LOADS[0]


def engine_for(model_path: Path, opts: Options) -> Engine:
    """A cached Engine per (model file, options); one model stays loaded per process."""
    key = (str(model_path), opts.device, opts.precision, opts.tile, opts.tile_pad, opts.batch)
    with _LOCK:
        eng = _ENGINES.get(key)
        if eng is None:
            _ENGINES.clear()
            eng = _ENGINES[key] = Engine(model_path, opts)
            _LOADS[0] += 1
        return eng


def run_model(
    frames: Iterator[np.ndarray], model_path: Path, opts: Options, ctx: Any, group: int = 4
) -> Iterator[np.ndarray]:
    """Frames through a model engine in groups (a group is one batched pass when it fits).

    ``ctx`` is the stage's context: the engine's device, precision and plan go in its
    ``extra["meta"]``."""
    eng = engine_for(model_path, opts)
    ctx.extra.setdefault("meta", {}).update(
        {"device": eng.device, "precision": eng.precision, "architecture": eng.arch}
    )
    buf: list[np.ndarray] = []
    for frame in frames:
        buf.append(frame)
        if len(buf) == group:
            yield from eng.run(buf)
            buf = []
    if buf:
        yield from eng.run(buf)
    plan = next(iter(eng.plan_cache.values()), None)
    if plan is not None:
        ctx.extra["meta"].update({"tile": plan.tile, "batch": plan.batch})
    if eng.events:
        ctx.extra["meta"]["events"] = list(eng.events)
