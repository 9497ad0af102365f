"""ncnn ``.param``/``.bin`` files: parse them, read their weights, and run them in plain numpy.

The numpy forward pass interprets the layer graph exactly as the ``.param`` file describes it
(ncnn semantics: Convolution with fused activation, PReLU, Eltwise, BinaryOp, Concat, Split,
PixelShuffle, Interp). It shares no code with the torch architectures that the converted
weights are loaded into, so it is an independent reference for verifying the conversion.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from restoro.errors import InputError

if TYPE_CHECKING:
    from pathlib import Path

MAGIC = 7767517
TAG_FP16 = 0x01306B47
TAG_INT8 = 0x000D4B38
TAG_FP32_EXTRA = 0x0002C056


@dataclass
class Layer:
    type: str
    name: str
    bottoms: list[str]
    tops: list[str]
    params: dict[int, object]
    weights: dict[str, np.ndarray] = field(default_factory=dict)

    def p(self, key: int, default: object = 0) -> object:
        return self.params.get(key, default)


def _value(text: str) -> object:
    return float(text) if any(c in text for c in ".eE") else int(text)


def parse_param(text: str, where: str = "param") -> list[Layer]:
    """The layers of a text ``.param`` file, in file order."""
    lines = [ln.split() for ln in text.splitlines() if ln.strip()]
    if not lines or lines[0] != [str(MAGIC)]:
        raise InputError(f"{where} is not an ncnn .param file (bad magic)")
    layers: list[Layer] = []
    for parts in lines[2:]:
        typ, name, nb, nt = parts[0], parts[1], int(parts[2]), int(parts[3])
        bottoms = parts[4 : 4 + nb]
        tops = parts[4 + nb : 4 + nb + nt]
        params: dict[int, object] = {}
        for kv in parts[4 + nb + nt :]:
            k, v = kv.split("=", 1)
            key = int(k)
            if key <= -23300:  # an array: count, then values
                vals = v.split(",")
                params[-key - 23300] = [_value(x) for x in vals[1:]]
            else:
                params[key] = _value(v)
        layers.append(Layer(typ, name, bottoms, tops, params))
    return layers


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def raw(self, n: int) -> np.ndarray:
        out = np.frombuffer(self.data, "<f4", n, self.pos).astype(np.float32)
        self.pos += 4 * n
        return out

    def tagged(self, n: int) -> np.ndarray:
        """ncnn ModelBin type 0: a 4-byte tag, then fp16, quantised or fp32 data."""
        tag = int.from_bytes(self.data[self.pos : self.pos + 4], "little")
        self.pos += 4
        if tag == TAG_FP16:
            out = np.frombuffer(self.data, "<f2", n, self.pos).astype(np.float32)
            self.pos += (2 * n + 3) // 4 * 4
            return out
        if tag == TAG_FP32_EXTRA or tag == 0:
            return self.raw(n)
        raise InputError(f"ncnn weights with tag {tag:#x} (int8/quantised) are not supported")


def load_weights(layers: list[Layer], data: bytes) -> None:
    """Attach the ``.bin`` weights to the layers that own them (in place)."""
    r = _Reader(data)
    for ly in layers:
        if ly.type == "Convolution":
            n = int(ly.p(6))  # type: ignore[call-overload]
            out_c, k = int(ly.p(0)), int(ly.p(1))  # type: ignore[call-overload]
            kh = int(ly.p(11, k))  # type: ignore[call-overload]
            w = r.tagged(n)
            ly.weights["weight"] = w.reshape(out_c, n // (out_c * kh * k), kh, k)
            if ly.p(5):
                ly.weights["bias"] = r.raw(out_c)
        elif ly.type == "PReLU":
            ly.weights["slope"] = r.raw(int(ly.p(0, 1)))  # type: ignore[call-overload]
        elif ly.type not in _SUPPORTED:
            raise InputError(f"ncnn layer type {ly.type!r} is not supported")
    if r.pos != len(data):
        raise InputError(f"ncnn .bin has {len(data) - r.pos} unread bytes: param/bin mismatch")


def read_model(param: Path, binf: Path) -> list[Layer]:
    layers = parse_param(param.read_text(encoding="utf-8"), str(param))
    load_weights(layers, binf.read_bytes())
    return layers


# -- the reference forward pass -------------------------------------------------------------


def _conv(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, pad: int) -> np.ndarray:
    c, h, wd = x.shape
    o, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    oh, ow = h + 2 * pad - kh + 1, wd + 2 * pad - kw + 1
    cols = np.empty((c, kh, kw, oh, ow), np.float32)
    for i in range(kh):
        for j in range(kw):
            cols[:, i, j] = xp[:, i : i + oh, j : j + ow]
    out = w.reshape(o, -1).astype(np.float64) @ cols.reshape(c * kh * kw, -1).astype(np.float64)
    if b is not None:
        out += b[:, None]
    return out.reshape(o, oh, ow).astype(np.float32)


def _cubic(t: np.ndarray) -> np.ndarray:
    """The four cubic-convolution weights (A = -0.75) for fractional offsets ``t``."""
    a = -0.75
    d = np.stack([1 + t, t, 1 - t, 2 - t], -1)
    near = ((a + 2) * d - (a + 3)) * d * d + 1
    far = ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
    return np.where(d <= 1, near, far)


def _interp_matrix(n_in: int, n_out: int, kind: int) -> np.ndarray:
    """Rows: output samples; columns: input samples (borders replicated)."""
    m = np.zeros((n_out, n_in), np.float64)
    scale = n_in / n_out
    for o in range(n_out):
        if kind == 1:  # nearest
            m[o, min(int(o * scale), n_in - 1)] = 1
            continue
        f = (o + 0.5) * scale - 0.5
        s = int(np.floor(f))
        t = f - s
        if kind == 2:  # bilinear
            taps, wts = [s, s + 1], [1 - t, t]
        else:  # bicubic
            taps, wts = [s - 1, s, s + 1, s + 2], list(_cubic(np.array(t)))
        for tap, wt in zip(taps, wts, strict=True):
            m[o, min(max(tap, 0), n_in - 1)] += wt
    return m


def _act(x: np.ndarray, ly: Layer) -> np.ndarray:
    kind = ly.p(9, 0)
    if kind == 1:
        return np.maximum(x, 0)
    if kind == 2:
        slope = ly.p(10, [0.0])[0]  # type: ignore[index]
        return np.where(x > 0, x, x * slope)
    if kind != 0:
        raise InputError(f"ncnn activation type {kind} is not supported")
    return x


def _binary(a: np.ndarray, b: np.ndarray, op: int) -> np.ndarray:
    if op == 0:
        return a + b
    if op == 1:
        return a - b
    if op == 2:
        return a * b
    raise InputError(f"ncnn BinaryOp {op} is not supported")


_SUPPORTED = {
    "Input",
    "Split",
    "Convolution",
    "PReLU",
    "Eltwise",
    "BinaryOp",
    "Concat",
    "PixelShuffle",
    "Interp",
}


def forward(layers: list[Layer], image: np.ndarray) -> np.ndarray:
    """Run the graph on one CHW float32 image in [0, 1]; returns the CHW output."""
    blobs: dict[str, np.ndarray] = {}
    for ly in layers:
        ins = [blobs[b] for b in ly.bottoms]
        if ly.type == "Input":
            out = [image.astype(np.float32)]
        elif ly.type == "Split":
            out = [ins[0]] * len(ly.tops)
        elif ly.type == "Convolution":
            pad = int(ly.p(4, 0))  # type: ignore[call-overload]
            y = _conv(ins[0], ly.weights["weight"], ly.weights.get("bias"), pad)
            out = [_act(y, ly)]
        elif ly.type == "PReLU":
            s = ly.weights["slope"][:, None, None]
            out = [np.where(ins[0] > 0, ins[0], ins[0] * s)]
        elif ly.type == "Eltwise":
            coeffs = ly.p(1, [1.0] * len(ins))
            if ly.p(0, 1) != 1:
                raise InputError("only Eltwise SUM is supported")
            out = [sum(c * x for c, x in zip(coeffs, ins, strict=True))]  # type: ignore[arg-type, call-overload, list-item]
        elif ly.type == "BinaryOp":
            out = [_binary(ins[0], ins[1], int(ly.p(0, 0)))]  # type: ignore[call-overload]
        elif ly.type == "Concat":
            out = [np.concatenate(ins, axis=0)]
        elif ly.type == "PixelShuffle":
            r = int(ly.p(0, 1))  # type: ignore[call-overload]
            c, h, w = ins[0].shape
            x = ins[0].reshape(c // (r * r), r, r, h, w).transpose(0, 3, 1, 4, 2)
            out = [x.reshape(c // (r * r), h * r, w * r)]
        elif ly.type == "Interp":
            c, h, w = ins[0].shape
            oh = int(h * float(ly.p(1, 1.0)))  # type: ignore[arg-type]
            ow = int(w * float(ly.p(2, 1.0)))  # type: ignore[arg-type]
            kind = int(ly.p(0, 1))  # type: ignore[call-overload]
            mh, mw = _interp_matrix(h, oh, kind), _interp_matrix(w, ow, kind)
            y = np.einsum("oh,chw,pw->cop", mh, ins[0].astype(np.float64), mw)
            out = [y.astype(np.float32)]
        else:
            raise InputError(f"ncnn layer type {ly.type!r} is not supported")
        for top, val in zip(ly.tops, out, strict=True):
            blobs[top] = val
    return blobs[layers[-1].tops[0]]
