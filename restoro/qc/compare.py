"""Two variants of the same shots side by side: crops of the same frame and their difference."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from pathlib import Path

    from restoro.engine.store import Store
    from restoro.qc.collect import ShotRow


def _frames(path: Path) -> Any:
    from restoro.media.frameio import read_frames

    return read_frames(path)


def compare_shot(
    store: Store, a: ShotRow, b: ShotRow, out: Path, crop: int = 128
) -> dict[str, Any]:
    """PSNR of B against A over the shot (luma, at A's raster) and a PNG of A | B | 4× |A-B|
    cropped around their largest difference on A's worst-fidelity frame."""
    import cv2

    from restoro.qc.fidelity import psnr
    from restoro.qc.shot import luma, png, to8

    want = (a.worst_frame if a.worst_frame is not None else a.start) - a.start
    mses: list[float] = []
    pick: tuple[np.ndarray, np.ndarray] | None = None
    for i, (fa, fb) in enumerate(
        zip(_frames(store.blob_path(a.output)), _frames(store.blob_path(b.output)), strict=False)
    ):
        if fb.shape != fa.shape:
            fb = cv2.resize(fb, (fa.shape[1], fa.shape[0]), interpolation=cv2.INTER_AREA)
        d = luma(fa) - luma(fb)
        mses.append(float(np.mean(d * d)))
        if i == want:
            pick = (fa, fb)
    info: dict[str, Any] = {"psnr": round(psnr(float(np.mean(mses))), 2) if mses else None}
    if pick is not None:
        fa, fb = pick
        err = cv2.blur(np.abs(luma(fa) - luma(fb)), (15, 15))
        h, w = err.shape
        cy, cx = np.unravel_index(int(np.argmax(err)), err.shape)
        ch, cw = min(crop, h), min(crop, w)
        y0 = int(min(max(cy - ch // 2, 0), h - ch))
        x0 = int(min(max(cx - cw // 2, 0), w - cw))
        ca, cb = to8(fa[y0 : y0 + ch, x0 : x0 + cw]), to8(fb[y0 : y0 + ch, x0 : x0 + cw])
        diff = np.clip(np.abs(ca.astype(np.int16) - cb.astype(np.int16)) * 4, 0, 255)
        sep = np.full((ch, 2, 3), 255, np.uint8)
        png(out, np.concatenate([ca, sep, cb, sep, diff.astype(np.uint8)], axis=1))
        info["frame"] = a.start + want
        info["crop"] = [x0, y0, cw, ch]
    return info
