"""The local executor: cache misses run here, in the coordinator's threads, through ``run_spec``."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from restoro.engine.events import EventBus
    from restoro.engine.execute import ExecResult
    from restoro.engine.graph import ActionSpec
    from restoro.engine.records import BuildOptions
    from restoro.plan.nodes import Node
    from restoro.plan.workspace import Workspace


class LocalRun:
    """``--executor local``: ``opts.jobs`` threads, one GPU slot per CUDA device asked for."""

    def __init__(
        self, opts: BuildOptions, ws: Workspace, events: EventBus, titles: Sequence[str] = ()
    ) -> None:
        self.opts, self.ws, self.events = opts, ws, events

    def slots_for(self, pending: Sequence[Node]) -> tuple[int, int]:
        gpu = any(n.resources.get("gpu") for n in pending)
        return self.opts.jobs, gpu_slots(self.opts.device) if gpu else 0

    def run(self, n: Node, spec: ActionSpec) -> ExecResult:
        from restoro.engine.execute import run_spec

        return run_spec(
            spec,
            self.ws.store,
            {s.digest: (s.path, s.info) for s in self.ws.sources.values()},
            self.opts.device,
            progress=self._progress(n.id, spec),
            force=self.opts.force,
            on_wait=lambda h: self.events.emit("lease-wait", id=n.id, holder=h.describe()),
        )

    def _progress(self, node_id: str, spec: ActionSpec) -> Callable[[int], None]:
        last = [0.0]

        def report(done: int) -> None:
            now = time.monotonic()
            if now - last[0] >= 0.25 or done >= spec.frames:
                last[0] = now
                self.events.emit(
                    "progress", id=node_id, stage=spec.stage, done=done, total=spec.frames
                )

        return report


def gpu_slots(device: str) -> int:
    """GPU slots for the executor: one per CUDA device asked for (``auto``: if torch sees one)."""
    if device == "cpu":
        return 0
    if device.startswith("cuda"):
        return 1
    return min(cuda_devices(), 1)


def cuda_devices() -> int:
    """CUDA devices torch sees here (0 without torch or a driver)."""
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        return 0
    import torch

    return int(torch.cuda.device_count()) if torch.cuda.is_available() else 0
