"""A title's output rate may come from its deliverables; deliverables must agree on it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import av
from buildkit import build, cli

if TYPE_CHECKING:
    from pathlib import Path


def test_deliverable_frame_rate_sets_the_title_rate(workspace: Path) -> None:
    workspace.write_text(
        workspace.read_text().replace("fit: pillarbox}", "fit: pillarbox, frame_rate: 24000/1001}")
    )
    report = build(workspace)
    assert report.failed == 0
    with av.open(str(workspace.parent / "out" / "master" / "ep1.mov")) as c:
        v = c.streams.video[0]
        assert str(v.average_rate) == "24000/1001"
        # 36 source frames at 30000/1001 last 1.2 s: 29 frames at 24000/1001 (28.8, rounded).
        assert v.frames == 29


def test_deliverables_asking_for_different_rates_is_a_manifest_error(workspace: Path) -> None:
    text = workspace.read_text().replace(
        "fit: pillarbox}", "fit: pillarbox, frame_rate: 24000/1001}"
    )
    text += "  master2: {kind: prores, raster: 640x360, frame_rate: 25}\n"
    workspace.write_text(text)
    res = cli("build", "-f", str(workspace))
    assert res.returncode == 2, res.stderr
    assert "error[E235]" in res.stderr and "master2" in res.stderr
    assert "set frame_rate on titles.ep1" in res.stderr
