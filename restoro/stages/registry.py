"""The stage registry: built-ins listed explicitly, packs through the ``restoro.stages`` group."""

from __future__ import annotations

import difflib
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from restoro.errors import RestoroError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from restoro.stages.base import FrameStage, Stage, StageParams

_REGISTRY: dict[str, type[Stage]] = {}
_loaded = False


class DuplicateStage(RestoroError):
    code = "E720"


def register(stage: type[Stage]) -> type[Stage]:
    """Add a stage class; a second stage with the same id is refused."""
    if stage.id in _REGISTRY and _REGISTRY[stage.id] is not stage:
        raise DuplicateStage(
            f"stage id {stage.id!r} is registered twice "
            f"({_REGISTRY[stage.id].__module__} and {stage.__module__})",
            hint="rename one of the stages",
        )
    _REGISTRY[stage.id] = stage
    return stage


_BUILTINS: dict[str, tuple[str, str]] = {
    "ingest": ("restoro.stages.ingest", "Ingest"),
    "deblock": ("restoro.stages.deblock", "Deblock"),
    "denoise": ("restoro.stages.denoise", "Denoise"),
    "upscale": ("restoro.stages.upscale", "Upscale"),
    "temporal": ("restoro.stages.temporal", "Temporal"),
    "sharpen": ("restoro.stages.sharpen", "Sharpen"),
    "grain": ("restoro.stages.grain", "Grain"),
    "grade": ("restoro.stages.grade", "Grade"),
}
"""Built-in stage id → (module, class). A built-in is imported when asked for (a build imports
the stages its manifest uses, not all eight: ~5 ms of a no-op's start)."""


def _builtin(stage_id: str) -> type[Stage]:
    import importlib

    module, name = _BUILTINS[stage_id]
    stage: type[Stage] = getattr(importlib.import_module(module), name)
    if _REGISTRY.get(stage_id) is not stage:
        register(stage)  # DuplicateStage if something else took the id first
    return stage


def _load() -> None:
    """Register the packs' stages (the ``restoro.stages`` entry points), once. A pack stage
    with a built-in's id is refused, as when the built-ins were all registered first."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for ep in entry_points(group="restoro.stages"):
        stage = ep.load()
        if getattr(stage, "id", None) in _BUILTINS:
            _builtin(stage.id)
        register(stage)


def _load_all() -> None:
    _load()
    for stage_id in _BUILTINS:
        _builtin(stage_id)


def all_stages() -> dict[str, type[Stage]]:
    _load_all()
    return dict(sorted(_REGISTRY.items()))


def get(stage_id: str) -> type[Stage] | None:
    _load()
    stage = _REGISTRY.get(stage_id)
    if stage is None and stage_id in _BUILTINS:
        stage = _builtin(stage_id)
    return stage


def frame_stage(stage_id: str, raw: Mapping[str, Any]) -> tuple[FrameStage, StageParams]:
    """The frame stage ``stage_id`` of a frozen spec and its checked params (StageError for an
    id that names no frame stage)."""
    from restoro.errors import StageError
    from restoro.stages.base import FrameStage

    cls = get(stage_id)
    if cls is None or not issubclass(cls, FrameStage):
        raise StageError(f"stage {stage_id!r} is not a frame stage")
    stage = cls()
    params = cls.parse_params(raw)
    stage.check(params)
    return stage, params


def suggest(stage_id: str) -> str | None:
    """The closest registered id, for "did you mean" hints."""
    _load_all()
    hits = difflib.get_close_matches(stage_id, list(_REGISTRY), n=1)
    return hits[0] if hits else None
