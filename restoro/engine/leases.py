"""Action leases: claim an action before running it, so builds sharing a store never run it twice.

A lease is a file ``locks/leases/<key>`` created with ``O_CREAT | O_EXCL`` (atomic on a local or
NFSv3+ filesystem) holding the owner's pid, host, a token, the last heartbeat and an expiry. While
the owner works, one heartbeat thread per process pushes the expiry forward (rewriting the file
by temp-and-rename). Another claimant finds the file and waits: for the action's result to
appear, or for the lease to expire. A lease whose heartbeat stopped (a dead worker, a killed
node) expires after ``ttl`` seconds; on the same host a lease whose pid is gone is expired at
once. Taking over is atomic: the expired file is renamed to a unique name (only one claimant's
rename succeeds), checked to be the lease that was judged expired, and then a fresh lease is
created with ``O_EXCL`` again.

A store on an object store (``restoro.farm.remote``) registers a lease backend for its
``locks/leases`` directory (``register_backend``); claims there go to the object store instead
(``restoro.farm.remote_leases``), behind the same ``try_claim`` / ``claim_or_wait``.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

DEFAULT_TTL = float(os.environ.get("RESTORO_LEASE_TTL", "60"))
HOST = socket.gethostname()


@dataclass
class LeaseInfo:
    pid: int
    host: str
    token: str
    heartbeat: float
    expiry: float
    owner: str = ""

    def expired(self, now: float | None = None) -> bool:
        if (now or time.time()) > self.expiry:
            return True
        return self.host == HOST and self.pid > 0 and not _pid_alive(self.pid)

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host} ({self.owner or 'restoro'})"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_lease(path: Path) -> LeaseInfo | None:
    """The lease at ``path``; None when absent.

    An unreadable lease (being written without hard links, or damaged) is held by an unknown
    owner until ``DEFAULT_TTL`` after its last change.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return LeaseInfo(**data)
    except FileNotFoundError:
        return None
    except (ValueError, TypeError):
        try:
            mtime = path.stat().st_mtime
        except FileNotFoundError:
            return None
        return LeaseInfo(pid=0, host="?", token="?", heartbeat=mtime, expiry=mtime + DEFAULT_TTL)


class _Heartbeat:
    """One thread per process that keeps every held lease alive."""

    def __init__(self) -> None:
        self._held: dict[int, HeldLease] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()

    def add(self, lease: HeldLease) -> None:
        with self._lock:
            self._held[id(lease)] = lease
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._loop, name="restoro-lease-heartbeat", daemon=True
                )
                self._thread.start()
        self._wake.set()  # a shorter ttl may need an earlier beat

    def remove(self, lease: HeldLease) -> None:
        with self._lock:
            self._held.pop(id(lease), None)

    def _loop(self) -> None:
        while True:
            with self._lock:
                held = list(self._held.values())
            period = min((le.ttl for le in held), default=DEFAULT_TTL) / 3
            for lease in held:
                # A failed beat (a network blip on an object store) must not stop the thread;
                # the next one retries before the lease can expire.
                with contextlib.suppress(Exception):
                    lease.refresh()
            self._wake.wait(max(0.05, period))
            self._wake.clear()


_HEARTBEAT = _Heartbeat()


class HeldLease:
    """A claimed lease, kept alive by the heartbeat thread; ``release()`` (or leaving the
    ``with`` block) gives it up. Subclasses say how to rewrite and delete it."""

    def __init__(self, info: LeaseInfo, ttl: float) -> None:
        self.info = info
        self.ttl = ttl
        self._released = False
        self._lock = threading.Lock()  # a heartbeat must never recreate a released lease

    def refresh(self) -> None:
        with self._lock:
            if not self._released:
                self._refresh()

    def release(self) -> None:
        with self._lock:
            if self._released:
                return
            self._released = True
            _HEARTBEAT.remove(self)
            self._drop()

    def _refresh(self) -> None:
        raise NotImplementedError

    def _drop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> HeldLease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class Lease(HeldLease):
    """A lease file under ``locks/leases/`` of a filesystem store."""

    def __init__(self, path: Path, info: LeaseInfo, ttl: float) -> None:
        super().__init__(info, ttl)
        self.path = path

    def _refresh(self) -> None:
        now = time.time()
        current = read_lease(self.path)
        if current is None or current.token != self.info.token:
            return  # taken over (we were presumed dead); the result commit stays idempotent
        self.info.heartbeat, self.info.expiry = now, now + self.ttl
        tmp = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex[:8]}.hb")
        tmp.write_text(json.dumps(self.info.__dict__), encoding="utf-8")
        os.replace(tmp, self.path)

    def _drop(self) -> None:
        current = read_lease(self.path)
        if current is not None and current.token == self.info.token:
            self.path.unlink(missing_ok=True)


class LeaseBackend(Protocol):
    """Where the leases of one store live, when that is not a directory of files."""

    def try_claim(
        self, key: str, *, ttl: float, owner: str
    ) -> tuple[HeldLease | None, LeaseInfo | None, bool]: ...


_BACKENDS: dict[str, LeaseBackend] = {}
_BACKENDS_LOCK = threading.Lock()


def register_backend(leases_dir: Path, backend: LeaseBackend) -> None:
    """Route claims on ``leases_dir`` (a store's ``locks/leases``) to ``backend``."""
    with _BACKENDS_LOCK:
        _BACKENDS[str(leases_dir)] = backend


def hold(lease: HeldLease) -> HeldLease:
    """Start beating for a freshly claimed lease (backends call this)."""
    _HEARTBEAT.add(lease)
    return lease


def _create(path: Path, info: LeaseInfo) -> bool:
    """Create the lease with its content in one step: written aside, then hard-linked into
    place (``link`` fails if the name exists, like ``O_EXCL``), so nobody reads a half lease."""
    tmp = path.with_name(f".{path.name}.{info.token[:8]}.new")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.write(fd, json.dumps(info.__dict__).encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)
    except FileExistsError:
        return False
    except OSError:  # no hard links on this filesystem: O_EXCL, then write
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        try:
            os.write(fd, json.dumps(info.__dict__).encode())
        finally:
            os.close(fd)
    finally:
        tmp.unlink(missing_ok=True)
    return True


def try_claim(
    leases_dir: Path, key: str, *, ttl: float = DEFAULT_TTL, owner: str = ""
) -> tuple[HeldLease | None, LeaseInfo | None, bool]:
    """Try once: ``(lease, None, took_over)`` when claimed, ``(None, holder, False)`` if not."""
    backend = _BACKENDS.get(str(leases_dir))
    if backend is not None:
        return backend.try_claim(key, ttl=ttl, owner=owner)
    leases_dir.mkdir(parents=True, exist_ok=True)
    path = leases_dir / key
    now = time.time()
    info = LeaseInfo(os.getpid(), HOST, uuid.uuid4().hex, now, now + ttl, owner)
    if _create(path, info):
        lease = Lease(path, info, ttl)
        _HEARTBEAT.add(lease)
        return lease, None, False
    holder = read_lease(path)
    if holder is None:
        return try_claim(leases_dir, key, ttl=ttl, owner=owner)  # released meanwhile
    if not holder.expired():
        return None, holder, False
    # Take over: move the expired lease aside; only one claimant's rename succeeds.
    tomb = leases_dir / f".{key}.{uuid.uuid4().hex[:8]}.expired"
    try:
        os.rename(path, tomb)
    except FileNotFoundError:
        return None, holder, False  # someone else took it over first; look again later
    moved = read_lease(tomb)
    if moved is not None and moved.token != holder.token:
        # We moved a fresh lease that replaced the expired one: put it back if we can.
        with contextlib.suppress(OSError):
            os.link(tomb, path)
        tomb.unlink(missing_ok=True)
        return None, moved, False
    tomb.unlink(missing_ok=True)
    if _create(path, info):
        lease = Lease(path, info, ttl)
        _HEARTBEAT.add(lease)
        return lease, None, True
    return None, read_lease(path), False


def claim_or_wait(
    leases_dir: Path,
    key: str,
    done: Callable[[], Any],
    *,
    ttl: float = DEFAULT_TTL,
    owner: str = "",
    poll: float = 0.05,
    timeout: float | None = None,
    on_wait: Callable[[LeaseInfo], object] | None = None,
) -> tuple[HeldLease | None, Any, int]:
    """Claim ``key``, or wait until ``done()`` returns a result (another claimant finished).

    Returns ``(lease, None, takeovers)`` when this process must run the action, or
    ``(None, result, takeovers)`` when someone else produced it meanwhile.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    takeovers = 0
    waited = False
    while True:
        lease, holder, took = try_claim(leases_dir, key, ttl=ttl, owner=owner)
        takeovers += int(took)
        if lease is not None:
            return lease, None, takeovers
        if not waited and holder is not None and on_wait is not None:
            on_wait(holder)
        waited = True
        result = done()
        if result is not None:
            return None, result, takeovers
        if deadline is not None and time.monotonic() > deadline:
            from restoro.errors import StoreError

            raise StoreError(
                f"timed out waiting for action {key}, claimed by "
                f"{holder.describe() if holder else 'another build'}",
                hint=f"if that worker is dead its lease expires after {ttl:g} s",
            )
        time.sleep(poll)
        poll = min(poll * 1.5, 1.0)
