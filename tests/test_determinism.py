"""Identical inputs give identical bytes whatever the job count and the encoders' threads."""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING

import orjson
import pytest
from buildkit import build

if TYPE_CHECKING:
    from pathlib import Path


def _outputs(root: Path) -> dict[str, str]:
    """Action id and key → its outputs' digests, from every entry of the store."""
    out: dict[str, str] = {}
    for entry in (root / ".restoro" / "ac").rglob("*.json"):
        data = orjson.loads(entry.read_bytes())
        digests = sorted(f"{name}={o['digest']}" for name, o in data["outputs"].items())
        out[f"{data['action_id']} {data['key']}"] = ",".join(digests)
    return out


@pytest.mark.slow
def test_jobs_and_thread_counts_do_not_change_a_byte(
    workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import restoro.deliver.prores as prores
    import restoro.media.frameio as frameio

    other = tmp_path / "other"
    shutil.copytree(workspace.parent, other, ignore=shutil.ignore_patterns(".restoro", "out"))

    # One job, every encoder on one thread.
    with monkeypatch.context() as m:
        args = list(frameio.CODEC_ARGS)
        args[args.index("-threads") + 1] = "1"
        m.setattr(frameio, "CODEC_ARGS", args)
        m.setattr(prores, "ENCODER_THREADS", "1")
        build(workspace, jobs=1)
    # Two jobs, the default threads.
    build(other / workspace.name, jobs=2)

    lock_a = (workspace.parent / "restoro.lock").read_bytes()
    lock_b = (other / "restoro.lock").read_bytes()
    assert lock_a == lock_b
    a, b = _outputs(workspace.parent), _outputs(other)
    assert a and a == b
    master_a = next((workspace.parent / "out").rglob("*.mov")).read_bytes()
    master_b = next((other / "out").rglob("*.mov")).read_bytes()
    assert master_a == master_b
