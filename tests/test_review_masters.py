"""Approved masters: ``select: approved`` assembles each shot from its approved variant (frame
by frame the variant's own chunk; only the assembly runs), ``fallback``, ``require_approval``,
a changed shot that needs review again, refusals (E270, exit 1, the shots listed, nothing in
out/, other deliverables built), the manifest checks, ``restoro status`` counts and the QC
report's links."""

from __future__ import annotations

import json
import shutil
from typing import TYPE_CHECKING

import av
import pytest
from buildkit import build, cli, executed
from reviewkit import make_review_project

from restoro import review_file as D
from restoro.plan.approvals import ApprovalRefused
from restoro.plan.workspace import Workspace
from restoro.review.outputs import variant_outputs
from restoro.review_links import shot_url

if TYPE_CHECKING:
    from pathlib import Path

SHOTS = ["ep1@00:00:00:00", "ep1@00:00:00:12", "ep1@00:00:00:24"]
SELECT = ", select: approved"


# -- helpers -----------------------------------------------------------------------------------


def frames(path: Path) -> list[bytes]:
    """Every decoded picture's planes, as bytes (exact comparison)."""
    with av.open(str(path)) as c:
        return [b"".join(bytes(p) for p in f.planes) for f in c.decode(video=0)]


def chunk_path(m: Path, variant: str, shot: str) -> Path:
    """The variant's ProRes chunk of ``shot`` in the store (what its own master was made of)."""
    report = build(m, variant=variant)  # all cached: just the records
    rec = next(r for r in report.records if r.id == f"{shot}/master")
    ws = Workspace(m)
    try:
        res = ws.store.lookup(rec.key).result
        assert res is not None
        return ws.store.blob_path(res.outputs["chunk"].digest)
    finally:
        ws.close()


def outputs(m: Path) -> dict[str, dict[str, str | None]]:
    """Shot id → variant label → digest of its cached output."""
    ws = Workspace(m)
    try:
        out: dict[str, dict[str, str | None]] = {}
        for label in ("safe", "clean"):
            for o in variant_outputs(ws, label)["ep1"]:
                out.setdefault(o.shot.id, {})[label] = o.digest
        return out
    finally:
        ws.close()


def approve(
    m: Path, shot: str, variant: str, digest: str | None, decision: str = "approved"
) -> None:
    D.record(
        D.review_path(m),
        D.Entry(
            shot=shot,
            decision=decision,  # type: ignore[arg-type]
            variant=variant,
            digest=digest,
            reviewer="Ada",
            time="2026-12-05T18:00:00Z",
        ),
    )


def project(tmp: Path, built: Path, extra: str = "", *, more: str = "") -> Path:
    """A copy of the built project (both variants built) with the master's ``extra`` keys and
    ``more`` lines appended under deliverables."""
    shutil.copytree(built, tmp, dirs_exist_ok=True)
    m = make_review_project(tmp, built / "media" / "source.mkv", deliverable_extra=extra)
    if more:
        m.write_text(m.read_text() + more)
    return m


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, progressive_source: Path) -> Path:
    """The review project with both variants built (shots and their masters)."""
    root = tmp_path_factory.mktemp("review-built")
    m = make_review_project(root, progressive_source)
    build(m, variant="safe")
    build(m, variant="clean")
    return root


# -- manifest ----------------------------------------------------------------------------------

BAD = """\
restoro: 1
project: t
sources:
  tape: {path: x.mkv}
pipelines:
  main:
    - {stage: ingest}
titles:
  ep1: {source: tape, pipeline: main}
variants:
  base: {params: {}}
  safe: {params: {}}
deliverables:
  a: {kind: prores, raster: 320x240, fallback: safe}
  b: {kind: hls, ladder: [{codec: h264, height: 24, bitrate: 1M}], select: approved, fallback: saef}
  c: {kind: imf, raster: 1920x1080, select: approved, fallback: base, require_approval: true}
  d: {kind: dash, ladder: [{codec: h264, height: 240, bitrate: 1M}], select: everything}
"""


def test_manifest_checks_name_the_line(tmp_path: Path) -> None:
    (tmp_path / "restoro.yaml").write_text(BAD)
    r = cli("validate", "--no-media", cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    err = r.stderr
    assert "restoro.yaml:11:3: error[E222]: a variant cannot be named 'base'" in err
    assert "restoro.yaml:14:38: error[E213]: fallback is used only with select: approved" in err
    assert "restoro.yaml:15:96: error[E220]: unknown variant 'saef'" in err
    assert "did you mean 'safe'?" in err
    assert "restoro.yaml:17:" in err and "select" in err  # 'everything' is no select value
    assert ":16:" not in err  # fallback: base is the build without --variant, and valid
    assert "Traceback" not in err


# -- builds ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_select_approved_takes_each_shot_from_its_variant(tmp_path: Path, built: Path) -> None:
    m = project(tmp_path, built, SELECT)
    digests = outputs(m)
    # Planted: an approval of safe that recorded clean's digest (it approved other frames).
    approve(m, SHOTS[0], "safe", digests[SHOTS[0]]["clean"])
    with pytest.raises(ApprovalRefused, match=f"{SHOTS[0]}  needs review"):
        build(m)
    chosen = {SHOTS[0]: "safe", SHOTS[1]: "clean", SHOTS[2]: "safe"}
    for shot, label in chosen.items():
        approve(m, shot, label, digests[shot][label])
    report = build(m)
    # Both variants were built: every shot and chunk is a cache hit, only the assembly runs.
    assert list(executed(report)) == ["ep1/master"]
    assert {r.id for r in report.records if r.id.startswith(("safe:", "clean:"))} >= {
        f"safe:{SHOTS[0]}/grain",
        f"clean:{SHOTS[1]}/grain",
    }
    got = frames(tmp_path / "out" / "master" / "ep1.mov")
    assert len(got) == 36
    for i, shot in enumerate(SHOTS):
        own = frames(chunk_path(m, chosen[shot], shot))
        other = frames(chunk_path(m, "clean" if chosen[shot] == "safe" else "safe", shot))
        assert got[12 * i : 12 * i + 12] == own, shot
        # The comparison can fail: the other variant's frames of the shot differ everywhere.
        assert all(a != b for a, b in zip(got[12 * i : 12 * i + 12], other, strict=True)), shot
    prov = json.loads((tmp_path / "out" / "master" / "ep1.provenance.json").read_text())
    amounts = [s["stages"][-1]["params"]["amount"] for s in prov["shots"]]
    assert amounts == [0.02, 0.3, 0.02]  # each shot's provenance is its approved variant's
    # Approving shot 2 clean instead: again only the assembly runs.
    approve(m, SHOTS[2], "clean", digests[SHOTS[2]]["clean"])
    again = build(m)
    assert list(executed(again)) == ["ep1/master"]
    got2 = frames(tmp_path / "out" / "master" / "ep1.mov")
    assert got2[:24] == got[:24] and got2[24:] == frames(chunk_path(m, "clean", SHOTS[2]))
    # Every shot approved clean: the very master the clean build made, from the cache.
    approve(m, SHOTS[0], "clean", digests[SHOTS[0]]["clean"])
    assert executed(build(m)) == {}
    clean_master = tmp_path / "out" / "variants" / "clean" / "master" / "ep1.mov"
    assert (tmp_path / "out" / "master" / "ep1.mov").read_bytes() == clean_master.read_bytes()


@pytest.mark.slow
def test_unapproved_shots_refuse_the_master_and_nothing_else(tmp_path: Path, built: Path) -> None:
    more = "  plain: {kind: prores, profile: 422hq, raster: 320x240}\n"
    m = project(tmp_path, built, SELECT, more=more)
    digests = outputs(m)
    approve(m, SHOTS[0], "safe", digests[SHOTS[0]]["safe"])
    approve(m, SHOTS[2], "clean", digests[SHOTS[2]]["clean"], decision="rejected")
    r = cli("build", cwd=tmp_path)
    assert r.returncode == 1, r.stderr
    err = r.stderr
    assert "error[E270]: master not built (select: approved): 2 shots without a valid" in err
    assert f"{SHOTS[1]}  unreviewed" in err and f"{SHOTS[2]}  rejected" in err
    assert SHOTS[0] not in err.split("error[E270]")[1]
    assert "restoro review" in err and "fallback" in err and "Traceback" not in err
    assert "restoro.yaml:22:83: error[E270]" in err  # at the master's select key
    assert not (tmp_path / "out" / "master").exists()
    assert (tmp_path / "out" / "plain" / "ep1.mov").is_file()  # the other deliverable built
    # In-process: the same refusal, a RestoroError with its code.
    with pytest.raises(ApprovalRefused) as exc:
        build(m, targets=["master"])
    assert exc.value.code == "E270" and exc.value.exit_code == 1


@pytest.mark.slow
def test_fallback_fills_unapproved_shots(tmp_path: Path, built: Path) -> None:
    m = project(tmp_path, built, SELECT + ", fallback: safe")
    digests = outputs(m)
    approve(m, SHOTS[1], "clean", digests[SHOTS[1]]["clean"])
    approve(m, SHOTS[2], "clean", digests[SHOTS[2]]["clean"], decision="rejected")
    report = build(m)
    assert list(executed(report)) == ["ep1/master"]
    got = frames(tmp_path / "out" / "master" / "ep1.mov")
    want = [("safe", SHOTS[0]), ("clean", SHOTS[1]), ("safe", SHOTS[2])]
    assert got == [f for label, shot in want for f in frames(chunk_path(m, label, shot))]
    # A shot rejected in the fallback variant itself does not fall back to it.
    approve(m, SHOTS[0], "safe", digests[SHOTS[0]]["safe"], decision="rejected")
    with pytest.raises(ApprovalRefused, match=f"{SHOTS[0]}  rejected"):
        build(m)


@pytest.mark.slow
def test_require_approval_refuses_until_every_shot_is_approved(tmp_path: Path, built: Path) -> None:
    m = project(tmp_path, built, SELECT + ", fallback: safe, require_approval: true")
    digests = outputs(m)
    approve(m, SHOTS[0], "safe", digests[SHOTS[0]]["safe"])
    approve(m, SHOTS[1], "clean", digests[SHOTS[1]]["clean"])
    r = cli("build", "--json", cwd=tmp_path)
    assert r.returncode == 1
    assert "master not built (require_approval): 1 shot without a valid approval" in r.stderr
    assert f"{SHOTS[2]}  unreviewed" in r.stderr
    # Refused before the deliverable's actions ran: no chunk, no master action at all.
    events = [json.loads(x) for x in r.stdout.splitlines() if x.strip()]
    ids = {e["id"] for e in events if e["event"] == "action"}
    assert not any(i.endswith("/master") for i in ids)
    assert not (tmp_path / "out" / "master").exists()
    approve(m, SHOTS[2], "safe", digests[SHOTS[2]]["safe"])
    r = cli("build", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out" / "master" / "ep1.mov").is_file()


@pytest.mark.slow
def test_require_approval_without_select_needs_this_variant(tmp_path: Path, built: Path) -> None:
    m = project(tmp_path, built, ", require_approval: true")
    digests = outputs(m)
    for shot in SHOTS:
        approve(m, shot, "safe", digests[shot]["safe"])
    build(m, variant="safe")  # approved in safe: the safe master builds
    with pytest.raises(ApprovalRefused, match=r"approved: safe \(this build is clean\)"):
        build(m, variant="clean")
    assert not (tmp_path / "out" / "variants" / "clean" / "master" / "ep1.mov").exists() or (
        (tmp_path / "out" / "variants" / "clean" / "master" / "ep1.mov").stat().st_mtime
        == (built / "out" / "variants" / "clean" / "master" / "ep1.mov").stat().st_mtime
    )


@pytest.mark.slow
def test_a_changed_shot_needs_review_again(tmp_path: Path, built: Path) -> None:
    m = project(tmp_path, built, SELECT)
    digests = outputs(m)
    approve(m, SHOTS[0], "safe", digests[SHOTS[0]]["safe"])
    approve(m, SHOTS[1], "clean", digests[SHOTS[1]]["clean"])
    approve(m, SHOTS[2], "safe", digests[SHOTS[2]]["safe"])
    build(m)
    master = tmp_path / "out" / "master" / "ep1.mov"
    before = master.read_bytes()
    status = json.loads(cli("status", "--json", cwd=tmp_path).stdout)
    assert status["review"] == {
        "ep1": {"unreviewed": 0, "approved": 3, "rejected": 0, "needs review": 0}
    }
    # The clean variant changes; its shots are not rebuilt yet: the select build runs the new
    # chain in its review phase, sees another digest than the approved one and refuses.
    m.write_text(m.read_text().replace("amount: 0.3}", "amount: 0.25}"))
    r = cli("build", cwd=tmp_path)
    assert r.returncode == 1, r.stderr
    assert f"{SHOTS[1]}  needs review" in r.stderr and SHOTS[0] not in r.stderr
    assert master.read_bytes() == before  # the earlier master is left as it was
    status = json.loads(cli("status", "--json", cwd=tmp_path).stdout)
    assert status["review"]["ep1"] == {
        "unreviewed": 0,
        "approved": 2,
        "rejected": 0,
        "needs review": 1,
    }
    human = cli("status", cwd=tmp_path).stdout
    assert "review: 0 unreviewed, 2 approved, 0 rejected, 1 needs review" in human
    # Reviewing the new clean shot again lets the master build, from the new frames.
    new = outputs(m)[SHOTS[1]]["clean"]
    assert new is not None and new != digests[SHOTS[1]]["clean"]
    approve(m, SHOTS[1], "clean", new)
    build(m)
    got = frames(master)
    assert got[12:24] == frames(chunk_path(m, "clean", SHOTS[1]))


@pytest.mark.slow
def test_qc_report_links_every_shot_to_its_review_page(
    tmp_path: Path, built: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from restoro.cli.qc_cmd import run_qc_report

    m = project(tmp_path, built, SELECT)
    digests = outputs(m)
    approve(m, SHOTS[1], "clean", digests[SHOTS[1]]["clean"])
    ws = Workspace(m)
    try:
        html_path, json_path, failed = run_qc_report(ws, out=tmp_path / "qc")
    finally:
        ws.close()
    # The master waits for approvals: a warning, no QC failure; the report is written.
    assert failed is None
    assert "warning: master not built (select: approved): 2 shots" in capsys.readouterr().err
    data = json.loads(json_path.read_text())
    assert [s["review"] for s in data["shots"]] == [
        {"status": "unreviewed", "url": shot_url(SHOTS[0])},
        {"status": "approved: clean", "url": shot_url(SHOTS[1])},
        {"status": "unreviewed", "url": shot_url(SHOTS[2])},
    ]
    page = html_path.read_text()
    assert (
        '<a class="review" href="http://127.0.0.1:8765/shots/ep1%4000%3A00%3A00%3A12">'
        "approved: clean</a>" in page
    )
    assert page.count('<a class="review" href="http://127.0.0.1:8765/shots/') == 3


@pytest.mark.slow
def test_a_streaming_package_selects_too(tmp_path: Path, built: Path) -> None:
    ladder = "[{codec: h264, height: 120, bitrate: 300k}]"
    web = f"  web: {{kind: hls, ladder: {ladder}, select: approved}}\n"
    m = project(tmp_path, built, more=web)
    for label in ("safe", "clean"):
        build(m, variant=label, targets=["web"])
    digests = outputs(m)
    for shot, label in zip(SHOTS, ("clean", "safe", "clean"), strict=True):
        approve(m, shot, label, digests[shot][label])
    report = build(m, targets=["web"])
    # The renditions' chunks are the variants' own: only the packaging runs.
    assert list(executed(report)) == ["ep1/web"]
    chunks = {r.id: r.key for r in report.records if r.stage and "/web/" in r.id}
    safe = build(m, variant="safe", targets=["web"])
    same = {r.id: r.key for r in safe.records if r.id in chunks}
    assert [chunks[i] == same[i] for i in sorted(chunks)] == [False, True, False]
