"""The Ray executor on a real local Ray cluster: a head and worker nodes on this machine.

The cluster is started once per module with the ``ray`` CLI (head with a ``head`` resource, a
worker node with ``w1``) and stopped with ``ray stop --force``. Builds go through it and are
compared byte for byte with local-executor builds of the same project.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

ray = pytest.importorskip("ray")

from buildkit import build, cli, json_lines, store_entries  # noqa: E402
from conftest import SMALL_MANIFEST  # noqa: E402

from restoro.engine.build import Builder, BuildOptions  # noqa: E402
from restoro.engine.ray_preflight import describe_node  # noqa: E402
from restoro.engine.store import Store  # noqa: E402
from restoro.engine.workspace import Workspace  # noqa: E402
from restoro.errors import UsageError  # noqa: E402

TOTAL = 2 + 3 * 3 + 1 + 1  # ingest, shots, 3 × (extract, chain, chunk), audio, master
# Every node on a loopback address. Ray replaces exactly "127.0.0.1"/"localhost" with the host's
# interface address (to be reachable from other machines); 127.0.0.2 is loopback too, and Ray
# keeps it, so no traffic leaves the loopback range.
NODE_IP = "127.0.0.2"

RAY_ENV = {
    "RAY_AUTH_MODE": "disabled",
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_health_check_period_ms": "500",
    "RAY_health_check_failure_threshold": "3",
}
RAY = str(Path(sys.executable).with_name("ray"))


def _all_pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.port = _free_port()
        self.address = f"{NODE_IP}:{self.port}"
        self.workers: dict[str, subprocess.Popen[bytes]] = {}
        self.logs: dict[str, Any] = {}
        self.env = {**os.environ, **RAY_ENV}

    def start_head(self) -> None:
        subprocess.run(
            [
                RAY,
                "start",
                "--head",
                f"--port={self.port}",
                f"--node-ip-address={NODE_IP}",
                "--num-cpus=1",
                '--resources={"head": 1}',
                "--include-dashboard=false",
                "--disable-usage-stats",
            ],
            env=self.env,
            check=True,
            capture_output=True,
            timeout=120,
        )

    def add_worker(self, label: str) -> None:
        log = self.logs[label] = open(self.tmp / f"{label}.log", "wb")  # noqa: SIM115
        self.workers[label] = subprocess.Popen(
            [
                RAY,
                "start",
                f"--address={self.address}",
                f"--node-ip-address={NODE_IP}",
                "--num-cpus=1",
                f'--resources={{"{label}": 1}}',
                "--block",
            ],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: killed as one node
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            out = subprocess.run(
                [RAY, "status", f"--address={self.address}"],
                env=self.env,
                capture_output=True,
                text=True,
            ).stdout
            if f"{label}" in out:
                return
            time.sleep(0.5)
        raise RuntimeError(f"worker node {label} did not join")

    def kill_worker(self, label: str) -> None:
        """SIGKILL the node: its ``ray start`` process group and every process below it."""
        proc = self.workers.pop(label)
        below = [p for p in _all_pids() if proc.pid in _ancestors(p)]
        os.killpg(proc.pid, signal.SIGKILL)
        for p in below:
            with contextlib.suppress(OSError):
                os.kill(p, signal.SIGKILL)
        proc.wait()
        self.logs.pop(label).close()

    def stop(self) -> None:
        if ray.is_initialized():
            ray.shutdown()
        for label in list(self.workers):
            self.kill_worker(label)
        subprocess.run([RAY, "stop", "--force"], env=self.env, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Any:
    saved = {k: os.environ.get(k) for k in RAY_ENV}
    os.environ.update(RAY_ENV)
    c = Cluster(tmp_path_factory.mktemp("ray"))
    try:
        c.start_head()
        c.add_worker("w1")
        yield c
    finally:
        c.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


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


def _ancestors(pid: int) -> set[int]:
    """``pid`` and its parents, from /proc (Ray may put workers in their own process groups)."""
    out = set()
    while pid > 1 and pid not in out:
        out.add(pid)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            break
        pid = int(stat.rsplit(")", 1)[1].split()[1])
    return out


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
    cluster.add_worker("w2")
    manifest = _project(tmp_path / "p", progressive_source)
    leases = manifest.parent / ".restoro" / "locks" / "leases"
    victim = cluster.workers["w2"].pid
    killed: list[str] = []
    stop = threading.Event()

    def watch() -> None:
        # Kill node w2 as soon as one of its workers holds a lease (an action is running there).
        while not stop.is_set() and not killed:
            for lease in leases.glob("*") if leases.is_dir() else ():
                try:
                    pid = int(lease.read_text().split('"pid": ')[1].split(",")[0])
                    if victim in _ancestors(pid):
                        killed.append(lease.name)
                        cluster.kill_worker("w2")
                        return
                except (OSError, IndexError, ValueError):
                    continue
            time.sleep(0.01)

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    try:
        report, events = _ray_build(manifest, cluster)
    finally:
        stop.set()
        t.join()
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
    b = Builder(ws, BuildOptions(executor="ray", ray_address=f"127.0.0.1:{_free_port()}"))
    t0 = time.monotonic()
    with pytest.raises(UsageError, match="cannot reach the Ray cluster at 127.0.0.1"):
        b.build()
    ws.close()
    assert time.monotonic() - t0 < 30
    assert not (manifest.parent / "out").exists()
    assert not list((manifest.parent / ".restoro").glob("ac/*/*.json"))
