"""Fidelity: the output scaled back to the source raster against the ingested frames.

PSNR and SSIM on luma, per frame; the shot's PSNR comes from its mean squared error. A stage that
invents detail (a hallucinating model, far too much grain) pulls the PSNR down: this is the
hallucination guard. The worst frames are kept for the report's crops.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from pydantic import Field

if TYPE_CHECKING:
    import numpy as np

from restoro.qc.base import Check, CheckParams, CheckResult, Finding, FramePair, rnd


class FidelityParams(CheckParams):
    min_psnr: float = Field(25.0, description="Minimum shot PSNR (dB) against the source.")
    error: bool = Field(True, description="A shot below min_psnr fails the build.")


def psnr(mse: float) -> float:
    import numpy as np

    return 99.0 if mse <= 1e-10 else min(99.0, 10.0 * float(np.log10(1.0 / mse)))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM of two luma images in [0, 1] (Gaussian window, sigma 1.5)."""
    import cv2
    import numpy as np

    c1, c2 = 0.01**2, 0.03**2

    def blur(x: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(x, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)

    mu_a, mu_b = blur(a), blur(b)
    saa = blur(a * a) - mu_a * mu_a
    sbb = blur(b * b) - mu_b * mu_b
    sab = blur(a * b) - mu_a * mu_b
    num = (2 * mu_a * mu_b + c1) * (2 * sab + c2)
    den = (mu_a * mu_a + mu_b * mu_b + c1) * (saa + sbb + c2)
    return float(np.mean(num / den))


class Fidelity(Check):
    id: ClassVar[str] = "fidelity"
    version: ClassVar[int] = 1
    severity: ClassVar = "error"
    Params: ClassVar = FidelityParams

    def __init__(self, params: CheckParams | None = None) -> None:
        super().__init__(params)
        self.frames: list[int] = []
        self.mse: list[float] = []
        self.ssim: list[float] = []

    def update(self, f: FramePair) -> None:
        import numpy as np

        d = f.out_y - f.src_y
        self.frames.append(f.frame)
        self.mse.append(float(np.mean(d * d)))
        self.ssim.append(ssim(f.out_y, f.src_y))

    def finish(self) -> CheckResult:
        import numpy as np

        p = self.params
        assert isinstance(p, FidelityParams)
        if not self.frames:
            return CheckResult()
        per = [psnr(m) for m in self.mse]
        shot = psnr(float(np.mean(self.mse)))
        order = sorted(range(len(per)), key=lambda i: (per[i], i))[:3]
        worst = [self.frames[i] for i in order]
        res = CheckResult(
            metrics={
                "psnr": rnd(shot, 2),
                "psnr_min": rnd(min(per), 2),
                "ssim": rnd(float(np.mean(self.ssim))),
                "ssim_min": rnd(min(self.ssim)),
                "worst_frames": worst,
            },
            series={"psnr": [rnd(x, 2) for x in per], "ssim": [rnd(x) for x in self.ssim]},
        )
        if shot < p.min_psnr:
            res.findings.append(
                Finding(
                    self.id,
                    "error" if p.error else "warning",
                    f"PSNR {shot:.1f} dB against the source is below {p.min_psnr:g} dB "
                    f"(worst frame {worst[0]}, {per[order[0]]:.1f} dB): "
                    "the chain changes the picture too much",
                    frames=worst,
                    value=rnd(shot, 2),
                )
            )
        return res
