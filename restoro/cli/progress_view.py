"""The rich progress display of ``restoro build`` on a terminal (its own module: rich costs
~20 ms to import, which a build writing JSON lines or to a pipe does not pay)."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from restoro.cli.render import warning_text


class _Fps(ProgressColumn):
    def render(self, task: Task) -> Text:
        if not task.fields.get("frames") or task.speed is None:
            return Text("")
        return Text(f"{task.speed:6.1f} fps", style="cyan")


class RichProgress:
    """Phases (actions done / total), running actions (frames, frames/s, ETA), a final table."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            _Fps(),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        self._phase: Any = None
        self._running: dict[str, Any] = {}
        self._lock = threading.Lock()
        self.stages: Counter[tuple[str, str]] = Counter()

    def __enter__(self) -> RichProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def __call__(self, ev: dict[str, Any]) -> None:
        with self._lock:
            self._handle(ev)

    def _handle(self, ev: dict[str, Any]) -> None:
        kind = ev["event"]
        p = self.progress
        if kind == "phase":
            if self._phase is not None:
                p.remove_task(self._phase)
            self._phase = p.add_task(f"[bold]{ev['name']}", total=max(ev["actions"], 1))
        elif kind == "waiting":
            self.console.print(f"[yellow]waiting for the workspace lock held by {ev['holder']}")
        elif kind == "shots":
            self.console.print(f"{ev['title']}: {ev['count']} shots")
        elif kind == "warning":
            self.console.print(Text(warning_text(ev), style="yellow"))
        elif kind == "action-start":
            self._running[ev["id"]] = p.add_task(
                f"  {ev['id']} [dim]({ev['reason']})",
                total=ev.get("frames") or None,
                frames=bool(ev.get("frames")),
            )
        elif kind == "progress":
            tid = self._running.get(ev["id"])
            if tid is not None:
                p.update(tid, completed=ev["done"])
        elif kind == "action":
            tid = self._running.pop(ev["id"], None)
            if tid is not None:
                p.remove_task(tid)
            if self._phase is not None:
                p.advance(self._phase)
            self.stages[(ev.get("stage") or "?", ev["status"])] += 1
            if ev["status"] == "failed":
                self.console.print(f"[red]failed[/red] {ev['id']}: {ev.get('error', '')}")
        elif kind == "output":
            self.console.print(f"[green]wrote[/green] {ev['path']}")
