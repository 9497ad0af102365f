"""The pool of long-lived model actors that ``RayFarm`` sends model-holding batches to.

``ModelActors`` keeps one pool of ``ModelWorker`` actors (``restoro.farm.ray_worker``) per
resource request. A pool is created with its first spec, grows up to the smaller of what its
queued work needs and what the alive nodes can hold, and deals each idle actor the next batch
(longest first). It retires an idle actor when the dispatcher finds a batch blocked, replaces a
lost one within what the nodes hold after the loss, and retires all when the work is done; each
change is an ``actor`` event (``started``, ``loaded``, ``lost``, ``retired``). The dispatcher
(``restoro.farm.ray_executor``) submits the batches and collects their results.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from restoro.farm.ray_worker import ModelWorker

if TYPE_CHECKING:
    from collections.abc import Iterator
    from concurrent.futures import Future

    from restoro.engine.events import EventBus
    from restoro.engine.graph import ActionSpec

Item = tuple["ActionSpec", dict[str, Any], "Future[Any]"]
"""A queued spec: the spec, its sources, and the future its result goes to."""

MAX_ACTORS = 64


@dataclass
class Actor:
    """One ``ModelWorker`` of a pool, and what the coordinator knows of it."""

    handle: Any
    label: str
    pool: _Pool = field(repr=False, compare=False)
    busy: bool = False
    host: str = ""
    pid: int = 0
    loads: int = 0
    actions: int = 0
    idle_since: float = field(default_factory=time.monotonic)


@dataclass
class _Pool:
    """Model actors with one resource request; ``backlog`` holds specs not yet sent."""

    options: dict[str, Any]
    need: dict[str, float]
    capacity: int
    actors: list[Actor] = field(default_factory=list)
    backlog: list[Item] = field(default_factory=list)


class ModelActors:
    """The model actors of one ``RayFarm``: created, sized, dealt batches and retired here."""

    def __init__(
        self, ray: Any, events: EventBus, nodes: list[dict[str, Any]], batch_size: int
    ) -> None:
        """``nodes``: the alive Ray nodes (``ray.nodes()``); ``batch_size``: the most specs one
        call on an actor carries."""
        self.ray = ray
        self.events = events
        self.nodes = nodes
        self.batch_size = batch_size
        self._cls = ray.remote(ModelWorker)
        self._pools: dict[str, _Pool] = {}
        self._count = 0

    def add(self, group: list[Item], need: dict[str, float]) -> None:
        """Queue ``group`` (specs with one resource request) for the pool of that request;
        ``need``: the Ray resource amounts one actor of it asks for."""
        pool = self._pool(group[0][1], need)
        pool.backlog += group
        pool.backlog.sort(key=lambda it: -it[0].frames)

    def queued(self) -> bool:
        """Whether some pool holds specs not sent yet."""
        return any(p.backlog for p in self._pools.values())

    def deal(self) -> Iterator[tuple[Actor | None, list[Item]]]:
        """What to send now, pool by pool: ``(actor, batch)`` for each idle actor, the pool grown
        first to what its work needs and the cluster holds; ``(None, specs)`` for a pool no node
        can hold an actor of (any more), whose specs run as plain tasks, as before."""
        for pool in self._pools.values():
            yield from self._feed(pool)

    def release(self, a: Actor) -> None:
        """``a``'s batch came back: it is idle from now."""
        a.busy = False
        a.idle_since = time.monotonic()

    def ran(self, a: Actor, outs: list[dict[str, Any]]) -> None:
        """Note where ``a`` runs and what it ran; a ``loaded`` event when it loaded weights."""
        if not outs:
            return
        a.host, a.pid = outs[-1]["host"], outs[-1]["pid"]
        a.actions += len(outs)
        loads = max(int(o.get("loads", 0)) for o in outs)
        if loads > a.loads:
            a.loads = loads
            self.events.emit(
                "actor", actor=a.label, status="loaded", host=a.host, pid=a.pid, loads=loads
            )

    def lost(self, a: Actor, error: str) -> None:
        """``a`` died (with its node): retire it and refresh ``nodes``; its pool replaces it
        within what the alive nodes can now hold."""
        self._retire(a, "lost", error=error)
        self.nodes = [n for n in self.ray.nodes() if n.get("Alive")]
        a.pool.capacity = self._capacity(a.pool.need)

    def retire_idle(self) -> bool:
        """Retire the longest idle actor of a pool with nothing queued (whose resources a
        blocked batch may wait for); False when there is none."""
        idle = [
            (a.idle_since, id(a), a)
            for pool in self._pools.values()
            if not pool.backlog
            for a in pool.actors
            if not a.busy
        ]
        if not idle:
            return False
        self._retire(min(idle, key=lambda t: (t[0], t[1]))[2], "retired")
        return True

    def retire_all(self) -> None:
        for pool in self._pools.values():
            for a in list(pool.actors):
                self._retire(a, "retired")

    def drop(self) -> list[Item]:
        """Empty every pool's backlog; returns the specs it held."""
        out = [it for pool in self._pools.values() for it in pool.backlog]
        for pool in self._pools.values():
            pool.backlog.clear()
        return out

    def _pool(self, req: dict[str, Any], need: dict[str, float]) -> _Pool:
        shape = repr(sorted(req.items()))
        if shape not in self._pools:
            options = {k: v for k, v in req.items() if k != "max_retries"}
            options.update(max_restarts=0, max_task_retries=0)
            self._pools[shape] = _Pool(options, need, self._capacity(need))
        return self._pools[shape]

    def _capacity(self, need: dict[str, float]) -> int:
        """How many actors asking for ``need`` the alive nodes can hold at once."""
        total = 0
        for node in self.nodes:
            res = node.get("Resources", {})
            total += min(int(res.get(k, 0.0) // v) for k, v in need.items()) if need else 0
        return min(total, MAX_ACTORS)

    def _feed(self, pool: _Pool) -> Iterator[tuple[Actor | None, list[Item]]]:
        if not pool.backlog:
            return
        if not pool.capacity:
            group, pool.backlog = pool.backlog, []
            yield None, group
            return
        busy = sum(a.busy for a in pool.actors)
        want = min(pool.capacity, busy + len(pool.backlog))
        while len(pool.actors) < want:
            self._count += 1
            label = f"model-{self._count}"
            handle = self._cls.options(**pool.options).remote(label)
            pool.actors.append(Actor(handle, label, pool))
            self.events.emit("actor", actor=label, status="started", loads=0)
        for a in sorted(pool.actors, key=lambda a: a.idle_since):
            if not pool.backlog:
                break
            if a.busy:
                continue
            count = max(1, min(self.batch_size, len(pool.backlog) // (4 * len(pool.actors))))
            batch, pool.backlog = pool.backlog[:count], pool.backlog[count:]
            a.busy = True
            yield a, batch

    def _retire(self, a: Actor, status: str, error: str = "") -> None:
        a.pool.actors.remove(a)
        with contextlib.suppress(Exception):
            self.ray.kill(a.handle, no_restart=True)
        self.events.emit(
            "actor",
            actor=a.label,
            status=status,
            host=a.host,
            pid=a.pid,
            loads=a.loads,
            actions=a.actions,
            **({"error": error} if error else {}),
        )
