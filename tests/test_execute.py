"""Executing a frozen spec away from the planner, put-if-absent commits, store URLs, cache sync."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from buildkit import build

from restoro.cli.cache_sync_cmd import sync_stores
from restoro.engine.store import ActionResult, Store, store_root
from restoro.errors import StoreError, UsageError

WORKER = """
import json, sys
from restoro.engine.execute import execute_spec
from restoro.engine.graph import ActionSpec
kj = json.loads(sys.argv[1])
spec = ActionSpec(id=sys.argv[2], stage=kj["stage"], version=kj["version"], params=kj["params"],
                  inputs=kj["inputs"], tools=kj["tools"], frames=int(sys.argv[4]))
sources = json.loads(sys.argv[5])
out = [execute_spec(spec, sys.argv[3], sources, "cpu") for _ in range(2)]
print(json.dumps([[o.key, o.ran] for o in out]))
"""


def test_store_urls() -> None:
    assert store_root("/srv/store") == Path("/srv/store")
    assert store_root("file:///srv/my%20store") == Path("/srv/my store")
    with pytest.raises(UsageError, match="scheme 's3' is not supported"):
        store_root("s3://bucket/prefix")
    with pytest.raises(UsageError, match="names a host"):
        store_root("file://otherhost/srv")


def test_a_store_without_write_access_is_refused(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreError, match="is not writable"):
        Store(blocker / "store").check_writable()


def test_put_action_if_absent_keeps_the_first_entry(tmp_path: Path) -> None:
    store = Store(tmp_path / "s")
    out = store.put_bytes(b"frames")
    key = "ab" * 16
    first = ActionResult(key, "t/x", {"stage": "x"}, {"f": out}, meta={"n": 1})
    second = ActionResult(key, "t/x", {"stage": "x"}, {"f": out}, meta={"n": 2})
    assert store.put_action_if_absent(first).meta == {"n": 1}
    assert store.put_action_if_absent(second).meta == {"n": 1}
    assert store.lookup(key).result.meta == {"n": 1}  # type: ignore[union-attr]
    store.close()


@pytest.mark.slow
def test_execute_spec_in_another_process_and_cache_sync(workspace: Path, tmp_path: Path) -> None:
    report = build(workspace)
    store = Store(workspace.parent / ".restoro")
    chunk = next(r for r in report.records if r.stage == "prores-chunk")
    original = store.lookup(chunk.key).result
    assert original is not None
    # Drop the entry and its blob, then run the frozen spec in a fresh process.
    blob = store.blob_path(next(iter(original.outputs.values())).digest)
    blob.chmod(0o644)
    blob.unlink()
    (store.ac / chunk.key[:2] / f"{chunk.key[2:]}.json").unlink()
    store.close()
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            WORKER,
            json.dumps(original.key_json),
            chunk.id,
            (workspace.parent / ".restoro").as_uri(),
            "12",
            "{}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout) == [[chunk.key, True], [chunk.key, False]]
    again = store.lookup(chunk.key).result
    assert again is not None and again.outputs == original.outputs

    # push to an empty shared store: blobs then entries; a second push copies nothing
    shared = Store(tmp_path / "shared")
    first = sync_stores(store, shared)
    assert first.actions_copied == len(list(store.iter_actions())) and first.blobs_copied > 0
    second = sync_stores(store, shared)
    assert (second.blobs_copied, second.actions_copied) == (0, 0)
    assert shared.verify().ok
    # a fresh checkout that pulls from it builds nothing
    fresh = tmp_path / "fresh"
    (fresh / "media").mkdir(parents=True)
    (fresh / "media" / "source.mkv").write_bytes(
        (workspace.parent / "media/source.mkv").read_bytes()
    )
    (fresh / "restoro.yaml").write_text(workspace.read_text())
    local = Store(fresh / ".restoro")
    pulled = sync_stores(shared, local)
    assert pulled.actions_copied == first.actions_copied
    local.close()
    shared.close()
    store.close()
    rebuilt = build(fresh / "restoro.yaml")
    assert (rebuilt.executed, rebuilt.failed) == (0, 0)


def test_cli_refuses_a_store_it_cannot_write(workspace: Path) -> None:
    from buildkit import cli

    r = cli("build", "-f", str(workspace), "--store", "/sys/restoro-store")
    assert r.returncode == 1
    assert "the store at /sys/restoro-store is not writable" in r.stderr
    assert not (workspace.parent / "out").exists()
    assert not (workspace.parent / ".restoro").exists()


BURN_CHILD = "import time\nwhile time.process_time() < 0.4: pass"


def test_cpu_seconds_of_an_action_count_its_threads_and_child_processes(tmp_path: Path) -> None:
    """``cpu_s`` adds the action's own threads and the processes it waited for (ffmpeg), and
    not time it spent waiting; the ``ac/`` entry stays free of it."""
    import threading
    import time

    from restoro.engine.actions import RUNNERS, RunOutput
    from restoro.engine.execute import run_spec
    from restoro.engine.graph import ActionSpec

    def burn(spec: ActionSpec, ctx: object) -> RunOutput:
        def spin() -> None:
            t0 = time.thread_time()
            while time.thread_time() - t0 < 0.3:
                pass

        helper = threading.Thread(target=spin)
        helper.start()
        subprocess.run([sys.executable, "-c", BURN_CHILD], check=True)
        helper.join()
        return RunOutput(meta={"n": 1})

    def idle(spec: ActionSpec, ctx: object) -> RunOutput:
        time.sleep(0.7)  # wall time, no CPU: must not count
        return RunOutput(meta={"n": 2})

    RUNNERS["test-burn"], RUNNERS["test-idle"] = burn, idle
    store = Store(tmp_path / "s")
    try:
        busy = run_spec(ActionSpec("t/burn", "test-burn", 1, {}, {}), store, {}, "cpu")
        calm = run_spec(ActionSpec("t/idle", "test-idle", 1, {}, {}), store, {}, "cpu")
        assert busy.ran and busy.cpu_s >= 0.65, busy.cpu_s  # 0.4 s child + 0.3 s thread
        assert calm.ran and calm.cpu_s < 0.3 and calm.seconds >= 0.7, calm.cpu_s
        entry = (store.ac / busy.key[:2] / f"{busy.key[2:]}.json").read_text()
        assert "cpu" not in entry
    finally:
        del RUNNERS["test-burn"], RUNNERS["test-idle"]
        store.close()
