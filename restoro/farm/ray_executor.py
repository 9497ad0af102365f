"""The Ray executor: frozen action specs run as Ray tasks against a shared store.

The coordinator (``Builder``) keeps planning, cache checks, the workspace lock and the event
stream; only cache misses come here. Each miss is queued; a dispatcher thread groups queued
specs with the same resource request into batches (longest first, spread over the cluster's
slots) and submits each batch as one Ray task with ``num_cpus`` / ``num_gpus`` / ``memory`` from
the node and any custom resources the build asks for. Specs that run a model go instead to the
long-lived model actors of ``restoro.farm.ray_actors``, so weights load once per actor. A
worker runs ``execute_spec`` for each spec of its batch: it reads inputs from the store path and
commits outputs there, so frames never travel through Ray's object store (a batch returns a few
hundred bytes per action); its progress reaches the coordinator through a small sink actor. The
coordinator accepts a result only once the action's entry is in the store and its outputs
verify. A batch lost with its worker or actor (a killed node) is resubmitted up to ``retries``
times, each retry reported as a ``retry`` event; the lost worker's lease expires, so the rerun
takes over, and the pool replaces a lost actor.
"""

from __future__ import annotations

import atexit
import math
import queue
import socket
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from restoro.engine.execute import RUNNER_MODULES, ExecResult
from restoro.engine.leases import DEFAULT_TTL
from restoro.errors import BuildFailed, UsageError
from restoro.farm.ray_actors import Item, ModelActors
from restoro.farm.ray_preflight import (
    check_cluster,
    check_fit,
    plan_needs,
    stage_requests,
)
from restoro.farm.ray_worker import ProgressSink, holds_model, run_batch

if TYPE_CHECKING:
    from collections.abc import Sequence

    from restoro.engine.events import EventBus
    from restoro.engine.graph import ActionSpec
    from restoro.engine.records import BuildOptions
    from restoro.farm.ray_actors import Actor
    from restoro.farm.ray_preflight import Node, Workspace

DEFAULT_BATCH = 16
LINGER_S = 0.005
IDLE_S = 2.0  # the dispatcher thread ends after this long with nothing to do
DRAIN_S = 0.1  # how often the coordinator collects workers' progress messages
BLOCKED_S = 1.0  # a batch not started after this long may wait for resources idle actors hold
_connected: list[str | None] = []


class WorkerLost(Exception):
    """A Ray task died with its worker or node (not an error of the action itself)."""


@dataclass
class _Run:
    """One submitted batch: a Ray task, or a call on a model actor."""

    items: list[Item]
    actor: Actor | None = None
    submitted: float = field(default_factory=time.monotonic)
    started: bool = False


@dataclass
class _Live:
    """A spec in flight, for its progress events."""

    spec: ActionSpec
    run: _Run
    done: int = 0
    placed: bool = False


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


def describe_action(spec: ActionSpec) -> str:
    """``shot ep1@00:00:01:00, stage chain (upscale, grade)`` (or ``title ep1, stage ingest``)."""
    where = f"shot {spec.shot}" if spec.shot else f"title {spec.title}" if spec.title else ""
    stage = spec.stage
    if spec.stage == "chain":
        stage += f" ({', '.join(str(st[0]) for st in spec.params.get('stages', []))})"
    return f"{where}, stage {stage}" if where else f"stage {stage}"


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
        self.store_url = ws.store_url
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
            # Without an address: a private instance ("local"), never whatever cluster
            # `ray start` last recorded on this machine (ray.init(address=None) would join it,
            # or fail on a stale record of a stopped one).
            ray.init(address=address or "local", **kw)
            _connected[:] = [address]
            atexit.register(ray.shutdown)
        self.nodes = [n for n in ray.nodes() if n.get("Alive")]
        self.totals: dict[str, float] = dict(ray.cluster_resources())
        check_cluster(self.nodes, plan_needs(ws, titles, opts), stage_requests(ws, titles, opts))
        cpus = int(self.totals.get("CPU", 0)) + int(self.totals.get("GPU", 0))
        self.cpu_slots = max(1, cpus)
        self.slots = min(256, max(8, self.cpu_slots * 8))
        self.use_gpu = opts.device != "cpu" and self.totals.get("GPU", 0) > 0
        self.sources: dict[str, tuple[str, dict[str, Any]]] = {}  # set by check_nodes
        self.runners = tuple(RUNNER_MODULES)  # what a worker imports to run any spec of ours
        self._queue: queue.Queue[Item] = queue.Queue()
        self._remote = ray.remote(run_batch)
        self._actors = ModelActors(ray, events, self.nodes, opts.batch_size or DEFAULT_BATCH)
        self._live: dict[str, _Live] = {}
        self._sink: Any = self._make_sink()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.events.emit(
            "executor",
            name="ray",
            address=address or "local",
            nodes=len(self.nodes),
            resources={k: v for k, v in self.totals.items() if not k.startswith("node:")},
        )

    def _make_sink(self) -> Any:
        """The progress sink actor, on this (the coordinator's) node; None if it cannot be."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        try:
            here = self.ray.get_runtime_context().get_node_id()
            return (
                self.ray.remote(ProgressSink)
                .options(
                    num_cpus=0,
                    max_restarts=0,
                    scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=True),
                )
                .remote()
            )
        except Exception:  # noqa: BLE001 - progress is optional; actions still run
            return None

    # -- checks before any work -----------------------------------------------------------------
    def request(self, node_resources: dict[str, int] | Any, memory_mb: int = 0) -> dict[str, Any]:
        """Ray task options for a node's resource request and memory reservation."""
        gpu = bool(node_resources.get("gpu")) and self.use_gpu
        opts: dict[str, Any] = {
            "num_cpus": max(1, int(node_resources.get("cpu", 1) or 1)) if not gpu else 1,
            "num_gpus": int(node_resources.get("gpu", 1)) if gpu else 0,
            "max_retries": 0,  # retried here, where each retry is reported
        }
        mem = memory_mb or node_resources.get("memory_mb")
        if mem:
            opts["memory"] = int(mem) * 1024 * 1024
        if self.opts.ray_resources:
            opts["resources"] = dict(self.opts.ray_resources)
        return opts

    def node_request(self, n: Node) -> dict[str, Any]:
        return self.request(dict(n.resources), n.memory_mb)

    @staticmethod
    def amounts(req: dict[str, Any]) -> dict[str, float]:
        """Ray resource amounts of task options (``CPU``, ``GPU``, ``memory``, labels)."""
        out = {
            "CPU": float(req.get("num_cpus", 0)),
            "GPU": float(req.get("num_gpus", 0)),
            "memory": float(req.get("memory", 0)),
        }
        out.update(req.get("resources", {}))
        return {k: v for k, v in out.items() if v}

    def slots_for(self, pending: Sequence[Node]) -> tuple[int, int]:
        """In-flight actions (the cluster does the real placement) and GPU slots for
        ``pending``, after checking each fits on some node (``check_nodes``)."""
        self.check_nodes(pending)
        return self.slots, self.slots if any(n.resources.get("gpu") for n in pending) else 0

    def check_nodes(self, nodes: Sequence[Node]) -> None:
        """UsageError when some node's request (CPU, GPU, memory and labels together) fits on no
        node of the cluster; refreshes the sources workers read (hashed by now, under the
        workspace lock)."""
        self.sources = {
            s.digest: (str(s.path), s.info.model_dump(mode="json"))
            for s in self.ws.sources.values()
            if s.digest and s.info is not None
        }
        seen: set[str] = set()
        for n in nodes:
            req = self.node_request(n)
            shape = repr(sorted(req.items()))
            if shape not in seen:
                seen.add(shape)
                check_fit(self.nodes, f"action {n.id}", self.amounts(req))

    # -- running --------------------------------------------------------------------------------
    def run(self, n: Node, spec: ActionSpec) -> ExecResult:
        """Run ``spec`` on the cluster (blocking); accept it once the store has it verified."""
        req = self.node_request(n)
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
                self.events.emit(
                    "worker-failure",
                    id=spec.id,
                    stage=spec.stage,
                    title=spec.title,
                    shot=spec.shot,
                    host=out["host"],
                    pid=out["pid"],
                    error=out["error"],
                    log=out.get("log", ""),
                )
                raise BuildFailed(
                    f"{spec.id}: {describe_action(spec)} failed on host {out['host']} "
                    f"(pid {out['pid']}): {out['error']}",
                    hint="worker log (tail):\n" + out.get("log", ""),
                )
            if "lost" not in out:
                lk = self.store.lookup(out["key"])
                if lk.status == "hit":
                    return ExecResult(
                        out["key"],
                        out["ran"],
                        out["seconds"],
                        out["host"],
                        out["pid"],
                        out["takeovers"],
                        lk.result,
                    )
                out = {"lost": f"the worker reported {spec.id} done but the store has {lk.status}"}
            attempt += 1
            if attempt > self.opts.retries:
                raise BuildFailed(
                    f"{spec.id}: {describe_action(spec)} lost {attempt} times: {out['lost']}",
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

    def _batches(self, items: list[Item]) -> list[list[Item]]:
        """Longest first, dealt round-robin into enough batches to keep every slot busy."""
        items.sort(key=lambda it: -it[0].frames)
        size = self.opts.batch_size or DEFAULT_BATCH
        count = max(min(len(items), self.cpu_slots), math.ceil(len(items) / size))
        if self.opts.batch_size:
            count = math.ceil(len(items) / size)
        return [items[i::count] for i in range(count)]

    def _dispatch(self) -> None:
        running: dict[Any, _Run] = {}
        try:
            self._dispatch_loop(running)
        except BaseException as exc:  # never leave a caller waiting on a dead dispatcher
            lost = [it for run in running.values() for it in run.items]
            lost += self._actors.drop()
            with self._lock:
                while not self._queue.empty():
                    lost.append(self._queue.get_nowait())
                self._thread = None
            self._live.clear()
            self._actors.retire_all()
            for it in lost:
                if not it[2].done():
                    it[2].set_exception(WorkerLost(f"dispatcher failed: {_first(exc)}"))
            if not isinstance(exc, Exception):
                raise

    def _args(self) -> tuple[Any, ...]:
        return (self.store_url, self.sources, self.opts.device, self.opts.force, DEFAULT_TTL)

    def _tasks(self, group: list[Item], running: dict[Any, _Run]) -> None:
        """Submit ``group`` (one resource request) as batched Ray tasks."""
        for batch in self._batches(group):
            try:
                ref = self._remote.options(**batch[0][1]).remote(
                    [it[0] for it in batch], *self._args(), self._sink, runners=self.runners
                )
            except Exception as exc:  # noqa: BLE001 - reported per action, retried
                for it in batch:
                    it[2].set_exception(WorkerLost(f"submit failed: {_first(exc)}"))
                continue
            self._submit(running, batch, _Run(batch), ref)

    def _submit(self, running: dict[Any, _Run], batch: list[Item], run: _Run, ref: Any) -> None:
        running[ref] = run
        for it in batch:
            self._live[it[0].id] = _Live(it[0], run)

    def _dispatch_loop(self, running: dict[Any, _Run]) -> None:
        ray = self.ray
        idle_since = time.monotonic()
        last_drain = 0.0
        while True:
            pending = self._actors.queued()
            if (
                not running
                and not pending
                and self._queue.empty()
                and time.monotonic() - idle_since > IDLE_S
            ):
                self._actors.retire_all()  # the build is over (or between phases): free the cluster
                with self._lock:  # exit only if no spec was queued meanwhile
                    if self._queue.empty():
                        self._thread = None
                        return
            items: list[Item] = []
            try:
                items.append(self._queue.get(timeout=0.02 if running or pending else 0.5))
                time.sleep(LINGER_S)
                while True:
                    items.append(self._queue.get_nowait())
            except queue.Empty:
                pass
            shapes: dict[str, list[Item]] = {}
            for it in items:
                model = holds_model(it[0])
                shapes.setdefault(repr((model, sorted(it[1].items()))), []).append(it)
            for group in shapes.values():
                if holds_model(group[0][0]):
                    self._actors.add(group, self.amounts(group[0][1]))
                else:
                    self._tasks(group, running)
            for a, batch in self._actors.deal():
                if a is None:  # no node can hold an actor (any more): plain tasks, as before
                    self._tasks(batch, running)
                    continue
                ref = a.handle.run.remote(
                    [it[0] for it in batch], *self._args(), self._sink, runners=self.runners
                )
                self._submit(running, batch, _Run(batch, a), ref)
            if not running:
                continue
            idle_since = time.monotonic()
            ready, _ = ray.wait(list(running), num_returns=len(running), timeout=0.02)
            if ready or time.monotonic() - last_drain >= DRAIN_S:
                self._drain()
                last_drain = time.monotonic()
                self._unblock(running)
            for ref in ready:
                self._finish(running.pop(ref), ref)

    def _unblock(self, running: dict[Any, _Run]) -> None:
        """Retire one idle actor when a batch waits (not started after BLOCKED_S) while idle
        actors of another pool may hold the resources it needs."""
        now = time.monotonic()
        waiting = [r for r in running.values() if not r.started and now - r.submitted > BLOCKED_S]
        if waiting and self._actors.retire_idle():
            for r in waiting:
                r.submitted = now  # give the freed resources time before retiring another

    # -- results and progress -------------------------------------------------------------------
    def _drain(self) -> None:
        """Emit the workers' ``action-host`` and ``progress`` messages for specs in flight."""
        if self._sink is None:
            return
        try:
            msgs = self.ray.get(self._sink.drain.remote(), timeout=30)
        except Exception:  # noqa: BLE001 - the sink's node is gone: no more remote progress
            self._sink = None
            return
        for msg in msgs:
            live = self._live.get(msg[1])
            if live is None:
                continue
            if msg[0] == "start":
                live.run.started = True
                self._placed(live, msg[2], msg[3], msg[4])
            elif msg[0] == "progress":
                self._progress(live, int(msg[2]))

    def _placed(self, live: _Live, host: str, pid: int, worker: str) -> None:
        if not live.placed:
            live.placed = True
            s = live.spec
            self.events.emit(
                "action-host", id=s.id, stage=s.stage, host=host, pid=pid, worker=worker
            )

    def _progress(self, live: _Live, done: int) -> None:
        if done > live.done:
            live.done = done
            s = live.spec
            self.events.emit("progress", id=s.id, stage=s.stage, done=done, total=s.frames)

    def _finish(self, run: _Run, ref: Any) -> None:
        a = run.actor
        if a is not None:
            self._actors.release(a)
        try:
            outs = self.ray.get(ref)
        except Exception as exc:  # noqa: BLE001 - a lost worker, node or actor
            for it in run.items:
                self._live.pop(it[0].id, None)
                it[2].set_exception(WorkerLost(f"{type(exc).__name__}: {_first(exc)}"))
            if a is not None and isinstance(exc, self.ray.exceptions.RayActorError):
                self._actors.lost(a, _first(exc))  # the pool replaces it
                self.nodes = self._actors.nodes
            return
        for it, res in zip(run.items, outs, strict=True):
            live = self._live.pop(it[0].id, None)
            if live is not None:  # what the sink had not delivered yet
                self._placed(live, res["host"], res["pid"], res.get("worker", "task"))
                self._progress(live, int(res.get("done", 0)))
            it[2].set_result(res)
        if a is not None:
            self._actors.ran(a, outs)


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
