"""The worker side of the Ray executor: what runs inside Ray tasks and actors.

``run_batch`` is the body of one Ray task (or one call on a model actor): it runs each spec of
its batch with ``execute_spec`` and returns a few hundred bytes per spec. ``ModelWorker`` is the
long-lived actor that runs batches of model-holding actions, so the weights a process loads
(``restoro.models.infer``'s engine cache) serve every batch sent to it. ``ProgressSink`` is a
small actor on the coordinator's node that workers send ``start`` and ``progress`` messages to,
fire-and-forget and throttled; the coordinator drains it and emits the same events as a local
build.
"""

from __future__ import annotations

import os
import socket
import sys
import time
import traceback
from typing import TYPE_CHECKING, Any

from restoro.engine.execute import execute_spec, load_runners

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from restoro.engine.graph import ActionSpec

PROGRESS_S = 0.25
"""Seconds between a worker's progress messages (the local executor's event throttle)."""
LOG_LINES = 12


def holds_model(spec: ActionSpec) -> bool:
    """Whether ``spec`` runs a model (its inputs name model weights): it goes to an actor."""
    return any(str(name).startswith("model:") for name in spec.inputs)


def load_count() -> int:
    """Model weight loads in this process (0 when no model code was ever imported)."""
    infer = sys.modules.get("restoro.models.infer")
    return int(infer.load_count()) if infer is not None else 0


class Channel:
    """Buffered, throttled messages from one worker to the coordinator's ``ProgressSink``."""

    def __init__(self, sink: Any) -> None:
        self.sink = sink
        self.buf: list[tuple[Any, ...]] = []
        self.last = 0.0

    def send(self, msg: tuple[Any, ...], *, now: bool = False) -> None:
        if self.sink is None:
            return
        self.buf.append(msg)
        if now or time.monotonic() - self.last >= PROGRESS_S:
            self.flush()

    def flush(self) -> None:
        if self.sink is None or not self.buf:
            return
        msgs, self.buf = self.buf, []
        self.last = time.monotonic()
        try:
            self.sink.put.remote(msgs)  # fire and forget: no round trip
        except Exception:  # noqa: BLE001 - progress is best effort; the result still counts
            self.sink = None

    def progress(self, spec_id: str, frames: int) -> Callable[[int], None]:
        """A ``ctx.progress`` for one action: one message per PROGRESS_S, and the last frame."""
        last = [0.0]

        def report(done: int) -> None:
            t = time.monotonic()
            if t - last[0] >= PROGRESS_S or (frames and done >= frames):
                last[0] = t
                self.send(("progress", spec_id, done))

        return report


def run_batch(
    specs: Sequence[ActionSpec],
    store_url: str,
    sources: dict[str, tuple[str, dict[str, Any]]],
    device: str,
    force: bool,
    lease_ttl: float,
    sink: Any = None,
    worker: str = "task",
    runners: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """Body of one Ray task: run each spec in turn; a small JSON-able summary per spec.

    ``runners`` names the modules that register the coordinator's action runners."""
    load_runners(runners)
    out: list[dict[str, Any]] = []
    host, pid = socket.gethostname(), os.getpid()
    chan = Channel(sink)
    for spec in specs:
        t0 = time.monotonic()
        done = [0]
        chan.send(("start", spec.id, host, pid, worker))
        report = chan.progress(spec.id, spec.frames)

        def progress(
            n: int, report: Callable[[int], None] = report, done: list[int] = done
        ) -> None:
            done[0] = n
            report(n)

        try:
            ex = execute_spec(
                spec,
                store_url,
                sources,
                device,
                force=force,
                lease_ttl=lease_ttl,
                progress=progress,
            )
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
            log = traceback.format_exc().splitlines(True)[-LOG_LINES:]
            hint = getattr(exc, "hint", None)
            out.append(
                {
                    "error": message.splitlines()[0] if message else type(exc).__name__,
                    "log": "".join(log) + (f"hint: {hint}\n" if hint else ""),
                    "host": host,
                    "pid": pid,
                    "seconds": time.monotonic() - t0,
                }
            )
        out[-1].update(done=done[0], worker=worker, loads=load_count())
    chan.flush()
    return out


class ModelWorker:
    """A long-lived Ray actor for model-holding actions: one process, weights loaded once."""

    def __init__(self, label: str) -> None:
        self.label = label

    def run(
        self,
        specs: Sequence[ActionSpec],
        store_url: str,
        sources: dict[str, tuple[str, dict[str, Any]]],
        device: str,
        force: bool,
        lease_ttl: float,
        sink: Any = None,
        runners: Sequence[str] = (),
    ) -> list[dict[str, Any]]:
        return run_batch(
            specs, store_url, sources, device, force, lease_ttl, sink, self.label, runners
        )


class ProgressSink:
    """Collects workers' messages until the coordinator drains them (a Ray actor)."""

    def __init__(self) -> None:
        self.msgs: list[tuple[Any, ...]] = []

    def put(self, msgs: list[tuple[Any, ...]]) -> None:
        self.msgs.extend(msgs)

    def drain(self) -> list[tuple[Any, ...]]:
        msgs, self.msgs = self.msgs, []
        return msgs
