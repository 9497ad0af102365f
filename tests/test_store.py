"""The store: commit protocol, lookups, verification, quarantine, gc, crash safety."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from restoro.engine import store as store_mod
from restoro.engine.keys import digest_bytes, key_of
from restoro.engine.store import STORE_SCHEMA, ActionResult, Output, Store
from restoro.errors import CorruptEntry, StoreError

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = str(Path(__file__).resolve().parents[1])


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / ".restoro")
    yield s
    s.close()


def _result(store: Store, name: str, *blobs: bytes) -> ActionResult:
    outputs = {f"out{i}": store.put_bytes(b) for i, b in enumerate(blobs)}
    key, key_json = key_of({"stage": "test", "name": name})
    return ActionResult(key=key, action_id=name, key_json=key_json, outputs=outputs)


def _flip_byte(path: Path, offset: int = 0) -> None:
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def _quarantined(store: Store) -> list[Path]:
    return sorted(p for p in store.quarantine_dir.iterdir() if not p.name.endswith(".note.json"))


def test_layout_is_created_lazily(tmp_path: Path) -> None:
    root = tmp_path / ".restoro"
    s = Store(root)
    assert not root.exists()
    out = s.put_bytes(b"hello")
    assert (root / "VERSION").read_text() == f"{STORE_SCHEMA}\n"
    for d in ("cas", "ac", "tmp", "quarantine", "locks"):
        assert (root / d).is_dir()
    hx = out.digest.removeprefix("xxh128:")
    path = root / "cas" / hx[:2] / hx[2:]
    assert s.blob_path(out.digest) == path
    assert path.read_bytes() == b"hello"
    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    assert out == Output(digest_bytes(b"hello"), 5)
    s.close()


def test_newer_store_schema_refused(tmp_path: Path) -> None:
    root = tmp_path / ".restoro"
    root.mkdir()
    newer = STORE_SCHEMA + 1
    (root / "VERSION").write_text(f"{newer}\n")
    with pytest.raises(StoreError, match=f"schema {newer}") as info:
        Store(root)
    assert "upgrade restoro" in (info.value.hint or "")
    (root / "VERSION").write_text("garbage")
    with pytest.raises(StoreError, match="unreadable"):
        Store(root)


def test_put_file_moves_and_dedupes(store: Store) -> None:
    t1 = store.temp_path(".mkv")
    t1.write_bytes(b"frames" * 1000)
    out1 = store.put_file(t1)
    assert not t1.exists()
    t2 = store.temp_path()
    t2.write_bytes(b"frames" * 1000)
    out2 = store.put_file(t2)
    assert out1 == out2 and not t2.exists()
    assert list(store.tmp.iterdir()) == []
    assert store.usage()["blobs"] == 1
    assert store.read_bytes(out1.digest) == b"frames" * 1000


def test_validate_refusal_deletes_temp(store: Store) -> None:
    tmp = store.temp_path()
    tmp.write_bytes(b"bad")

    def validate(path: Path) -> None:
        assert path == tmp
        raise ValueError("frame count 0 != 24")

    with pytest.raises(ValueError, match="frame count"):
        store.put_file(tmp, validate=validate)
    assert not tmp.exists()
    assert not store.has_blob(digest_bytes(b"bad"))


def test_put_file_from_another_filesystem(store: Store) -> None:
    shm = Path("/dev/shm")
    store.put_bytes(b"x")  # create the layout
    if not shm.is_dir() or shm.stat().st_dev == store.tmp.stat().st_dev:
        pytest.skip("no second filesystem here")
    src = shm / f"restoro-test-{os.getpid()}"
    src.write_bytes(b"elsewhere")
    out = store.put_file(src)
    assert not src.exists()
    assert store.read_bytes(out.digest) == b"elsewhere"


def test_put_action_and_lookup(store: Store) -> None:
    res = _result(store, "e1/shot1/upscale", b"a" * 100, b"b" * 10)
    res.meta = {"frames": 24}
    res.timings = {"seconds": 1.5}
    assert store.lookup(res.key).status == "absent"
    store.put_action(res)
    path = store.ac / res.key[:2] / f"{res.key[2:]}.json"
    assert json.loads(path.read_text())["action_id"] == "e1/shot1/upscale"
    got = store.lookup(res.key)
    assert got.status == "hit"
    assert got.result is not None
    assert got.result.outputs == res.outputs
    assert got.result.key_json == res.key_json
    assert got.result.meta == {"frames": 24}
    assert [r.key for r in store.iter_actions()] == [res.key]


def test_put_action_refuses_missing_output(store: Store) -> None:
    key, key_json = key_of({"x": 1})
    res = ActionResult(key, "a", key_json, {"o": Output(digest_bytes(b"never stored"), 12)})
    with pytest.raises(StoreError, match="not in the store"):
        store.put_action(res)
    assert store.lookup(key).status == "absent"


def test_lookup_output_missing(store: Store) -> None:
    res = _result(store, "a", b"one", b"two")
    store.put_action(res)
    store.blob_path(res.outputs["out1"].digest).unlink()
    got = store.lookup(res.key)
    assert got.status == "output-missing" and got.result is None
    assert store.lookup(res.key, verify=False).status == "output-missing"


def test_unreadable_entry_is_quarantined(store: Store) -> None:
    res = _result(store, "a", b"one")
    store.put_action(res)
    path = store.ac / res.key[:2] / f"{res.key[2:]}.json"
    path.write_text('{"schema": 1, "key": "trunc')
    got = store.lookup(res.key)
    assert got.status == "corrupt" and got.result is None
    assert not path.exists()
    [q] = _quarantined(store)
    note = json.loads(Path(str(q) + ".note.json").read_text())
    assert "not valid JSON" in note["reason"] and note["time"] > 0
    assert store.lookup(res.key).status == "absent"


def test_entry_under_the_wrong_key_is_corrupt(store: Store) -> None:
    a, b = _result(store, "a", b"1"), _result(store, "b", b"2")
    store.put_action(a)
    path_a = store.ac / a.key[:2] / f"{a.key[2:]}.json"
    path_b = store.ac / b.key[:2] / f"{b.key[2:]}.json"
    path_b.parent.mkdir(parents=True, exist_ok=True)
    path_b.write_bytes(path_a.read_bytes())
    assert store.lookup(b.key).status == "corrupt"


@pytest.mark.parametrize("racy_window_ns", [0, 2_000_000_000])
def test_flipped_byte_is_caught_and_rebuilt(store: Store, racy_window_ns: int) -> None:
    store.state.racy_window_ns = racy_window_ns
    res = _result(store, "a", b"x" * 5000)
    store.put_action(res)
    assert store.lookup(res.key).status == "hit"  # the stat cache now knows the blob (window 0)
    out = res.outputs["out0"]
    time.sleep(0.02)  # past one timestamp tick, as a later edit would be
    _flip_byte(store.blob_path(out.digest), 1234)
    assert store.verify_blob(out.digest, out.size) is False
    assert not store.blob_path(out.digest).exists()
    assert len(_quarantined(store)) == 1
    assert store.lookup(res.key).status == "output-missing"
    # a rebuild puts the same content again: a hit once more
    assert store.put_bytes(b"x" * 5000) == out
    assert store.lookup(res.key).status == "hit"


def test_lookup_reports_corrupt_blob(store: Store) -> None:
    res = _result(store, "a", b"y" * 5000)
    store.put_action(res)
    _flip_byte(store.blob_path(res.outputs["out0"].digest))
    assert store.lookup(res.key).status == "corrupt"
    assert store.lookup(res.key).status == "output-missing"  # it went to quarantine


def test_truncated_blob_is_corrupt_even_without_verify(store: Store) -> None:
    res = _result(store, "a", b"z" * 100)
    store.put_action(res)
    path = store.blob_path(res.outputs["out0"].digest)
    os.chmod(path, 0o644)
    path.write_bytes(b"z" * 50)
    assert store.lookup(res.key, verify=False).status == "corrupt"
    assert not path.exists()


def test_read_bytes_never_serves_corrupt_data(store: Store) -> None:
    out = store.put_bytes(b"precious")
    _flip_byte(store.blob_path(out.digest))
    with pytest.raises(CorruptEntry):
        store.read_bytes(out.digest)
    with pytest.raises(StoreError, match="not in the store"):
        store.read_bytes(out.digest)


def test_export(store: Store, tmp_path: Path) -> None:
    out = store.put_bytes(b"master")
    dest = store.export(out.digest, tmp_path / "out" / "master.mov")
    assert dest.read_bytes() == b"master"
    assert os.access(dest, os.W_OK)
    _flip_byte(store.blob_path(out.digest))
    with pytest.raises(CorruptEntry):
        store.export(out.digest, tmp_path / "out" / "again.mov")
    assert not (tmp_path / "out" / "again.mov").exists()


def test_no_op_lookup_pass_is_fast(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    store.state.racy_window_ns = 0
    # durability of the setup is not under test: skip its 8,000 fsyncs
    monkeypatch.setattr(store_mod, "_fsync_file", lambda p: None)
    monkeypatch.setattr(store_mod, "_fsync_dir", lambda p: None)
    keys = []
    with store.state.batch():
        for i in range(2000):
            res = _result(store, f"shot{i}", b"frames %d" % i)
            store.put_action(res)
            keys.append(res.key)
    assert all(store.lookup(k).status == "hit" for k in keys)
    hashed: list[object] = []
    monkeypatch.setattr(store_mod, "digest_file", lambda p: hashed.append(p))
    t0 = time.perf_counter()
    statuses = [store.lookup(k).status for k in keys]
    elapsed = time.perf_counter() - t0
    assert statuses == ["hit"] * 2000
    assert hashed == []  # untouched blobs cost a stat, not a hash
    assert elapsed < 1.0, f"2000 verified lookups took {elapsed:.3f} s"


def test_verify_reports_and_quarantines(store: Store) -> None:
    good = _result(store, "good", b"g1", b"g2")
    bad = _result(store, "bad", b"b1")
    gone = _result(store, "gone", b"x1")
    for r in (good, bad, gone):
        store.put_action(r)
    assert store.verify().ok
    _flip_byte(store.blob_path(bad.outputs["out0"].digest))
    store.blob_path(gone.outputs["out0"].digest).unlink()
    stray = store.cas / "zz" / "not-a-blob"
    stray.parent.mkdir()
    stray.write_bytes(b"?")
    report = store.verify()
    assert not report.ok
    assert report.blobs_checked == 4 and report.blobs_bad == 2
    assert report.actions_checked == 3 and report.actions_bad == 2
    assert len(report.problems) == 4
    assert store.lookup(good.key).status == "hit"
    assert store.lookup(bad.key).status == "absent"  # entry quarantined with its blob
    assert store.verify().ok


def test_full_verify_ignores_the_stat_cache(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    store.state.racy_window_ns = 0
    for i in range(5):
        store.put_action(_result(store, f"a{i}", b"%d" % i))
    store.verify(full=False)
    real = store_mod.digest_file
    hashed: list[object] = []

    def counting(p: Path) -> str:
        hashed.append(p)
        return real(p)

    monkeypatch.setattr(store_mod, "digest_file", counting)
    assert store.verify(full=False).ok and hashed == []
    assert store.verify(full=True).ok and len(hashed) == 5


def test_gc(store: Store) -> None:
    keep = _result(store, "keep", b"shared", b"mine")
    drop = _result(store, "drop", b"shared", b"only-dropped")
    for r in (keep, drop):
        store.put_action(r)
    orphan = store.put_bytes(b"orphan" * 10)
    old_tmp, new_tmp = store.temp_path(), store.temp_path()
    old_tmp.write_bytes(b"leftover")
    new_tmp.write_bytes(b"in flight")
    two_hours_ago = time.time() - 7200
    os.utime(old_tmp, (two_hours_ago, two_hours_ago))
    report = store.gc({keep.key})
    assert report.actions_removed == 1
    assert report.blobs_removed == 2
    assert report.bytes_removed == len(b"only-dropped") + orphan.size
    assert report.tmp_removed == 1
    assert not old_tmp.exists() and new_tmp.exists()
    assert store.lookup(keep.key).status == "hit"
    assert store.lookup(drop.key).status == "absent"
    usage = store.usage()
    assert usage["actions"] == 1 and usage["blobs"] == 2
    assert usage["bytes"] == len(b"shared") + len(b"mine") and usage["tmp_files"] == 1


def test_action_result_json_round_trip() -> None:
    key, key_json = key_of({"a": 1})
    res = ActionResult(key, "id", key_json, {"o": Output(digest_bytes(b"q"), 1)}, {"m": [1]})
    again = ActionResult.from_json(json.loads(json.dumps(res.to_json())))
    assert again == res
    bad = res.to_json() | {"outputs": {"o": {"digest": "xxh128:../../x", "size": 1}}}
    with pytest.raises(ValueError, match="bad digest"):
        ActionResult.from_json(bad)
    with pytest.raises(ValueError, match="schema"):
        ActionResult.from_json(res.to_json() | {"schema": 99})


# -- crash safety ----------------------------------------------------------------------------

_WRITER = r"""
import os, sys
from pathlib import Path
from restoro.engine.keys import key_of
from restoro.engine.store import ActionResult, Store

store = Store(Path(sys.argv[1]))
start = int(sys.argv[2])
for i in range(start, start + 100000):
    outputs = {}
    for j, size in enumerate((1 << 20 + i % 3, 1000 + i)):
        tmp = store.temp_path(".bin")
        with open(tmp, "wb") as f:
            block = (b"%d-%d:" % (i, j)) * 4096
            while f.tell() < size:
                f.write(block)
        outputs[f"o{j}"] = store.put_file(tmp)
    key, key_json = key_of({"i": i})
    store.put_action(ActionResult(key, f"a{i}", key_json, outputs))
    print(i, flush=True)
"""


def test_sigkill_mid_write_leaves_a_consistent_store(tmp_path: Path) -> None:
    root = tmp_path / ".restoro"
    start = 0
    for round_ in range(4):
        proc = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(root), str(start)],
            stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": ROOT},
            text=True,
        )
        assert proc.stdout is not None
        done = 0
        while done < 8 + 3 * round_:
            line = proc.stdout.readline()
            assert line, "writer died early"
            done += 1
        time.sleep(0.013 * round_)  # kill at different points of the commit cycle
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        start += 1000

    store = Store(root)
    entries = list(store.iter_actions())
    assert len(entries) >= 8 + 9 + 10 + 11
    for entry in entries:
        assert store.lookup(entry.key).status == "hit"
    report = store.verify(full=True)
    assert report.ok, report.problems
    assert report.blobs_checked >= 2 * len(entries)
    referenced = {o.digest for e in entries for o in e.outputs.values()}
    blobs_before = store.usage()["blobs"]
    assert blobs_before >= len(referenced)  # plus at most the orphans of interrupted actions
    leftovers = list(store.tmp.iterdir())
    long_ago = time.time() - 7200
    for p in leftovers:
        os.utime(p, (long_ago, long_ago))
    gc = store.gc({e.key for e in entries})
    assert gc.actions_removed == 0 and gc.tmp_removed == len(leftovers)
    assert gc.blobs_removed == blobs_before - len(referenced)
    assert list(store.tmp.iterdir()) == []
    assert all(store.lookup(e.key).status == "hit" for e in entries)
    assert store.usage()["blobs"] == len(referenced)
    assert store.verify(full=True).ok
    store.close()
