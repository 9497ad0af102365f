"""A shot's QC pass: decode its output and its ingested frames once, feed every check.

The output is scaled back to the source raster (area filter) so fidelity, flicker and the rest
compare like with like. ``shot_images`` (the ``qc-images`` action, run by ``restoro qc`` only,
so cached builds stay light) writes a thumbnail (the middle output frame) and a crop of the
worst-fidelity frame: source | output | amplified difference.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from restoro.qc.base import FramePair

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

THUMB_WIDTH = 160
LUMA = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32) / 65535.0


def luma(rgb16: np.ndarray) -> np.ndarray:
    return rgb16.astype(np.float32) @ LUMA


def to8(rgb16: np.ndarray) -> np.ndarray:
    return ((rgb16.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


def pairs(output: Iterator[np.ndarray], ingested: Path, frame0: int) -> Iterator[FramePair]:
    """The shot's output frames (decoded by the caller: ``read_frames`` of its last cache
    point, or a folded segment's frames) beside its ingested frames."""
    import cv2

    from restoro.errors import StageError
    from restoro.media.frameio import read_frames

    src_it = read_frames(ingested)
    for i, out in enumerate(output):
        src = next(src_it, None)
        if src is None:
            raise StageError(f"the output has more frames than the ingested shot ({i + 1}+)")
        h, w = src.shape[:2]
        if out.shape[:2] != (h, w):
            out = cv2.resize(out, (w, h), interpolation=cv2.INTER_AREA)
        yield FramePair(frame0 + i, luma(out), luma(src), out_rgb=out, src_rgb=src)


def png(path: Path, rgb8: np.ndarray) -> Path:
    import cv2

    ok, buf = cv2.imencode(".png", np.ascontiguousarray(rgb8[..., ::-1]))
    assert ok
    path.write_bytes(buf.tobytes())
    return path


def worst_crop(f: FramePair, size: int = 96) -> np.ndarray:
    """source | output | 4× difference, cropped around the largest error."""
    import cv2

    assert f.out_rgb is not None and f.src_rgb is not None
    err = cv2.blur(np.abs(f.out_y - f.src_y), (9, 9))
    h, w = err.shape
    cy, cx = np.unravel_index(int(np.argmax(err)), err.shape)
    ch, cw = min(size, h), min(size, w)
    y0 = int(min(max(cy - ch // 2, 0), h - ch))
    x0 = int(min(max(cx - cw // 2, 0), w - cw))
    src = to8(f.src_rgb[y0 : y0 + ch, x0 : x0 + cw])
    out = to8(f.out_rgb[y0 : y0 + ch, x0 : x0 + cw])
    diff = np.clip(np.abs(out.astype(np.int16) - src.astype(np.int16)) * 4, 0, 255).astype(np.uint8)
    sep = np.full((ch, 2, 3), 255, np.uint8)
    tile = np.concatenate([src, sep, out, sep, diff], axis=1)
    scale = max(1, 192 // max(ch, 1))
    return cv2.resize(tile, (tile.shape[1] * scale, ch * scale), interpolation=cv2.INTER_NEAREST)


def run_shot_qc(
    output: Iterator[np.ndarray],
    ingested: Path,
    checks_spec: list[list[Any]],
    frame0: int,
    *,
    progress: Callable[[int], None] = lambda n: None,
) -> dict[str, Any]:
    """Every check over the shot, from one decode; the QC action's meta."""
    from restoro.qc.checks import make_checks
    from restoro.qc.fidelity import psnr

    checks = make_checks(checks_spec)
    worst: tuple[float, int] | None = None
    n = 0
    for f in pairs(output, ingested, frame0):
        for c in checks:
            c.update(f)
        d = f.out_y - f.src_y
        mse = float(np.mean(d * d))
        if worst is None or mse > worst[0]:
            worst = (mse, f.frame)
        n += 1
        progress(n)
    meta: dict[str, Any] = {"scope": "shot", "frame0": frame0, "frames": n, "checks": {}}
    for c in checks:
        r = c.finish()
        meta["checks"][c.id] = {
            "version": c.version,
            "metrics": r.metrics,
            "series": r.series,
            "findings": [x.to_json() for x in r.findings],
        }
    if worst is not None:
        meta["worst_frame"] = worst[1]
        meta["worst_psnr"] = round(psnr(worst[0]), 2)
    return meta


def shot_images(
    output: Iterator[np.ndarray],
    ingested: Path,
    *,
    mid: int,
    worst: int,
    temp: Callable[[str], Path],
) -> dict[str, Path]:
    """PNGs: ``thumb`` (frame ``mid`` of the output, 160 wide) and ``worst`` (the crop of
    frame ``worst``: source | output | difference); frames counted from the shot's start."""
    import cv2

    files: dict[str, Path] = {}
    for f in pairs(output, ingested, 0):
        if f.frame == mid:
            thumb = to8(f.out_rgb)  # type: ignore[arg-type]
            h, w = thumb.shape[:2]
            tw = min(THUMB_WIDTH, w)
            th = max(2, round(h * tw / w))
            small = cv2.resize(thumb, (tw, th), interpolation=cv2.INTER_AREA)
            files["thumb"] = png(temp(".png"), small)
        if f.frame == worst:
            files["worst"] = png(temp(".png"), worst_crop(f))
        if f.frame >= max(mid, worst):
            break
    return files
