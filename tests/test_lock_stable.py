"""A no-op rebuild leaves ``restoro.lock``, every provenance sidecar and every output untouched
(same bytes, not even rewritten) for every deliverable kind, and ``restoro status`` reports every
output ok: after a fresh build, and after a build that reran one shot.

A cached result lists its outputs in another order than a fresh one; the lock and the provenance
must not depend on that order (they once took a stream package's first output: the digest of
``a0/index.m3u8`` instead of ``master.m3u8``, and status called the package modified)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from buildkit import build, cli, executed, json_lines

from restoro.testing.synth import make_source

if TYPE_CHECKING:
    from pathlib import Path

SHOTS = [12, 12, 12]  # 36 frames at 24 fps
SRT = "1\n00:00:00,900 --> 00:00:01,300\nHello\n"
STREAM = """\
  %s:
    kind: %s
    segment_seconds: 0.5
    ladder:
      - {codec: h264, height: 96, bitrate: 100k}
    audio:
      - {codec: aac, channels: 2, bitrate: 64k}
"""
MANIFEST = (
    """\
restoro: 1
project: lockstable
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
    audio:
      - {stream: 1, layout: stereo, loudness: -23, language: en}
    captions:
      - {path: media/en.srt, language: en, kind: subtitles}
deliverables:
  master: {kind: prores, profile: 422hq, raster: 128x96, fit: pillarbox}
  imf: {kind: imf, application: prores, profile: 422hq, raster: 128x96, fit: pillarbox,
        issue_date: '2024-05-01T12:00:00Z'}
"""
    + STREAM % ("web", "hls")
    + STREAM % ("dash", "dash")
    + "qc: {}\n"
)
KINDS = {"master": "prores", "imf": "imf", "web": "hls", "dash": "dash"}


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lockstable-media")
    make_source(
        root / "source.mkv", width=64, height=48, shots=3, shot_frames=SHOTS,
        audio_channels=2, codec="ffv1", sar="1:1", rate="24",
    )  # fmt: skip
    (root / "en.srt").write_text(SRT, encoding="utf-8")
    return root


def _workspace(root: Path, media: Path) -> Path:
    (root / "media").mkdir()
    for f in media.iterdir():
        (root / "media" / f.name).symlink_to(f)
    m = root / "restoro.yaml"
    m.write_text(MANIFEST, encoding="utf-8")
    return m


def _snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    """Bytes and modification time of the lock and of every file under out/."""
    files = [root / "restoro.lock", *(p for p in (root / "out").rglob("*") if p.is_file())]
    return {str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns) for p in files}


def _assert_noop_rebuild(manifest: Path) -> None:
    root = manifest.parent
    before = _snapshot(root)
    provenance = [k for k in before if k.endswith(".provenance.json")]
    assert sorted(provenance) == sorted(f"out/{d}/ep1.provenance.json" for d in KINDS)
    report = build(manifest)
    assert executed(report) == {} and report.failed == 0
    after = _snapshot(root)
    assert sorted(after) == sorted(before)
    changed = [k for k in before if after[k][0] != before[k][0]]
    assert changed == [], f"a no-op rebuild changed {changed}"
    rewritten = [k for k in before if after[k][1] != before[k][1]]
    assert rewritten == [], f"a no-op rebuild rewrote {rewritten}"
    _assert_status_clean(root)


def _assert_status_clean(root: Path) -> None:
    r = cli("status", "--json", cwd=root)
    assert r.returncode == 0, r.stderr
    (status,) = json_lines(r.stdout)
    assert status["up_to_date"] is True and status["run"] == 0
    states = {o["deliverable"]: o["state"] for o in status["outputs"]}
    assert states == dict.fromkeys(KINDS, "ok")
    text = cli("status", cwd=root)
    assert "modified" not in text.stdout and "up to date" in text.stdout


@pytest.mark.slow
def test_noop_rebuilds_keep_lock_provenance_and_outputs_byte_identical(
    tmp_path: Path, media: Path
) -> None:
    manifest = _workspace(tmp_path, media)
    first = build(manifest)
    assert first.failed == 0
    stages = {r.stage for r in first.records if r.status == "executed"}
    assert {"prores-master", "imf-package", "stream-package", "qc"} <= stages
    lock_text = (tmp_path / "restoro.lock").read_text()
    # Each deliverable's digest in the lock is that of its main file, not of whichever output
    # happened to be listed first.
    for main in ("master.m3u8", "manifest.mpd", "CPL_", "ep1.mov"):
        assert main in lock_text
    _assert_status_clean(tmp_path)
    _assert_noop_rebuild(manifest)

    # Rerun one shot (an override changes its upscale model), then rebuild again with nothing
    # changed: the deliverables rebuilt from one fresh shot and cached rest stay put too.
    shot = sorted({r.shot for r in first.records if r.shot})[1]
    text = manifest.read_text()
    anchor = "    shots: {detector: content, threshold: 27, min_frames: 4}\n"
    manifest.write_text(
        text.replace(
            anchor,
            anchor + f'    overrides:\n      - shots: ["{shot}"]\n'
            "        params: {upscale: {model: lanczos}}\n",
        )
    )
    one = build(manifest)
    ran = executed(one)
    assert f"{shot}/upscale" in ran
    assert {r.shot for r in one.records if r.status == "executed" and r.shot} == {shot}
    assert (tmp_path / "restoro.lock").read_text() != lock_text  # the deliverables changed
    _assert_status_clean(tmp_path)
    _assert_noop_rebuild(manifest)


@pytest.mark.slow
def test_next_build_removes_temporary_files_of_interrupted_exports(
    tmp_path: Path, media: Path
) -> None:
    """What a build killed mid-export leaves (``.NAME.<pid>.tmp`` of a dead pid beside an output
    or the lockfile, an old store-export ``.part``) goes; a live pid's file, a fresh ``.part``
    and files not named as restoro names its temporaries stay."""
    import os
    import subprocess
    import sys
    import time

    manifest = _workspace(tmp_path, media)
    manifest.write_text(MANIFEST.split("  imf:")[0] + "qc: {}\n", encoding="utf-8")
    assert build(manifest).failed == 0
    out = tmp_path / "out" / "master"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    dead_pid = int(dead.stdout)
    gone = [
        out / f".ep1.provenance.json.{dead_pid}.tmp",
        out / f".ep1.mov.{dead_pid}.tmp",
        out / "sub" / f".seg_00001.m4s.{dead_pid}.tmp",
        tmp_path / f".restoro.lock.{dead_pid}.tmp",
        out / ".ep1.srt.1a2b3c4d.part",
    ]
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        kept = [
            out / f".ep1.mov.{live.pid}.tmp",  # a concurrent export still running
            out / f".ep1.mov.{os.getpid()}.tmp",  # the test's own process: alive too
            out / ".ep1.scc.5e6f7a8b.part",  # a store export copying right now
            out / ".notes.txt",
            out / f"ep1.mov.{dead_pid}.tmp",  # not hidden: not ours
            out / f".ep1.mov.{dead_pid}.bak",
            tmp_path / "media" / f".source.mkv.{dead_pid}.tmp",  # outside out/
        ]
        for p in gone + kept:
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(b"half an export")
        old = time.time() - 3600
        os.utime(out / ".ep1.srt.1a2b3c4d.part", (old, old))
        r = cli("build", "--json", cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        events = json_lines(r.stdout)
        (removed,) = [e for e in events if e["event"] == "temp-removed"]
        assert sorted(removed["paths"]) == sorted(str(p) for p in gone)
        assert not [e for e in events if e["event"] == "action" and e["status"] == "executed"]
        assert [p for p in gone if p.exists()] == []
        assert [p for p in kept if not p.exists()] == []
    finally:
        live.kill()
        live.wait()
    # The deliverable is intact, and status still finds every output as the lock records it.
    r = cli("status", "--json", cwd=tmp_path)
    (status,) = json_lines(r.stdout)
    assert status["up_to_date"] is True
    assert {o["state"] for o in status["outputs"]} == {"ok"}
