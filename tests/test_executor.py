"""The local DAG executor: parallelism, slots, failure semantics, cycles, events."""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest

from restoro.engine.events import EventBus
from restoro.engine.executor import LocalExecutor, Task, find_cycle

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping


def _sleep(seconds: float, value: Any = None) -> Callable[[Mapping[str, Any]], Any]:
    def fn(_: Mapping[str, Any]) -> Any:
        time.sleep(seconds)
        return value

    return fn


def _fail(_: Mapping[str, Any]) -> Any:
    raise RuntimeError("boom")


class Tracker:
    """Records how many tasks of each kind run at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now: dict[str, int] = {}
        self.peak: dict[str, int] = {}
        self.order: list[str] = []

    def task(
        self, kind: str, name: str, seconds: float = 0.05
    ) -> Callable[[Mapping[str, Any]], Any]:
        def fn(_: Mapping[str, Any]) -> str:
            with self.lock:
                self.order.append(name)
                self.now[kind] = self.now.get(kind, 0) + 1
                self.peak[kind] = max(self.peak.get(kind, 0), self.now[kind])
            time.sleep(seconds)
            with self.lock:
                self.now[kind] -= 1
            return name

        return fn


def test_results_flow_along_dependencies() -> None:
    tasks = [
        Task("a", lambda _: 2),
        Task("b", lambda _: 3),
        Task("sum", lambda d: d["a"] + d["b"], deps=("a", "b")),
        Task("square", lambda d: d["sum"] ** 2, deps=("sum",)),
    ]
    out = LocalExecutor(2).run(tasks)
    assert {k: v.status for k, v in out.items()} == dict.fromkeys(("a", "b", "sum", "square"), "ok")
    assert out["square"].result == 25
    assert out["sum"].seconds >= 0


def test_parallelism_really_happens() -> None:
    tasks = [Task("a", _sleep(0.5)), Task("b", _sleep(0.5))]
    t0 = time.perf_counter()
    out = LocalExecutor(2).run(tasks)
    both = time.perf_counter() - t0
    assert all(o.status == "ok" for o in out.values())
    assert both < 0.85, f"two 0.5 s tasks with jobs=2 took {both:.2f} s"
    t0 = time.perf_counter()
    LocalExecutor(1).run(tasks)
    assert time.perf_counter() - t0 >= 0.95


def test_gpu_slots_are_respected() -> None:
    tr = Tracker()
    tasks = [Task(f"g{i}", tr.task("gpu", f"g{i}"), resources={"gpu": 1}) for i in range(4)]
    tasks += [Task(f"c{i}", tr.task("cpu", f"c{i}")) for i in range(6)]
    out = LocalExecutor(3, gpus=1).run(tasks)
    assert all(o.status == "ok" for o in out.values())
    assert tr.peak["gpu"] == 1
    assert tr.peak["cpu"] == 3
    # cpu tasks did not wait behind the gpu queue: they started before the last gpu task
    assert tr.order.index("c5") < tr.order.index("g3")


def test_gpu_task_runs_on_a_cpu_slot_without_gpus() -> None:
    tr = Tracker()
    tasks = [Task(f"g{i}", tr.task("any", f"g{i}"), resources={"gpu": 1}) for i in range(3)]
    tasks += [Task(f"c{i}", tr.task("any", f"c{i}")) for i in range(3)]
    ex = LocalExecutor(2)
    assert ex.need(tasks[0]) == {"cpu": 1}
    out = ex.run(tasks)
    assert all(o.status == "ok" for o in out.values())
    assert tr.peak["any"] == 2


def test_big_request_is_clamped_and_unknown_resource_refused() -> None:
    ex = LocalExecutor(2, slots={"memory_mb": 1000})
    assert ex.need(Task("big", _sleep(0), resources={"cpu": 8})) == {"cpu": 2}
    assert ex.need(Task("m", _sleep(0), resources={"memory_mb": 600})) == {
        "memory_mb": 600,
        "cpu": 1,
    }
    with pytest.raises(ValueError, match="unknown resource 'tpu'"):
        ex.run([Task("t", _sleep(0), resources={"tpu": 1})])


def test_memory_slots_limit_concurrency() -> None:
    tr = Tracker()
    tasks = [
        Task(f"m{i}", tr.task("m", f"m{i}"), resources={"cpu": 1, "memory_mb": 600})
        for i in range(4)
    ]
    LocalExecutor(4, slots={"memory_mb": 1000}).run(tasks)
    assert tr.peak["m"] == 1


def test_failure_stops_new_starts() -> None:
    started: list[str] = []

    def rec(name: str, seconds: float) -> Callable[[Mapping[str, Any]], Any]:
        def fn(_: Mapping[str, Any]) -> None:
            started.append(name)
            time.sleep(seconds)

        return fn

    tasks = [
        Task("bad", _fail),
        Task("slow", rec("slow", 0.3)),
        Task("child", rec("child", 0), deps=("bad",)),
        Task("grandchild", rec("grandchild", 0), deps=("child",)),
        Task("later", rec("later", 0)),
        Task("after-slow", rec("after-slow", 0), deps=("slow",)),
    ]
    out = LocalExecutor(2).run(tasks)
    status = {k: v.status for k, v in out.items()}
    assert status == {
        "bad": "failed",
        "slow": "ok",  # was running: allowed to finish
        "child": "skipped",
        "grandchild": "skipped",
        "later": "cancelled",
        "after-slow": "cancelled",
    }
    assert isinstance(out["bad"].error, RuntimeError)
    assert started == ["slow"]


def test_keep_going_runs_everything_independent() -> None:
    tasks = [
        Task("bad", _fail),
        Task("child", lambda _: 1, deps=("bad",)),
        Task("grandchild", lambda _: 1, deps=("child", "ok1")),
        Task("ok1", lambda _: 1),
        Task("ok2", lambda d: d["ok1"] + 1, deps=("ok1",)),
    ]
    out = LocalExecutor(1).run(tasks, keep_going=True)
    status = {k: v.status for k, v in out.items()}
    assert status == {
        "bad": "failed",
        "child": "skipped",
        "grandchild": "skipped",
        "ok1": "ok",
        "ok2": "ok",
    }
    assert out["ok2"].result == 2


def test_submission_order_is_start_order() -> None:
    tr = Tracker()
    tasks = [Task(f"t{i}", tr.task("x", f"t{i}", 0.001)) for i in range(10)]
    LocalExecutor(1).run(tasks)
    assert tr.order == [f"t{i}" for i in range(10)]


def test_cycles_and_unknown_deps_are_refused() -> None:
    tasks = [
        Task("a", _fail, deps=("c",)),
        Task("b", _fail, deps=("a",)),
        Task("c", _fail, deps=("b",)),
        Task("d", _fail),
    ]
    assert find_cycle(tasks) in (["a", "c", "b", "a"], ["c", "b", "a", "c"], ["b", "a", "c", "b"])
    with pytest.raises(ValueError, match=r"dependency cycle: a -> c -> b -> a"):
        LocalExecutor(1).run(tasks)
    with pytest.raises(ValueError, match=r"dependency cycle: s -> s"):
        LocalExecutor(1).run([Task("s", _fail, deps=("s",))])
    with pytest.raises(ValueError, match=r"task 'x' depends on unknown task 'nope'"):
        LocalExecutor(1).run([Task("x", _fail, deps=("nope",))])
    with pytest.raises(ValueError, match="duplicate task id 'x'"):
        LocalExecutor(1).run([Task("x", _fail), Task("x", _fail)])


def test_deep_chain_has_no_recursion_limit() -> None:
    n = 5000
    tasks = [Task("t0", lambda _: 0)]
    tasks += [
        Task(f"t{i}", lambda d, i=i: d[f"t{i - 1}"] + 1, deps=(f"t{i - 1}",)) for i in range(1, n)
    ]
    assert find_cycle(tasks) is None
    out = LocalExecutor(2).run([Task("bad", _fail), *tasks[1:], tasks[0]], keep_going=False)
    assert out["bad"].status == "failed"
    assert out[f"t{n - 1}"].status in ("ok", "cancelled")


def test_events() -> None:
    bus = EventBus()
    seen: list[dict[str, Any]] = []
    bus.subscribe(seen.append)
    tasks = [
        Task("a", lambda _: 1, label="ingest e01"),
        Task("b", _fail),
        Task("c", _fail, deps=("b",)),
    ]
    LocalExecutor(1, events=bus).run(tasks, keep_going=True)
    starts = [e["id"] for e in seen if e["event"] == "task-start"]
    ends = {e["id"]: e for e in seen if e["event"] == "task-end"}
    assert starts == ["a", "b"]
    assert ends["a"]["status"] == "ok" and ends["a"]["label"] == "ingest e01"
    assert ends["b"]["status"] == "failed" and ends["c"]["status"] == "skipped"
    assert all(isinstance(e["seconds"], float) and e["ts"] > 0 for e in ends.values())


@pytest.mark.parametrize("how", ["sigint", "raise"])
def test_keyboard_interrupt_lets_running_tasks_finish(how: str) -> None:
    finished: list[str] = []

    def interrupt(_: Mapping[str, Any]) -> None:
        time.sleep(0.05)
        if how == "sigint":  # a real Ctrl-C: delivered to the main thread, not to the task
            os.kill(os.getpid(), signal.SIGINT)
        else:
            raise KeyboardInterrupt

    def slow(_: Mapping[str, Any]) -> None:
        time.sleep(0.4)
        finished.append("slow")

    bus = EventBus()
    ends: dict[str, str] = {}
    bus.subscribe(
        lambda e: ends.update({e["id"]: e["status"]}) if e["event"] == "task-end" else None
    )
    tasks = [
        Task("slow", slow),
        Task("int", interrupt),
        Task("later", lambda _: None, deps=("slow",)),
        Task("other", lambda _: None),
    ]
    # Python keeps SIGINT ignored when it starts ignored (a job started in the background by a
    # non-interactive shell, `nohup`): install its own handler, as an interactive terminal has.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            LocalExecutor(2, events=bus).run(tasks)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert finished == ["slow"]
    assert ends["slow"] == "ok" and ends["later"] == "cancelled" and ends["other"] == "cancelled"
    assert set(ends) == {"slow", "int", "later", "other"}
