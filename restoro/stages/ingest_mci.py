"""Motion-compensated interpolation of a frame between two (ingest ``convert: mci``).

Used where a title frame falls between two frames of a segment at another rate (video-rate
material in a film-rate title). Dense optical flow (OpenCV Farnebäck, on 8-bit luma) is
measured both ways; each frame is warped to the wanted instant along its flow and the two are
mixed by time, so a moving object lands once, where it is at that instant, instead of twice at
half strength as a blend shows it. Deterministic: the same arithmetic on the same frames.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

# pyr_scale, levels, winsize, iterations, poly_n, poly_sigma, flags
_FARNEBACK = (0.5, 4, 15, 3, 5, 1.2, 0)


def _luma8(frame: np.ndarray) -> np.ndarray:
    import numpy as np

    f = frame.astype(np.float32)
    y = 0.2126 * f[..., 0] + 0.7152 * f[..., 1] + 0.0722 * f[..., 2]
    return np.clip(np.rint(y / 257.0), 0, 255).astype(np.uint8)


def _warp(frame: np.ndarray, flow: np.ndarray, amount: float) -> np.ndarray:
    """Sample ``frame`` at p - amount * flow(p) (backward warp), float32."""
    import cv2
    import numpy as np

    h, w = flow.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    mx = gx - amount * flow[..., 0]
    my = gy - amount * flow[..., 1]
    src = frame.astype(np.float32)
    return cv2.remap(src, mx, my, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def mc_interpolate(a: np.ndarray, b: np.ndarray, w: float) -> np.ndarray:
    """The uint16 RGB frame ``w`` of the way (0..1) from ``a`` to ``b``, motion-compensated."""
    import cv2
    import numpy as np

    ya, yb = _luma8(a), _luma8(b)
    # flow_ab(p): where the content at p in a is in b; an object at p at time w came from
    # p - w * flow (in a), and goes to p + (1 - w) * flow (in b). Flows are evaluated at p (the
    # usual approximation for smooth motion).
    flow_ab = cv2.calcOpticalFlowFarneback(ya, yb, None, *_FARNEBACK)
    flow_ba = cv2.calcOpticalFlowFarneback(yb, ya, None, *_FARNEBACK)
    from_a = _warp(a, flow_ab, w)
    from_b = _warp(b, flow_ba, 1.0 - w)
    out = from_a * np.float32(1.0 - w) + from_b * np.float32(w)
    return np.clip(np.rint(out), 0, 65535).astype(np.uint16)
