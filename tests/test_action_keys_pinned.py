"""Action keys of a fixed small project are pinned, so moving code never silently invalidates a
store: a store built before a refactor must be all cache hits after it.

The expected keys were computed by the code before the package layering refactor (issue 16).
Issue 12 split the title's ingest into an analysis, ingest pieces and per-piece shot scores,
which changed the keys of the title's analysis/ingest/shots actions and of the shots' extracts
(version 2, same bytes); every chain, audio and master key stayed as it was. Then the pieces
took over their shot scores (no ``shot-scores`` action), which changed the piece's key (its
``scores`` param, the scenedetect fingerprint) and the shots' (version 3); the piece's frames
are the same bytes, so the extracts' and every later key stayed as they were.
They depend on the source's bytes and on the ffmpeg and scenedetect fingerprints, which are part
of the keys; where those differ (another ffmpeg build) the keys legitimately differ and the test
says so instead of comparing.
"""

from __future__ import annotations

import hashlib
from importlib.metadata import version
from typing import TYPE_CHECKING

import pytest
from buildkit import build

from restoro.media.ffmpeg import ffmpeg_fingerprint

if TYPE_CHECKING:
    from pathlib import Path

SOURCE_SHA256 = "409bf86d2def4d781eeebc2068f3da3067eb8df9bb15473dffec88a84e7ea003"
FFMPEG = "ffmpeg n9.0.2-17-g2a571b6068-20260930#7d4b288dccb9/x86-64-v4+vnni"
SCENEDETECT = "scenedetect 0.7.2"

PINNED: dict[str, str] = {
    "ep1/analysis": "af141fa95b1e95055ed65cb2229082c7",
    "ep1/ingest/0": "a8de0f9ddc1b50d6d230d53c25f063ff",
    "ep1/shots": "a8dc10e8e817477d05dd81bf97115758",
    "ep1@00:00:00:12/ingest": "bcf470fd301d3e4746f4ce42c94c56dd",
    "ep1@00:00:00:00/ingest": "55b2cdd1ef6c89c4ebe5deef85d3e94d",
    "ep1@00:00:00:00/upscale": "d359b2c18478cc58210b85bd970ee81e",
    "ep1@00:00:00:12/upscale": "c8f2bd4f269355abb700c7c5dfc19c7e",
    "ep1@00:00:00:24/ingest": "c0811e603ae28550e796d8014cad16cb",
    "ep1/audio/0": "86ebb73072b8f0a373d9ded4ee784aba",
    "ep1@00:00:00:24/upscale": "7e9fb6e4516b48353de924dba8fd2657",
    "ep1@00:00:00:00/master": "4beaef195d40c011824016f45987985a",
    "ep1@00:00:00:12/master": "2aff54a6c2acf87c5b039545c985eaaf",
    "ep1@00:00:00:24/master": "8c87ed25fa75e291a3673fe14257c8db",
    "ep1/master": "47ef3c52b0e34fe1b399bb5e0ff22117",
}


@pytest.mark.slow
def test_action_keys_of_a_fixed_project_are_unchanged(workspace: Path) -> None:
    source = workspace.parent / "media" / "source.mkv"
    facts = (
        hashlib.sha256(source.read_bytes()).hexdigest(),
        ffmpeg_fingerprint(),
        f"scenedetect {version('scenedetect')}",
    )
    if facts != (SOURCE_SHA256, FFMPEG, SCENEDETECT):
        pytest.skip(f"keys were pinned for another source/ffmpeg/scenedetect: {facts}")
    first = build(workspace)
    assert first.failed == 0
    assert {r.id: r.key for r in first.records} == PINNED
    again = build(workspace)
    assert (again.executed, again.cached) == (0, len(PINNED))


def test_the_scenedetect_fingerprint_is_the_installed_version() -> None:
    """Shot detection is keyed by ``scenedetect <version>``, read from the distribution's
    metadata headers without the email parser: the same text ``importlib.metadata`` gives, for
    every installed distribution; a missing one raises as ``version`` does."""
    from importlib.metadata import PackageNotFoundError, distributions

    from restoro.plan.nodes import installed_version, reset_tool_cache, tool_fingerprints

    names = {d.metadata["Name"] for d in distributions()} - {None}
    assert "scenedetect" in names and len(names) > 10
    assert {n: installed_version(n) for n in names} == {n: version(n) for n in names}
    reset_tool_cache()
    now = f"scenedetect {version('scenedetect')}"
    assert tool_fingerprints(["scenedetect"]) == {"scenedetect": now}
    with pytest.raises(PackageNotFoundError):
        installed_version("no-such-distribution-restoro")
