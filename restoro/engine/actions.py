"""The action-runner registry: what each kind of action does, given only its frozen spec.

Domain packages register a runner per action kind with ``@runner(kind)``
(``restoro.plan.runners`` for ingest, shots and chains); the engine dispatches on ``spec.stage``.
A runner returns the files it wrote (temporary paths in the store's tmp/, committed by the caller
with a validator) and a JSON-able ``meta``. Runners never look at the manifest: everything they
need is in ``spec.params`` and ``spec.inputs``.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

    from restoro.engine.graph import ActionSpec
    from restoro.engine.store import Store

Progress = Callable[[int], None]


@dataclass
class RunContext:
    store: Store
    sources: Mapping[str, tuple[Path, Any]]
    """Source digest → (path, probe info or its JSON); sources live outside the store."""
    device: str = "cpu"
    progress: Progress = lambda done: None
    work_dir: Path | None = None
    """A private directory for this action's temporary files (removed after the action)."""

    def blob(self, digest: str) -> Path:
        """Where an input blob lives (the store verified it before the action started)."""
        return self.store.blob_path(digest)

    def temp(self, suffix: str = "") -> Path:
        """A fresh temporary path on the store's filesystem, so commits are renames."""
        if self.work_dir is None:
            return self.store.temp_path(suffix)
        self._n = getattr(self, "_n", 0) + 1
        return self.work_dir / f"out{self._n}{suffix}"


@dataclass
class RunOutput:
    files: dict[str, Path] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    validators: dict[str, Callable[[Path], None]] = field(default_factory=dict)


Runner = Callable[["ActionSpec", RunContext], RunOutput]
RUNNERS: dict[str, Runner] = {}


def runner(stage: str) -> Callable[[Runner], Runner]:
    def deco(fn: Runner) -> Runner:
        RUNNERS[stage] = fn
        return fn

    return deco


def threaded(it: Iterator[Any], depth: int = 8) -> Iterator[Any]:
    """Run an iterator in its own thread behind a bounded queue (decode/encode overlap)."""
    q: queue.Queue[Any] = queue.Queue(maxsize=depth)
    done = object()
    failure: list[BaseException] = []
    stop = threading.Event()

    def pump() -> None:
        try:
            for item in it:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
        except BaseException as exc:  # handed to the consumer
            failure.append(exc)
        finally:
            while not stop.is_set():
                try:
                    q.put(done, timeout=0.1)
                    break
                except queue.Full:
                    continue

    t = threading.Thread(target=pump, daemon=True)
    t.start()
    try:
        while True:
            item = q.get()
            if item is done:
                break
            yield item
        if failure:
            raise failure[0]
    finally:
        stop.set()
        t.join(timeout=5)


def windows(frames: Iterator[Any], radius: int) -> Iterator[list[Any]]:
    """Sliding windows of ``2 * radius + 1`` frames centred on each frame, in order.

    At the ends of the stream (a shot boundary: a chain action is one shot) the window is
    clamped by repeating the first or last frame, so no frame ever sees another shot.
    """
    buf: list[Any] = []
    it = iter(frames)
    first = True
    for frame in it:
        if first:
            buf = [frame] * (radius + 1)
            first = False
        else:
            buf.append(frame)
        if len(buf) == 2 * radius + 1:
            yield list(buf)
            buf.pop(0)
    if first:
        return
    for _ in range(radius):
        buf.append(buf[-1])
        yield list(buf)
        buf.pop(0)
