"""The Ray executor on a real local Ray cluster: a head and worker nodes on this machine.

The cluster (tests/raykit.py) is started once per module with the ``ray`` CLI (head with a
``head`` resource, a worker node with ``w1``) and stopped by killing exactly its processes.
Builds go through it and are compared byte for byte with local-executor builds of the same
project.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

ray = pytest.importorskip("ray")

from buildkit import build, cli, json_lines, store_entries  # noqa: E402
from conftest import SMALL_MANIFEST  # noqa: E402
from raykit import Cluster, free_port, node_killed_mid_build, running_cluster  # noqa: E402

from restoro.engine.store import Store  # noqa: E402
from restoro.errors import UsageError  # noqa: E402
from restoro.farm.ray_preflight import describe_node  # noqa: E402
from restoro.plan.build import Builder, BuildOptions  # noqa: E402
from restoro.plan.workspace import Workspace  # noqa: E402

# analysis, an ingest piece (with its shot scores), shots; 3 × (extract, chain, chunk); audio,
# master
TOTAL = 3 + 3 * 3 + 1 + 1


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with running_cluster(tmp_path_factory.mktemp("ray"), "w1") as c:
        yield c


def _project(root: Path, source: Path) -> Path:
    (root / "media").mkdir(parents=True)
    shutil.copy(source, root / "media" / "source.mkv")
    manifest = root / "restoro.yaml"
    manifest.write_text(SMALL_MANIFEST, encoding="utf-8")
    return manifest


@pytest.fixture(scope="module")
def local_master(tmp_path_factory: pytest.TempPathFactory, progressive_source: Path) -> bytes:
    manifest = _project(tmp_path_factory.mktemp("local"), progressive_source)
    report = build(manifest, executor="local")
    assert report.executed == TOTAL
    return (manifest.parent / "out" / "master" / "ep1.mov").read_bytes()


def _ray_build(manifest: Path, cluster: Cluster, **kw: Any) -> tuple[Any, list[dict[str, Any]]]:
    ws = Workspace(manifest, store_path=kw.pop("store_path", None))
    events: list[dict[str, Any]] = kw.pop("events_out", [])
    b = Builder(ws, BuildOptions(executor="ray", ray_address=cluster.address, **kw))
    b.events.subscribe(events.append)
    try:
        return b.build(), events
    finally:
        ws.close()


@pytest.mark.slow
def test_ray_build_is_byte_identical_to_local(
    cluster: Cluster, tmp_path: Path, progressive_source: Path, local_master: bytes
) -> None:
    manifest = _project(tmp_path / "p", progressive_source)
    report, events = _ray_build(manifest, cluster)
    assert (report.executed, report.failed) == (TOTAL, 0)
    ex = next(e for e in events if e["event"] == "executor")
    assert ex["nodes"] == 2 and ex["resources"]["head"] == 1 and ex["resources"]["w1"] == 1
    assert (manifest.parent / "out" / "master" / "ep1.mov").read_bytes() == local_master
    assert Store(manifest.parent / ".restoro").verify().ok


@pytest.mark.slow
@pytest.mark.parametrize("executor", ["local", "ray"])
def test_contract_noop_and_output_missing(
    executor: str, cluster: Cluster, tmp_path: Path, progressive_source: Path
) -> None:
    """The same contract for both executors: a no-op rebuild, then a deleted output reruns."""
    manifest = _project(tmp_path / "p", progressive_source)
    kw = {"ray_address": cluster.address} if executor == "ray" else {}
    first = build(manifest, executor=executor, **kw)
    assert (first.executed, first.failed) == (TOTAL, 0)
    again = build(manifest, executor=executor, **kw)
    assert (again.executed, again.cached) == (0, TOTAL)
    store = Store(manifest.parent / ".restoro")
    chunk = next(r for r in first.records if r.stage == "prores-chunk")
    lk = store.lookup(chunk.key)
    assert lk.result is not None
    blob = store.blob_path(next(iter(lk.result.outputs.values())).digest)
    os.chmod(blob, 0o644)
    blob.unlink()
    store.close()
    third = build(manifest, executor=executor, **kw)
    ran = {r.id: r.reason for r in third.records if r.status == "executed"}
    assert ran == {chunk.id: "output-missing"}


@pytest.mark.slow
@pytest.mark.parametrize("executor", ["local", "ray"])
def test_contract_force_reruns_everything_identically(
    executor: str, cluster: Cluster, tmp_path: Path, progressive_source: Path, local_master: bytes
) -> None:
    manifest = _project(tmp_path / "p", progressive_source)
    kw = {"ray_address": cluster.address} if executor == "ray" else {}
    build(manifest, executor=executor, **kw)
    forced = build(manifest, executor=executor, force=True, **kw)
    assert forced.executed == TOTAL and {r.reason for r in forced.records} == {"forced"}
    assert (manifest.parent / "out" / "master" / "ep1.mov").read_bytes() == local_master
    assert Store(manifest.parent / ".restoro").verify().ok


@pytest.mark.slow
def test_killing_a_worker_node_mid_build(
    cluster: Cluster, tmp_path: Path, progressive_source: Path, local_master: bytes
) -> None:
    # Two nodes labelled "pool" and a build whose tasks all ask for it: w2 gets work (the head
    # and w1 cannot take it), is killed while it runs an action, and w3 takes over.
    manifest = _project(tmp_path / "p", progressive_source)
    leases = manifest.parent / ".restoro" / "locks" / "leases"
    with node_killed_mid_build(cluster, leases) as killed:
        report, events = _ray_build(manifest, cluster, ray_resources={"pool": 1})
    assert killed, "no action ran on the worker node w2"
    retries = [e for e in events if e["event"] == "retry"]
    assert retries and all(e["attempt"] <= 2 for e in retries)
    ids = [r.id for r in report.records]
    assert len(ids) == len(set(ids)) == TOTAL and report.failed == 0
    assert (manifest.parent / "out" / "master" / "ep1.mov").read_bytes() == local_master
    assert Store(manifest.parent / ".restoro").verify().ok


def _nothing_started(manifest: Path) -> None:
    """No output, nothing in the store's cas/ or ac/, and the workspace lock never taken."""
    assert not (manifest.parent / "out").exists()
    assert store_entries(manifest.parent) == []
    assert not (manifest.parent / ".restoro" / "locks" / "workspace.lock").exists()


@pytest.mark.slow
def test_worker_without_the_required_resource(
    cluster: Cluster, tmp_path: Path, progressive_source: Path
) -> None:
    manifest = _project(tmp_path / "p", progressive_source)
    # Through the real CLI: exit status 2, the label named, every node's offer listed.
    proc = cli(
        "build",
        "--manifest",
        str(manifest),
        "--executor",
        "ray",
        "--ray-address",
        cluster.address,
        "--ray-resource",
        "a100=1",
        "--json",
        timeout=180,
    )
    assert proc.returncode == 2, proc.stderr
    assert "no node of the Ray cluster offers a100 1" in proc.stderr
    assert "head 1" in proc.stderr and "w1 1" in proc.stderr  # per node: head, then worker
    assert "--resources=" in proc.stderr  # the hint
    names = {e["event"] for e in json_lines(proc.stdout)}
    assert names <= {"build-start"}, names
    _nothing_started(manifest)
    with pytest.raises(UsageError, match="no node of the Ray cluster offers GPU 1") as gpu:
        _ray_build(manifest, cluster, device="cuda:0")
    assert "GPU stage upscale" in gpu.value.message and gpu.value.exit_code == 2
    _nothing_started(manifest)


@pytest.mark.slow
def test_stage_needing_more_memory_than_any_node_fails_before_work(
    cluster: Cluster, tmp_path: Path, progressive_source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stage descriptor's memory_mb is checked against Ray's per-node ``memory`` resource."""
    from restoro.stages.base import StageDescriptor
    from restoro.stages.upscale import Upscale

    huge = 1 << 30  # MiB: a pebibyte, more than any node offers
    monkeypatch.setattr(Upscale, "descriptor", StageDescriptor(gpu=True, memory_mb=huge))
    manifest = _project(tmp_path / "p", progressive_source)
    with pytest.raises(UsageError) as err:
        _ray_build(manifest, cluster, events_out=(events := []))
    e = err.value
    assert e.exit_code == 2
    assert f"offers memory {huge:,} MiB" in e.message
    assert f"stage upscale declares memory_mb={huge}" in e.message
    alive = [n for n in ray.nodes() if n["Alive"]]
    assert len(alive) >= 2 and all(describe_node(n) in e.message for n in alive)
    assert "head 1" in e.message and "w1 1" in e.message
    assert e.hint and "--memory" in e.hint
    assert [ev["event"] for ev in events] == ["build-start"]
    _nothing_started(manifest)


def test_unreachable_cluster_fails_before_work(tmp_path: Path, progressive_source: Path) -> None:
    manifest = _project(tmp_path / "p", progressive_source)
    ws = Workspace(manifest)
    b = Builder(ws, BuildOptions(executor="ray", ray_address=f"127.0.0.1:{free_port()}"))
    t0 = time.monotonic()
    with pytest.raises(UsageError, match="cannot reach the Ray cluster at 127.0.0.1"):
        b.build()
    ws.close()
    assert time.monotonic() - t0 < 30
    assert not (manifest.parent / "out").exists()
    assert not list((manifest.parent / ".restoro").glob("ac/*/*.json"))


@pytest.mark.slow
def test_without_an_address_a_private_instance_ignores_the_last_recorded_cluster(
    tmp_path: Path,
    progressive_source: Path,
    local_master: bytes,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`ray start` records its cluster in Ray's temp dir and `ray.init()` joins it; a stale
    record (the cluster was stopped, as every test cluster here is) made it fail. Without
    --ray-address restoro starts its own instance whatever the record says."""
    import tempfile

    short = Path(tempfile.mkdtemp(prefix="rt", dir="/tmp"))  # Ray's socket paths must be short
    (short / "ray").mkdir()
    (short / "ray" / "ray_current_cluster").write_text(f"127.0.0.2:{free_port()}")
    monkeypatch.setenv("RAY_TMPDIR", str(short))
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    manifest = _project(tmp_path / "p", progressive_source)
    ws = Workspace(manifest)
    events: list[dict[str, Any]] = []
    try:
        b = Builder(ws, BuildOptions(executor="ray", jobs=1))
        b.events.subscribe(events.append)
        report = b.build()
    finally:
        ws.close()
        ray.shutdown()
        shutil.rmtree(short, ignore_errors=True)
    assert (report.executed, report.failed) == (TOTAL, 0)
    assert next(e for e in events if e["event"] == "executor")["address"] == "local"
    assert (manifest.parent / "out" / "master" / "ep1.mov").read_bytes() == local_master
