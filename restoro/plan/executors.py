"""The executors a build can run on, in one list: ``--executor`` and ``restoro.toml`` pick one.

An executor is one class (``module:Class``) built with ``(opts, ws, events, titles=...)``
before any work (a cluster connects and checks here); ``slots_for(pending)`` gives the
coordinator its in-flight and GPU slots for a batch of cache misses, and ``run(node, spec)``
runs one frozen spec through ``engine.execute`` (here, or wherever it sends it). Listing an
executor costs no import: its module loads when a build picks it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from restoro.errors import UsageError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from restoro.engine.events import EventBus
    from restoro.engine.execute import ExecResult
    from restoro.engine.graph import ActionSpec
    from restoro.engine.records import BuildOptions
    from restoro.plan.nodes import Node
    from restoro.plan.workspace import Workspace


@dataclass(frozen=True)
class ExecutorKind:
    name: str
    target: str
    """``module:Class`` of the executor."""
    help: str
    local_device: bool = True
    """Whether actions run on this machine, so ``--device cuda:N`` is checked against its GPUs
    (a cluster checks its own in its preflight)."""


EXECUTORS: tuple[ExecutorKind, ...] = (
    ExecutorKind("local", "restoro.plan.local_executor:LocalRun", "threads here, the default"),
    ExecutorKind("ray", "restoro.farm.ray_executor:RayFarm", "a Ray cluster", local_device=False),
)


class Executor(Protocol):
    def slots_for(self, pending: Sequence[Node]) -> tuple[int, int]:
        """(in-flight actions, GPU slots) for running ``pending``; may refuse (UsageError)."""
        ...

    def run(self, n: Node, spec: ActionSpec) -> ExecResult: ...


def help_text() -> str:
    """``local (threads here, the default) or ray (a Ray cluster)``, for ``--executor``."""
    parts = [f"{e.name} ({e.help})" for e in EXECUTORS]
    return ", ".join(parts[:-1]) + " or " + parts[-1] if len(parts) > 1 else parts[0]


def names() -> list[str]:
    return [e.name for e in EXECUTORS]


def choices() -> str:
    """``'local' or 'ray'``: the names as a sentence lists them."""
    quoted = [repr(n) for n in names()]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"


def get(name: str) -> ExecutorKind:
    """The listed executor ``name`` (UsageError naming the others if there is none)."""
    for e in EXECUTORS:
        if e.name == name:
            return e
    raise UsageError(f"unknown executor {name!r}", hint=f"use {' or '.join(names())}")


def open_executor(
    name: str, opts: BuildOptions, ws: Workspace, events: EventBus, titles: Sequence[str] = ()
) -> Executor:
    """Build executor ``name`` for one build (connecting and checking a cluster, if any)."""
    module, _, cls = get(name).target.partition(":")
    factory: Any = getattr(importlib.import_module(module), cls)
    return factory(opts, ws, events, titles=titles)  # type: ignore[no-any-return]
