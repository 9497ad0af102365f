"""The uniform shape of a QC check, and the frames a per-shot check sees.

A per-shot check is fed one ``FramePair`` at a time (``update``) and then asked for its
``CheckResult`` (``finish``); ``run`` does both over any iterable, so a check can be used on its
own, while the QC action feeds every check from a single decode of the shot.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from collections.abc import Iterable

    import numpy as np

Severity = Literal["info", "warning", "error"]
Scope = Literal["shot", "deliverable"]


class CheckParams(BaseModel):
    """A check's parameters (thresholds); part of the QC action's key."""

    # Validators are built on first use: a cached build only reads the checks' ids and
    # versions, and importing every check then costs no schema building.
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)


@dataclass
class Finding:
    check: str
    severity: Severity
    message: str
    frames: list[int] = field(default_factory=list)
    """Title frames the finding is about (0 = the title's first frame)."""
    value: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "severity": self.severity,
            "message": self.message,
            "frames": self.frames,
            "value": self.value,
        }


@dataclass
class CheckResult:
    metrics: dict[str, Any] = field(default_factory=dict)
    series: dict[str, list[float]] = field(default_factory=dict)
    """Per-frame values along the shot, for the report's plots."""
    findings: list[Finding] = field(default_factory=list)


@dataclass
class FramePair:
    """One frame of a shot: the output scaled back to the source raster and the ingested
    frame, as luma in [0, 1] (float32, H×W), plus the output's RGB (uint8) at that raster."""

    frame: int
    """Title frame number."""
    out_y: np.ndarray
    src_y: np.ndarray
    out_rgb: np.ndarray | None = None
    src_rgb: np.ndarray | None = None


class Check:
    id: ClassVar[str]
    version: ClassVar[int] = 1
    scope: ClassVar[Scope] = "shot"
    severity: ClassVar[Severity] = "warning"
    """Severity of a finding when the manifest sets no threshold that makes it an error."""
    Params: ClassVar[type[CheckParams]] = CheckParams

    def __init__(self, params: CheckParams | None = None) -> None:
        self.params = params if params is not None else self.Params.model_validate({})

    def update(self, f: FramePair) -> None:  # pragma: no cover - per-shot checks override
        raise NotImplementedError

    def finish(self) -> CheckResult:  # pragma: no cover - per-shot checks override
        raise NotImplementedError

    def run(self, frames: Iterable[FramePair]) -> CheckResult:
        for f in frames:
            self.update(f)
        return self.finish()


def runs(frames: list[int]) -> list[tuple[int, int]]:
    """Consecutive frame numbers grouped as inclusive (first, last) runs."""
    out: list[tuple[int, int]] = []
    for f in frames:
        if out and f == out[-1][1] + 1:
            out[-1] = (out[-1][0], f)
        else:
            out.append((f, f))
    return out


def frames_text(frames: list[int]) -> str:
    parts = [f"{a}" if a == b else f"{a}-{b}" for a, b in runs(frames)]
    return ", ".join(parts[:8]) + (" …" if len(parts) > 8 else "")


def rnd(x: float, nd: int = 4) -> float:
    """Rounded, finite (JSON-safe, byte-stable across runs)."""
    x = float(x)
    return round(x, nd) if math.isfinite(x) else 99.0
