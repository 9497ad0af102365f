"""Chroma upsampling of subsampled Y'CbCr (4:2:0, 4:2:2) to luma resolution.

``upsample_plane`` interpolates one chroma plane (bilinear or bicubic) with the sample siting of
the source; ``guided_upsample`` is a luma-guided upsampler after He et al.'s guided filter: the
chroma is upsampled bilinearly, the luma is taken down to the chroma grid and back up the same
way (so both carry the same blur), a local linear model ``c = a*y + b`` is fitted in every
window between the two, and the averaged coefficients are applied to the *full-resolution* luma.
Edges that luma and chroma share come back sharp; flat areas (no luma variance) keep the plain
upsampled chroma. All arithmetic is float64 numpy / OpenCV box filters in a fixed order, so the
result is byte-identical from run to run.

Siting (where a chroma sample sits on the luma grid): horizontally ``left`` (co-sited with the
even luma columns, MPEG-2/H.264's default and zimg's) or ``center``; vertically always centred
between the two luma rows (4:2:0).
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np

Siting = Literal["left", "center"]


def _coords(n_out: int, factor: int, centred: bool) -> np.ndarray:
    """Chroma-grid coordinate of every luma position along one axis."""
    x = np.arange(n_out, dtype=np.float64)
    if factor == 1:
        return x
    return (x + 0.5) / factor - 0.5 if centred else x / factor


def upsample_plane(
    c: np.ndarray,
    shape: tuple[int, int],
    *,
    method: Literal["bilinear", "bicubic"] = "bilinear",
    siting: Siting = "left",
) -> np.ndarray:
    """Upsample chroma plane ``c`` to ``shape`` (luma height, width) as float64."""
    h, w = shape
    fy, fx = round(h / c.shape[0]), round(w / c.shape[1])
    ys = _coords(h, fy, True)
    xs = _coords(w, fx, siting == "center")
    map_x = np.broadcast_to(xs[None, :], (h, w)).astype(np.float32)
    map_y = np.broadcast_to(ys[:, None], (h, w)).astype(np.float32)
    interp = cv2.INTER_LINEAR if method == "bilinear" else cv2.INTER_CUBIC
    src = np.ascontiguousarray(c, dtype=np.float32)
    out = cv2.remap(src, map_x, map_y, interp, borderMode=cv2.BORDER_REPLICATE)
    return out.astype(np.float64)


def downsample_plane(
    y: np.ndarray, factors: tuple[int, int], siting: Siting = "left"
) -> np.ndarray:
    """Take a full-resolution plane to the chroma grid (the inverse of ``upsample_plane``'s
    siting): vertical pairs averaged; horizontally a [1 2 1]/4 filter at the even columns
    (``left``) or pairs averaged (``center``)."""
    fy, fx = factors
    p = np.asarray(y, dtype=np.float64)
    if fy == 2:
        p = np.pad(p, ((0, p.shape[0] % 2), (0, 0)), mode="edge")
        p = 0.5 * (p[0::2] + p[1::2])
    if fx == 2:
        if siting == "center":
            p = np.pad(p, ((0, 0), (0, p.shape[1] % 2)), mode="edge")
            p = 0.5 * (p[:, 0::2] + p[:, 1::2])
        else:
            padded = np.pad(p, ((0, 0), (1, 1)), mode="edge")
            p = 0.25 * padded[:, 0:-2] + 0.5 * padded[:, 1:-1] + 0.25 * padded[:, 2:]
            p = p[:, 0::2]
    return p


def _box(p: np.ndarray, radius: int) -> np.ndarray:
    k = 2 * radius + 1
    return cv2.boxFilter(p, cv2.CV_64F, (k, k), normalize=True, borderType=cv2.BORDER_REFLECT)


def guided_upsample(
    y: np.ndarray,
    chroma: list[np.ndarray],
    *,
    siting: Siting = "left",
    radius: int = 1,
    eps: float = 1e-4,
) -> list[np.ndarray]:
    """Upsample chroma planes to the size of luma ``y`` guided by it.

    Planes are normalised floats (0 to 1 over the code range); ``eps`` regularises the slope
    (in those units squared): the larger, the closer to plain bilinear. Returns float64 planes.
    """
    yf = np.asarray(y, dtype=np.float64)
    shape = (yf.shape[0], yf.shape[1])
    c0 = chroma[0]
    factors = (round(shape[0] / c0.shape[0]), round(shape[1] / c0.shape[1]))
    if factors == (1, 1):
        return [np.asarray(c, dtype=np.float64) for c in chroma]
    # The guide as the chroma sees it: luma down to the chroma grid and back up.
    y_low = downsample_plane(yf, factors, siting)
    y_up = upsample_plane(y_low, shape, siting=siting)
    mean_y = _box(y_up, radius)
    var_y = _box(y_up * y_up, radius) - mean_y * mean_y
    out = []
    for c in chroma:
        c_up = upsample_plane(c, shape, siting=siting)
        mean_c = _box(c_up, radius)
        cov = _box(y_up * c_up, radius) - mean_y * mean_c
        a = cov / (np.maximum(var_y, 0.0) + eps)
        b = mean_c - a * mean_y
        out.append(_box(a, radius) * yf + _box(b, radius))
    return out


def upsample_frame(
    planes: tuple[np.ndarray, np.ndarray, np.ndarray],
    bits: int,
    *,
    siting: Siting = "left",
) -> np.ndarray:
    """Y, Cb, Cr integer planes of depth ``bits`` → (3, H, W) uint16 4:4:4 planes scaled to 16
    bits (code << (16 - bits), as zimg reads a 16-bit limited or full range), luma unchanged."""
    y, cb, cr = planes
    scale = float((1 << bits) - 1)
    up = guided_upsample(y / scale, [cb / scale, cr / scale], siting=siting)
    shift = float(1 << (16 - bits))
    out = np.empty((3, *y.shape), dtype=np.uint16)
    out[0] = y.astype(np.uint16) << (16 - bits)
    for i, p in enumerate(up, start=1):
        out[i] = np.clip(np.rint(p * scale * shift), 0, 65535).astype(np.uint16)
    return out


def planar_layout(pix_fmt: str | None) -> tuple[str, int, tuple[int, int]] | None:
    """(raw pix_fmt to decode to, bit depth, (vertical, horizontal) chroma factors) of a planar
    Y'CbCr source with subsampled chroma; None when there is nothing to upsample (4:4:4, RGB,
    unknown)."""
    import av

    if not pix_fmt:
        return None
    try:
        f = av.VideoFormat(pix_fmt, 64, 64)
    except (ValueError, av.error.FFmpegError):  # type: ignore[attr-defined]
        return None
    comps = f.components
    if f.is_rgb or len(comps) < 3 or not (f.name.startswith("yuv") or f.name.startswith("yuvj")):
        return None
    factors = (64 // comps[1].height, 64 // comps[1].width)
    if factors not in ((2, 2), (1, 2)):
        return None
    bits = comps[0].bits
    base = "yuv420p" if factors == (2, 2) else "yuv422p"
    if bits == 8:
        return base, 8, factors
    if bits in (9, 10, 12, 14, 16):
        return f"{base}{bits}le", bits, factors
    return None


def convert_guided(
    decode_args: list[str],
    layout: tuple[str, int, tuple[int, int]],
    size: tuple[int, int],
    encode_args: list[str],
    *,
    siting: Siting = "left",
) -> int:
    """Run ffmpeg ``decode_args`` (ending in raw ``layout`` frames on stdout), upsample every
    frame's chroma guided by its luma and feed 4:4:4 ``yuv444p16le`` frames of ``size``
    (width, height) to ffmpeg ``encode_args`` (reading ``pipe:0``); return the frame count."""
    import subprocess
    import tempfile

    from restoro.errors import ToolError
    from restoro.media.ffmpeg import full_argv, popen_ffmpeg

    pix_fmt, bits, (fy, fx) = layout
    w, h = size
    cw, ch = -(-w // fx), -(-h // fy)
    dtype = np.dtype(np.uint8 if bits == 8 else "<u2")
    n_y, n_c = w * h, cw * ch
    frame_bytes = (n_y + 2 * n_c) * dtype.itemsize
    argv = full_argv(decode_args)
    enc = popen_ffmpeg(encode_args)
    count = 0
    with tempfile.TemporaryFile() as err:
        dec = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err)
        assert dec.stdout is not None
        try:
            while True:
                buf = dec.stdout.read(frame_bytes)
                if not buf:
                    break
                if len(buf) != frame_bytes:
                    raise ToolError("ffmpeg gave a truncated raw frame", argv=argv, log_tail="")
                a = np.frombuffer(buf, dtype=dtype)
                y = a[:n_y].reshape(h, w).astype(np.float64)
                cb = a[n_y : n_y + n_c].reshape(ch, cw).astype(np.float64)
                cr = a[n_y + n_c :].reshape(ch, cw).astype(np.float64)
                out = upsample_frame((y, cb, cr), bits, siting=siting)
                enc.write(out.astype("<u2", copy=False).data.cast("B"))
                count += 1
        except BaseException:
            dec.kill()
            dec.wait()
            enc.kill()
            raise
        finally:
            dec.stdout.close()
        code = dec.wait()
        if code != 0:
            enc.kill()
            err.seek(0)
            tail = "\n".join(err.read().decode("utf-8", "replace").splitlines()[-20:])
            raise ToolError(f"ffmpeg failed (exit status {code})", argv=argv, log_tail=tail)
    enc.close()
    return count
