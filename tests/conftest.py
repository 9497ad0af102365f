"""Shared fixtures: synthetic sources and small workspaces built from them."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """../shared beside the checkout; tests that need it skip when it is absent."""
    if not SHARED.is_dir():
        pytest.skip("../shared is not present")
    return SHARED


@pytest.fixture(scope="session")
def _source_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sources")


def _cached_source(cache: Path, name: str, **kw: object) -> Path:
    from restoro.testing.synth import make_source

    path = cache / name
    if not path.exists():
        make_source(path, **kw)  # type: ignore[arg-type]
    return path


@pytest.fixture(scope="session")
def progressive_source(_source_cache: Path) -> Path:
    """Three hard-cut shots of 12 frames, 160x120 progressive, stereo audio, FFV1."""
    return _cached_source(
        _source_cache,
        "prog.mkv",
        width=160,
        height=120,
        shots=3,
        shot_frames=12,
        interlaced=False,
        audio_channels=2,
        codec="ffv1",
        sar="1:1",
    )


@pytest.fixture(scope="session")
def interlaced_source(_source_cache: Path) -> Path:
    """Three hard-cut shots of 12 frames, 160x120 interlaced TFF, stereo audio, FFV1."""
    return _cached_source(
        _source_cache,
        "intl.mkv",
        width=160,
        height=120,
        shots=3,
        shot_frames=12,
        interlaced=True,
        audio_channels=2,
        codec="ffv1",
        sar="8:9",
    )


# ``cache: true`` keeps each shot's chain a cache point, which most tests look at; without it
# a filter-only chain folds into the ProRes chunk and the QC (tests/test_fold.py).
SMALL_MANIFEST = """\
restoro: 1
project: small
sources:
  tape:
    path: media/source.mkv
pipelines:
  main:
    - {stage: ingest, mode: progressive}
    - {stage: upscale, cache: true, model: bicubic, scale: 2}
titles:
  ep1:
    source: tape
    pipeline: main
    shots: {detector: content, threshold: 27, min_frames: 4}
deliverables:
  master: {kind: prores, profile: 422hq, raster: 640x360, fit: pillarbox}
"""


@pytest.fixture
def workspace(tmp_path: Path, progressive_source: Path) -> Path:
    """A small project: a 3-shot source and a manifest; returns the manifest path."""
    (tmp_path / "media").mkdir()
    shutil.copy(progressive_source, tmp_path / "media" / "source.mkv")
    manifest = tmp_path / "restoro.yaml"
    manifest.write_text(SMALL_MANIFEST, encoding="utf-8")
    return manifest


CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's Chromium, installed with apt-get when missing (skipped only when apt-get is not
    there); the browser tests drive it headless and talk to nothing but 127.0.0.1."""
    if not CHROMIUM.exists():
        apt = shutil.which("apt-get")
        if apt is None:
            pytest.skip("Chromium is not installed and apt-get is unavailable to install it")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        opts = ["-o", "DPkg::Lock::Timeout=300"]
        cmd = [apt, "install", "-y", "--no-install-recommends", *opts, "chromium"]
        if subprocess.run(cmd, env=env, capture_output=True, check=False).returncode != 0:
            subprocess.run([apt, "update", *opts], env=env, capture_output=True, check=True)
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
            assert proc.returncode == 0, f"apt-get install chromium failed:\n{proc.stderr}"
    assert CHROMIUM.exists()
    return CHROMIUM
