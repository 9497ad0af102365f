"""Frozen action specs, their keys, and the reason an action has to run.

An action's key covers exactly: stage id, stage version, params, input digests and tool
fingerprints (``restoro.engine.keys.key_of`` adds the key scheme). Inputs are content digests,
never upstream keys, which gives early cutoff: an upstream re-run that yields the same bytes
leaves everything downstream cached.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from restoro.engine.keys import canonical_json, key_of, key_text

# Reasons, in the order we report them when several fields changed at once.
REASONS = (
    "new",
    "stage-version-changed",
    "tool-changed",
    "model-changed",
    "params-changed",
    "input-changed",
    "output-missing",
    "corrupt",
    "forced",
)


@dataclass(frozen=True)
class ActionSpec:
    """One action, fully resolved: what a worker runs without re-planning."""

    id: str
    """Logical id, stable across edits: ``emissary@01:00:00;00/upscale``, ``emissary/master``."""
    stage: str
    version: int
    params: Mapping[str, Any]
    inputs: Mapping[str, Any]
    """Input name → content digest (or a list of digests). Model inputs are named ``model:…``."""
    tools: Mapping[str, str] = field(default_factory=dict)
    resources: Mapping[str, int] = field(default_factory=lambda: {"cpu": 1})
    title: str = ""
    shot: str = ""
    variant: str | None = None
    frames: int = 0
    """Frames this action processes (for progress and frames/s); 0 when not frame-based."""

    def key_fields(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "version": self.version,
            "params": dict(self.params),
            "inputs": dict(self.inputs),
            "tools": dict(self.tools),
        }

    def key(self) -> tuple[str, dict[str, Any]]:
        return key_of(self.key_fields())

    def key_text(self) -> tuple[str, dict[str, Any], str]:
        """The key, the hashed dict and its canonical JSON text."""
        return key_text(self.key_fields())

    @property
    def ref_id(self) -> str:
        """The id under which the last key of this logical action is remembered."""
        return f"{self.variant or ''}|{self.id}"


def reason_for(
    old: Mapping[str, Any] | None, new: Mapping[str, Any], lookup_status: str, forced: bool
) -> str:
    """Why an action whose key was not a cache hit must run."""
    if forced:
        return "forced"
    if lookup_status == "corrupt":
        return "corrupt"
    if old is None:
        return "new"
    if canonical_json(dict(old)) == canonical_json(dict(new)):
        return "output-missing"
    if old.get("stage") != new.get("stage") or old.get("version") != new.get("version"):
        return "stage-version-changed"
    if _chain_versions(old) != _chain_versions(new):
        return "stage-version-changed"
    if old.get("tools") != new.get("tools"):
        return "tool-changed"
    old_in, new_in = old.get("inputs", {}), new.get("inputs", {})
    model_keys = {k for k in (*old_in, *new_in) if k.startswith("model:")}
    if any(old_in.get(k) != new_in.get(k) for k in model_keys):
        return "model-changed"
    if old.get("params") != new.get("params"):
        return "params-changed"
    return "input-changed"


def _chain_versions(key_json: Mapping[str, Any]) -> list[tuple[Any, Any]]:
    """(stage id, version) of each stage in a fused chain action's params."""
    stages = key_json.get("params", {}).get("stages", [])
    return [(st[0], st[1]) for st in stages] if isinstance(stages, list) else []


def diff_fields(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Field-by-field differences between two key JSONs, as ``path: old → new`` lines."""
    lines: list[str] = []
    for k in sorted(set(old) | set(new)):
        path = f"{prefix}.{k}" if prefix else str(k)
        a, b = old.get(k, "<absent>"), new.get(k, "<absent>")
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            lines.extend(diff_fields(a, b, path))
        elif a != b:
            lines.append(f"{path}: {_short(a)} → {_short(b)}")
    return lines


def _short(value: Any) -> str:
    text = canonical_json(value) if not isinstance(value, str) else value
    return text if len(text) <= 80 else text[:77] + "..."
