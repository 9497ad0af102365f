"""Model chains key on the execution device; model inputs are named per stage; grain seeds per
shot id. Real builds of a tiny clip with random-initialised spandrel models."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pytest
from buildkit import build, executed, plan

from restoro.media.frameio import MEZZANINE, read_frames, write_frames
from restoro.media.frames import FrameFormat

if TYPE_CHECKING:
    from pathlib import Path

torch = pytest.importorskip("torch")
pytest.importorskip("spandrel")

MANIFEST = """\
restoro: 1
project: dev
sources:
  tape:
    path: media/source.mkv
pipelines:
  main:
    - {stage: ingest, mode: progressive}
STAGES
titles:
  ep1:
    source: tape
    pipeline: main
    shots: {detector: content, threshold: 27, min_frames: 2}
deliverables:
  master: {kind: prores, profile: 422hq, raster: 256x144, fit: pillarbox}
"""


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from restoro.testing.synth import make_source

    path = tmp_path_factory.mktemp("dev") / "source.mkv"
    return make_source(
        path, width=48, height=32, shots=2, shot_frames=3, codec="ffv1", sar="1:1",
        audio_channels=0,
    )  # fmt: skip


def _compact(path: Path, scale: int, seed: int) -> Path:
    from safetensors.torch import save_file
    from spandrel.architectures.Compact import Compact

    torch.manual_seed(seed)
    m = Compact(num_in_ch=3, num_out_ch=3, num_feat=8, num_conv=2, upscale=scale)
    save_file({k: v.contiguous() for k, v in m.state_dict().items()}, str(path))
    return path


def _workspace(tmp_path: Path, source: Path, stages: list[str]) -> Path:
    (tmp_path / "media").mkdir()
    (tmp_path / "media" / "source.mkv").write_bytes(source.read_bytes())
    (tmp_path / "models").mkdir()
    manifest = tmp_path / "restoro.yaml"
    manifest.write_text(MANIFEST.replace("STAGES", "\n".join(f"    - {s}" for s in stages)))
    return manifest


def _chains(manifest: Path) -> dict[str, dict]:
    """The latest chain action per logical id: key fields, meta and output frames."""
    from restoro.plan.workspace import Workspace

    report = plan(manifest, device="cpu")
    ws = Workspace(manifest)
    try:
        keys = {r.id: r.key for r in report.records if r.stage == "chain"}
        out = {}
        for res in ws.store.iter_actions():
            if res.key_json.get("stage") == "chain" and keys.get(res.action_id) == res.key:
                out[res.action_id] = {
                    "key": res.key_json,
                    "meta": res.meta,
                    "frames": list(read_frames(ws.store.blob_path(res.outputs["frames"].digest))),
                    "input": list(
                        read_frames(ws.store.blob_path(res.key_json["inputs"]["frames"]))
                    ),
                }
        return out
    finally:
        ws.close()


def test_device_enters_model_chain_keys_only(
    tmp_path: Path, source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from restoro.models import device

    manifest = _workspace(
        tmp_path,
        source,
        [
            "{stage: upscale, model: lanczos, scale: 2}",
            "{stage: upscale, model: models/x2.safetensors, scale: 2}",
        ],
    )
    _compact(tmp_path / "models" / "x2.safetensors", 2, seed=1)
    first = build(manifest, device="cpu")
    assert first.failed == 0, first
    chains = _chains(manifest)
    model_ids = {k for k, c in chains.items() if "model:upscale" in c["key"]["inputs"]}
    classical = set(chains) - model_ids
    assert len(model_ids) == 2 and len(classical) == 2
    for k in model_ids:
        assert chains[k]["key"]["tools"]["device"] == f"cpu, torch {torch.__version__}"
    for k in classical:
        assert "device" not in chains[k]["key"]["tools"]
    if not torch.cuda.is_available():  # auto means cpu here: same keys, nothing runs
        assert build(manifest, device="auto").executed == 0
    device.reset()
    monkeypatch.setattr(
        device, "fingerprint", lambda d: f"cuda:Fake GPU, torch {torch.__version__}"
    )
    again = build(manifest, device="cpu")
    runs = executed(again)
    assert {k: runs.get(k) for k in model_ids} == dict.fromkeys(model_ids, "tool-changed")
    assert not classical & set(runs)
    # Same pixels on this CPU, so everything downstream is an early cut-off.
    assert set(runs) == model_ids


def test_two_model_stages_of_one_id_in_one_segment(tmp_path: Path, source: Path) -> None:
    from restoro.models.infer import Engine, Options

    manifest = _workspace(
        tmp_path,
        source,
        [
            "{stage: denoise, method: model, model: models/a.safetensors}",
            "{stage: denoise, method: model, model: models/b.safetensors}",
            "{stage: upscale, model: models/c.safetensors, scale: 2}",
        ],
    )
    models = tmp_path / "models"
    a, b, c = (_compact(models / f"{n}.safetensors", s, seed=i) for i, (n, s) in enumerate(
        [("a", 1), ("b", 1), ("c", 2)]
    ))  # fmt: skip
    report = build(manifest, device="cpu")
    assert report.failed == 0, report
    chains = _chains(manifest)
    assert len(chains) == 2  # one segment per shot: the three stages are fused
    for chain in chains.values():
        inputs = chain["key"]["inputs"]
        assert {k for k in inputs if k.startswith("model:")} == {
            "model:denoise",
            "model:denoise#2",
            "model:upscale",
        }
        assert inputs["model:denoise"] != inputs["model:denoise#2"]
        # Each stage ran its own model: the chain equals a → b → c applied directly.
        frames = chain["input"]
        for path in (a, b, c):
            frames = Engine(path, Options(device="cpu")).run(frames)
        assert len(frames) == len(chain["frames"])
        # The chain's cache point after a model is the ProRes 4444 mezzanine (intermediates:
        # auto): what the chain stored reads back as those frames written as a mezzanine.
        assert chain["key"]["params"]["intermediate"] == MEZZANINE
        fmt = FrameFormat.model_validate(chain["meta"]["format"])
        mezz = tmp_path / "want.mkv"
        write_frames(mezz, fmt, iter(frames), MEZZANINE)
        for want, got in zip(read_frames(mezz), chain["frames"], strict=True):
            assert np.array_equal(want, got)
    # Swapping the two denoise models changes the key of every chain (order matters).
    text = manifest.read_text()
    manifest.write_text(text.replace("models/a.", "models/X.").replace("models/b.", "models/a.")
                        .replace("models/X.", "models/b."))  # fmt: skip
    runs = executed(build(manifest, device="cpu"))
    assert {runs[k] for k in chains} == {"model-changed"}


def test_grain_seed_comes_from_the_shot_id(tmp_path: Path, source: Path) -> None:
    manifest = _workspace(tmp_path, source, ["{stage: grain, amount: 0.05}"])
    report = build(manifest, device="cpu")
    assert report.failed == 0, report
    chains = _chains(manifest)
    seeds = {k: c["key"]["params"]["seed"] for k, c in chains.items()}
    assert len(set(seeds.values())) == 2  # two shots, two seeds
    assert all(c["meta"]["stages"]["grain"]["seed"] for c in chains.values())
    # Stable: planning again gives the same keys, so nothing runs.
    assert build(manifest, device="cpu").executed == 0
    # The grain differs between shots: residuals are uncorrelated.
    res = [c["frames"][0].astype(float) - c["input"][0].astype(float) for c in chains.values()]
    assert abs(np.corrcoef(res[0].ravel(), res[1].ravel())[0, 1]) < 0.2
