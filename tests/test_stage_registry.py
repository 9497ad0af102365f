"""The stage registry imports a built-in stage when it is asked for, and still refuses a pack
stage (an entry point) that takes a built-in's id."""

from __future__ import annotations

import subprocess
import sys

import pytest

from restoro.stages import registry


def test_every_builtin_is_listed_under_its_own_id() -> None:
    stages = registry.all_stages()
    for stage_id in registry._BUILTINS:
        assert stages[stage_id].id == stage_id
        assert registry.get(stage_id) is stages[stage_id]
    assert registry.get("no-such-stage") is None


def test_a_build_imports_only_the_stages_it_asks_for() -> None:
    code = (
        "import sys; from restoro.stages import registry; registry.get('upscale'); "
        "print(sorted(m for m in sys.modules if m.startswith('restoro.stages.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == (
        "['restoro.stages.base', 'restoro.stages.registry', 'restoro.stages.upscale']"
    )


class _EntryPoint:
    def __init__(self, stage: type) -> None:
        self.stage = stage

    def load(self) -> type:
        return self.stage


def test_a_pack_stage_with_a_builtin_id_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    class Imposter:
        id = "grain"
        __module__ = "some_pack.stages"

    monkeypatch.setattr(registry, "_REGISTRY", {})
    monkeypatch.setattr(registry, "_loaded", False)
    monkeypatch.setattr(registry, "entry_points", lambda group: [_EntryPoint(Imposter)])
    with pytest.raises(registry.DuplicateStage, match="restoro.stages.grain and some_pack"):
        registry.get("upscale")
