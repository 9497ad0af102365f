"""Consumers of build events: JSON Lines on stdout (the rich display on a terminal is
``restoro.cli.progress_view``)."""

from __future__ import annotations

import sys
from typing import Any, TextIO

from restoro.engine.events import JsonLinesSink


class JsonLines(JsonLinesSink):
    """Every event as one compact JSON object per line on stdout."""

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__(stream or sys.stdout)


def warning_text(ev: dict[str, Any]) -> str:
    """A ``warning`` event (e.g. a field order contradicting the picture) as one line."""
    return f"warning: {ev['title']}: {ev['message']}"


def summary_line(executed: int, cached: int, failed: int, outputs: dict[str, str]) -> str:
    text = f"{executed} executed, {cached} cached, {failed} failed"
    if outputs:
        text += "; outputs: " + ", ".join(f"{k} → {v}" for k, v in sorted(outputs.items()))
    return text
