"""``restoro qc``: the report's JSON and HTML, variants side by side, the CLI's exit statuses,
and the page in headless Chromium (no console errors; the screenshot shows the table and a
plot)."""

from __future__ import annotations

import json
import subprocess
from typing import TYPE_CHECKING

import numpy as np
import pytest
from buildkit import cli, json_lines
from test_qc_build import make_ws

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture(scope="module")
def reported(tmp_path_factory: pytest.TempPathFactory, progressive_source: Path) -> Path:
    """A workspace with a hallucinating shot, built, and reported against variant clean."""
    tmp = tmp_path_factory.mktemp("qcreport")
    overrides = "    overrides:\n      - {shots: ['ep1@00:00:00:12'], pipeline: hallucinate}\n"
    m = make_ws(tmp, progressive_source, overrides=overrides)
    built = cli("build", "-f", str(m), "--json")
    assert built.returncode == 1, built.stderr
    events = json_lines(built.stdout)
    assert events[-1]["event"] == "summary" and events[-1]["failed"] == 0
    (qc,) = [e for e in events if e["event"] == "qc"]
    assert qc["checked"] == 4 and qc["failing"] == ["ep1@00:00:00:12"]
    assert "error[E800]" in built.stderr and "ep1@00:00:00:12: fidelity" in built.stderr
    assert cli("build", "-f", str(m), "--no-qc").returncode == 0
    res = cli("qc", "-f", str(m), "--compare", "clean")
    assert res.returncode == 1, res.stderr  # the report is written, QC still fails
    assert "QC report:" in res.stdout
    return tmp / "out" / "qc"


@pytest.mark.slow
def test_report_json_and_files(reported: Path) -> None:
    data = json.loads((reported / "report.json").read_text())
    assert data["variant"] is None and data["summary"]["shots"] == 3
    assert data["summary"]["fail"] == 1
    by_id = {s["id"]: s for s in data["shots"]}
    bad = by_id["ep1@00:00:00:12"]
    assert bad["status"] == "fail" and bad["tags"] == [] and bad["pipeline"] == "hallucinate"
    assert bad["metrics"]["fidelity"]["psnr"] < 25
    assert 12 <= bad["worst_frame"] < 24
    for s in data["shots"]:
        for rel in s["images"].values():
            assert (reported / rel).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert all((reported / p).exists() for p in data["plots"].values())
    cmp = data["compare"]
    assert cmp["variant"] == "clean" and set(cmp["shots"]) == set(by_id)
    # clean drops the hallucinated grain (variant params win over overrides); the other shots
    # are the same actions in both variants, so identical.
    psnrs = {sid: c["psnr"] for sid, c in cmp["shots"].items()}
    assert psnrs.pop("ep1@00:00:00:12") < 25 and set(psnrs.values()) == {99.0}
    assert all((reported / c["image"]).exists() for c in cmp["shots"].values())
    # VMAF between the variants: the grained shot scores below the identical ones.
    vmafs = {sid: c["vmaf"]["mean"] for sid, c in cmp["shots"].items()}
    bad_vmaf = vmafs.pop("ep1@00:00:00:12")
    assert min(vmafs.values()) > 95 > bad_vmaf
    assert all(
        c["vmaf"]["min"] <= c["vmaf"]["p5"] <= c["vmaf"]["mean"] for c in cmp["shots"].values()
    )
    html = (reported / "report.html").read_text()
    assert "<table class='sortable' id='shots'>" in html and "img/plot-ep1.png" in html
    assert "VMAF between variants" in html


@pytest.mark.slow
def test_compare_is_cached_as_actions(reported: Path) -> None:
    """A second ``restoro qc --compare`` finds every comparison in the store."""
    from restoro.plan.workspace import Workspace

    manifest = reported.parent.parent / "restoro.yaml"

    def entries() -> dict[str, float]:
        ws = Workspace(manifest)
        try:
            found = [r for r in ws.store.iter_actions() if r.key_json.get("stage") == "qc-compare"]
        finally:
            ws.close()
        assert {tuple(sorted(r.key_json["inputs"])) for r in found} == {("a", "b")}
        return {r.key: r.created for r in found}

    first = entries()
    assert len(first) == 3
    before = json.loads((reported / "report.json").read_text())["compare"]
    assert cli("qc", "-f", str(manifest), "--compare", "clean").returncode == 1
    assert entries() == first  # nothing compared again
    assert json.loads((reported / "report.json").read_text())["compare"] == before


@pytest.mark.slow
def test_report_opens_in_headless_chromium(reported: Path, tmp_path: Path, chromium: Path) -> None:
    import cv2

    exe = str(chromium)
    shot = tmp_path / "shot.png"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run",
             f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1400,1100",
             "--enable-logging=stderr", "--v=0"]  # fmt: skip
    url = (reported / "report.html").as_uri()
    run = subprocess.run([exe, *flags, f"--screenshot={shot}", url], capture_output=True,
                         text=True, timeout=120)  # fmt: skip
    assert shot.exists(), run.stderr[-2000:]
    console = [ln for ln in run.stderr.splitlines() if "CONSOLE" in ln or "Uncaught" in ln]
    assert console == [], console
    # The DOM after scripts ran: the table is there and sorting works without errors.
    dom = subprocess.run([exe, *flags, "--dump-dom", url], capture_output=True, text=True,
                         timeout=120)  # fmt: skip
    assert 'id="shots"' in dom.stdout and dom.stdout.count("<tr class=") >= 3
    img = cv2.imread(str(shot))
    assert img is not None and img.shape[1] >= 1000
    # The table: the red/green status badges; a plot: the plot's blue line pixels.
    b, g, r = (img[..., i].astype(int) for i in range(3))
    red = (r > 180) & (g < 80) & (b < 80)
    green = (g > 100) & (r < 80) & (b < 80)
    blue = (b > 150) & (r < 60) & (g > 60) & (g < 130)
    assert red.sum() > 50 and green.sum() > 50, "status badges not visible"
    rows = np.nonzero(blue.any(axis=1))[0]
    assert rows.size > 20, "no plot line visible"
    # Compare with the plot PNG itself: its line colour is the one found on screen.
    plot = cv2.imread(str(reported / "img" / "plot-ep1.png"))
    pb = (plot[..., 0] > 150) & (plot[..., 2] < 60)
    assert pb.sum() > 20
