"""The grade stage: .cube parsing, trilinear interpolation, LUT pinning by digest, overrides."""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING

import av
import numpy as np
import pytest
from buildkit import build, executed

from restoro.errors import InputError
from restoro.stages.grade import apply_lut, parse_cube

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path


def cube_text(n: int, fn: Callable[[float, float, float], tuple[float, float, float]]) -> str:
    """A .cube of size n sampling fn(r, g, b) (red fastest)."""
    lines = ['TITLE "test"', "# a comment", f"LUT_3D_SIZE {n}", "DOMAIN_MIN 0 0 0", ""]
    lines.append("DOMAIN_MAX 1.0 1.0 1.0")
    for b in range(n):
        for g in range(n):
            for r in range(n):
                out = fn(r / (n - 1), g / (n - 1), b / (n - 1))
                lines.append(" ".join(f"{v:.9f}" for v in out))
    return "\n".join(lines) + "\n"


def frame(seed: int = 1, h: int = 24, w: int = 32) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 65536, (h, w, 3), dtype=np.uint16)


def test_identity_lut_leaves_frames_unchanged() -> None:
    lut = parse_cube(cube_text(17, lambda r, g, b: (r, g, b)))
    f = frame()
    out = apply_lut(f, lut)
    assert out.dtype == np.uint16 and out.shape == f.shape
    assert int(np.abs(out.astype(int) - f.astype(int)).max()) <= 1


def test_channel_swap_and_gamma_match_a_direct_computation() -> None:
    f = frame(2)
    swap = apply_lut(f, parse_cube(cube_text(5, lambda r, g, b: (b, r, g))))
    assert int(np.abs(swap.astype(int) - f[..., [2, 0, 1]].astype(int)).max()) <= 1
    # A separable curve: trilinear interpolation is then 1-D linear interpolation of the samples.
    n = 33
    grid = np.linspace(0, 1, n)
    lut = parse_cube(cube_text(n, lambda r, g, b: (r**2.2, g**0.45, 1 - b)))
    x = f.astype(np.float64) / 65535
    want = np.stack(
        [
            np.interp(x[..., 0], grid, grid**2.2),
            np.interp(x[..., 1], grid, grid**0.45),
            1 - x[..., 2],
        ],
        axis=-1,
    )
    got = apply_lut(f, lut).astype(np.float64) / 65535
    assert np.abs(got - want).max() * 65535 <= 1
    # and close to the curve itself (what the colourist meant)
    away = x[..., 1] > 0.1  # the curve is steep near 0, where a 33-point LUT is coarse
    assert np.abs(got[..., 1] - x[..., 1] ** 0.45)[away].max() < 0.005
    # deterministic, and strength 0 is the identity
    assert np.array_equal(apply_lut(f, lut), apply_lut(f, lut))
    assert np.array_equal(apply_lut(f, lut, 0.0), f)


def test_domain_is_honoured() -> None:
    text = cube_text(2, lambda r, g, b: (r, g, b)).replace(
        "DOMAIN_MAX 1.0 1.0 1.0", "DOMAIN_MAX 0.5 0.5 0.5"
    )
    lut = parse_cube(text)
    f = np.full((2, 2, 3), 16384, dtype=np.uint16)  # 0.25 → half-way through the domain
    assert abs(int(apply_lut(f, lut)[0, 0, 0]) - 32768) <= 1


@pytest.mark.parametrize(
    ("edit", "line", "words"),
    [
        (lambda t: t.replace("LUT_3D_SIZE 3", "LUT_3D_SIZE x"), 3, "not numbers"),
        (lambda t: t.replace("0.500000000 0.000000000 0.000000000", "0.5 0.0", 1), 8, "expected 3"),
        (lambda t: "\n".join(t.splitlines()[:-2]) + "\n", 31, "needs 27"),
        (lambda t: t.replace("DOMAIN_MIN", "DOMAIN_MINIMUM"), 4, "unknown keyword"),
        (lambda t: t.replace("LUT_3D_SIZE 3", "LUT_1D_SIZE 3"), 3, "1D"),
    ],
)
def test_bad_cube_names_the_line(edit: Callable[[str], str], line: int, words: str) -> None:
    text = edit(cube_text(3, lambda r, g, b: (r, g, b)))
    with pytest.raises(InputError) as exc:
        parse_cube(text, "looks/bad.cube")
    assert f"looks/bad.cube line {line}:" in exc.value.message and words in exc.value.message


MANIFEST = """\
restoro: 1
project: graded
sources:
  tape:
    path: media/source.mkv
pipelines:
  main:
    - {stage: ingest, mode: progressive}
    - {stage: grade, lut: looks/warm.cube}
titles:
  ep1:
    source: tape
    pipeline: main
    shots: {detector: content, threshold: 27, min_frames: 4}
    overrides:
      - range: [12, 24]
        params: {grade: {lut: looks/red.cube}}
deliverables:
  master: {kind: prores, profile: 422hq, raster: 160x120, fit: pillarbox}
"""


def _master_rgb(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


@pytest.mark.slow
def test_lut_is_pinned_by_digest_and_overridable(tmp_path: Path, progressive_source: Path) -> None:
    # A pinned LUT enters the chain's key like a model, with the torch device's fingerprint.
    pytest.importorskip("torch")
    (tmp_path / "media").mkdir()
    shutil.copy(progressive_source, tmp_path / "media" / "source.mkv")
    looks = tmp_path / "looks"
    looks.mkdir()
    (looks / "warm.cube").write_text(cube_text(9, lambda r, g, b: (r, g, b * 0.5)))
    (looks / "red.cube").write_text(cube_text(2, lambda r, g, b: (0.75, 0.0, 0.0)))
    manifest = tmp_path / "restoro.yaml"
    manifest.write_text(MANIFEST)
    first = build(manifest)
    assert first.failed == 0
    graded = {r.shot for r in first.records if r.stage == "chain"}
    assert len(graded) == 3
    frames = _master_rgb(tmp_path / "out" / "master" / "ep1.mov")
    assert len(frames) == 36
    # the overridden shot is solid red, 75 % (rgb24 here is decoded with PyAV's BT.601 default,
    # so the BT.709 master's red reads slightly orange); every frame of it, and only those
    for i in range(12, 24):
        r, g, b = frames[i].reshape(-1, 3).mean(axis=0)
        assert r > 170 and g < 45 and b < 10 and frames[i].std() < 100, (i, r, g, b)
    r, g, b = frames[0].reshape(-1, 3).mean(axis=0)
    assert g > 20 or b > 20, (r, g, b)  # not the override's red

    # Same bytes, new mtime: nothing reruns. New bytes: exactly the shots graded with it.
    (looks / "warm.cube").write_text((looks / "warm.cube").read_text())
    assert build(manifest).executed == 0
    (looks / "warm.cube").write_text(cube_text(9, lambda r, g, b: (g, r, b)))
    again = build(manifest)
    reran = {k for k, v in executed(again).items() if k.endswith("/grade")}
    red_shot = next(r.shot for r in first.records if r.shot and r.shot.endswith(":12"))
    assert reran == {f"{s}/grade" for s in graded if s != red_shot}
    assert all(v == "model-changed" for k, v in executed(again).items() if k.endswith("/grade"))


def test_bad_lut_fails_at_plan_time(tmp_path: Path, progressive_source: Path) -> None:

    (tmp_path / "media").mkdir()
    shutil.copy(progressive_source, tmp_path / "media" / "source.mkv")
    (tmp_path / "looks").mkdir()
    (tmp_path / "looks" / "warm.cube").write_text("LUT_3D_SIZE 2\n0 0 0\n1 1\n")
    (tmp_path / "looks" / "red.cube").write_text(cube_text(2, lambda r, g, b: (r, g, b)))
    manifest = tmp_path / "restoro.yaml"
    manifest.write_text(MANIFEST)
    with pytest.raises(InputError, match=r"looks/warm.cube line 3: table row: expected 3"):
        build(manifest)
