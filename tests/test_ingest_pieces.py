"""A title's frames in ingest pieces: the same frames, cuts and extracts as one whole-title
ingest and one detector run, wherever the piece boundaries fall."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import numpy as np
import pytest

from restoro.media.frameio import extract_pieces, extract_range, read_frames, write_frames
from restoro.media.frames import FrameFormat
from restoro.media.probe import probe
from restoro.media.shots import boundary_score, cuts_from_scores, detect_cuts, frame_scores
from restoro.plan import pieces
from restoro.plan.pieces import piece_bounds
from restoro.stages.ingest import IngestParams
from restoro.stages.ingest_timeline import analyse_title, run_ingest_action
from restoro.testing.synth import make_hybrid, make_source

if TYPE_CHECKING:
    from pathlib import Path


def test_piece_bounds_are_the_titles_alone_and_snap_to_cadence_boundaries() -> None:
    assert piece_bounds(100, (), 1000) == [(0, 100)]
    assert piece_bounds(100, (), 30) == [(0, 33), (33, 66), (66, 100)]
    # a segment start within a quarter of the length moves the boundary; a far one does not
    assert piece_bounds(100, (60,), 30) == [(0, 33), (33, 60), (60, 100)]
    assert piece_bounds(100, (50,), 30) == [(0, 33), (33, 66), (66, 100)]
    many = piece_bounds(52_000, list(range(0, 52_000, 1_000)))
    assert len(many) == 16 and all(b % 1_000 == 0 for _, b in many[:-1])
    assert [b - a for a, b in many] == [
        b - a for a, b in piece_bounds(52_000, range(0, 52_000, 1_000))
    ]


def _title_params(total: int) -> dict[str, object]:
    return {
        "ingest": IngestParams().model_dump(mode="json"),
        "span": [0, total],
        "crop": [0, 0, 0, 0],
        "color": "auto",
        "field_order": "auto",
    }


class _Result:
    """What ``piece_params`` reads of the analysis' ActionResult."""

    def __init__(self, params: dict[str, object], meta: dict[str, object]) -> None:
        self.key_json = {"params": params}
        self.meta = meta


@pytest.mark.slow
def test_pieces_of_a_hybrid_title_are_its_frames_bit_for_bit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src, _ = make_hybrid(tmp_path / "hybrid.mpg", width=360, height=240)
    info = probe(src)
    p = _title_params(info.video.frame_count)
    # main's title ingest: cadence analysis and all the frames in one action
    whole = run_ingest_action(src, info, p, tmp_path / "whole.mkv", tmp_path / "w0")
    meta = analyse_title(src, info, p)
    assert {k: meta[k] for k in ("format", "frames", "timeline", "cadence")} == {
        k: whole[k] for k in ("format", "frames", "timeline", "cadence")
    }
    analysis = _Result(p, meta)
    # title frames 48 and 84 start the video and the second film segment; with pieces of 30,
    # one boundary falls inside film (30), one inside video (61), one snaps to 84
    monkeypatch.setattr(pieces, "PIECE_FRAMES", 30)
    bounds = pieces.title_pieces(analysis)  # type: ignore[arg-type]
    assert bounds == [(0, 30), (30, 61), (61, 84), (84, 122)]
    got: list[np.ndarray] = []
    for i, (k0, k1) in enumerate(bounds):
        pp = pieces.piece_params(analysis, (k0, k1))  # type: ignore[arg-type]
        out = tmp_path / f"piece{i}.mkv"
        m = run_ingest_action(src, info, pp, out, tmp_path / f"w{i + 1}")
        assert m["frames"] == k1 - k0 and m["format"] == meta["format"]
        got += list(read_frames(out))
    ref = list(read_frames(tmp_path / "whole.mkv"))
    assert len(got) == len(ref) == 122
    for k, (a, b) in enumerate(zip(ref, got, strict=True)):
        assert np.array_equal(a, b), f"title frame {k} differs"


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["hybrid", "progressive"])
def test_the_shot_scores_an_ingest_piece_writes_are_those_of_its_frames(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """A piece scores its frames as it writes them (the re-timing ingest of a hybrid title)
    or decodes them back (the plain ingest of a progressive one); with each piece's first
    ``content`` score taken against the piece before (``boundary_score``, as the title's
    ``shots`` action does), the pieces' scores are those of the whole title's frames."""
    if kind == "hybrid":
        src, _ = make_hybrid(tmp_path / "src.mpg", width=176, height=120)
    else:
        src = make_source(tmp_path / "src.mpg", width=176, height=120, shot_frames=20)
    info = probe(src)
    p = _title_params(info.video.frame_count)
    if kind == "progressive":
        p["ingest"] = IngestParams(mode="progressive").model_dump(mode="json")
    run_ingest_action(src, info, p, tmp_path / "whole.mkv", tmp_path / "w0")
    analysis = _Result(p, analyse_title(src, info, p))
    monkeypatch.setattr(pieces, "PIECE_FRAMES", 20)  # a progressive piece starts at each cut
    bounds = pieces.title_pieces(analysis)  # type: ignore[arg-type]
    assert len(bounds) > 2
    for metric in ("content", "mean"):
        whole = frame_scores(tmp_path / "whole.mkv", metric=metric)
        parts = []
        for i, want in enumerate(bounds):
            pp = {**pieces.piece_params(analysis, want), "scores": metric}  # type: ignore[arg-type]
            out, scores = tmp_path / f"p{i}.mkv", tmp_path / f"p{i}.f64"
            m = run_ingest_action(src, info, pp, out, tmp_path / f"w{metric}{i}", scores)
            got = np.frombuffer(scores.read_bytes(), dtype="<f8").copy()
            assert len(got) == m["frames"] == want[1] - want[0]
            assert np.array_equal(got, frame_scores(out, metric=metric))
            if i and metric == "content":
                assert got[0] == 0.0  # the piece alone: no frame before its first
                got[0] = boundary_score(tmp_path / f"p{i - 1}.mkv", out)
            parts.append(got)
        merged = np.concatenate(parts)
        assert np.array_equal(merged, whole), metric
        if metric == "content":  # the splice matters: without it the boundaries score 0.0
            assert all(whole[k0] != 0.0 for k0, _ in bounds[1:])


def _h(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_extracts_from_pieces_are_the_whole_titles_extracts_byte_for_byte(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 65535, (48, 64, 3), dtype=np.uint16) for _ in range(40)]
    for rate in ("24000/1001", "30000/1001", "25"):
        fmt = FrameFormat(width=64, height=48, frame_rate=rate)
        write_frames(tmp_path / "all.mkv", fmt, iter(frames))
        bounds = [(0, 13), (13, 27), (27, 40)]
        parts = []
        for i, (a, b) in enumerate(bounds):
            write_frames(tmp_path / f"p{i}.mkv", fmt, iter(frames[a:b]))
            parts.append((tmp_path / f"p{i}.mkv", a))
        for s, e in [(0, 13), (12, 14), (13, 27), (20, 33), (5, 40), (30, 39)]:
            extract_range(tmp_path / "all.mkv", s, e, tmp_path / "ref.mkv")
            held = [part for part, (a, b) in zip(parts, bounds, strict=True) if a < e and b > s]
            extract_pieces(held, s, e, tmp_path / "got.mkv", rate)
            assert _h(tmp_path / "ref.mkv") == _h(tmp_path / "got.mkv"), (rate, s, e)


def _scene_frames(cuts: list[int], n: int, seed: int = 3) -> list[np.ndarray]:
    """Frames of flat noisy pictures that change level at ``cuts`` (and a one-frame flash)."""
    rng = np.random.default_rng(seed)
    levels = rng.integers(2_000, 60_000, size=len(cuts) + 1)
    out = []
    for k in range(n):
        scene = sum(1 for c in cuts if k >= c)
        base = np.full((48, 64, 3), levels[scene], dtype=np.int64)
        base[..., scene % 3] //= 3  # a hue change too
        noise = rng.integers(-300, 300, size=base.shape)
        out.append(np.clip(base + noise, 0, 65535).astype(np.uint16))
    return out


@pytest.mark.parametrize(
    ("detector", "threshold", "min_frames"),
    [("content", 27.0, 4), ("content", 27.0, 12), ("adaptive", 3.0, 4), ("threshold", 40.0, 3)],
)
def test_cuts_from_piece_scores_are_one_detector_run_over_the_title(
    tmp_path: Path, detector: str, threshold: float, min_frames: int
) -> None:
    # cuts right at (20), just after (41) and just before (59) piece boundaries, two cuts
    # closer than min_frames across a boundary (38 / 41), and a dark scene (threshold fades)
    cuts = [8, 20, 38, 41, 59, 66, 75]
    frames = _scene_frames(cuts, 90)
    for k in range(66, 75):
        frames[k] = (frames[k] // 40).astype(np.uint16)
    fmt = FrameFormat(width=64, height=48, frame_rate="24000/1001")
    write_frames(tmp_path / "all.mkv", fmt, iter(frames))
    whole = detect_cuts(
        tmp_path / "all.mkv", detector=detector, threshold=threshold, min_frames=min_frames
    )
    assert whole  # the media has cuts this detector finds
    for bounds in (
        [(0, 90)],
        [(0, 20), (20, 40), (40, 60), (60, 90)],
        [(0, 39), (39, 67), (67, 90)],
    ):
        scores = []
        for i, (a, b) in enumerate(bounds):
            write_frames(tmp_path / f"p{i}.mkv", fmt, iter(frames[a:b]))
            before = tmp_path / f"p{i - 1}.mkv" if i else None
            metric = "mean" if detector == "threshold" else "content"
            scores.append(frame_scores(tmp_path / f"p{i}.mkv", metric=metric, before=before))
        merged = cuts_from_scores(
            np.concatenate(scores),
            detector=detector,
            threshold=threshold,
            min_frames=min_frames,
            frame_rate="24000/1001",
        )
        assert merged == whole, bounds
    # the piece's first score needs the frame before it: without it a cut at a boundary is lost
    write_frames(tmp_path / "q0.mkv", fmt, iter(frames[:20]))
    write_frames(tmp_path / "q1.mkv", fmt, iter(frames[20:]))
    if detector != "threshold":
        cold = frame_scores(tmp_path / "q1.mkv", metric="content")
        warm = frame_scores(tmp_path / "q1.mkv", metric="content", before=tmp_path / "q0.mkv")
        assert cold[0] == 0.0 < warm[0] and np.array_equal(cold[1:], warm[1:])


def _outputs(root: Path) -> dict[str, tuple[str, str]]:
    """Action id → (key, its outputs' digests), from every entry of the store."""
    import orjson

    out: dict[str, tuple[str, str]] = {}
    for entry in (root / ".restoro" / "ac").rglob("*.json"):
        data = orjson.loads(entry.read_bytes())
        digests = ",".join(sorted(f"{n}={o['digest']}" for n, o in data["outputs"].items()))
        out[data["action_id"]] = (data["key"], digests)
    return out


@pytest.mark.slow
def test_a_title_in_pieces_builds_what_one_piece_builds_at_any_job_count(
    workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """3 shots of 12 frames in pieces of 9: every shot straddles a boundary, and a cut (12,
    24) falls right after one (9, 18, 27). The shots' extracts have the one-piece build's
    bytes, so every chain, chunk and master key and byte is the same; two pieced builds at
    --jobs 1 and 2 are identical."""
    import shutil

    from buildkit import build

    copies = []
    for name in ("two", "three"):
        other = tmp_path / name
        shutil.copytree(workspace.parent, other, ignore=shutil.ignore_patterns(".restoro", "out"))
        copies.append(other / workspace.name)
    one = build(workspace)
    monkeypatch.setattr(pieces, "PIECE_FRAMES", 9)
    two = build(copies[0], jobs=1)
    three = build(copies[1], jobs=2)
    assert one.failed == two.failed == three.failed == 0
    assert one.shots == two.shots == {"ep1": 3}
    ids = {r.id for r in two.records}
    assert {f"ep1/ingest/{i}" for i in range(4)} <= ids and "ep1/ingest/4" not in ids
    a, b, c = (_outputs(m.parent) for m in (workspace, *copies))
    assert b == c  # --jobs 1 and 2
    extracts = {i for i in a if i.endswith("/ingest") and "@" in i}
    same = {i for i in a if not i.startswith("ep1/") or i in ("ep1/master", "ep1/audio/0")}
    same -= extracts  # (their keys name other pieces)
    assert len(extracts) == 3 and all(a[i][1] == b[i][1] for i in extracts)  # same bytes
    assert len(same) > 6 and {i: a[i] for i in same} == {i: b[i] for i in same}
    lock = [(m.parent / "restoro.lock").read_bytes() for m in (workspace, *copies)]
    assert lock[0] == lock[1] == lock[2]


@pytest.mark.slow
def test_a_piece_inside_film_processes_only_its_cycles_and_gives_the_titles_frames(
    tmp_path: Path,
) -> None:
    """A piece starting at each of the five positions of a 3:2 cycle, inside a telecine
    segment: only the cycles around it (``IVTC_MARGIN``) are field-matched and decimated,
    and its frames are the whole title's."""
    from restoro.stages import ingest_timeline

    src, _ = make_hybrid(tmp_path / "h.mpg", width=176, height=120, film=(96, 40))
    info = probe(src)
    p = _title_params(info.video.frame_count)
    run_ingest_action(src, info, p, tmp_path / "whole.mkv", tmp_path / "w0")
    ref = list(read_frames(tmp_path / "whole.mkv"))
    analysis = _Result(p, analyse_title(src, info, p))
    for k0 in range(40, 45):
        pp = pieces.piece_params(analysis, (k0, k0 + 12))  # type: ignore[arg-type]
        run_ingest_action(src, info, pp, tmp_path / "x.mkv", tmp_path / f"w{k0}")
        got = list(read_frames(tmp_path / "x.mkv"))
        assert len(got) == 12
        for k, (a, b) in enumerate(zip(ref[k0 : k0 + 12], got, strict=True)):
            assert np.array_equal(a, b), f"title frame {k0 + k} differs"
    # the branch of such a piece trims whole cycles from the segment's start, not its start
    filters, _rate, t0, _n = ingest_timeline._branch(
        info, IngestParams(), (0, 120, "ivtc"), (60, 75), "tff"
    )
    assert filters[0] == "trim=start_frame=50:end_frame=85" and t0 == 50
