"""Shared fixtures: synthetic sources and small workspaces built from them."""

from __future__ import annotations

import shutil
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


SMALL_MANIFEST = """\
restoro: 1
project: small
sources:
  tape:
    path: media/source.mkv
pipelines:
  main:
    - {stage: ingest, mode: progressive}
    - {stage: upscale, model: bicubic, scale: 2}
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
