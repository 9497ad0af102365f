"""temporal: flicker reduction within a shot, no ghosting, never across a cut."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pytest

from restoro.engine.actions import windows
from restoro.media.frames import FrameFormat
from restoro.stages.base import StageContext
from restoro.stages.temporal import Temporal, TemporalParams

if TYPE_CHECKING:
    from pathlib import Path

W, H, N = 64, 48, 12


def _clean(n: int = N, seed: int = 0, dx: float = 0.7) -> list[np.ndarray]:
    """A smooth textured scene panning slowly to the right."""
    import cv2

    rng = np.random.default_rng(seed)
    big = cv2.resize(rng.random((12, 24)).astype(np.float32), (W * 2, H), cv2.INTER_CUBIC)
    big = 0.2 + 0.6 * np.clip(big, 0, 1)
    out = []
    for t in range(n):
        m = np.float32([[1, 0, -dx * t], [0, 1, 0]])
        f = cv2.warpAffine(big, m, (W * 2, H), borderMode=cv2.BORDER_REFLECT)[:, :W]
        rgb = np.stack([f, f * 0.9 + 0.05, f * 0.8 + 0.1], -1)
        out.append(np.rint(rgb * 65535).astype(np.uint16))
    return out


def _flicker(clip: list[np.ndarray], seed: int = 5, depth: float = 0.08) -> list[np.ndarray]:
    gains = 1 + depth * np.random.default_rng(seed).choice([-1.0, 1.0], len(clip))
    return [np.clip(f * g, 0, 65535).astype(np.uint16) for f, g in zip(clip, gains, strict=True)]


def flicker_metric(clip: list[np.ndarray]) -> float:
    """Mean absolute change of mean brightness between consecutive frames."""
    means = np.array([f.astype(np.float64).mean() for f in clip]) / 65535
    return float(np.abs(np.diff(means)).mean())


def _psnr(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    mse = np.mean(
        [np.mean((x.astype(float) - y.astype(float)) ** 2) for x, y in zip(a, b, strict=True)]
    )
    return float(10 * np.log10(65535.0**2 / mse))


def _run(frames: list[np.ndarray], tmp_path: Path, **kw: object) -> list[np.ndarray]:
    fmt = FrameFormat(width=W, height=H, frame_rate="25")
    ctx = StageContext(fmt=fmt, shot_id="t@0", work_dir=tmp_path)
    return list(Temporal().process(iter(frames), TemporalParams(**kw), ctx))


def test_windows_clamp_at_shot_ends() -> None:
    got = [[int(x) for x in w] for w in windows(iter(range(4)), 2)]
    assert got == [[0, 0, 0, 1, 2], [0, 0, 1, 2, 3], [0, 1, 2, 3, 3], [1, 2, 3, 3, 3]]
    assert list(windows(iter([]), 2)) == []
    assert [list(w) for w in windows(iter([7]), 1)] == [[7, 7, 7]]


def test_flicker_reduced_by_half_and_psnr_does_not_drop(tmp_path: Path) -> None:
    clean = _clean()
    flick = _flicker(clean)
    out = _run(flick, tmp_path)
    assert len(out) == len(flick) and out[0].dtype == np.uint16
    before, after = flicker_metric(flick), flicker_metric(out)
    assert after <= 0.5 * before, (before, after)
    assert _psnr(out, clean) >= _psnr(flick, clean)
    again = _run(flick, tmp_path)
    assert all(a.tobytes() == b.tobytes() for a, b in zip(out, again, strict=True))


def test_sudden_change_inside_a_window_does_not_ghost(tmp_path: Path) -> None:
    # A bright square appears at frame 6: frames before it must not show it, and frames
    # from 6 on must keep it at full strength (no averaging with the empty frames).
    clip = _clean(dx=0.0)
    for f in clip[6:]:
        f[16:32, 24:40] = 60000
    out = _run(clip, tmp_path)
    for t in range(6):
        assert np.abs(out[t][16:32, 24:40].astype(int) - clip[t][16:32, 24:40]).max() < 3000
    for t in range(6, N):
        assert out[t][18:30, 26:38].min() > 55000


def test_strength_zero_is_identity(tmp_path: Path) -> None:
    clip = _flicker(_clean(4))
    out = _run(clip, tmp_path, strength=0.0)
    assert all(a is b for a, b in zip(out, clip, strict=True))


SRC_MANIFEST = """\
restoro: 1
project: cut
sources:
  tape:
    path: media/source.mkv
pipelines:
  main:
    - {stage: ingest, mode: progressive}
    - {stage: temporal, radius: 3}
titles:
  ep1:
    source: tape
    pipeline: main
    shots: {detector: content, threshold: 27, min_frames: 2}
deliverables:
  master: {kind: prores, profile: 422hq, raster: 256x144, fit: pillarbox}
"""


@pytest.mark.slow
def test_no_frame_after_a_cut_sees_the_shot_before(tmp_path: Path) -> None:
    """A real build: the chain is per shot, so the first frames after a cut are untouched by
    the previous shot (each shot's first frame matches a run of that shot alone)."""
    from buildkit import build

    from restoro.media.frameio import read_frames
    from restoro.plan.workspace import Workspace
    from restoro.testing.synth import make_source

    (tmp_path / "media").mkdir()
    make_source(
        tmp_path / "media" / "source.mkv",
        width=64,
        height=48,
        shots=2,
        shot_frames=6,
        codec="ffv1",
        sar="1:1",
        audio_channels=0,
    )
    manifest = tmp_path / "restoro.yaml"
    manifest.write_text(SRC_MANIFEST)
    report = build(manifest, device="cpu")
    assert report.failed == 0
    ws = Workspace(manifest)
    try:
        chains, firsts = {}, {}
        for r in ws.store.iter_actions():
            blob = ws.store.blob_path(r.outputs["frames"].digest) if "frames" in r.outputs else None
            if r.key_json.get("stage") == "chain":
                chains[r.action_id] = list(read_frames(blob))
            elif r.key_json.get("stage") in ("extract", "ingest") and "/" in r.action_id:
                firsts[r.action_id.split("/")[0]] = list(read_frames(blob))
    finally:
        ws.close()
    assert len(chains) == 2
    for cid, out in chains.items():
        shot = cid.split("/")[0]
        alone = _run_fmt(firsts[shot], tmp_path)
        assert all(a.tobytes() == b.tobytes() for a, b in zip(out, alone, strict=True))
        # The first frame after the cut stays close to its own input (the other shot differs).
        assert np.abs(out[0].astype(int) - firsts[shot][0]).mean() < 1500


def _run_fmt(frames: list[np.ndarray], tmp_path: Path) -> list[np.ndarray]:
    h, w = frames[0].shape[:2]
    fmt = FrameFormat(width=w, height=h, frame_rate="25")
    ctx = StageContext(fmt=fmt, shot_id="x", work_dir=tmp_path)
    return list(Temporal().process(iter(frames), TemporalParams(radius=3), ctx))
