"""Action leases: exclusive claims, takeover of dead or expired holders, and shared stores."""

from __future__ import annotations

import json
import multiprocessing
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from conftest import SMALL_MANIFEST

from restoro.engine.leases import HOST, LeaseInfo, claim_or_wait, read_lease, try_claim
from restoro.engine.store import Store

KEY = "0123456789abcdef0123456789abcdef"


def _write(path: Path, **kw: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    info = {"pid": 1, "host": HOST, "token": "t", "heartbeat": 0.0, "expiry": 0.0, "owner": "x"}
    path.write_text(json.dumps({**info, **kw}))


def test_a_claim_is_exclusive_until_released(tmp_path: Path) -> None:
    lease, holder, took = try_claim(tmp_path, KEY, ttl=30)
    assert lease is not None and holder is None and not took
    other, holder, _ = try_claim(tmp_path, KEY, ttl=30)
    assert other is None and holder is not None and holder.token == lease.info.token
    lease.release()
    assert not (tmp_path / KEY).exists()
    again, _, _ = try_claim(tmp_path, KEY, ttl=30)
    assert again is not None
    again.release()


def test_a_lease_from_a_dead_pid_is_taken_over_at_once(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    _write(tmp_path / KEY, pid=proc.pid, expiry=time.time() + 3600)
    lease, holder, took = try_claim(tmp_path, KEY, ttl=30)
    assert lease is not None and took
    assert read_lease(tmp_path / KEY).token == lease.info.token  # type: ignore[union-attr]
    lease.release()


def test_a_lease_from_another_host_expires_by_time(tmp_path: Path) -> None:
    _write(tmp_path / KEY, host="render-07", pid=12345, expiry=time.time() + 0.3)
    lease, holder, _ = try_claim(tmp_path, KEY, ttl=30)
    assert lease is None and holder is not None and holder.host == "render-07"
    time.sleep(0.4)
    lease, _, took = try_claim(tmp_path, KEY, ttl=30)
    assert lease is not None and took
    lease.release()


def test_the_heartbeat_keeps_a_lease_alive(tmp_path: Path) -> None:
    lease, _, _ = try_claim(tmp_path, KEY, ttl=0.3)
    assert lease is not None
    time.sleep(0.8)
    info = read_lease(tmp_path / KEY)
    assert info is not None and not info.expired() and info.heartbeat > lease.info.heartbeat - 1
    lease.release()


def test_a_waiter_gets_the_result_the_holder_produced(tmp_path: Path) -> None:
    lease, _, _ = try_claim(tmp_path, KEY, ttl=30)
    assert lease is not None
    produced: list[str] = []
    waits: list[LeaseInfo] = []
    start = time.monotonic()

    def done() -> str | None:
        if time.monotonic() - start > 0.2 and not produced:
            produced.append("result")
            lease.release()
        return produced[0] if produced else None

    got, result, takeovers = claim_or_wait(tmp_path, KEY, done, on_wait=waits.append)
    assert got is None and result == "result" and takeovers == 0
    assert len(waits) == 1 and waits[0].pid == lease.info.pid


def _race(args: tuple[str, Any, Any]) -> bool:
    d, start, tried = args
    start.wait(timeout=60)  # every process is up: they all claim at (nearly) the same time
    lease, _, _ = try_claim(Path(d), KEY, ttl=30)
    tried.wait(timeout=60)  # hold the lease until every process has tried
    if lease is None:
        return False
    lease.release()
    return True


def test_processes_racing_for_one_lease_get_it_once(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as mgr, ctx.Pool(4) as pool:
        start, tried = mgr.Barrier(4), mgr.Barrier(4)
        won = pool.map(_race, [(str(tmp_path), start, tried)] * 4, chunksize=1)
    assert sum(won) == 1


COORDINATOR = """
import json, sys
from pathlib import Path
from typing import Any
from restoro.plan.build import Builder, BuildOptions
from restoro.plan.workspace import Workspace
ws = Workspace(Path(sys.argv[1]), store_path=Path(sys.argv[2]))
b = Builder(ws, BuildOptions())
import threading
lock = threading.Lock()
def emit(e):
    with lock:  # events come from several threads: one whole line each
        sys.stdout.write(json.dumps(e, default=str) + "\\n")
        sys.stdout.flush()
b.events.subscribe(emit)
b.build()
ws.close()
"""


@pytest.mark.slow
def test_two_coordinators_on_one_shared_store_run_each_action_once(
    tmp_path: Path, progressive_source: Path
) -> None:
    store = tmp_path / "shared-store"
    manifests = []
    for name in ("a", "b"):
        (tmp_path / name / "media").mkdir(parents=True)
        shutil.copy(progressive_source, tmp_path / name / "media" / "source.mkv")
        (tmp_path / name / "restoro.yaml").write_text(SMALL_MANIFEST)
        manifests.append(tmp_path / name / "restoro.yaml")
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", COORDINATOR, str(m), str(store)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for m in manifests
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]
    per = [[json.loads(line) for line in out.splitlines()] for out, _ in outs]
    ran_by = [sum(e["event"] == "action" and e["status"] == "executed" for e in p) for p in per]
    events = [e for p in per for e in p]
    actions = [e for e in events if e["event"] == "action"]
    executed = Counter(e["id"] for e in actions if e["status"] == "executed")
    total = 3 + 3 * 3 + 1 + 1  # analysis, ingest piece (with scores), shots; 3 x 3; audio, master
    assert len(executed) == total and set(executed.values()) == {1}
    assert sum(ran_by) == total
    # Both coordinators finished every action: executed here or found done by the other.
    assert Counter(e["id"] for e in actions) == Counter({i: 2 for i in executed})
    masters = [(m.parent / "out" / "master" / "ep1.mov").read_bytes() for m in manifests]
    assert masters[0] == masters[1]
    assert Store(store).verify().ok
    assert not list((store / "locks" / "leases").glob("*"))
