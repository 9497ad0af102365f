"""QC report rows: one per shot and one per deliverable (``restoro.plan.qc.collect`` fills them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# The metrics shown as table columns, in order: (check, metric, label).
COLUMNS = (
    ("fidelity", "psnr", "PSNR dB"),
    ("fidelity", "ssim", "SSIM"),
    ("flicker", "flicker", "flicker"),
    ("combing", "combed_frames", "combed"),
    ("black", "black_frames", "black"),
    ("frozen", "frozen_frames", "frozen"),
    ("banding", "banding", "banding"),
    ("blockiness", "blockiness", "blocks"),
)


def status_of(findings: list[dict[str, Any]]) -> str:
    """``fail`` with an error among ``findings``, ``warn`` with a warning, else ``pass``."""
    sev = {f["severity"] for f in findings}
    return "fail" if "error" in sev else "warn" if "warning" in sev else "pass"


@dataclass
class ShotRow:
    id: str
    title: str
    start: int
    end: int
    timecode: str
    tags: list[str]
    pipeline: str
    stages: list[str]
    metrics: dict[str, dict[str, Any]]
    series: dict[str, dict[str, list[float]]]
    findings: list[dict[str, Any]]
    output: str
    """Digest of the shot's final frames (for variant comparisons)."""
    thumb: str | None = None
    worst: str | None = None
    worst_frame: int | None = None
    images: dict[str, str] = field(default_factory=dict)

    @property
    def status(self) -> str:
        return status_of(self.findings)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "frames": [self.start, self.end],
            "timecode": self.timecode,
            "tags": self.tags,
            "pipeline": self.pipeline,
            "stages": self.stages,
            "status": self.status,
            "metrics": self.metrics,
            "findings": self.findings,
            "worst_frame": self.worst_frame,
            "images": self.images,
        }


@dataclass
class DeliverableRow:
    id: str
    metrics: dict[str, Any]
    findings: list[dict[str, Any]]

    kind: str = ""

    @property
    def status(self) -> str:
        return status_of(self.findings)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "status": self.status,
            "metrics": self.metrics,
            "findings": self.findings,
        }
