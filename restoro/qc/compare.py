"""Two variants of the same shots side by side: PSNR and VMAF between them, and crops of the
same frame with their difference.

Each comparison is a cached ``qc-compare`` action keyed by the two shots' output digests, so a
second ``restoro qc --compare`` finds them all in the store and a changed shot is compared again
alone.
"""

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


COMPARE_VERSION = 1


def compare_shot(
    store: Store, a: ShotRow, b: ShotRow, out: Path, crop: int = 128
) -> dict[str, Any]:
    """Compare variant B's shot with A's (a cached ``qc-compare`` action); the crop image is
    copied to ``out``. Returns psnr, vmaf (mean/min/p5), frame and crop."""
    import shutil

    from restoro.engine.execute import run_spec
    from restoro.engine.graph import ActionSpec

    want = (a.worst_frame if a.worst_frame is not None else a.start) - a.start
    spec = ActionSpec(
        id=f"{a.id}/qc-compare",
        stage="qc-compare",
        version=COMPARE_VERSION,
        params={"frame": want, "crop": crop, "start": a.start},
        inputs={"a": a.output, "b": b.output},
        title=a.title,
        shot=a.id,
        frames=a.end - a.start,
    )
    res = run_spec(spec, store, {}, "cpu").result
    assert res is not None
    info = dict(res.meta)
    if "image" in res.outputs:
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(store.blob_path(res.outputs["image"].digest), out)
    return info


def compare_frames(
    a: Path, b: Path, out: Path, *, want: int, start: int, crop: int = 128
) -> dict[str, Any]:
    """PSNR and VMAF of B against A over the shot (B scaled to A's raster) and a PNG of
    A | B | 4× |A-B| cropped around their largest difference on frame ``want`` of the shot."""
    import cv2

    from restoro.qc.fidelity import psnr
    from restoro.qc.shot import luma, png, to8
    from restoro.qc.vmaf import subsample_for, vmaf

    mses: list[float] = []
    pick: tuple[np.ndarray, np.ndarray] | None = None
    size: tuple[int, int] = (0, 0)
    for i, (fa, fb) in enumerate(zip(_frames(a), _frames(b), strict=False)):
        size = (fa.shape[1], fa.shape[0])
        if fb.shape != fa.shape:
            fb = cv2.resize(fb, (fa.shape[1], fa.shape[0]), interpolation=cv2.INTER_AREA)
        d = luma(fa) - luma(fb)
        mses.append(float(np.mean(d * d)))
        if i == want:
            pick = (fa, fb)
    info: dict[str, Any] = {"psnr": round(psnr(float(np.mean(mses))), 2) if mses else None}
    if mses:
        from restoro.media.frameio import input_filters

        score = vmaf(["-i", str(b)], ["-i", str(a)], size=size,
                     distorted_chain=",".join(input_filters(b)),
                     reference_chain=",".join(input_filters(a)),
                     n_subsample=subsample_for(len(mses)))  # fmt: skip
        info["vmaf"] = {"mean": score.mean, "min": score.min, "p5": score.p5}
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
        info["frame"] = start + want
        info["crop"] = [x0, y0, cw, ch]
    return info
