"""The stage registry: built-ins listed explicitly, packs through the ``restoro.stages`` group."""

from __future__ import annotations

import difflib
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from restoro.errors import RestoroError

if TYPE_CHECKING:
    from restoro.stages.base import Stage

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


def _load() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    from restoro.stages.deblock import Deblock
    from restoro.stages.denoise import Denoise
    from restoro.stages.grade import Grade
    from restoro.stages.grain import Grain
    from restoro.stages.ingest import Ingest
    from restoro.stages.sharpen import Sharpen
    from restoro.stages.temporal import Temporal
    from restoro.stages.upscale import Upscale

    for builtin in (Ingest, Deblock, Denoise, Upscale, Temporal, Sharpen, Grain, Grade):
        register(builtin)
    for ep in entry_points(group="restoro.stages"):
        register(ep.load())


def all_stages() -> dict[str, type[Stage]]:
    _load()
    return dict(sorted(_REGISTRY.items()))


def get(stage_id: str) -> type[Stage] | None:
    _load()
    return _REGISTRY.get(stage_id)


def suggest(stage_id: str) -> str | None:
    """The closest registered id, for "did you mean" hints."""
    _load()
    hits = difflib.get_close_matches(stage_id, list(_REGISTRY), n=1)
    return hits[0] if hits else None
