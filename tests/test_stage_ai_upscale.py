"""AI upscale end to end: built-in models in a real build, fidelity, determinism, bad input."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import av
import numpy as np
import pytest
from buildkit import build, executed

from restoro.errors import InputError, StageError
from restoro.media.frameio import read_frames
from restoro.stages.base import StageContext, StageEnv
from restoro.stages.upscale import MODEL_INPUT, Upscale, UpscaleParams

if TYPE_CHECKING:
    from pathlib import Path

pytest.importorskip("torch")
pytest.importorskip("spandrel")

MANIFEST = """\
restoro: 1
project: ai
sources:
  tape:
    path: media/source.mkv
pipelines:
  main:
    - {stage: ingest, mode: progressive}
    - {stage: upscale, model: MODEL, scale: SCALE}
titles:
  ep1:
    source: tape
    pipeline: main
    shots: {detector: content, threshold: 27, min_frames: 2}
deliverables:
  master: {kind: prores, profile: 422hq, raster: 256x144, fit: pillarbox}
"""


@pytest.fixture(scope="module")
def tiny_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from restoro.testing.synth import make_source

    path = tmp_path_factory.mktemp("ai") / "source.mkv"
    return make_source(
        path,
        width=48,
        height=32,
        shots=2,
        shot_frames=3,
        codec="ffv1",
        sar="1:1",
        audio_channels=0,
    )


def _workspace(tmp_path: Path, source: Path, model: str, scale: int) -> Path:
    (tmp_path / "media").mkdir()
    (tmp_path / "media" / "source.mkv").write_bytes(source.read_bytes())
    manifest = tmp_path / "restoro.yaml"
    manifest.write_text(MANIFEST.replace("MODEL", model).replace("SCALE", str(scale)))
    return manifest


@pytest.mark.slow
def test_lossless_intermediates_keep_16_bits_after_a_model(
    tmp_path: Path, tiny_source: Path
) -> None:
    manifest = _workspace(tmp_path, tiny_source, "realesr-animevideov3", 2)
    text = manifest.read_text()
    manifest.write_text(text.replace("project: ai\n", "project: ai\nintermediates: lossless\n"))
    assert build(manifest, device="cpu").failed == 0
    from restoro.plan.workspace import Workspace

    ws = Workspace(manifest)
    try:
        chains = [r for r in ws.store.iter_actions() if r.key_json.get("stage") == "chain"]
        assert chains
        for r in chains:
            assert "intermediate" not in r.key_json["params"]
            with av.open(str(ws.store.blob_path(r.outputs["frames"].digest))) as c:
                ctx = c.streams.video[0].codec_context
                assert (ctx.name, ctx.pix_fmt) == ("ffvhuff", "gbrp16le")
    finally:
        ws.close()


@pytest.mark.slow
def test_a_filter_chain_after_a_model_reads_its_mezzanine_cache_point(
    tmp_path: Path, tiny_source: Path
) -> None:
    """model | lanczos: the second chain's input is the mezzanine, so it streams its working
    frames (``read_frames``, through ``FROM_MEZZANINE``) into the resize."""
    from restoro.media.ffilter import filter_frames
    from restoro.media.frames import FrameFormat
    from restoro.plan.workspace import Workspace

    manifest = _workspace(tmp_path, tiny_source, "realesr-animevideov3", 2)
    text = manifest.read_text().replace(
        "scale: 2}", "scale: 2}\n    - {stage: upscale, model: lanczos, scale: 2}"
    )
    manifest.write_text(text)
    assert build(manifest, device="cpu").failed == 0
    ws = Workspace(manifest)
    try:
        chains = [r for r in ws.store.iter_actions() if r.key_json.get("stage") == "chain"]
        second = [r for r in chains if "intermediate" not in r.key_json["params"]]
        assert len(chains) == 4 and len(second) == 2
        for r in second:
            src = ws.store.blob_path(r.key_json["inputs"]["frames"])
            fmt = FrameFormat.model_validate(r.key_json["params"]["format"])
            out = fmt.model_copy(update={"width": fmt.width * 2, "height": fmt.height * 2})
            graph = f"zscale=w={out.width}:h={out.height}:filter=lanczos:dither=none"
            want = list(filter_frames(read_frames(src), fmt, graph, out))
            got = list(read_frames(ws.store.blob_path(r.outputs["frames"].digest)))
            assert len(got) == len(want) == 3
            for a, b in zip(want, got, strict=True):
                np.testing.assert_array_equal(a, b)
    finally:
        ws.close()


def _chain_outputs(manifest: Path) -> dict[str, bytes]:
    """Every upscale chain's output frames (bytes), by shot, read back from the store."""
    from restoro.plan.workspace import Workspace

    ws = Workspace(manifest)
    try:
        out = {}
        for res in ws.store.iter_actions():
            if res.key_json.get("stage") == "chain":
                out[res.action_id] = ws.store.blob_path(res.outputs["frames"].digest).read_bytes()
        return out
    finally:
        ws.close()


@pytest.mark.slow
def test_animevideov3_x2_build_end_to_end(tmp_path: Path, tiny_source: Path) -> None:
    manifest = _workspace(tmp_path, tiny_source, "realesr-animevideov3", 2)
    report = build(manifest, device="cpu")
    assert report.failed == 0, report
    runs = executed(report)
    assert any(k.endswith("/upscale") for k in runs)
    chains = _chain_outputs(manifest)
    assert len(chains) == 2
    for blob in chains.values():
        assert len(blob) > 0
    from restoro.plan.workspace import Workspace

    ws = Workspace(manifest)
    try:
        entries = [r for r in ws.store.iter_actions() if r.key_json.get("stage") == "chain"]
        for r in entries:
            assert any(k.startswith("model:upscale") for k in r.key_json["inputs"])
            assert r.meta["format"]["width"] == 96 and r.meta["format"]["height"] == 64
            assert r.meta["stages"]["upscale"]["architecture"] == "Compact"
            blob = ws.store.blob_path(r.outputs["frames"].digest)
            frames = list(read_frames(blob))
            assert len(frames) == 3 and frames[0].shape == (64, 96, 3)
            # A cache point after a model is a ProRes 4444 mezzanine by default.
            assert r.key_json["params"]["intermediate"] == "prores-4444"
            with av.open(str(blob)) as c:
                ctx = c.streams.video[0].codec_context
                assert (ctx.name, ctx.codec_tag) == ("prores", "ap4h")
    finally:
        ws.close()
    # A second build runs nothing; deleting the store and rebuilding gives identical bytes.
    again = build(manifest, device="cpu")
    assert again.executed == 0
    import shutil

    shutil.rmtree(tmp_path / ".restoro")
    build(manifest, device="cpu")
    assert _chain_outputs(manifest) == chains
    assert json.loads((tmp_path / "out" / "master" / "ep1.provenance.json").read_text())


def _natural(w: int, h: int, seed: int = 0) -> np.ndarray:
    """A natural-statistics frame: a "dead leaves" image (overlapping discs with a power-law
    size distribution, the classic model of natural image statistics) drawn at 8x with
    antialiasing and area-downscaled, so it is band-limited like a camera image."""
    import cv2

    rng = np.random.default_rng(seed)
    big_w, big_h = w * 8, h * 8
    img = np.full((big_h, big_w, 3), 0.5, np.float32)
    for _ in range(400):
        r = min(int(big_w / (8 * (1 + rng.pareto(2.0)))) + 8, big_w // 3)
        centre = (int(rng.integers(0, big_w)), int(rng.integers(0, big_h)))
        colour = tuple(float(x) for x in rng.uniform(0.1, 0.9, 3))
        cv2.circle(img, centre, r, colour, -1, lineType=cv2.LINE_AA)
    small = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
    return np.clip(np.rint(small * 65535), 0, 65535).astype(np.uint16)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(65535.0**2 / max(mse, 1e-12)))


def _hf_energy(img: np.ndarray) -> float:
    import cv2

    y = img.astype(np.float32).mean(axis=2) / 65535
    return float(np.mean(cv2.Laplacian(y, cv2.CV_32F) ** 2))


def _run_builtin(tmp_path: Path, name: str, scale: int, frames: list[np.ndarray]) -> list:
    from restoro.engine.store import Store
    from restoro.media.frames import FrameFormat

    store = Store(tmp_path / "store")
    params = UpscaleParams(model=name, scale=scale)
    digest = Upscale().model_inputs(params, StageEnv(root=tmp_path, store=store))[MODEL_INPUT]
    h, w = frames[0].shape[:2]
    fmt = FrameFormat(width=w, height=h, frame_rate="25")
    ctx = StageContext(
        fmt=fmt, shot_id="t@0", work_dir=tmp_path, inputs={MODEL_INPUT: store.blob_path(digest)}
    )
    out = list(Upscale().process(iter(frames), params, ctx))
    store.close()
    return out


PHOTOS = ("astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg")
"""Photographs shipped inside the scikit-image wheel (``skimage/data``); read from the installed
package with OpenCV, never downloaded."""


def _photo_dir() -> Path:
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("skimage")
    if spec is None or spec.origin is None:
        pytest.skip("scikit-image (test extra) is not installed")
    d = Path(spec.origin).parent / "data"
    if not all((d / name).is_file() for name in PHOTOS):
        pytest.skip("this scikit-image wheel lacks the sample photographs")
    return d


def _photo_crops(n: int = 48) -> list[tuple[str, np.ndarray]]:
    """Centre crops of real photographs as 16-bit RGB: one at the photo's own resolution and
    one of a 4n x 4n region area-downscaled to n x n (band-limited, like a camera frame)."""
    import cv2

    d = _photo_dir()
    out = []
    for name in PHOTOS:
        rgb = cv2.cvtColor(cv2.imread(str(d / name), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        img = rgb.astype(np.float32) / 255.0
        h, w = img.shape[:2]
        for k in (1, 4):
            y, x = (h - k * n) // 2, (w - k * n) // 2
            crop = img[y : y + k * n, x : x + k * n]
            if k > 1:
                crop = cv2.resize(crop, (n, n), interpolation=cv2.INTER_AREA)
            out.append((f"{name}@{'native' if k == 1 else 'down4'}", _u16(crop)))
    return out


def _u16(img: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(img * 65535), 0, 65535).astype(np.uint16)


@pytest.mark.slow
def test_x4plus_fidelity_and_sharpness_on_photographs(tmp_path: Path) -> None:
    """x4 then area-downscale back: PSNR to the input >= 30 dB on average over real photos,
    and much more high-frequency energy than lanczos. Measured (centre crops, 48x48):
    native 31.4 / 32.5 / 32.0 / 29.7 dB, down4 28.2 / 30.0 / 30.3 / 33.0 dB (astronaut, coffee,
    chelsea, rocket); means 31.4 and 30.4 dB."""
    import cv2

    from restoro.media.resample import resize

    crops = _photo_crops()
    ups = _run_builtin(tmp_path, "realesrgan-x4plus", 4, [c for _, c in crops])
    scores: dict[str, float] = {}
    for (label, src), up in zip(crops, ups, strict=True):
        assert up.shape == (192, 192, 3) and up.dtype == np.uint16
        down = cv2.resize(up, (48, 48), interpolation=cv2.INTER_AREA)
        scores[label] = _psnr(down, src)
        lanczos = resize(src, 192, 192, "lanczos")
        assert _hf_energy(up) > 2.0 * _hf_energy(lanczos), label
    print({k: round(v, 2) for k, v in scores.items()})
    for protocol in ("native", "down4"):
        mean = np.mean([v for k, v in scores.items() if k.endswith(protocol)])
        assert mean >= 30.0, (protocol, scores)
    assert min(scores.values()) >= 27.0, scores
    # Alignment is exact: shifting the output by one input pixel makes the round trip worse.
    src, up = crops[0][1], ups[0]
    down = cv2.resize(up, (48, 48), interpolation=cv2.INTER_AREA)
    for shift in ((0, 4), (4, 0)):
        moved = cv2.resize(np.roll(up, shift, (0, 1)), (48, 48), interpolation=cv2.INTER_AREA)
        assert _psnr(moved[2:-2, 2:-2], src[2:-2, 2:-2]) < _psnr(down[2:-2, 2:-2], src[2:-2, 2:-2])


@pytest.mark.slow
def test_animevideov3_deterministic_and_faithful(tmp_path: Path) -> None:
    import cv2

    frames = [_natural(32, 24), _natural(32, 24, seed=1)]
    a = _run_builtin(tmp_path, "realesr-animevideov3-x2", 2, frames)
    b = _run_builtin(tmp_path, "realesr-animevideov3", 2, frames)
    assert all(x.tobytes() == y.tobytes() for x, y in zip(a, b, strict=True))
    assert a[0].shape == (48, 64, 3)
    down = cv2.resize(a[0], (32, 24), interpolation=cv2.INTER_AREA)
    assert _psnr(down, frames[0]) >= 22.0  # measured 23.6 dB (an anime model, 32x24)


def test_final_size_resizes_after_the_model(tmp_path: Path) -> None:
    params = UpscaleParams(model="realesr-animevideov3", scale=2, final="60x40")
    from restoro.media.frames import FrameFormat

    fmt = Upscale().output_format(params, FrameFormat(width=32, height=24, frame_rate="25"))
    assert (fmt.width, fmt.height) == (60, 40)


def test_scale_mismatch_with_builtin_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StageError, match="x4"):
        Upscale().check(UpscaleParams(model="realesrgan-x4plus", scale=2))
    with pytest.raises(InputError, match="no x5"):
        from restoro.models.builtin import resolve

        resolve("realesr-animevideov3", 5)
    with pytest.raises(StageError, match="unknown model"):
        Upscale().check(UpscaleParams(model="esrgan-ultra", scale=4))


def test_classical_path_needs_no_model_input(tmp_path: Path) -> None:
    assert Upscale().model_inputs(UpscaleParams(model="lanczos"), StageEnv(tmp_path, None)) == {}
