"""Crashes, corruption, concurrent builds and bad input, through the real CLI."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import pytest
from buildkit import build, cli, executed, json_lines, store_entries

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

CODE = "import sys; from restoro.cli.app import main; sys.exit(main(sys.argv[1:]))"


def _master(manifest: Path) -> bytes:
    return (manifest.parent / "out" / "master" / "ep1.mov").read_bytes()


def _clone(workspace: Path, dest: Path) -> Path:
    dest.mkdir()
    shutil.copytree(workspace.parent / "media", dest / "media")
    shutil.copy(workspace, dest / "restoro.yaml")
    return dest / "restoro.yaml"


# Where each round of the SIGKILL test kills the build: on reading the first event from its
# --json stdout that says an action of this stage starts (and is not one killed before). Each
# round resumes from what the rounds before committed, so the points walk through the build:
# the title's ingest, shot detection, an upscale, one ProRes chunk, another. Each of these
# actions works for a second or so after its start: the kill lands long before its commit.
KILL_STAGES = [
    ("title ingest", "ingest"),
    ("shot detection", "shots"),
    ("an upscale", "chain"),
    ("a ProRes chunk", "prores-chunk"),
    ("another ProRes chunk", "prores-chunk"),
]


def _kill_on(manifest: Path, point: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
    """Run a build and SIGKILL it the moment ``point`` matches an event it printed; return the
    events read until then. Fails when the build ends first (the kill would have missed)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", CODE, "build", "-f", str(manifest), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    seen: list[dict[str, Any]] = []
    try:
        for line in proc.stdout:
            seen.append(json.loads(line))
            if point(seen[-1]):
                proc.send_signal(signal.SIGKILL)
                break
    finally:
        if proc.poll() is None:
            proc.kill()  # (again, when it was the kill point: harmless)
        proc.wait(timeout=60)
        proc.stdout.close()
    assert seen and point(seen[-1]), f"the build ended before the kill point: {seen[-3:]}"
    assert proc.returncode == -signal.SIGKILL, proc.returncode  # killed, not finished
    assert not any(e["event"] in ("summary", "output") for e in seen)
    return seen


@pytest.mark.slow
def test_sigkill_mid_build_then_rebuild_is_byte_identical(workspace: Path, tmp_path: Path) -> None:
    """SIGKILL a build at fixed points of real work (read from its own --json events, so a
    fast build cannot slip past them), five times in a row; the rebuild then finishes,
    re-runs each interrupted action (none of them was committed) and writes the same master
    as an uninterrupted build."""
    reference = _clone(workspace, tmp_path / "reference")
    build(reference)
    expected = _master(reference)

    killed: list[str] = []
    for what, stage in KILL_STAGES:

        def point(e: dict[str, Any], stage: str = stage) -> bool:
            return e["event"] == "action-start" and e["stage"] == stage and e["id"] not in killed

        seen = _kill_on(workspace, point)
        cached = {e["id"] for e in seen if e["event"] == "action" and e["status"] == "cached"}
        assert not killed or killed[-1] not in cached, (what, killed[-1])  # it never committed
        killed.append(seen[-1]["id"])
    assert len(set(killed)) == len(KILL_STAGES), killed  # five different actions interrupted
    report = build(workspace)
    assert report.failed == 0
    assert killed[-1] in executed(report)  # the last one re-runs: it was interrupted
    assert _master(workspace) == expected
    verify = cli("cache", "verify", "-f", str(workspace))
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_flipped_byte_in_a_blob_is_detected_and_rebuilt(workspace: Path) -> None:
    first = build(workspace)
    expected = _master(workspace)
    shot = sorted({r.shot for r in first.records if r.shot})[0]
    ws_store = workspace.parent / ".restoro"
    # The upscaled frames of the first shot.
    from restoro.engine.store import Store

    store = Store(ws_store)
    rec = next(r for r in first.records if r.id == f"{shot}/upscale")
    digest = store.lookup(rec.key).result.outputs["frames"].digest
    store.state.close()
    blob = ws_store / "cas" / digest.split(":", 1)[1][:2] / digest.split(":", 1)[1][2:]
    if not blob.exists():  # the store may name blobs differently; find it by digest
        blob = next(
            p
            for p in (ws_store / "cas").rglob("*")
            if p.is_file() and digest.split(":")[1][2:] in p.name
        )
    os.chmod(blob, 0o644)
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.write_bytes(bytes(data))

    report = build(workspace)
    runs = executed(report)
    assert runs.get(f"{shot}/upscale") == "corrupt"
    assert not any(k.endswith("/master") for k in runs)  # same bytes again → early cutoff
    assert _master(workspace) == expected
    assert list((ws_store / "quarantine").iterdir())


@pytest.mark.slow
def test_two_concurrent_builds_one_waits_both_succeed(workspace: Path) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CODE, "build", "-f", str(workspace), "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    events = [json_lines(o[0]) for o in outs]
    waited = [any(e["event"] == "waiting" for e in evs) for evs in events]
    assert waited.count(True) == 1, waited
    summaries = [evs[-1] for evs in events]
    assert all(s["event"] == "summary" and s["failed"] == 0 for s in summaries)
    # Whoever waited found everything done by the other.
    later = summaries[waited.index(True)]
    assert later["executed"] == 0
    verify = cli("cache", "verify", "-f", str(workspace))
    assert verify.returncode == 0, verify.stderr


BAD_MANIFESTS = {
    "malformed-yaml": ("sources:\n  tape: [unclosed\n", "E201"),
    "wrong-type": (
        "restoro: 1\nproject: x\nsources: {tape: {path: media/source.mkv, crop: 12}}\n",
        "E210",
    ),
    "unknown-key": ("restoro: 1\nproject: x\nsorces: {}\n", "E211"),
}


@pytest.mark.parametrize("case", sorted(BAD_MANIFESTS))
def test_bad_manifest_exits_2_with_position_and_writes_nothing(workspace: Path, case: str) -> None:
    text, code = BAD_MANIFESTS[case]
    workspace.write_text(text)
    res = cli("build", "-f", str(workspace))
    assert res.returncode == 2, res.stderr
    assert f"error[{code}]" in res.stderr
    assert "restoro.yaml:" in res.stderr and ":" in res.stderr.split("error[")[0]
    assert store_entries(workspace.parent) == []


def test_bad_timecode_exits_2(workspace: Path) -> None:
    workspace.write_text(
        workspace.read_text().replace(
            "    pipeline: main\n",
            '    pipeline: main\n    range: ["00:00:00:00", "00:00:99:00"]\n',
        )
    )
    res = cli("build", "-f", str(workspace))
    assert res.returncode == 2 and "error[E230]" in res.stderr, res.stderr
    assert store_entries(workspace.parent) == []


def test_timecode_outside_the_source_exits_2(workspace: Path) -> None:
    workspace.write_text(
        workspace.read_text().replace(
            "    pipeline: main\n",
            '    pipeline: main\n    range: ["00:00:00:00", "00:10:00:00"]\n',
        )
    )
    res = cli("build", "-f", str(workspace))
    assert res.returncode == 2 and "error[E231]" in res.stderr, res.stderr
    assert store_entries(workspace.parent) == []


@pytest.mark.parametrize("kind", ["missing", "empty", "text", "truncated"])
def test_bad_source_exits_2_and_writes_nothing(workspace: Path, kind: str) -> None:
    src = workspace.parent / "media" / "source.mkv"
    if kind == "missing":
        src.unlink()
    elif kind == "empty":
        src.write_bytes(b"")
    elif kind == "text":
        src.write_text("this is not a video\n" * 100)
    else:
        data = src.read_bytes()
        src.write_bytes(data[: len(data) // 3])
    res = cli("build", "-f", str(workspace))
    assert res.returncode == 2, (res.returncode, res.stderr)
    assert "tape" in res.stderr and "hint:" in res.stderr
    assert store_entries(workspace.parent) == []


def test_unknown_variant_and_target_exit_2(workspace: Path) -> None:
    res = cli("build", "-f", str(workspace), "--variant", "nope")
    assert res.returncode == 2 and "unknown variant" in res.stderr
    res = cli("build", "-f", str(workspace), "mastr")
    assert res.returncode == 2 and "did you mean 'master'" in res.stderr


def test_keep_going_runs_independent_work_after_a_failure(workspace: Path) -> None:
    # One shot's override asks for nnedi, whose weights this ffmpeg build lacks: that shot's
    # ingest fails when it runs. --keep-going still runs the other shots and the audio, skips
    # the master, and the build exits 1 naming the failure.
    text = workspace.read_text().replace(
        "pipelines:\n",
        "pipelines:\n  nn:\n    - {stage: ingest, mode: deinterlace, method: nnedi}\n"
        "    - {stage: upscale, model: bicubic, scale: 2}\n",
    )
    text = text.replace(
        "    shots: {detector: content, threshold: 27, min_frames: 4}\n",
        "    shots: {detector: content, threshold: 27, min_frames: 4}\n"
        '    overrides:\n      - shots: ["ep1@00:00:00:12"]\n        pipeline: nn\n',
    )
    workspace.write_text(text)
    res = cli("build", "-f", str(workspace), "--json", "--keep-going")
    assert res.returncode == 1, res.stderr
    events = json_lines(res.stdout)
    statuses = {e["id"]: e["status"] for e in events if e["event"] == "action"}
    assert statuses["ep1@00:00:00:12/ingest"] == "failed"
    assert statuses["ep1/audio/0"] == "executed"
    assert statuses["ep1@00:00:00:24/master"] == "executed"
    assert statuses["ep1/master"] == "skipped"
    assert events[-1]["event"] == "summary" and events[-1]["failed"] == 1
    assert "nnedi" in res.stderr and "error[" in res.stderr
