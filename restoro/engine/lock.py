"""The workspace lock: one build (or gc) at a time per store, waiting politely for the holder.

``flock`` on a lock file does the exclusion: the kernel releases it when the holder dies, so a
dead holder never blocks anyone. Beside it an info file says who holds it (pid, host, command,
start time, heartbeat) so a waiting command can name the holder. An info file left behind by a
holder that died is reported as a recovered stale lock.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from restoro.errors import LockTimeout, StoreError

if TYPE_CHECKING:
    from collections.abc import Callable

HEARTBEAT_S = 5.0
ON_WAIT_EVERY_S = 10.0
_POLL_S = 0.1
_held_here: set[str] = set()  # lock files this process holds (flock does not nest per process)
_held_guard = threading.Lock()


@dataclass(frozen=True)
class HolderInfo:
    """Who holds (or held) the lock."""

    pid: int
    host: str
    command: str = ""
    started: float = 0.0
    heartbeat: float = 0.0

    def describe(self) -> str:
        """``pid 123 on host (restoro build, started 12:01:02)``."""
        started = time.strftime("%H:%M:%S", time.localtime(self.started))
        what = f"{self.command}, " if self.command else ""
        return f"pid {self.pid} on {self.host} ({what}started {started})"

    def is_alive(self) -> bool | None:
        """Whether the process still exists; None when it runs on another host."""
        if self.host != socket.gethostname():
            return None
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


def stale_message(holder: HolderInfo) -> str:
    """What to tell the user when a dead holder's lock was taken over."""
    return f"recovered a stale lock left by {holder.describe()}"


def read_holder(info_path: Path) -> HolderInfo | None:
    """The holder info in ``info_path``, or None if absent or unreadable."""
    try:
        data = json.loads(info_path.read_text(encoding="utf-8"))
        return HolderInfo(
            pid=int(data["pid"]),
            host=str(data["host"]),
            command=str(data.get("command", "")),
            started=float(data.get("started", 0.0)),
            heartbeat=float(data.get("heartbeat", 0.0)),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


class WorkspaceLock:
    """Exclusive lock on ``path`` as a context manager, waiting up to ``timeout`` seconds.

    ``on_wait(holder)`` is called when waiting starts and then about every 10 s; ``on_stale``
    when the lock was taken over from a holder that died without releasing it (also kept in
    ``recovered``). Fork-started children inherit the lock; subprocesses (close_fds) do not.
    """

    def __init__(
        self,
        path: Path,
        *,
        timeout: float = 600.0,
        on_wait: Callable[[HolderInfo], None] | None = None,
        on_stale: Callable[[HolderInfo], None] | None = None,
        command: str = "",
    ) -> None:
        self.path = Path(path)
        self.info_path = self.path.with_name(self.path.name + ".json")
        self.timeout = timeout
        self.on_wait = on_wait
        self.on_stale = on_stale
        self.command = command or " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])
        self.recovered: HolderInfo | None = None
        self._fd: int | None = None
        self._info: HolderInfo | None = None
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock, waiting for the holder; LockTimeout after ``timeout`` seconds."""
        key = os.path.realpath(self.path)
        with _held_guard:
            if key in _held_here:
                raise StoreError(f"the workspace lock {self.path} is already held by this process")
            _held_here.add(key)
        try:
            self._acquire()
        except BaseException:
            with _held_guard:
                _held_here.discard(key)
            raise

    def _acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        start = time.monotonic()
        next_notice = start
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    pass
                now = time.monotonic()
                holder = read_holder(self.info_path)
                if now - start >= self.timeout:
                    raise self._timeout_error(holder)
                # An info file whose pid is dead is a leftover: the new holder has not written yet.
                known = holder is not None and holder.is_alive() is not False
                if now >= next_notice and self.on_wait is not None and holder and known:
                    self.on_wait(holder)
                    next_notice = now + ON_WAIT_EVERY_S
                time.sleep(min(_POLL_S, max(0.0, start + self.timeout - now)))
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        # Holding the flock, any info file left is from a holder that died without cleaning up.
        stale = read_holder(self.info_path)
        if stale is not None:
            self.recovered = stale
            if self.on_stale is not None:
                self.on_stale(stale)
        now_s = time.time()
        self._info = HolderInfo(os.getpid(), socket.gethostname(), self.command, now_s, now_s)
        self._write_info()
        self._stop.clear()
        self._beat = threading.Thread(target=self._heartbeat, name="restoro-lock-heartbeat")
        self._beat.daemon = True
        self._beat.start()

    def _timeout_error(self, holder: HolderInfo | None) -> LockTimeout:
        who = holder.describe() if holder else "another process"
        extra = ""
        if holder is not None and holder.heartbeat:
            extra = f", last heartbeat {max(0.0, time.time() - holder.heartbeat):.0f} s ago"
        return LockTimeout(
            f"timed out after {self.timeout:g} s waiting for the workspace lock "
            f"held by {who}{extra}",
            hint="wait for that command to finish or stop it (a holder that dies frees the "
            "lock at once), or raise the lock timeout",
            location=str(self.path),
        )

    def _write_info(self) -> None:
        assert self._info is not None
        tmp = self.info_path.with_name(f"{self.info_path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(asdict(self._info)), encoding="utf-8")
        os.replace(tmp, self.info_path)

    def _heartbeat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            if self._info is None:
                return
            self._info = HolderInfo(**{**asdict(self._info), "heartbeat": time.time()})
            try:
                self._write_info()
            except OSError:
                pass  # a missed heartbeat only makes the holder look older

    def release(self) -> None:
        """Drop the lock (info file first, so a successor never sees ours as stale)."""
        if self._fd is None:
            return
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
            self._beat = None
        self._info = None
        self.info_path.unlink(missing_ok=True)
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None
        with _held_guard:
            _held_here.discard(os.path.realpath(self.path))

    def __enter__(self) -> WorkspaceLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
