"""A filter-only final chain segment folded into the ProRes chunk (``--no-qc`` builds): no cache
point, the same master bytes, and cache points kept wherever something reads the final frames."""

from __future__ import annotations

from typing import TYPE_CHECKING

import av
import pytest
from buildkit import build, cli, executed, json_lines, plan

if TYPE_CHECKING:
    from pathlib import Path


def _packets(path: Path) -> list[bytes]:
    with av.open(str(path)) as c:
        return [bytes(p) for p in c.demux(c.streams.video[0]) if p.size]


def _stages(report) -> dict[str, str]:  # noqa: ANN001
    return {r.id: r.stage for r in report.records}


@pytest.mark.slow
def test_folded_chunks_give_the_unfolded_master(workspace: Path) -> None:
    master = workspace.parent / "out" / "master" / "ep1.mov"
    first = build(workspace)  # QC not off: the bicubic chains are cache points
    assert sorted(_stages(first).values()).count("chain") == 3
    before = _packets(master)
    folded = build(workspace, qc=False)
    stages = _stages(folded)
    assert "chain" not in stages.values()  # nothing reads the final frames but the chunks
    runs = executed(folded)
    chunks = {i for i, s in stages.items() if s == "prores-chunk"}
    # The chunks' keys name the extract and the folded stages; their bytes are the same, so
    # the master is an early cut-off (cached).
    assert runs == dict.fromkeys(chunks, "params-changed") and len(chunks) == 3
    assert _packets(master) == before
    again = build(workspace, qc=False)
    assert again.executed == 0 and again.failed == 0
    # A plan of the same (--no-qc) build is all cached; QC back on brings the chains back.
    assert {r.status for r in plan(workspace, qc=False).records} == {"cached"}
    assert sorted(_stages(plan(workspace)).values()).count("chain") == 3


@pytest.mark.slow
def test_no_fold_where_the_final_frames_are_read(workspace: Path) -> None:
    text = workspace.read_text()
    assert build(workspace, qc=False).failed == 0  # the analysis, for the plans below
    assert "chain" not in _stages(plan(workspace, qc=False)).values()
    # A streaming deliverable reads the shots' final frames: the chains stay cache points.
    workspace.write_text(
        text + "  web: {kind: hls, ladder: [{codec: h264, height: 180, bitrate: 300k}]}\n",
        encoding="utf-8",
    )
    assert sorted(_stages(plan(workspace, qc=False)).values()).count("chain") == 3
    # A model, a seed or ``cache: true`` in the segment keeps it too.
    workspace.write_text(text.replace("scale: 2}", "scale: 2, cache: true}"), encoding="utf-8")
    assert sorted(_stages(plan(workspace, qc=False)).values()).count("chain") == 3
    # A shot asked for by name keeps its chain (restoro compare reads its final frames).
    workspace.write_text(text, encoding="utf-8")
    report = plan(workspace, qc=False)
    shot = next(r.shot for r in report.records if r.shot)
    assert sorted(_stages(plan(workspace, qc=False, targets=[shot])).values()).count("chain") == 1


@pytest.mark.slow
def test_check_reruns_folded_chunks_to_the_same_bytes(workspace: Path) -> None:
    report = build(workspace, qc=False)
    assert report.failed == 0
    res = cli("check", "-f", str(workspace), "--no-qc", "--sample", "0", "--json")
    assert res.returncode == 0, res.stdout + res.stderr
    checks = [e for e in json_lines(res.stdout) if e["event"] == "check"]
    assert len(checks) == len(report.records)
    assert {c["stage"] for c in checks} == {r.stage for r in report.records}
    assert "chain" not in {c["stage"] for c in checks}
    assert all(c["status"] == "same" for c in checks)
    # The status of that build is up to date; the default build's (with chains) is not.
    for flags, fresh in ((["--no-qc"], True), ([], False)):
        res = cli("status", "-f", str(workspace), *flags, "--json")
        assert res.returncode == 0, res.stderr
        (line,) = [e for e in json_lines(res.stdout) if e["event"] == "status"]
        assert line["up_to_date"] is fresh
