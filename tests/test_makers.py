"""Node makers are listed in one place (restoro/plan/makers.py), called phase by phase and title
by title from the builder's walk: a new maker is one module with ``make(walk, title)`` and one
entry in the list."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

import pytest
from buildkit import build

from restoro.plan import makers

if TYPE_CHECKING:
    from pathlib import Path

SEEN: list[tuple[str, str, list[str], list[str]]] = []


def make(walk: Any, title: str) -> list[Any]:
    """A maker of this test module: records what the walk holds when the qc phase runs."""
    SEEN.append(("qc", title, [s.id for s, _f, _rs in walk.shots[title]], walk.audio[title]))
    return []


def test_every_listed_maker_has_make_and_a_known_phase() -> None:
    phases = [p for p, _m in makers.MAKERS]
    assert phases == ["analysis", "ingest", "shots", "deliver", "deliver", "qc"]
    for phase, module in makers.MAKERS:
        assert phase in makers.PHASES
        assert callable(importlib.import_module(module).make)
    with pytest.raises(KeyError, match="unknown phase 'render'"):
        makers.make("render", None)  # type: ignore[arg-type]


@pytest.mark.slow
def test_a_listed_maker_is_called_per_title_after_the_earlier_phases(
    workspace: Path, monkeypatch: Any
) -> None:
    monkeypatch.setattr(makers, "MAKERS", (*makers.MAKERS, ("qc", __name__)))
    SEEN.clear()
    report = build(workspace)
    assert report.failed == 0
    assert len(SEEN) == 1
    phase, title, shots, audio = SEEN[0]
    assert (phase, title) == ("qc", "ep1")
    chains = {r.id.removesuffix("/upscale") for r in report.records if r.id.endswith("/upscale")}
    assert len(shots) == 3 and set(shots) == chains
    assert audio == ["ep1/audio/0"]
