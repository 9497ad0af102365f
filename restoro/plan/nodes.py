"""The shared pieces of the node makers: ``Node``, ``Shot``, results, tool fingerprints.

A node is a function from its inputs' results to a frozen ``ActionSpec``; the makers that build
them are listed in ``restoro.plan.makers`` (title analysis, shot chains, audio, deliverables, QC).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from restoro.engine.graph import ActionSpec
    from restoro.engine.store import ActionResult
    from restoro.manifest.resolve import ResolvedShot, ResolvedStage

Results = Mapping[str, "ActionResult"]


@dataclass
class Node:
    id: str
    deps: tuple[str, ...]
    make: Callable[[Results], ActionSpec]
    kind: str = "shot"  # "title" | "shot" | "deliver"
    title: str = ""
    shot: str = ""
    resources: Mapping[str, int] = field(default_factory=lambda: {"cpu": 1})
    memory_mb: int = 0
    """Memory the action may use, the largest its stages' descriptors declare (0: none
    declared). The Ray executor reserves it per task; it never enters the action key."""


@dataclass(frozen=True)
class Shot:
    """A shot: title frames [start, end) (0 = the title's first frame, at the title's rate);
    ``source_start`` is the source frame behind its first frame, ``frame_rate`` the title's."""

    id: str
    start: int
    end: int
    source_start: int = 0
    frame_rate: str = ""


ShotEntry = tuple[Shot, str, "ResolvedShot"]
"""A shot, the id of the node holding its final frames, and its resolved chain."""


_TOOLS: dict[str, str] = {}


def tool_fingerprints(names: tuple[str, ...] | list[str]) -> dict[str, str]:
    """Fingerprints of the external tools an action depends on (cached per process)."""
    if len(names) == 1 and names[0] in _TOOLS:  # (most actions: ffmpeg alone, known)
        return {names[0]: _TOOLS[names[0]]}
    out: dict[str, str] = {}
    for name in sorted(set(names)):
        if name not in _TOOLS:
            if name == "ffmpeg":
                from restoro.media.ffmpeg import ffmpeg_fingerprint

                _TOOLS[name] = ffmpeg_fingerprint()
            elif name == "scenedetect":
                # The installed version, without importing it (cv2 + av + numpy: ~0.2 s).
                _TOOLS[name] = f"scenedetect {installed_version('scenedetect')}"
            elif name == "nnedi-weights":
                from restoro.stages.ingest import nnedi_fingerprint

                _TOOLS[name] = nnedi_fingerprint()
            else:
                raise KeyError(f"unknown tool {name!r}")
        out[name] = _TOOLS[name]
    return out


def installed_version(name: str) -> str:
    """``importlib.metadata.version(name)``, read from the ``Version:`` line of the
    distribution's metadata headers: what ``version`` returns, without the email parser it
    imports (~5 ms of a no-op build, which keys its shot detection by this version)."""
    from importlib.metadata import distribution

    dist = distribution(name)  # PackageNotFoundError as from ``version``
    text = dist.read_text("METADATA") or dist.read_text("PKG-INFO") or ""
    for line in text.splitlines():
        if not line.strip():
            break  # the end of the headers
        if line.startswith("Version:"):
            return line[len("Version:") :].lstrip(" \t")
    return dist.version  # (no plain Version line: let the email parser read it)


def reset_tool_cache() -> None:
    _TOOLS.clear()


def digest_of(res: ActionResult, name: str) -> str:
    """The content digest of one named output of an action result."""
    return res.outputs[name].digest


def describe_stage(st: ResolvedStage) -> dict[str, Any]:
    """A stage as provenance records it; ``ai`` marks model-based processing."""
    from restoro.stages.upscale import CLASSICAL_KERNELS

    params = st.params.model_dump(mode="json")
    model = params.get("model")
    return {
        "stage": st.stage,
        "params": params,
        "ai": bool(model) and model not in CLASSICAL_KERNELS,
    }
