"""The engine's promises on a real 3-shot workspace: no-op builds, and exactly the right reruns."""

from __future__ import annotations

import os
import subprocess
from typing import TYPE_CHECKING

import av
import pytest
from buildkit import build, executed, plan

from restoro.media.ffmpeg import ffmpeg_exe
from restoro.plan import nodes

if TYPE_CHECKING:
    from pathlib import Path

# analysis, 1 ingest piece (with its shot scores), shots; 3 × (extract, upscale, chunk); audio;
# master
TOTAL = 3 + 3 * 3 + 1 + 1


def _shot_ids(report) -> list[str]:  # noqa: ANN001
    return sorted({r.shot for r in report.records if r.shot})


def _edit(manifest: Path, old: str, new: str) -> None:
    text = manifest.read_text()
    assert old in text, old
    manifest.write_text(text.replace(old, new))


@pytest.fixture
def built(workspace: Path) -> tuple[Path, object]:
    first = build(workspace)
    assert first.executed == TOTAL and first.cached == 0 and first.failed == 0
    return workspace, first


def test_noop_build_runs_nothing(built) -> None:  # noqa: ANN001
    manifest, first = built
    again = build(manifest)
    assert (again.executed, again.cached, again.failed) == (0, TOTAL, 0)
    assert again.shots == {"ep1": 3}
    master = manifest.parent / "out" / "master" / "ep1.mov"
    assert master.exists() and (master.parent / "ep1.provenance.json").exists()
    assert (manifest.parent / "restoro.lock").exists()


def test_plan_after_build_is_all_cached(built) -> None:  # noqa: ANN001
    manifest, _ = built
    p = plan(manifest)
    assert {r.status for r in p.records} == {"cached"} and len(p.records) == TOTAL


@pytest.mark.parametrize(
    "edit",
    ["comment", "key-order", "whitespace", "touch"],
)
def test_edits_that_rerun_nothing(built, edit: str) -> None:  # noqa: ANN001
    manifest, _ = built
    if edit == "comment":
        manifest.write_text(
            "# a note for the team\n"
            + manifest.read_text().replace("pipelines:", "pipelines:   # the chains")
        )
    elif edit == "key-order":
        text = manifest.read_text()
        head, rest = text.split("sources:", 1)
        sources, rest = rest.split("pipelines:", 1)
        pipelines, rest = rest.split("titles:", 1)
        manifest.write_text(
            head + "pipelines:" + pipelines + "sources:" + sources + "titles:" + rest
        )
    elif edit == "whitespace":
        manifest.write_text(manifest.read_text().replace("\n", "\n\n").replace(": ", ":   "))
    else:
        src = manifest.parent / "media" / "source.mkv"
        st = src.stat()
        os.utime(src, ns=(st.st_atime_ns + 10**9, st.st_mtime_ns + 10**9))
    report = build(manifest)
    assert executed(report) == {}
    assert report.cached == TOTAL


def test_one_shot_params_override_reruns_that_shot_only(built) -> None:  # noqa: ANN001
    manifest, first = built
    shots = _shot_ids(first)
    target = shots[1]
    master = manifest.parent / "out" / "master" / "ep1.mov"
    before = _video_packets(master)
    manifest.write_text(_with_override(manifest.read_text(), target))
    report = build(manifest)
    assert executed(report) == {
        f"{target}/upscale": "params-changed",
        f"{target}/master": "input-changed",
        # The master's metadata names the models applied, so its params changed too.
        "ep1/master": "params-changed",
    }
    after = _video_packets(master)
    assert len(before) == len(after) == 36
    changed = [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]
    assert changed and set(changed) <= set(range(12, 24))  # only the second shot's frames


def _with_override(text: str, shot: str) -> str:
    return text.replace(
        "    shots: {detector: content, threshold: 27, min_frames: 4}\n",
        "    shots: {detector: content, threshold: 27, min_frames: 4}\n"
        f'    overrides:\n      - shots: ["{shot}"]\n'
        "        params: {upscale: {model: lanczos}}\n",
    )


def _video_packets(path: Path) -> list[bytes]:
    with av.open(str(path)) as c:
        return [bytes(p) for p in c.demux(c.streams.video[0]) if p.size]


def test_pipeline_param_reruns_every_shot(built) -> None:  # noqa: ANN001
    manifest, first = built
    _edit(manifest, "model: bicubic", "model: spline36")
    report = build(manifest)
    shots = _shot_ids(first)
    expected = {f"{s}/upscale": "params-changed" for s in shots}
    expected |= {f"{s}/master": "input-changed" for s in shots}
    expected["ep1/master"] = "params-changed"
    assert executed(report) == expected


def test_stage_version_bump_reruns_that_stage_with_early_cutoff(built, monkeypatch) -> None:  # noqa: ANN001
    from restoro.stages.upscale import Upscale

    manifest, first = built
    monkeypatch.setattr(Upscale, "version", Upscale.version + 1)
    report = build(manifest)
    # Same bytes out of the upscale → the chunks and the master stay cached (early cutoff).
    assert executed(report) == {f"{s}/upscale": "stage-version-changed" for s in _shot_ids(first)}


def test_ffmpeg_fingerprint_change_reruns_ffmpeg_actions(built, monkeypatch) -> None:  # noqa: ANN001
    manifest, first = built
    nodes.reset_tool_cache()
    import restoro.media.ffmpeg as ff

    real = ff.ffmpeg_fingerprint()
    monkeypatch.setattr(ff, "ffmpeg_fingerprint", lambda: real + "-patched")
    try:
        report = build(manifest)
    finally:
        nodes.reset_tool_cache()
    runs = executed(report)
    assert set(runs.values()) == {"tool-changed"}
    stages = {r.id: r.stage for r in report.records if r.status == "executed"}
    assert sorted(stages.values()).count("prores-chunk") == 3
    assert {"ep1/analysis", "ep1/ingest/0", "ep1/audio/0", "ep1/master"} <= set(runs)
    # A classical upscale is ffmpeg's zscale: its chains rerun; shot detection stays cached.
    assert sorted(stages.values()).count("chain") == 3
    assert "shots" not in set(stages.values())


def test_source_bytes_change_with_same_frames_cuts_off_early(built, tmp_path) -> None:  # noqa: ANN001
    manifest, first = built
    src = manifest.parent / "media" / "source.mkv"
    remux = tmp_path / "remux.mkv"
    # Same video stream, different audio: the ingest reruns, yields the same frames, and every
    # per-shot action stays cached; audio and the master rerun.
    subprocess.run(
        [
            ffmpeg_exe(),
            "-hide_banner",
            "-loglevel",
            "error",
            "-i",
            str(src),
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=220:sample_rate=48000:duration=2",
            "-map",
            "0:v",
            "-map",
            "1:a",
            "-c:v",
            "copy",
            "-c:a",
            "pcm_s16le",
            "-ac",
            "2",
            "-shortest",
            "-fflags",
            "+bitexact",
            str(remux),
        ],
        check=True,
    )
    os.replace(remux, src)
    report = build(manifest)
    assert executed(report) == {
        "ep1/analysis": "input-changed",
        "ep1/ingest/0": "input-changed",
        "ep1/audio/0": "input-changed",
        "ep1/master": "input-changed",
    }


def test_variant_builds_beside_the_main_master(built) -> None:  # noqa: ANN001
    manifest, _ = built
    manifest.write_text(
        manifest.read_text() + "variants:\n  soft:\n    params: {upscale: {model: lanczos}}\n"
    )
    report = build(manifest, variant="soft")
    assert report.failed == 0 and report.executed > 0
    out = manifest.parent / "out" / "variants" / "soft" / "master" / "ep1.mov"
    assert out.exists()
    assert out.read_bytes() != (manifest.parent / "out" / "master" / "ep1.mov").read_bytes()
    again = build(manifest, variant="soft")
    assert again.executed == 0
