"""The event bus and the JSON Lines sink."""

from __future__ import annotations

import io
import json
import threading
from pathlib import Path
from typing import Any

from restoro.engine.events import EventBus, JsonLinesSink


def test_emit_adds_event_and_ts() -> None:
    bus = EventBus()
    seen: list[dict[str, Any]] = []
    bus.subscribe(seen.append)
    record = bus.emit("action", id="e1/s1", status="cached")
    assert seen == [record]
    assert record["event"] == "action" and record["id"] == "e1/s1" and record["ts"] > 1.6e9


def test_unsubscribe() -> None:
    bus = EventBus()
    seen: list[dict[str, Any]] = []
    off = bus.subscribe(seen.append)
    bus.emit("a")
    off()
    off()  # twice is harmless
    bus.emit("b")
    assert [e["event"] for e in seen] == ["a"]


def test_json_lines_sink_one_compact_object_per_line() -> None:
    out = io.StringIO()
    bus = EventBus()
    bus.subscribe(JsonLinesSink(out))
    bus.emit("build-start", project="ds9", title="Émissaire")
    bus.emit("summary", executed=1, cached=2, failed=0, outputs={"master": Path("out/m.mov")})
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and " " not in lines[0].replace("build-start", "")
    assert "Émissaire" in lines[0]
    last = json.loads(lines[1])
    assert last["event"] == "summary" and last["outputs"] == {"master": "out/m.mov"}


def test_many_threads_never_interleave_lines() -> None:
    out = io.StringIO()
    bus = EventBus()
    bus.subscribe(JsonLinesSink(out))

    def emit(n: int) -> None:
        for i in range(300):
            bus.emit("progress", thread=n, done=i, pad="x" * 200)

    threads = [threading.Thread(target=emit, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(records) == 1200
    for n in range(4):
        assert [r["done"] for r in records if r["thread"] == n] == list(range(300))
