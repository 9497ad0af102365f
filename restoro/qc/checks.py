"""The built-in checks, and their parameters as a manifest's ``qc:`` section sets them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from restoro.qc.banding import Banding
from restoro.qc.black import Black
from restoro.qc.blockiness import Blockiness
from restoro.qc.combing import Combing
from restoro.qc.fidelity import Fidelity
from restoro.qc.flicker import Flicker
from restoro.qc.frozen import Frozen

if TYPE_CHECKING:
    from collections.abc import Collection

    from restoro.qc.base import Check


class QcConfig(Protocol):
    """The thresholds of a manifest's ``qc:`` section (``restoro.manifest.model.QcConfig``,
    a layer above this one)."""

    @property
    def fidelity_min_psnr(self) -> float | None: ...
    @property
    def max_flicker(self) -> float | None: ...
    @property
    def max_black_frames(self) -> int | None: ...
    @property
    def max_frozen_frames(self) -> int | None: ...
    @property
    def fail_on_combing(self) -> bool | None: ...
    @property
    def skip(self) -> Collection[str]: ...


SHOT_CHECKS: tuple[type[Check], ...] = (
    Fidelity,
    Black,
    Frozen,
    Combing,
    Flicker,
    Banding,
    Blockiness,
)


def shot_check_params(cfg: QcConfig) -> list[list[Any]]:
    """``[[id, version, params], ...]`` of every per-shot check to run; ``params`` holds only
    what the manifest sets (the rest are the check's defaults, which its version stands for:
    a check bumps its version when a default changes), so QC keys stay small."""
    overrides: dict[str, dict[str, Any]] = {
        "fidelity": {"min_psnr": cfg.fidelity_min_psnr},
        "flicker": {"max_flicker": cfg.max_flicker},
        "black": {"max_frames": cfg.max_black_frames},
        "frozen": {"max_frames": cfg.max_frozen_frames},
        "combing": {"error": cfg.fail_on_combing},
    }
    out: list[list[Any]] = []
    for cls in SHOT_CHECKS:
        if cls.id in cfg.skip:
            continue
        given = {k: v for k, v in overrides.get(cls.id, {}).items() if v is not None}
        if given:  # refuse a bad value here, not in the action (defaults are valid)
            cls.Params.model_validate(given)
        out.append([cls.id, cls.version, given])
    return out


def make_checks(spec: list[list[Any]]) -> list[Check]:
    by_id = {c.id: c for c in SHOT_CHECKS}
    return [by_id[cid](by_id[cid].Params.model_validate(p)) for cid, _v, p in spec]
