"""Fewer passes of Python's cyclic garbage collector while a build walks its graph."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

_GC_LOCK = threading.Lock()
_gc_depth = 0
_gc_saved: tuple[int, int, int] = (700, 10, 10)
GC_GEN0 = 100_000
"""Allocations between collections of the cyclic GC's youngest generation during a walk."""


@contextmanager
def fewer_gc_passes() -> Iterator[None]:
    """Run the cyclic garbage collector less often during a walk.

    Each cached action allocates a few hundred small objects (its parsed ``ac/`` entry, key,
    spec, event), almost none in reference cycles. At CPython's default threshold (700) the
    collector runs thousands of times in a no-op build of a large project, and its full passes
    rescan every object the process holds (modules, manifest, results). It still runs, every
    ``GC_GEN0`` allocations. Nesting and threads are counted; the previous threshold is
    restored at the end.
    """
    import gc

    global _gc_depth, _gc_saved
    with _GC_LOCK:
        if _gc_depth == 0:
            _gc_saved = gc.get_threshold()
            gc.set_threshold(max(_gc_saved[0], GC_GEN0), _gc_saved[1], _gc_saved[2])
        _gc_depth += 1
    try:
        yield
    finally:
        with _GC_LOCK:
            _gc_depth -= 1
            if _gc_depth == 0:
                gc.set_threshold(*_gc_saved)
