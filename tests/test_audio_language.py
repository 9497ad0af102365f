"""Audio by language: ``audio[].language`` picks the source's stream tagged with it, ``stream``
keeps meaning the container index, neither takes the first audio stream (not container index 1,
which is the video on a VOB whose stream 0 is navigation data), and a language no stream has is
an exit-2 error naming the streams that exist."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from buildkit import cli

from restoro.deliver.audio import language_matches
from restoro.media.ffmpeg import bitexact_args, run_ffmpeg
from restoro.plan.audio import audio_nodes, track_params
from restoro.plan.workspace import Workspace
from restoro.testing.synth import make_source

if TYPE_CHECKING:
    from pathlib import Path

MANIFEST = """\
restoro: 1
project: lang
sources:
  disc:
    path: media/disc.mkv
pipelines:
  main:
    - {stage: ingest, mode: progressive}
titles:
  ep1:
    source: disc
    pipeline: main
    audio:
%s
deliverables:
  master: {kind: prores, profile: 422hq, raster: 64x48, fit: pillarbox}
"""


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Streams: 0 audio (French, stereo), 1 video, 2 audio (English, mono) — the first audio
    stream is not at index 1, as on a VOB (0: navigation data, 1: video, 2..: audio)."""
    root = tmp_path_factory.mktemp("lang-media")
    base = make_source(
        root / "base.mkv", width=64, height=48, shots=1, shot_frames=12, audio_channels=2,
        codec="ffv1", sar="1:1", rate="24",
    )  # fmt: skip
    run_ffmpeg(
        ["-i", str(base), "-f", "lavfi", "-i", "sine=frequency=500:duration=0.5",
         "-map", "0:a", "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "flac",
         "-metadata:s:a:0", "language=fre", "-metadata:s:a:1", "language=eng",
         *bitexact_args(), str(root / "disc.mkv")]
    )  # fmt: skip
    return root


def _workspace(tmp_path: Path, media: Path, audio: str) -> Path:
    (tmp_path / "media").symlink_to(media)
    manifest = tmp_path / "restoro.yaml"
    manifest.write_text(MANIFEST % audio, encoding="utf-8")
    return manifest


def _streams(manifest: Path) -> list[int]:
    ws = Workspace(manifest)
    try:
        ws.preflight(["ep1"])
        return [tr["sources"][0][1] for tr in track_params(ws, "ep1")]
    finally:
        ws.close()


def test_keys_name_the_resolved_stream(tmp_path: Path, media: Path) -> None:
    """A track that gives ``stream`` keys exactly as before (the index it names); one that
    relies on the default keys on the stream it resolves to (the same key as naming it)."""
    manifest = _workspace(
        tmp_path, media, "      - {stream: 0, layout: stereo}\n      - {layout: stereo}\n"
    )
    ws = Workspace(manifest)
    try:
        ws.preflight(["ep1"])
        named, default = (n.make({}).key()[0] for n in audio_nodes(ws, "ep1", (0, 12)))
        params = [n.make({}).params["streams"] for n in audio_nodes(ws, "ep1", (0, 12))]
    finally:
        ws.close()
    assert params == [[0], [0]] and named == default


def test_language_tags_match_bcp47() -> None:
    assert language_matches("fr", "fre") and language_matches("fr-CA", "fra")
    assert language_matches("en", "eng") and language_matches("de", "de")
    assert not language_matches("en", "fre") and not language_matches("fr", None)


def test_stream_by_language_index_and_default(tmp_path: Path, media: Path) -> None:
    manifest = _workspace(
        tmp_path,
        media,
        "      - {language: en, layout: mono}\n"
        "      - {language: fr-CA}\n"
        "      - {stream: 2, language: fr, layout: mono}\n"
        "      - {layout: stereo}\n",
    )
    # en → the English stream 2; fr-CA → the French stream 0; an explicit stream wins over the
    # language (which then only labels the track); neither → the first audio stream, 0.
    assert _streams(manifest) == [2, 0, 2, 0]
    # The CLI's plan resolves them the same way (the languages named, no error).
    res = cli("plan", "-f", str(manifest))
    assert res.returncode == 0, res.stderr


def test_untagged_source_takes_its_first_stream_whatever_the_language(tmp_path: Path) -> None:
    (tmp_path / "media").mkdir()
    make_source(
        tmp_path / "media" / "disc.mkv", width=64, height=48, shots=1, shot_frames=12,
        audio_channels=2, codec="ffv1", sar="1:1", rate="24",
    )  # fmt: skip
    manifest = tmp_path / "restoro.yaml"
    manifest.write_text(MANIFEST % "      - {language: en}\n", encoding="utf-8")
    assert _streams(manifest) == [1]


def test_unknown_language_is_exit_2_naming_the_streams(tmp_path: Path, media: Path) -> None:
    manifest = _workspace(tmp_path, media, "      - {language: de}\n")
    res = cli("plan", "-f", str(manifest))
    assert res.returncode == 2, res.stderr
    assert "no audio stream in language 'de'" in res.stderr
    assert "0 (fre, flac stereo)" in res.stderr and "2 (eng, flac mono)" in res.stderr
    assert "Traceback" not in res.stderr


def test_stream_that_is_not_audio_is_exit_2(tmp_path: Path, media: Path) -> None:
    manifest = _workspace(tmp_path, media, "      - {stream: 1}\n")
    res = cli("plan", "-f", str(manifest))
    assert res.returncode == 2, res.stderr
    assert "no audio stream 1" in res.stderr and "Traceback" not in res.stderr
