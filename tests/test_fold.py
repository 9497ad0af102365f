"""A filter-only final chain segment folded into the ProRes chunk and the shots' QC: no cache
point, the same master bytes and QC results, and cache points kept wherever something else reads
the final frames."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import av
import pytest
from buildkit import build, cli, executed, json_lines, plan

from restoro.plan.build import Builder, BuildOptions
from restoro.plan.workspace import Workspace

if TYPE_CHECKING:
    from pathlib import Path


def _packets(path: Path) -> list[bytes]:
    with av.open(str(path)) as c:
        return [bytes(p) for p in c.demux(c.streams.video[0]) if p.size]


def _stages(report) -> dict[str, str]:  # noqa: ANN001
    return {r.id: r.stage for r in report.records}


def _unpin(manifest: Path) -> str:
    """Take the fixture's ``cache: true`` off its one stage: a filter-only chain, folded."""
    text = manifest.read_text()
    assert "cache: true, " in text
    manifest.write_text(text.replace("cache: true, ", ""), encoding="utf-8")
    return text.replace("cache: true, ", "")


def _qc_build(manifest: Path, **opts: Any) -> tuple[Any, dict[str, Any]]:
    """A build, and its shots' QC metas by action id."""
    ws = Workspace(manifest)
    try:
        b = Builder(ws, BuildOptions(**opts))
        report = b.build()
        return report, {k: v.meta for k, v in b.qc_results.items() if v.meta["scope"] == "shot"}
    finally:
        ws.close()


@pytest.mark.slow
def test_folded_chunks_and_qc_give_the_unfolded_results(workspace: Path) -> None:
    master = workspace.parent / "out" / "master" / "ep1.mov"
    # The fixture's ``cache: true`` makes the bicubic segment a cache point: the unfolded build.
    workspace.write_text(workspace.read_text() + "qc: {}\n", encoding="utf-8")
    first, first_qc = _qc_build(workspace)
    assert sorted(_stages(first).values()).count("chain") == 3
    assert len(first_qc) == 3
    before = _packets(master)
    _unpin(workspace)
    folded, folded_qc = _qc_build(workspace)
    stages = _stages(folded)
    assert "chain" not in stages.values()  # nothing reads the final frames but chunks and QC
    runs = executed(folded)
    chunks = {i for i, s in stages.items() if s == "prores-chunk"}
    qcs = {i for i, s in stages.items() if s == "qc" and i.count("/") == 1 and "@" in i}
    # The chunks' and shots' QC keys name the extract and the folded stages; their results are
    # the same, so the master (an early cut-off) and its QC are cached.
    assert runs == dict.fromkeys(chunks | qcs, "params-changed") and len(chunks) == len(qcs) == 3
    assert _packets(master) == before
    assert folded_qc == first_qc  # every metric and finding, frame by frame
    again = build(workspace)
    assert again.executed == 0 and again.failed == 0
    assert {r.status for r in plan(workspace).records} == {"cached"}
    # ``restoro qc`` (QC with images) reads the folded frames too: only its thumbnails and
    # crops run, never a chain or a chunk.
    qc = build(workspace, qc=True)
    assert set(executed(qc)) == {i for i, s in _stages(qc).items() if s == "qc-images"}
    assert len(executed(qc)) == 3


@pytest.mark.slow
def test_no_fold_where_the_final_frames_are_read(workspace: Path) -> None:
    text = _unpin(workspace)
    assert build(workspace).failed == 0  # the analysis, for the plans below
    assert "chain" not in _stages(plan(workspace)).values()
    assert "chain" not in _stages(plan(workspace, qc=True)).values()
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
def test_check_reruns_folded_chunks_and_qc_to_the_same_results(workspace: Path) -> None:
    workspace.write_text(_unpin(workspace) + "qc: {}\n", encoding="utf-8")
    report = build(workspace)
    assert report.failed == 0
    assert {"qc", "prores-chunk"} <= {r.stage for r in report.records}
    res = cli("check", "-f", str(workspace), "--sample", "0", "--json")
    assert res.returncode == 0, res.stdout + res.stderr
    checks = [e for e in json_lines(res.stdout) if e["event"] == "check"]
    assert len(checks) == len(report.records)
    assert {c["stage"] for c in checks} == {r.stage for r in report.records}
    assert "chain" not in {c["stage"] for c in checks}
    assert all(c["status"] == "same" for c in checks)
    res = cli("status", "-f", str(workspace), "--json")
    assert res.returncode == 0, res.stderr
    (line,) = [e for e in json_lines(res.stdout) if e["event"] == "status"]
    assert line["up_to_date"] is True
    # A build that also delivers HLS reads the final frames: its chains are not built yet.
    workspace.write_text(
        workspace.read_text().replace(
            "deliverables:\n",
            "deliverables:\n"
            "  web: {kind: hls, ladder: [{codec: h264, height: 180, bitrate: 300k}]}\n",
        ),
        encoding="utf-8",
    )
    res = cli("status", "-f", str(workspace), "--json")
    (line,) = [e for e in json_lines(res.stdout) if e["event"] == "status"]
    assert line["up_to_date"] is False
