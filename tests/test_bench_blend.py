"""benchmarks/bench_blend.py runs (CPU, tiny frames) and compares a git revision's engine with
this tree's in the same run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[1]


def test_the_blend_benchmark_times_both_trees_and_finds_the_same_bytes() -> None:
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: --before needs one")
    argv = [sys.executable, str(ROOT / "benchmarks" / "bench_blend.py"), "--size", "64x48",
            "--frames", "2", "--repeat", "1", "--before", "HEAD"]  # fmt: skip
    res = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    assert res.returncode == 0, res.stderr
    assert "| plan | before (HEAD) | now |" in res.stdout
    rows = [line for line in res.stdout.splitlines() if line.startswith(("| whole", "| tiles"))]
    assert len(rows) == 2 and all(len(r.split("|")) == 5 for r in rows)
    assert "bytes differ" not in res.stdout
