"""``restoro check``: cached actions re-run from their keys give the same bytes, and a stage
that does not (an unseeded random source) is named."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, ClassVar

import pytest

from restoro.errors import UsageError
from restoro.plan.build import Builder, BuildOptions
from restoro.plan.check import check_determinism, pick
from restoro.plan.workspace import Workspace
from restoro.stages import registry
from restoro.stages.base import FrameStage, StageDescriptor, StageParams
from tests.buildkit import build, cli, json_lines, plan, store_entries

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    import numpy as np

    from restoro.stages.base import StageContext


class WobbleParams(StageParams):
    amount: int = 64


class Wobble(FrameStage):
    """Adds noise from an unseeded generator: the kind of bug `restoro check` exists for."""

    id: ClassVar[str] = "test-wobble"
    version: ClassVar[int] = 1
    Params: ClassVar[type[StageParams]] = WobbleParams
    descriptor: ClassVar[StageDescriptor] = StageDescriptor(memory_mb=64)

    def process(
        self, frames: Iterator[np.ndarray], params: StageParams, ctx: StageContext
    ) -> Iterator[np.ndarray]:
        import numpy as np

        assert isinstance(params, WobbleParams)
        rng = np.random.default_rng(int.from_bytes(os.urandom(8), "little"))
        for frame in frames:
            noise = rng.integers(0, params.amount, size=frame.shape, dtype=np.uint16)
            yield np.minimum(frame.astype(np.uint32) + noise, 65535).astype(np.uint16)


@pytest.fixture
def wobble() -> Iterator[None]:
    registry.register(Wobble)
    try:
        yield
    finally:
        registry._REGISTRY.pop(Wobble.id, None)


def _check(manifest: Path, **kw: Any) -> Any:
    ws = Workspace(manifest)
    try:
        return check_determinism(Builder(ws, BuildOptions()), **kw)
    finally:
        ws.close()


def test_every_cached_action_rebuilds_to_the_same_bytes(workspace: Path) -> None:
    report = build(workspace)
    assert report.failed == 0
    before = sorted(p.name for p in store_entries(workspace.parent))
    res = cli("check", "-f", str(workspace), "--sample", "0", "--json")
    assert res.returncode == 0, res.stdout + res.stderr
    events = json_lines(res.stdout)
    checks = [e for e in events if e["event"] == "check"]
    assert len(checks) == len(report.records)  # --sample 0: every cached action
    assert {c["stage"] for c in checks} == {r.stage for r in report.records}
    assert all(c["status"] == "same" and c["differing"] == [] for c in checks)
    summary = events[-1]
    assert summary["event"] == "check-summary"
    assert summary["differs"] == [] and summary["checked"] == len(checks)
    # Nothing was written to the store by the re-runs.
    assert sorted(p.name for p in store_entries(workspace.parent)) == before


def test_a_nondeterministic_stage_is_named(workspace: Path, wobble: None) -> None:
    text = workspace.read_text(encoding="utf-8")
    workspace.write_text(
        text.replace(
            "- {stage: upscale, cache: true, model: bicubic, scale: 2}",
            "- {stage: upscale, cache: true, model: bicubic, scale: 2}\n    - {stage: test-wobble}",
        ),
        encoding="utf-8",
    )
    report = build(workspace)
    assert report.failed == 0
    res = _check(workspace, sample=0)
    bad = {c.id for c in res.differing}
    wobbles = {r.id for r in report.records if r.id.endswith("/test-wobble")}
    assert len(wobbles) == 3 and bad == wobbles  # one per shot, and nothing else
    assert all(c.differing == ["frames"] and c.stage == "chain" for c in res.differing)
    # Deterministic actions are not blamed, including the upscale chain segment before the
    # wobble and the ProRes chunks made from the wobbled (cached) frames.
    assert all(c.status == "same" for c in res.checked if c.id not in wobbles)
    assert any(c.id.endswith("/upscale") for c in res.checked)
    assert res.stages("differs") == ["chain"]


def test_sample_covers_every_stage_and_is_repeatable(workspace: Path) -> None:
    assert build(workspace).failed == 0
    report = plan(workspace)  # every action cached now
    stages = {r.stage for r in report.records}
    first = [r.id for r in pick(report.records, len(stages), (), seed=3)]
    again = [r.id for r in pick(report.records, len(stages), (), seed=3)]
    assert first == again
    assert {r.stage for r in report.records if r.id in first} == stages
    only = pick(report.records, 100, ["chain"], seed=0)
    assert only and {r.stage for r in only} == {"chain"}


def test_unknown_stage_is_a_usage_error(workspace: Path) -> None:
    with pytest.raises(UsageError, match="did you mean 'chain'"):
        _check(workspace, stages=["chian"])
    res = cli("check", "-f", str(workspace), "--stage", "chian")
    assert res.returncode == 2
    assert "chian" in res.stderr
