"""The Ray executor: frozen action specs run as Ray tasks against a shared store.

The coordinator (``Builder``) keeps planning, cache checks, the workspace lock and the event
stream; only cache misses come here. Each miss is queued; a dispatcher thread groups queued
specs with the same resource request into batches (longest first, spread over the cluster's
slots) and submits each batch as one Ray task with ``num_cpus`` / ``num_gpus`` / ``memory`` from
the node and any custom resources the build asks for. A worker runs ``execute_spec`` for each
spec of its batch: it reads inputs from the store path and commits outputs there, so frames never
travel through Ray's object store (a task returns a few hundred bytes per action). The
coordinator accepts a result only once the action's entry is in the store and its outputs
verify. A task lost with its worker (a killed node) is resubmitted up to ``retries`` times, each
retry reported as a ``retry`` event; the lost worker's lease expires, so the rerun takes over.
"""

from __future__ import annotations

import atexit
import math
import os
import queue
import socket
import threading
import time
import traceback
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from restoro.engine.execute import ExecResult, execute_spec
from restoro.engine.leases import DEFAULT_TTL
from restoro.engine.ray_preflight import check_cluster, plan_needs
from restoro.errors import BuildFailed, UsageError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from restoro.engine.build import BuildOptions
    from restoro.engine.events import EventBus
    from restoro.engine.graph import ActionSpec
    from restoro.engine.nodes import Node
    from restoro.engine.workspace import Workspace

DEFAULT_BATCH = 16
LINGER_S = 0.005
IDLE_S = 2.0  # the dispatcher thread ends after this long with nothing to do
_connected: list[str | None] = []


def run_batch(
    specs: Sequence[ActionSpec],
    store_url: str,
    sources: dict[str, tuple[str, dict[str, Any]]],
    device: str,
    force: bool,
    lease_ttl: float,
) -> list[dict[str, Any]]:
    """Body of one Ray task: run each spec in turn; a small JSON-able summary per spec."""
    out: list[dict[str, Any]] = []
    for spec in specs:
        t0 = time.monotonic()
        try:
            ex = execute_spec(spec, store_url, sources, device, force=force, lease_ttl=lease_ttl)
            out.append(
                {
                    "key": ex.key,
                    "ran": ex.ran,
                    "seconds": ex.seconds,
                    "host": ex.host,
                    "pid": ex.pid,
                    "takeovers": ex.takeovers,
                }
            )
        except Exception as exc:  # noqa: BLE001 - reported to the coordinator with its log
            message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
            out.append(
                {
                    "error": message.splitlines()[0] if message else type(exc).__name__,
                    "log": "".join(traceback.format_exc().splitlines(True)[-12:]),
                    "host": socket.gethostname(),
                    "pid": os.getpid(),
                    "seconds": time.monotonic() - t0,
                }
            )
    return out


class WorkerLost(Exception):
    """A Ray task died with its worker or node (not an error of the action itself)."""


def _check_reachable(address: str) -> str:
    text = address.removeprefix("ray://")
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise UsageError(
            f"Ray address {address!r} is not host:port", hint="e.g. --ray-address 10.0.0.5:6379"
        )
    try:
        with socket.create_connection((host, int(port)), timeout=3):
            pass
    except OSError as e:
        raise UsageError(
            f"cannot reach the Ray cluster at {address}: {e.strerror or e}",
            hint="start it with `ray start --head` there, or check the address and firewall",
        ) from None
    return text


class RayFarm:
    """Connects to Ray, checks the cluster can run the build, and runs specs on it."""

    def __init__(
        self,
        opts: BuildOptions,
        ws: Workspace,
        events: EventBus,
        titles: Sequence[str] = (),
    ) -> None:
        """Connect and check the cluster offers what the plan of ``titles`` needs (UsageError
        otherwise); called before the workspace lock, so sources may not be hashed yet."""
        try:
            import ray
        except ImportError:
            raise UsageError(
                "the Ray executor needs the 'ray' package",
                hint="pip install 'restoro[farm]'",
            ) from None
        self.ray = ray
        self.opts = opts
        self.events = events
        self.ws = ws
        address = _check_reachable(opts.ray_address) if opts.ray_address else None
        ws.store.check_writable()
        self.store_url = str(ws.store_path)
        if ray.is_initialized() and (not _connected or _connected[-1] != address):
            ray.shutdown()
        if not ray.is_initialized():
            kw: dict[str, Any] = {"log_to_driver": False, "include_dashboard": False}
            if address is None:
                kw["num_cpus"] = opts.jobs
            host = address.rsplit(":", 1)[0] if address else "127.0.0.2"
            if host.startswith("127.") and host != "127.0.0.1":
                # A cluster on a loopback address (or a private one we start, which we keep on
                # loopback): the driver uses the same node address as the cluster's nodes. Ray
                # swaps exactly 127.0.0.1 for the host's interface address, so 127.0.0.2.
                kw["_node_ip_address"] = host
            ray.init(address=address, **kw)
            _connected[:] = [address]
            atexit.register(ray.shutdown)
        self.nodes = [n for n in ray.nodes() if n.get("Alive")]
        self.totals: dict[str, float] = dict(ray.cluster_resources())
        check_cluster(self.nodes, plan_needs(ws, titles, opts))
        cpus = int(self.totals.get("CPU", 0)) + int(self.totals.get("GPU", 0))
        self.cpu_slots = max(1, cpus)
        self.slots = min(256, max(8, self.cpu_slots * 8))
        self.use_gpu = opts.device != "cpu" and self.totals.get("GPU", 0) > 0
        self.sources: dict[str, tuple[str, dict[str, Any]]] = {}  # set by check_nodes
        self._queue: queue.Queue[tuple[ActionSpec, dict[str, Any], Future[Any]]] = queue.Queue()
        self._remote = ray.remote(run_batch)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.events.emit(
            "executor",
            name="ray",
            address=address or "local",
            nodes=len(self.nodes),
            resources={k: v for k, v in self.totals.items() if not k.startswith("node:")},
        )

    # -- checks before any work -----------------------------------------------------------------
    def _max_on_a_node(self, resource: str) -> float:
        return max((n.get("Resources", {}).get(resource, 0.0) for n in self.nodes), default=0.0)

    def request(self, node_resources: dict[str, int] | Any) -> dict[str, Any]:
        """Ray task options for a node's resource request."""
        gpu = bool(node_resources.get("gpu")) and self.use_gpu
        opts: dict[str, Any] = {
            "num_cpus": max(1, int(node_resources.get("cpu", 1) or 1)) if not gpu else 1,
            "num_gpus": int(node_resources.get("gpu", 1)) if gpu else 0,
            "max_retries": 0,  # retried here, where each retry is reported
        }
        mem = node_resources.get("memory_mb")
        if mem:
            opts["memory"] = int(mem) * 1024 * 1024
        if self.opts.ray_resources:
            opts["resources"] = dict(self.opts.ray_resources)
        return opts

    def check_nodes(self, nodes: Sequence[Node]) -> None:
        """UsageError when some node's request fits on no node of the cluster; refreshes the
        sources workers read (hashed by now, under the workspace lock)."""
        self.sources = {
            s.digest: (str(s.path), s.info.model_dump(mode="json"))
            for s in self.ws.sources.values()
            if s.digest and s.info is not None
        }
        for n in nodes:
            req = self.request(dict(n.resources))
            for ray_name, need in (
                ("CPU", req["num_cpus"]),
                ("GPU", req["num_gpus"]),
                ("memory", req.get("memory", 0)),
            ):
                if need and self._max_on_a_node(ray_name) < need:
                    raise UsageError(
                        f"action {n.id} needs {ray_name} x{need:g}, more than any node of the "
                        "Ray cluster offers",
                        hint="add a bigger worker, or lower the stage's requirements",
                    )

    # -- running --------------------------------------------------------------------------------
    def run(self, n: Node, spec: ActionSpec) -> ExecResult:
        """Run ``spec`` on the cluster (blocking); accept it once the store has it verified."""
        req = self.request(dict(n.resources))
        attempt = 0
        while True:
            fut: Future[Any] = Future()
            with self._lock:
                self._queue.put((spec, req, fut))
                if self._thread is None or not self._thread.is_alive():
                    self._thread = threading.Thread(
                        target=self._dispatch, name="restoro-ray", daemon=True
                    )
                    self._thread.start()
            try:
                out = fut.result()
            except WorkerLost as lost:
                out = {"lost": str(lost)}
            if "error" in out:
                raise BuildFailed(
                    f"{spec.id}: stage {spec.stage} failed on {out['host']} "
                    f"(pid {out['pid']}): {out['error']}",
                    hint="worker log (tail):\n" + out.get("log", ""),
                )
            if "lost" not in out:
                lk = self.store.lookup(out["key"])
                if lk.status == "hit":
                    ex = ExecResult(
                        out["key"],
                        out["ran"],
                        out["seconds"],
                        out["host"],
                        out["pid"],
                        out["takeovers"],
                        lk.result,
                    )
                    return ex
                out = {"lost": f"the worker reported {spec.id} done but the store has {lk.status}"}
            attempt += 1
            if attempt > self.opts.retries:
                raise BuildFailed(
                    f"{spec.id}: stage {spec.stage} lost {attempt} times: {out['lost']}",
                    hint=f"gave up after {self.opts.retries} retries; check the workers",
                )
            self.events.emit(
                "retry",
                id=spec.id,
                stage=spec.stage,
                title=spec.title,
                shot=spec.shot,
                attempt=attempt,
                error=out["lost"],
            )

    @property
    def store(self) -> Any:
        from restoro.engine.execute import open_store

        return open_store(self.store_url)

    def _batches(
        self, items: list[tuple[ActionSpec, dict[str, Any], Future[Any]]]
    ) -> list[list[tuple[ActionSpec, dict[str, Any], Future[Any]]]]:
        """Longest first, dealt round-robin into enough batches to keep every slot busy."""
        items.sort(key=lambda it: -it[0].frames)
        size = self.opts.batch_size or DEFAULT_BATCH
        count = max(min(len(items), self.cpu_slots), math.ceil(len(items) / size))
        if self.opts.batch_size:
            count = math.ceil(len(items) / size)
        return [items[i::count] for i in range(count)]

    def _dispatch(self) -> None:
        running: dict[Any, list[tuple[ActionSpec, dict[str, Any], Future[Any]]]] = {}
        try:
            self._dispatch_loop(running)
        except BaseException as exc:  # never leave a caller waiting on a dead dispatcher
            lost = [it for batch in running.values() for it in batch]
            with self._lock:
                while not self._queue.empty():
                    lost.append(self._queue.get_nowait())
            for it in lost:
                if not it[2].done():
                    it[2].set_exception(WorkerLost(f"dispatcher failed: {_first(exc)}"))
            if not isinstance(exc, Exception):
                raise

    def _dispatch_loop(
        self, running: dict[Any, list[tuple[ActionSpec, dict[str, Any], Future[Any]]]]
    ) -> None:
        ray = self.ray
        idle_since = time.monotonic()
        while True:
            if not running and self._queue.empty() and time.monotonic() - idle_since > IDLE_S:
                with self._lock:  # exit only if no spec was queued meanwhile
                    if self._queue.empty():
                        return
            items: list[tuple[ActionSpec, dict[str, Any], Future[Any]]] = []
            try:
                items.append(self._queue.get(timeout=0.02 if running else 0.5))
                time.sleep(LINGER_S)
                while True:
                    items.append(self._queue.get_nowait())
            except queue.Empty:
                pass
            shapes: dict[str, list[tuple[ActionSpec, dict[str, Any], Future[Any]]]] = {}
            for it in items:
                shapes.setdefault(repr(sorted(it[1].items())), []).append(it)
            for group in shapes.values():
                for batch in self._batches(group):
                    try:
                        ref = self._remote.options(**batch[0][1]).remote(
                            [it[0] for it in batch],
                            self.store_url,
                            self.sources,
                            self.opts.device,
                            self.opts.force,
                            DEFAULT_TTL,
                        )
                    except Exception as exc:  # noqa: BLE001 - reported per action, retried
                        for it in batch:
                            it[2].set_exception(WorkerLost(f"submit failed: {_first(exc)}"))
                        continue
                    running[ref] = batch
            if not running:
                continue
            idle_since = time.monotonic()
            ready, _ = ray.wait(list(running), num_returns=len(running), timeout=0.02)
            for ref in ready:
                batch = running.pop(ref)
                try:
                    outs = ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - a lost worker or node
                    for it in batch:
                        it[2].set_exception(WorkerLost(f"{type(exc).__name__}: {_first(exc)}"))
                    continue
                for it, res in zip(batch, outs, strict=True):
                    it[2].set_result(res)


def _first(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def parse_resources(items: Sequence[str]) -> dict[str, float]:
    """``["gpu_a=1", "farm"]`` → ``{"gpu_a": 1.0, "farm": 1.0}`` (UsageError when malformed)."""
    out: dict[str, float] = {}
    for item in items:
        name, eq, amount = item.partition("=")
        bad = UsageError(f"bad Ray resource {item!r}", hint="NAME=AMOUNT, e.g. farm=1")
        try:
            out[name] = float(amount) if eq else 1.0
        except ValueError:
            raise bad from None
        if not name or out[name] <= 0:
            raise bad
    return out
