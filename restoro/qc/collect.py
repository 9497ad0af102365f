"""Gather a build's QC results into report rows: one per shot and one per deliverable."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from restoro.qc.verdict import findings

if TYPE_CHECKING:
    from restoro.plan.build import Builder

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


def _image(res: Any, name: str) -> str | None:
    return res.outputs[name].digest if res is not None and name in res.outputs else None


def collect(b: Builder) -> tuple[list[ShotRow], list[DeliverableRow]]:
    """The rows of a build that ran (or found cached) its QC nodes."""
    from restoro.plan.nodes import title_timecode

    ws = b.ws
    shots: list[ShotRow] = []
    for title, entries in b._resolved.items():
        src = ws.sources[ws.manifest.titles[title].source]
        for shot, _final, rs in entries:
            res = b.qc_results.get(f"{shot.id}/qc")
            if res is None:
                continue
            meta = res.meta
            checks = meta.get("checks", {})
            imgs = b.qc_results.get(f"{shot.id}/qc-images")
            shots.append(
                ShotRow(
                    id=shot.id,
                    title=title,
                    start=shot.start,
                    end=shot.end,
                    timecode=title_timecode(src, shot),
                    tags=list(rs.tags),
                    pipeline=rs.pipeline,
                    stages=[st.stage for st in rs.stages],
                    metrics={c: v.get("metrics", {}) for c, v in checks.items()},
                    series={c: v.get("series", {}) for c, v in checks.items()},
                    findings=findings(meta),
                    output=res.key_json["inputs"]["output"],
                    thumb=_image(imgs, "thumb"),
                    worst=_image(imgs, "worst"),
                    worst_frame=meta.get("worst_frame"),
                )
            )
    delivs = [
        DeliverableRow(
            nid.removesuffix("/qc"),
            res.meta.get("metrics", {}),
            res.meta.get("findings", []),
            kind=res.meta.get("kind", "movie"),
        )
        for nid, res in sorted(b.qc_results.items())
        if nid.endswith("/qc") and res.meta.get("scope") == "deliverable"
    ]
    return shots, delivs
