"""A real local Ray cluster for tests: a head and worker nodes on this machine, on loopback.

Every node is a ``ray start --block`` process of ours in its own session, so a node is stopped
(or killed mid-build) by killing exactly its process group and every process below it. Nothing
calls ``ray stop``, which would stop every Ray instance on the machine, other test runs' too.

Ray replaces exactly "127.0.0.1"/"localhost" with the host's interface address (to be reachable
from other machines); 127.0.0.2 is loopback too and Ray keeps it, so no traffic leaves the
loopback range.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

NODE_IP = "127.0.0.2"
RAY_ENV = {
    "RAY_AUTH_MODE": "disabled",
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_health_check_period_ms": "500",
    "RAY_health_check_failure_threshold": "3",
}
RAY = str(Path(sys.executable).with_name("ray"))


def all_pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]


def ancestors(pid: int) -> set[int]:
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    """Nodes with 1 CPU each; the head carries the resource ``head``, a worker its label."""

    def __init__(self, tmp: Path, env: dict[str, str] | None = None) -> None:
        self.tmp = tmp
        self.port = free_port()
        self.address = f"{NODE_IP}:{self.port}"
        self.workers: dict[str, subprocess.Popen[bytes]] = {}
        """Node label → its ``ray start --block`` process (the head is ``head``)."""
        self.logs: dict[str, Any] = {}
        self.env = {**os.environ, **RAY_ENV, **(env or {})}

    def start_head(self) -> None:
        self._start("head", ["--head", f"--port={self.port}", "--include-dashboard=false"])

    def add_worker(
        self, label: str, memory: int | None = None, resources: dict[str, float] | None = None
    ) -> None:
        """A worker node with the resource ``label`` (and ``resources``); ``memory`` (bytes)
        sets the node's Ray ``memory`` resource (its object store then gets Ray's minimum)."""
        small = [f"--memory={memory}", f"--object-store-memory={80 * 1024 * 1024}"]
        self._start(label, [f"--address={self.address}", *(small if memory else [])], resources)

    def _start(
        self, label: str, args: list[str], resources: dict[str, float] | None = None
    ) -> None:
        log = self.logs[label] = open(self.tmp / f"{label}.log", "wb")  # noqa: SIM115
        self.workers[label] = subprocess.Popen(
            [
                RAY,
                "start",
                *args,
                f"--node-ip-address={NODE_IP}",
                "--num-cpus=1",
                f"--resources={json.dumps({label: 1, **(resources or {})})}",
                "--disable-usage-stats",
                "--block",
            ],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: killed as one node
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.workers[label].poll() is not None:
                break
            out = subprocess.run(
                [RAY, "status", f"--address={self.address}"],
                env=self.env,
                capture_output=True,
                text=True,
            ).stdout
            if label in out:
                return
            time.sleep(0.5)
        raise RuntimeError(f"ray node {label} did not start; see {log.name}")

    def kill_worker(self, label: str) -> None:
        """SIGKILL the node: its ``ray start`` process group and every process below it."""
        proc = self.workers.pop(label)
        below = [p for p in all_pids() if proc.pid in ancestors(p)]
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)
        for p in below:
            with contextlib.suppress(OSError):
                os.kill(p, signal.SIGKILL)
        proc.wait()
        self.logs.pop(label).close()

    def stop(self) -> None:
        import ray

        if ray.is_initialized():
            ray.shutdown()
        for label in [k for k in self.workers if k != "head"] + ["head"]:
            if label in self.workers:
                self.kill_worker(label)


@contextlib.contextmanager
def ray_environment() -> Iterator[None]:
    """RAY_ENV in this process's environment (the driver reads it), restored afterwards."""
    saved = {k: os.environ.get(k) for k in RAY_ENV}
    os.environ.update(RAY_ENV)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def running_cluster(tmp: Path, *workers: str) -> Iterator[Cluster]:
    """A head and the given worker nodes, stopped (and the environment restored) at the end."""
    with ray_environment():
        c = Cluster(tmp)
        try:
            c.start_head()
            for label in workers:
                c.add_worker(label)
            yield c
        finally:
            c.stop()


@contextlib.contextmanager
def node_killed_mid_build(cluster: Cluster, leases: Path, holds: str = "") -> Iterator[list[str]]:
    """Two worker nodes labelled ``pool`` (w2, w3) for a build whose work asks for ``pool=1``:
    w2 is SIGKILLed as soon as one of its processes holds a lease (whose text contains
    ``holds``), and w3 takes over. Yields the list that receives the killed lease's name;
    both nodes are gone afterwards, so later tests of the module see the head and w1 only."""
    import threading
    import time

    cluster.add_worker("w2", resources={"pool": 1})
    cluster.add_worker("w3", resources={"pool": 1})
    victim = cluster.workers["w2"].pid
    killed: list[str] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set() and not killed:
            for lease in leases.glob("*") if leases.is_dir() else ():
                try:
                    text = lease.read_text()
                    pid = int(text.split('"pid": ')[1].split(",")[0])
                    if holds in text and victim in ancestors(pid):
                        killed.append(lease.name)
                        cluster.kill_worker("w2")
                        return
                except (OSError, IndexError, ValueError):
                    continue
            time.sleep(0.01)

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    try:
        yield killed
    finally:
        stop.set()
        t.join()
        for label in ("w2", "w3"):
            if label in cluster.workers:
                cluster.kill_worker(label)
