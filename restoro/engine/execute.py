"""Run one frozen action spec against a store: the same code on the coordinator or on any worker.

``execute_spec(spec, store_url, sources, device)`` needs nothing from the planner: the spec holds
the stage, params and input digests, the store is named by URL, and sources are given as
``{digest: (path, probe)}``. It claims the action's lease (``restoro.engine.leases``), runs the
runner, commits outputs as blobs (a rename over an identical blob is harmless) and records the
action entry only if absent, so any number of workers and coordinators sharing a store commit
each action once and never overwrite one another.
"""

from __future__ import annotations

import importlib
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from restoro.engine.actions import RUNNERS, RunContext
from restoro.engine.leases import DEFAULT_TTL, HOST, claim_or_wait
from restoro.errors import BuildFailed, StageError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from restoro.engine.graph import ActionSpec
    from restoro.engine.leases import LeaseInfo
    from restoro.engine.store import ActionResult, Store

RUNNER_MODULES: list[str] = ["restoro.plan.runners"]
"""Modules that register action runners (``@runner``), imported by name before running a spec
whose kind has no runner yet, so a fresh worker process finds them. The default names restoro's
own planner, which adds its other runner modules when imported (a name, not an import: the
engine depends on no domain package); the farm sends a worker the coordinator's list."""

StoreBackend = Callable[[str], "tuple[str, Callable[[], Store]] | None"]
STORE_BACKENDS: list[StoreBackend] = []
"""Openers of stores that are not a local path: given a URL, ``(identity, open)`` or None."""
STORE_BACKEND_MODULES: list[str] = ["restoro.farm.remote"]
"""Modules that register a backend (by name, imported on the first URL no backend claims)."""

_stores: dict[str, Store] = {}
_stores_lock = threading.Lock()


@dataclass
class ExecResult:
    """What ``execute_spec`` did for one action."""

    key: str
    ran: bool
    """True when this call ran the runner; False when the result was found in the store
    (produced by another worker or build that held the action's lease)."""
    seconds: float = 0.0
    host: str = HOST
    pid: int = 0
    takeovers: int = 0
    """Expired leases (dead workers) this call took over."""
    result: ActionResult | None = None
    cpu_s: float = 0.0
    """CPU seconds (user + system) of this process and its reaped child processes while the
    call ran: the action's own with one action at a time (``--jobs 1``), otherwise including
    whatever ran beside it. Never part of the action's key or ``ac/`` entry."""


def process_cpu() -> float:
    """CPU seconds used so far by this process (all threads) and its waited-for children."""
    try:
        import resource
    except ImportError:  # not on Unix: no per-process accounting
        return time.process_time()
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def load_runners(modules: Sequence[str] = ()) -> None:
    """Import every module that registers runners (``RUNNER_MODULES`` and ``modules``; a
    module may add more names while it is imported)."""
    for name in modules:
        if name not in RUNNER_MODULES:
            RUNNER_MODULES.append(name)
    i = 0
    while i < len(RUNNER_MODULES):
        name = RUNNER_MODULES[i]
        i += 1
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name != name:
                raise


def _backend_for(store_url: str) -> tuple[str, Callable[[], Store]] | None:
    for backend in STORE_BACKENDS:
        found = backend(store_url)
        if found is not None:
            return found
    return None


def open_store(store_url: str) -> Store:
    """The store at ``store_url`` (a path, ``file://`` or ``s3://`` URL), opened once per
    process. An object store comes from its backend (``STORE_BACKENDS``, e.g. the farm's)."""
    found = _backend_for(store_url)
    if found is None and "://" in store_url and not store_url.startswith("file:"):
        for name in STORE_BACKEND_MODULES:
            importlib.import_module(name)
        found = _backend_for(store_url)
    if found is not None:
        ident, opener = found
        with _stores_lock:
            if ident not in _stores:
                _stores[ident] = opener()
            return _stores[ident]
    from restoro.engine.store import Store, store_root

    root = str(store_root(store_url))
    with _stores_lock:
        if root not in _stores:
            _stores[root] = Store(Path(root))
        return _stores[root]


def _source_map(sources: Mapping[str, tuple[Any, Any]]) -> dict[str, tuple[Path, Any]]:
    return {digest: (Path(path), info) for digest, (path, info) in sources.items()}


def input_digests(spec: ActionSpec) -> list[str]:
    out: list[str] = []
    for name, value in spec.inputs.items():
        if name == "source":
            continue
        out += value if isinstance(value, list) else [value]
    return out


def run_spec(
    spec: ActionSpec,
    store: Store,
    sources: Mapping[str, tuple[Any, Any]],
    device: str,
    *,
    progress: Callable[[int], None] | None = None,
    force: bool = False,
    lease_ttl: float = DEFAULT_TTL,
    on_wait: Callable[[LeaseInfo], object] | None = None,
) -> ExecResult:
    """Claim, run and commit ``spec`` in ``store``; see the module docstring."""
    from restoro.engine.store import ActionResult

    t0 = time.monotonic()
    cpu0 = process_cpu()
    key, key_json, _ = spec.key_text()

    def finished() -> ActionResult | None:
        lk = store.lookup(key)
        return lk.result if lk.status == "hit" else None

    if spec.stage not in RUNNERS:
        load_runners()
    if spec.stage not in RUNNERS:
        raise StageError(f"no runner for action stage {spec.stage!r} in this process")
    lease, found, takeovers = claim_or_wait(
        store.locks / "leases",
        key,
        (lambda: None) if force else finished,
        ttl=lease_ttl,
        owner=spec.id,
        on_wait=on_wait,
    )
    if lease is None:
        return ExecResult(key, False, time.monotonic() - t0, pid=os.getpid(), result=found)
    work = None
    try:
        again = None if force else finished()
        if again is not None:  # finished between our lookup and our claim
            return ExecResult(key, False, time.monotonic() - t0, pid=os.getpid(), result=again)
        for name in input_digests(spec):
            if not store.verify_blob(name):
                raise BuildFailed(
                    f"input {name} of {spec.id} is missing or corrupt",
                    hint="run the build again; the producer will rebuild it",
                )
        work = store.temp_path(".action")
        work.mkdir()
        ctx = RunContext(
            store=store,
            sources=_source_map(sources),
            device=device,
            progress=progress or (lambda done: None),
            work_dir=work,
        )
        out = RUNNERS[spec.stage](spec, ctx)
        outputs = {
            name: store.put_file(path, validate=out.validators.get(name))
            for name, path in out.files.items()
        }
        result = ActionResult(
            key=key,
            action_id=spec.id,
            key_json=key_json,
            outputs=outputs,
            meta=out.meta,
            timings={"seconds": time.monotonic() - t0},
            created=time.time(),
        )
        if force:
            store.put_action(result)
        else:
            result = store.put_action_if_absent(result)
    finally:
        lease.release()
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)
    return ExecResult(
        key,
        True,
        time.monotonic() - t0,
        pid=os.getpid(),
        takeovers=takeovers,
        result=result,
        cpu_s=process_cpu() - cpu0,
    )


def execute_spec(
    spec: ActionSpec,
    store_url: str,
    sources: Mapping[str, tuple[Any, Any]],
    device: str,
    *,
    force: bool = False,
    lease_ttl: float = DEFAULT_TTL,
    progress: Callable[[int], None] | None = None,
) -> ExecResult:
    """Run ``spec`` on this machine against the store at ``store_url`` (a path or URL).

    ``sources`` maps source digests to ``(path, probe)`` where ``probe`` is a ``SourceInfo`` or
    its JSON. ``progress`` gets the frames done so far (a Ray worker sends them to the
    coordinator). Returns an ``ExecResult`` whose ``key`` names the committed action entry.
    """
    store = open_store(store_url)
    try:
        return run_spec(
            spec, store, sources, device, progress=progress, force=force, lease_ttl=lease_ttl
        )
    finally:
        store.state.flush()  # workers share the stat cache of the store
