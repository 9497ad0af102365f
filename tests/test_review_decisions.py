"""restoro.review.yaml: stable sorted file, errors with a location, statuses (a changed shot
needs review), concurrent writers that lose nothing; each variant's cached outputs from a plan."""

from __future__ import annotations

import difflib
import multiprocessing
from typing import TYPE_CHECKING

import pytest
from buildkit import build
from reviewkit import make_review_project

from restoro import review_file as D
from restoro.plan.workspace import Workspace
from restoro.review.outputs import variant_outputs

if TYPE_CHECKING:
    from pathlib import Path


def entry(
    shot: str, decision: str = "approved", variant: str | None = "safe", **kw: str
) -> D.Entry:
    return D.Entry(
        shot=shot,
        decision=decision,  # type: ignore[arg-type]
        variant=variant,
        digest=kw.get("digest", "xxh3:aa"),
        reviewer=kw.get("reviewer", "Ada"),
        time=kw.get("time", "2026-12-05T18:00:00Z"),
        comment=kw.get("comment", ""),
    )


def test_file_is_sorted_stable_and_round_trips(tmp_path: Path) -> None:
    path = tmp_path / D.REVIEW_FILE
    D.record(path, entry("ep2@00:00:00:00", comment="fine"))
    D.record(path, entry("ep1@00:00:01:00", "rejected", "clean", comment="halo on the face"))
    D.record(path, entry("ep1@00:00:00:00", "note", None, comment="check the seam"))
    text = path.read_text()
    assert text.splitlines()[:3] == ["restoro-review: 1", "shots:", "  ep1@00:00:00:00:"]
    order = [line.strip() for line in text.splitlines() if line.startswith("  ep")]
    assert order == sorted(order)
    loaded = D.load(path)
    assert loaded["ep1@00:00:01:00"] == entry(
        "ep1@00:00:01:00", "rejected", "clean", comment="halo on the face"
    )
    assert D.dump(loaded) == text  # writing what was read changes nothing
    # Replacing one entry changes only that entry's lines.
    D.record(path, entry("ep2@00:00:00:00", variant="clean", comment="fine"))
    diff = difflib.ndiff(text.splitlines(), path.read_text().splitlines())
    changed = [line for line in diff if line[:2] in ("- ", "+ ")]
    assert changed == ["-     variant: safe", "+     variant: clean"]
    assert not list(tmp_path.glob(".*.tmp"))


def test_statuses() -> None:
    approved = entry("s", digest="xxh3:1")
    assert D.status(None, {"safe": "xxh3:1"}) == "unreviewed"
    assert D.status(approved, {"safe": "xxh3:1", "clean": "xxh3:9"}) == "approved: safe"
    # The approved variant's output changed since: needs review; another variant's change no.
    assert D.status(approved, {"safe": "xxh3:2"}) == "needs review"
    assert D.status(approved, {"safe": "xxh3:1", "clean": "xxh3:3"}) == "approved: safe"
    assert D.status(approved, {"safe": None}) == "approved: safe"  # not built: unknown
    assert D.status(entry("s", "rejected", digest="xxh3:1"), {"safe": "xxh3:1"}) == "rejected"
    assert D.status(entry("s", "rejected", digest="xxh3:1"), {"safe": "xxh3:5"}) == "needs review"
    assert D.status(entry("s", "note", None), {}) == "needs review"
    counts = dict(D.iter_counts({"a": "approved: safe", "b": "needs review", "c": "approved: x"}))
    assert counts == {"unreviewed": 0, "approved": 2, "rejected": 0, "needs review": 1}


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        ("shots: [\n", ":2:", "not valid YAML"),
        ("shots: {}\n", "", "must start with 'restoro-review: 1'"),
        ("restoro-review: 1\nshots:\n  a@1: {decision: maybe}\n", "shots.a@1", "decision must"),
        (
            "restoro-review: 1\nshots:\n  a@1: {decision: approved}\n",
            "shots.a@1",
            "name its variant",
        ),
        ("restoro-review: 1\nshots:\n  a@1: {decision: note, colour: red}\n", "", "'colour'"),
        ("restoro-review: 1\nshots:\n  a@1: {decision: note, time: yesterday}\n", "", "UTC"),
    ],
)
def test_bad_file_is_an_input_error(tmp_path: Path, text: str, where: str, message: str) -> None:
    path = tmp_path / D.REVIEW_FILE
    path.write_text(text)
    with pytest.raises(D.ReviewFileError) as err:
        D.load(path)
    assert err.value.exit_code == 2 and message in err.value.message
    assert str(path) in (err.value.location or "") and where in (err.value.location or "")
    # Recording refuses to overwrite a file it cannot read: nothing is lost.
    with pytest.raises(D.ReviewFileError):
        D.record(path, entry("b@1"))
    assert path.read_text() == text


def _writer(path: str, who: int, count: int) -> None:
    from pathlib import Path

    for i in range(count):
        D.record(Path(path), entry(f"ep{who}@{i:04d}", reviewer=f"r{who}"))


def test_concurrent_reviewers_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / D.REVIEW_FILE
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(path), w, 15)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    got = D.load(path)
    assert len(got) == 60 and {e.reviewer for e in got.values()} == {"r0", "r1", "r2", "r3"}


@pytest.mark.slow
def test_variant_outputs_from_the_plan(tmp_path: Path, progressive_source: Path) -> None:
    m = make_review_project(tmp_path, progressive_source)
    build(m, variant="safe")
    ws = Workspace(m)
    try:
        safe = variant_outputs(ws, "safe")["ep1"]
        clean = variant_outputs(ws, "clean")["ep1"]
    finally:
        ws.close()
    assert [o.shot.id for o in safe] == ["ep1@00:00:00:00", "ep1@00:00:00:12", "ep1@00:00:00:24"]
    assert all(o.digest and o.source is not None for o in safe)
    assert [o.tags for o in safe] == [(), ("vfx",), ()]
    assert [o.digest for o in clean] == [None, None, None]  # not built: nothing runs in a plan
    build(m, variant="clean")
    ws = Workspace(m)
    try:
        clean = variant_outputs(ws, "clean")["ep1"]
        base = variant_outputs(ws, D.BASE)["ep1"]
    finally:
        ws.close()
    assert all(c.digest and c.digest != s.digest for c, s in zip(clean, safe, strict=True))
    assert [o.source.outputs["frames"].digest for o in clean] == [  # type: ignore[union-attr]
        o.source.outputs["frames"].digest
        for o in safe  # type: ignore[union-attr]
    ]
    assert [o.digest for o in base] == [None, None, None]
