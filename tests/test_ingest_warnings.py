"""Ingest warnings (a declared field order the picture contradicts) become build events and are
printed by the CLI."""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING, Any

import pytest
from buildkit import cli

from restoro.plan.build import Builder, BuildOptions
from restoro.plan.workspace import Workspace

if TYPE_CHECKING:
    from pathlib import Path

MANIFEST = """\
restoro: 1
project: warn
sources:
  tape:
    path: media/source.mkv
    field_order: bff
pipelines:
  main:
    - {stage: ingest}
titles:
  ep1:
    source: tape
    pipeline: main
    shots: {detector: content, threshold: 27, min_frames: 4}
deliverables:
  master: {kind: prores, profile: 422hq, raster: 320x240, fit: pillarbox}
"""


@pytest.fixture
def contradicted(tmp_path: Path, interlaced_source: Path) -> Path:
    """A top-field-first source whose manifest declares bottom field first."""
    (tmp_path / "media").mkdir()
    shutil.copy(interlaced_source, tmp_path / "media" / "source.mkv")
    manifest = tmp_path / "restoro.yaml"
    manifest.write_text(MANIFEST, encoding="utf-8")
    return manifest


@pytest.mark.slow
def test_field_order_contradiction_is_a_build_event_and_printed(contradicted: Path) -> None:
    events: list[dict[str, Any]] = []
    ws = Workspace(contradicted)
    try:
        b = Builder(ws, BuildOptions(targets=["ep1"]))
        b.events.subscribe(events.append)
        b.build()
    finally:
        ws.close()
    warnings = [e for e in events if e["event"] == "warning"]
    assert len(warnings) == 1, warnings
    w = warnings[0]
    assert w["title"] == "ep1"
    assert "declared bff but the picture says tff" in w["message"]
    # after the analysis phase, before the shots phase
    order = [e["event"] for e in events]
    phases = [i for i, e in enumerate(events) if e["event"] == "phase"]
    assert phases[0] < order.index("warning") < phases[1]

    # A cached build still warns: the evidence has not changed. Quiet (non-TTY) CLI: stderr.
    res = cli("build", "ep1", cwd=contradicted.parent)
    assert res.returncode == 0, res.stderr
    assert "warning: ep1: the field order is declared bff but the picture says tff" in res.stderr
    res = cli("build", "ep1", "--json", cwd=contradicted.parent)
    assert '"event":"warning"' in res.stdout
