"""Outputs leave the store: copied into the output folder, atomically and only when changed.

Outputs are copies, never links into the CAS (an edited output must not corrupt the cache), and
are written temp → rename, so a crash never leaves a half-written deliverable. The temporary file
is ``.NAME.<pid>.tmp`` beside the target; ``remove_interrupted_exports`` clears those a killed
build left behind.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from restoro.engine.keys import pretty_json
from restoro.engine.store import export_temp as temp_path

if TYPE_CHECKING:
    from collections.abc import Callable

    from restoro.engine.store import Store


class Workspace(Protocol):
    """What exporting needs of a workspace: its store, root and output folder."""

    @property
    def store(self) -> Store: ...

    @property
    def root(self) -> Path: ...

    @property
    def output_dir(self) -> Path: ...


def _replace(dst: Path, write: Callable[[Path], object]) -> None:
    tmp = temp_path(dst)
    try:
        write(tmp)
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)


def export(ws: Workspace, digest: str, out: Path) -> Path:
    """Copy a verified blob to ``out`` unless ``out`` already holds exactly those bytes."""
    if out.exists() and ws.store.state.file_digest(out) == digest:
        return out
    return ws.store.export(digest, out)


def write_text(dst: Path, text: str) -> bool:
    """Write a small text file atomically, and only when its content changes; returns whether
    it changed."""
    if dst.exists() and dst.read_text(encoding="utf-8") == text:
        return False

    def write(tmp: Path) -> None:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())

    _replace(dst, write)
    return True


def write_json(dst: Path, data: Any) -> None:
    write_text(dst, pretty_json(data))


_OURS = re.compile(r"\.(?P<name>.+)\.(?P<pid>\d+)\.tmp")
# ``Store.export``'s temporary copies (deliverables were once exported through it) name no pid.
_STORE_PART = re.compile(r"\.(?P<name>.+)\.[0-9a-f]{8}\.part")
PART_STALE_S = 60.0


def remove_interrupted_exports(ws: Workspace) -> list[Path]:
    """Remove the temporary files of exports that a killed build left in the output folder
    (and the lockfile's beside the manifest). Only files named as restoro names them are
    touched; one whose pid is a live process is left to it; a store-export copy, which names no
    pid, once untouched for a minute. The caller holds the workspace lock."""
    found = set(ws.root.glob(".restoro.lock.*.tmp"))
    if ws.output_dir.is_dir():
        for d, dirs, files in os.walk(ws.output_dir):
            dirs[:] = [x for x in dirs if not x.startswith(".")]  # never into a store
            found.update(Path(d, f) for f in files if f.startswith("."))
    now = time.time()
    removed = []
    for p in sorted(found):
        if m := _OURS.fullmatch(p.name):
            if _alive(int(m["pid"])):
                continue
        elif _STORE_PART.fullmatch(p.name):
            try:
                if now - p.stat().st_mtime < PART_STALE_S:
                    continue
            except FileNotFoundError:
                continue
        else:
            continue
        try:
            p.unlink()
        except FileNotFoundError:
            continue
        removed.append(p)
    return removed


def _alive(pid: int) -> bool:
    """Whether ``pid`` names a running process (ours counts: it may be exporting right now)."""
    if pid == os.getpid():
        return True
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    except (OverflowError, OSError):
        return False
    return True
