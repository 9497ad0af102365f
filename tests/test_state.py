"""The stat cache: digests reused while a file is unchanged, refs, schema upgrades."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from restoro.engine import state as state_mod
from restoro.engine.keys import digest_bytes
from restoro.engine.state import StateDB

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = str(Path(__file__).resolve().parents[1])


@pytest.fixture
def db(tmp_path: Path) -> Iterator[StateDB]:
    sdb = StateDB(tmp_path / "state.db")
    sdb.racy_window_ns = 0  # files written by the test are "old enough" at once
    yield sdb
    sdb.close()


def _count_hashes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = state_mod.digest_file

    def counting(path: str | Path) -> str:
        calls.append(str(path))
        return real(path)

    monkeypatch.setattr(state_mod, "digest_file", counting)
    return calls


def test_file_digest_cached_until_stat_changes(
    db: StateDB, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _count_hashes(monkeypatch)
    f = tmp_path / "src.vob"
    f.write_bytes(b"one")
    assert db.file_digest(f) == digest_bytes(b"one")
    assert db.file_digest(f) == digest_bytes(b"one")
    assert len(calls) == 1
    # same size, new mtime -> rehash
    f.write_bytes(b"two")
    os.utime(f, ns=(f.stat().st_atime_ns, f.stat().st_mtime_ns + 1_000_000_000))
    assert db.file_digest(f) == digest_bytes(b"two")
    assert len(calls) == 2
    # a new inode with the same content -> rehash
    f2 = tmp_path / "tmp"
    f2.write_bytes(b"two")
    os.replace(f2, f)
    assert db.file_digest(f) == digest_bytes(b"two")
    assert len(calls) == 3


def test_symlinks_share_one_entry(
    db: StateDB, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _count_hashes(monkeypatch)
    f = tmp_path / "a"
    f.write_bytes(b"data")
    (tmp_path / "link").symlink_to(f)
    assert db.file_digest(tmp_path / "link") == db.file_digest(f)
    assert len(calls) == 1


def test_racy_files_are_not_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file rewritten within one timestamp tick of being hashed must not be served stale."""
    calls = _count_hashes(monkeypatch)
    with StateDB(tmp_path / "s.db") as sdb:
        f = tmp_path / "fresh"
        f.write_bytes(b"aaaa")
        st = f.stat()
        assert sdb.file_digest(f) == digest_bytes(b"aaaa")
        f.write_bytes(b"bbbb")
        os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))  # same stat tuple as when hashed
        assert sdb.file_digest(f) == digest_bytes(b"bbbb")
        assert len(calls) == 2


def test_thousands_of_calls_are_served_from_the_cache(
    db: StateDB, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = []
    for i in range(2000):
        p = tmp_path / f"f{i}"
        p.write_bytes(b"x%d" % i)
        files.append(p)
    with db.batch():
        first = [db.file_digest(p) for p in files]
    calls = _count_hashes(monkeypatch)
    with db.batch():
        again = [db.file_digest(p) for p in files]
    assert again == first
    assert calls == []  # every second call is a stat and a cached row, no file read
    # the cache persisted: a new connection sees it
    db.close()
    with StateDB(db.path) as other:
        row = other._read("files", os.path.realpath(files[7]))
        assert row is not None and row[4] == first[7]


def test_blob_verified(db: StateDB, tmp_path: Path) -> None:
    blob = tmp_path / "blob"
    blob.write_bytes(b"content")
    d = digest_bytes(b"content")
    assert not db.blob_verified(blob, d)
    db.mark_blob_verified(blob, d)
    assert db.blob_verified(blob, d)
    assert not db.blob_verified(blob, digest_bytes(b"other"))
    time.sleep(0.02)  # past one timestamp tick
    os.chmod(blob, 0o600)  # ctime changes: somebody touched it
    assert not db.blob_verified(blob, d)
    db.mark_blob_verified(blob, d)
    db.forget_blobs([blob])
    assert not db.blob_verified(blob, d)
    assert not db.blob_verified(tmp_path / "missing", d)


def test_refs(db: StateDB) -> None:
    assert db.get_ref("e1/shot/upscale") is None
    db.set_refs({"a": "k1", "b": "k2"})
    assert db.get_ref("a") == "k1"
    db.set_refs({"a": "k3"})
    many = {f"id{i}": f"key{i}" for i in range(1500)}
    db.set_refs(many)
    got = db.get_refs(["a", "b", "nope", *many])
    assert got["a"] == "k3" and got["b"] == "k2" and "nope" not in got
    assert all(got[k] == v for k, v in many.items())
    # Thousands wanted are read with the whole table; from a table much larger, by id.
    db.set_refs({f"other{i}": f"o{i}" for i in range(4000)})
    some = [*list(many)[:1100], "nope", "a"]
    got = db.get_refs(some)
    assert got == {**{k: many[k] for k in some[:1100]}, "a": "k3"}


def test_pending_writes_visible_inside_batch(db: StateDB) -> None:
    with db.batch():
        db.set_refs({"x": "1"})
        assert db.get_ref("x") == "1"
        with closing(sqlite3.connect(db.path)) as other:  # not committed yet
            assert other.execute("SELECT count(*) FROM refs").fetchone()[0] == 0
    with closing(sqlite3.connect(db.path)) as other:
        assert other.execute("SELECT key FROM refs").fetchall() == [("1",)]


def test_old_schema_is_dropped(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT)")
        conn.execute("INSERT INTO meta VALUES ('schema', '0')")
        conn.execute("CREATE TABLE refs (action_id TEXT, key TEXT, extra INT)")
        conn.execute("CREATE TABLE oldstuff (x)")
    with StateDB(path) as sdb:
        sdb.set_refs({"a": "b"})
        assert sdb.get_ref("a") == "b"
    with closing(sqlite3.connect(path)) as conn, conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert "oldstuff" not in tables
        assert conn.execute("SELECT value FROM meta").fetchone() == (str(state_mod.SCHEMA),)


def test_garbage_file_is_recreated(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with StateDB(path) as sdb:
        sdb.set_refs({"a": "b"})
        assert sdb.get_ref("a") == "b"


def test_threads_share_one_db(db: StateDB, tmp_path: Path) -> None:
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(200):
                db.set_refs({f"t{n}-{i}": str(i)})
                p = tmp_path / f"t{n}-{i % 5}"
                p.write_bytes(b"%d" % n)
                db.file_digest(p)
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(db.get_refs(f"t{n}-{i}" for n in range(4) for i in range(200))) == 800


def test_two_processes_write_concurrently(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    code = (
        "import sys; from restoro.engine.state import StateDB\n"
        "db = StateDB(sys.argv[1])\n"
        "for i in range(300): db.set_refs({f'{sys.argv[2]}-{i}': 'k'})\n"
        "db.close()\n"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(path), name], env={**os.environ, "PYTHONPATH": ROOT}
        )
        for name in ("p", "q")
    ]
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    with StateDB(path) as sdb:
        ids = [f"{n}-{i}" for n in ("p", "q") for i in range(300)]
        assert len(sdb.get_refs(ids)) == 600


def test_a_dropped_statedb_closes_its_connection(tmp_path: Path) -> None:
    """Without close() (a throwaway Store in a script or test) the connection still closes when
    the object goes, so Python 3.13 has no unclosed database to warn about."""
    import gc

    db = StateDB(tmp_path / "state.db")
    conn = db._conn
    conn.execute("SELECT 1")
    del db
    gc.collect()
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        conn.execute("SELECT 1")
