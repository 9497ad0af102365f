"""The workspace lock, exercised with real processes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from restoro.engine import lock as lock_mod
from restoro.engine.lock import HolderInfo, WorkspaceLock, read_holder, stale_message
from restoro.errors import LockTimeout, StoreError

StartHolder = Callable[[float], "subprocess.Popen[str]"]
ROOT = str(Path(__file__).resolve().parents[1])
_HOLDER = r"""
import sys, time
from pathlib import Path
from restoro.engine.lock import WorkspaceLock
with WorkspaceLock(Path(sys.argv[1]), command="restoro build"):
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
"""


@pytest.fixture
def lock_path(tmp_path: Path) -> Path:
    return tmp_path / "locks" / "workspace.lock"


@pytest.fixture
def holder(lock_path: Path) -> Iterator[StartHolder]:
    procs: list[subprocess.Popen[str]] = []

    def start(seconds: float) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-c", _HOLDER, str(lock_path), str(seconds)],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": ROOT},
        )
        procs.append(proc)
        assert proc.stdout is not None and proc.stdout.readline() == "locked\n"
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()


def test_acquire_writes_and_removes_holder_info(lock_path: Path) -> None:
    with WorkspaceLock(lock_path, command="restoro gc") as lk:
        assert lk.held
        info = json.loads(lk.info_path.read_text())
        assert info["pid"] == os.getpid() and info["host"] == socket.gethostname()
        assert info["command"] == "restoro gc" and info["started"] <= info["heartbeat"]
        assert lk.recovered is None
    assert not lk.held and not lk.info_path.exists()
    with WorkspaceLock(lock_path):  # and it can be taken again
        pass


def test_same_process_cannot_nest(lock_path: Path) -> None:
    with WorkspaceLock(lock_path), pytest.raises(StoreError, match="already held by this process"):
        WorkspaceLock(lock_path, timeout=0.1).acquire()


def test_second_process_waits_then_gets_it(lock_path: Path, holder: StartHolder) -> None:
    proc = holder(1.0)
    seen: list[HolderInfo] = []
    t0 = time.monotonic()
    with WorkspaceLock(lock_path, timeout=30, on_wait=seen.append):
        waited = time.monotonic() - t0
    assert proc.wait(timeout=10) == 0
    assert 0.5 < waited < 10
    assert len(seen) == 1  # once at the start, then every 10 s
    assert seen[0].pid == proc.pid and seen[0].command == "restoro build"
    assert seen[0].describe().startswith(f"pid {proc.pid} on {socket.gethostname()} (restoro build")


def test_on_wait_repeats(
    lock_path: Path, holder: StartHolder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lock_mod, "ON_WAIT_EVERY_S", 0.2)
    holder(1.2)
    seen: list[HolderInfo] = []
    with WorkspaceLock(lock_path, timeout=30, on_wait=seen.append):
        pass
    assert 3 <= len(seen) <= 12


def test_killed_holder_never_blocks(lock_path: Path, holder: StartHolder) -> None:
    proc = holder(600)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    stale: list[HolderInfo] = []
    t0 = time.monotonic()
    with WorkspaceLock(lock_path, timeout=5, on_stale=stale.append) as lk:
        assert time.monotonic() - t0 < 1.0
        assert lk.recovered is not None and lk.recovered.pid == proc.pid
        assert stale == [lk.recovered]
        assert lk.recovered.is_alive() is False
        assert stale_message(lk.recovered).startswith(
            f"recovered a stale lock left by pid {proc.pid} on "
        )
        assert read_holder(lk.info_path).pid == os.getpid()  # type: ignore[union-attr]


def test_timeout_names_the_holder(lock_path: Path, holder: StartHolder) -> None:
    proc = holder(600)
    t0 = time.monotonic()
    with pytest.raises(LockTimeout) as info:
        WorkspaceLock(lock_path, timeout=0.5).acquire()
    assert 0.5 <= time.monotonic() - t0 < 3
    text = info.value.render()
    assert f"held by pid {proc.pid} on {socket.gethostname()} (restoro build, started" in text
    assert "timed out after 0.5 s" in text and "hint:" in text
    assert proc.poll() is None  # the holder is untouched


def test_heartbeat_refreshes(lock_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lock_mod, "HEARTBEAT_S", 0.05)
    with WorkspaceLock(lock_path) as lk:
        first = read_holder(lk.info_path)
        time.sleep(0.3)
        later = read_holder(lk.info_path)
    assert first is not None and later is not None
    assert later.heartbeat > first.heartbeat and later.started == first.started


def test_unreadable_info_is_ignored(lock_path: Path) -> None:
    lock_path.parent.mkdir(parents=True)
    info = lock_path.with_name(lock_path.name + ".json")
    info.write_text("{not json")
    assert read_holder(info) is None
    with WorkspaceLock(lock_path) as lk:
        assert lk.recovered is None


def test_describe() -> None:
    started = time.mktime((2024, 1, 1, 12, 1, 2, 0, 0, -1))
    h = HolderInfo(pid=123, host="edit-bay", command="restoro build", started=started)
    assert h.describe() == "pid 123 on edit-bay (restoro build, started 12:01:02)"
    assert h.is_alive() is None  # another host: cannot tell
