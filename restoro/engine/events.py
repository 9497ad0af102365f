"""Structured build events: one bus, many consumers (JSON Lines, progress display, QC report)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import IO, Any

import orjson

Subscriber = Callable[[dict[str, Any]], None]


class EventBus:
    """Thread-safe fan-out of event dicts to subscribers, in emission order per thread."""

    def __init__(self) -> None:
        # A tuple replaced on (un)subscribe: ``emit`` reads it without the lock (a no-op
        # build emits thousands of events).
        self._subscribers: tuple[Subscriber, ...] = ()
        self._lock = threading.Lock()

    def subscribe(self, fn: Subscriber) -> Callable[[], None]:
        """Add a subscriber; returns a function that removes it."""
        with self._lock:
            self._subscribers = (*self._subscribers, fn)

        def unsubscribe() -> None:
            with self._lock:
                subs = list(self._subscribers)
                if fn in subs:
                    subs.remove(fn)
                    self._subscribers = tuple(subs)

        return unsubscribe

    def emit(self, event: str, **fields: Any) -> dict[str, Any]:
        """Send ``{"event": event, "ts": time.time(), **fields}`` to every subscriber."""
        return self.send({"event": event, "ts": time.time(), **fields})

    def send(self, record: dict[str, Any]) -> dict[str, Any]:
        """Send a record made as ``emit`` makes it (``event`` and ``ts`` first): for a
        caller that emits thousands of one kind and builds the dict itself."""
        for fn in self._subscribers:
            fn(record)
        return record


class JsonLinesSink:
    """Subscriber writing one compact JSON object per line.

    Lines are flushed at once, except the flood of ``cached`` action events of a large no-op
    build, which is flushed at most every 0.1 s (and by the next other event): a consumer
    still sees progress live, without one write call per cached action.
    """

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self._lock = threading.Lock()
        self._last = 0.0

    def __call__(self, record: dict[str, Any]) -> None:
        line = orjson.dumps(record, default=str, option=orjson.OPT_APPEND_NEWLINE).decode()
        bulk = record.get("event") == "action" and record.get("status") == "cached"
        with self._lock:
            self.stream.write(line)
            now = time.monotonic()
            if not bulk or now - self._last >= 0.1:
                self.stream.flush()
                self._last = now
