"""A generic DAG scheduler with resource slots (cpu, gpu, and any others the caller names).

The executor runs frozen tasks; it never plans. Ready tasks start in submission order as slots
free up, and a task that does not fit yet lets later ones that do fit go first. A failure skips
the failed task's dependents; without ``keep_going`` it also stops new starts (running tasks
finish, the rest are cancelled).
"""

from __future__ import annotations

import heapq
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from restoro.engine.events import EventBus

Status = Literal["ok", "failed", "skipped", "cancelled"]


@dataclass(frozen=True)
class Task:
    """One unit of work: ``fn`` gets ``{dep_id: result}`` of its dependencies."""

    id: str
    fn: Callable[[Mapping[str, Any]], Any]
    deps: tuple[str, ...] = ()
    resources: Mapping[str, int] = field(default_factory=lambda: {"cpu": 1})
    label: str = ""


@dataclass
class TaskOutcome:
    status: Status
    result: Any = None
    error: BaseException | None = None
    seconds: float = 0.0


def find_cycle(tasks: Sequence[Task]) -> list[str] | None:
    """A dependency cycle as a path ``[a, b, a]``, or None (iterative DFS, no recursion limit)."""
    deps = {t.id: t.deps for t in tasks}
    colour: dict[str, int] = {}  # 1 = on the current path, 2 = done
    for root in deps:
        if root in colour:
            continue
        path: list[str] = [root]
        stack = [iter(deps[root])]
        colour[root] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                colour[path.pop()] = 2
                stack.pop()
            elif colour.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            elif nxt not in colour and nxt in deps:
                colour[nxt] = 1
                path.append(nxt)
                stack.append(iter(deps[nxt]))
    return None


def check_tasks(tasks: Sequence[Task]) -> None:
    """ValueError for duplicate ids, unknown dependencies or a cycle (printed as its path)."""
    ids: set[str] = set()
    for t in tasks:
        if t.id in ids:
            raise ValueError(f"duplicate task id {t.id!r}")
        ids.add(t.id)
    for t in tasks:
        for d in t.deps:
            if d not in ids:
                raise ValueError(f"task {t.id!r} depends on unknown task {d!r}")
    cycle = find_cycle(tasks)
    if cycle:
        raise ValueError("dependency cycle: " + " -> ".join(cycle))


def _call(task: Task, inputs: Mapping[str, Any]) -> TaskOutcome:
    t0 = time.perf_counter()
    try:
        result = task.fn(inputs)
    except Exception as e:
        return TaskOutcome("failed", error=e, seconds=time.perf_counter() - t0)
    return TaskOutcome("ok", result=result, seconds=time.perf_counter() - t0)


class LocalExecutor:
    """Runs tasks on threads, limited by slots ``{"cpu": jobs, "gpu": gpus, **slots}``."""

    def __init__(
        self,
        jobs: int,
        *,
        gpus: int = 0,
        events: EventBus | None = None,
        slots: Mapping[str, int] | None = None,
    ) -> None:
        if jobs < 1 or gpus < 0:
            raise ValueError(f"need jobs >= 1 and gpus >= 0, got jobs={jobs} gpus={gpus}")
        self.capacity: dict[str, int] = {"cpu": jobs, "gpu": gpus, **(slots or {})}
        self.events = events

    def need(self, task: Task) -> dict[str, int]:
        """The slots ``task`` holds while it runs (a gpu task takes a cpu slot if gpus == 0)."""
        need = {r: n for r, n in task.resources.items() if n}
        if any(n < 0 for n in need.values()):
            raise ValueError(f"task {task.id!r}: negative resource request {need}")
        if need.get("gpu") and not self.capacity["gpu"]:
            need["cpu"] = max(need.get("cpu", 0), need.pop("gpu"))
        if not need.get("cpu") and not need.get("gpu"):
            need["cpu"] = 1  # every task occupies a worker thread
        for r in need:
            if r not in self.capacity:
                raise ValueError(f"task {task.id!r} needs unknown resource {r!r}")
        # A request above capacity would never fit: it runs alone on the whole capacity instead.
        return {r: min(n, self.capacity[r]) for r, n in need.items()}

    def _emit(self, event: str, task: Task, **fields: Any) -> None:
        if self.events is not None:
            self.events.emit(event, id=task.id, label=task.label, **fields)

    def run(self, tasks: Sequence[Task], *, keep_going: bool = False) -> dict[str, TaskOutcome]:
        """Run ``tasks`` respecting dependencies and slots; an outcome for every task. The
        cyclic GC runs meanwhile, even inside a build's walk (``gcpause.collecting``)."""
        from restoro.engine.gcpause import collecting

        with collecting():
            return self._run(tasks, keep_going=keep_going)

    def _run(self, tasks: Sequence[Task], *, keep_going: bool) -> dict[str, TaskOutcome]:
        check_tasks(tasks)
        by_id = {t.id: t for t in tasks}
        order = {t.id: i for i, t in enumerate(tasks)}
        needs = {t.id: self.need(t) for t in tasks}
        remaining = {t.id: len(set(t.deps)) for t in tasks}
        dependents: dict[str, list[str]] = {t.id: [] for t in tasks}
        for t in tasks:
            for d in set(t.deps):
                dependents[d].append(t.id)
        # One ready-heap per resource request: every task in a heap needs the same slots, so
        # when the top of a heap does not fit, nothing in it does (O(log n) per start).
        ready: dict[tuple[tuple[str, int], ...], list[tuple[int, str]]] = {}

        def push(tid: str) -> None:
            heapq.heappush(
                ready.setdefault(tuple(sorted(needs[tid].items())), []), (order[tid], tid)
            )

        for t in tasks:
            if not t.deps:
                push(t.id)
        free = dict(self.capacity)
        outcomes: dict[str, TaskOutcome] = {}
        running: dict[Future[TaskOutcome], str] = {}
        stopping = False
        interrupted = False

        def start_ready(pool: ThreadPoolExecutor) -> None:
            for key, heap in ready.items():
                while heap and all(free[r] >= n for r, n in key):
                    _, tid = heapq.heappop(heap)
                    for r, n in key:
                        free[r] -= n
                    task = by_id[tid]
                    inputs = {d: outcomes[d].result for d in task.deps}
                    self._emit("task-start", task)
                    running[pool.submit(_call, task, inputs)] = tid

        def collect(done: set[Future[TaskOutcome]]) -> None:
            nonlocal stopping, interrupted
            for fut in sorted(done, key=lambda f: order[running[f]]):
                tid = running[fut]
                if tid not in outcomes:  # a Ctrl-C may have cut a previous collect short
                    exc = fut.exception()
                    if isinstance(exc, KeyboardInterrupt):
                        interrupted = True
                        outcome = TaskOutcome("cancelled", error=exc)
                    elif exc is not None:
                        outcome = TaskOutcome("failed", error=exc)
                    else:
                        outcome = fut.result()
                    outcomes[tid] = outcome
                    self._emit(
                        "task-end", by_id[tid], status=outcome.status, seconds=outcome.seconds
                    )
                del running[fut]
                for r, n in needs[tid].items():
                    free[r] += n
                if outcomes[tid].status != "ok":
                    stopping = stopping or not keep_going or interrupted
                    continue
                for child in dependents[tid]:
                    remaining[child] -= 1
                    if remaining[child] == 0:
                        push(child)

        workers = self.capacity["cpu"] + self.capacity["gpu"]
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="restoro-task") as pool:
            try:
                while True:
                    if not stopping:
                        start_ready(pool)
                    if not running:
                        break
                    done, _ = wait(running, return_when=FIRST_COMPLETED)
                    collect(done)
            except KeyboardInterrupt:
                interrupted = True
            if interrupted:
                # Stop scheduling and let what runs finish (its outputs are committed whole or
                # not at all); a second Ctrl-C here propagates at once.
                stopping = True
                while running:
                    collect(wait(running).done)
        self._finish(tasks, outcomes)
        if interrupted:
            raise KeyboardInterrupt
        return outcomes

    def _finish(self, tasks: Sequence[Task], outcomes: dict[str, TaskOutcome]) -> None:
        """Label every task that never ran: skipped below a failure, otherwise cancelled."""
        by_id = {t.id: t for t in tasks}

        def label(tid: str) -> Status:
            stack = [tid]
            while stack:  # resolve dependencies first, without recursion
                top = stack[-1]
                pending = [d for d in by_id[top].deps if d not in outcomes]
                if pending:
                    stack.extend(pending)
                    continue
                stack.pop()
                if top in outcomes:
                    continue
                bad = any(outcomes[d].status in ("failed", "skipped") for d in by_id[top].deps)
                outcomes[top] = TaskOutcome("skipped" if bad else "cancelled")
                self._emit("task-end", by_id[top], status=outcomes[top].status, seconds=0.0)
            return outcomes[tid].status

        for t in tasks:
            if t.id not in outcomes:
                label(t.id)
