"""Fewer passes of Python's cyclic garbage collector while a build walks its graph."""

from __future__ import annotations

import gc
import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

_GC_LOCK = threading.Lock()
_gc_depth = 0
_paused = 0
_collecting = 0
_gc_saved: tuple[int, int, int] = (700, 10, 10)
_gc_was_enabled = True
GC_GEN0 = 100_000
"""Allocations between collections of the cyclic GC's youngest generation during a walk."""


def _apply() -> None:
    """Automatic collection off while a paused walk is not running actions (lock held)."""
    if _gc_depth == 0:
        return
    if _paused and not _collecting:
        gc.disable()
    elif _gc_was_enabled and not gc.isenabled():
        _age()
        gc.enable()


def _age() -> None:
    """Move what the pause allocated to the oldest generation, so that enabling the collector
    does not start with a pass over all of it (a 2,000-shot no-op build: ~400k objects,
    ~70 ms). ``freeze`` then ``unfreeze`` only splices lists. Not when something else keeps
    objects frozen (``gc.freeze`` before a fork): unfreezing would release them too."""
    if gc.get_freeze_count() == 0:
        gc.freeze()
        gc.unfreeze()


@contextmanager
def fewer_gc_passes(*, pause: bool = True) -> Iterator[None]:
    """Run the cyclic garbage collector less often during a walk.

    Each cached action allocates a few hundred small objects (its parsed ``ac/`` entry, key,
    spec, event), almost none in reference cycles. At CPython's default threshold (700) the
    collector runs thousands of times in a no-op build of a large project, and its full passes
    rescan every object the process holds (modules, manifest, results). Inside, it runs every
    ``GC_GEN0`` allocations; with ``pause`` (a build's walk) it does not run at all except while
    actions run (``collecting``, around the executor): planning and cache hits make no garbage
    cycles worth a pass, while an action may (a long build still frees them). Nesting and
    threads are counted; the previous threshold and enabled state are restored at the end.
    """
    global _gc_depth, _gc_saved, _gc_was_enabled, _paused
    with _GC_LOCK:
        if _gc_depth == 0:
            _gc_saved = gc.get_threshold()
            _gc_was_enabled = gc.isenabled()
            gc.set_threshold(max(_gc_saved[0], GC_GEN0), _gc_saved[1], _gc_saved[2])
        _gc_depth += 1
        _paused += pause
        _apply()
    try:
        yield
    finally:
        with _GC_LOCK:
            _gc_depth -= 1
            _paused -= pause
            if _gc_depth == 0:
                gc.set_threshold(*_gc_saved)
                if _gc_was_enabled and not gc.isenabled():
                    _age()
                    gc.enable()
            else:
                _apply()


@contextmanager
def collecting() -> Iterator[None]:
    """Actions run in here (the executor): the cyclic GC runs, at ``fewer_gc_passes``' rate
    when inside one, so the garbage cycles of a long build are freed as it goes."""
    global _collecting
    with _GC_LOCK:
        _collecting += 1
        _apply()
    try:
        yield
    finally:
        with _GC_LOCK:
            _collecting -= 1
            _apply()
