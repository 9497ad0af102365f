"""The ``ac/`` index in ``state.db``: a lookup of an untouched entry reads no file, and every
change to the entry file (or to the index row) sends the lookup back to the file.

The racy window is set to 0 so entries written by the test are indexed at once; a rewrite is
then given another mtime explicitly (a real rewrite more than a tick later changes it anyway).
"""

from __future__ import annotations

import builtins
import json
import os
import sqlite3
from contextlib import closing
from typing import TYPE_CHECKING, Any

import pytest

from restoro.engine import store as store_mod
from restoro.engine.keys import key_of
from restoro.engine.state import StateDB
from restoro.engine.store import ActionResult, Store

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    monkeypatch.setattr(StateDB, "racy_window_ns", 0)
    return Store(tmp_path / "s")


def _result(store: Store, name: str, data: bytes) -> ActionResult:
    key, key_json = key_of({"stage": "test", "inputs": {"name": name}, "tools": {"t": "t 1"}})
    out = store.put_bytes(data)
    return ActionResult(key, f"t@{name}/test", key_json, {"out": out}, meta={"frames": 105})


def _entry(store: Store, key: str) -> Path:
    return store.ac / key[:2] / f"{key[2:]}.json"


def _reads(monkeypatch: pytest.MonkeyPatch, path: Path) -> list[str]:
    """Every ``open`` of ``path`` from now on."""
    seen: list[str] = []
    real = builtins.open

    def spying(file: Any, *args: Any, **kwargs: Any) -> Any:
        if str(file) == str(path):
            seen.append(str(file))
        return real(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", spying)
    return seen


def _touch_later(path: Path) -> None:
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))


def test_an_untouched_entry_is_served_from_the_index(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    res = _result(store, "a", b"one")
    store.put_action(res)
    path = _entry(store, res.key)
    first = store.lookup(res.key)  # reads and verifies the file, then indexes it
    assert first.status == "hit" and first.result is not None
    store.close()  # the index rows are written at the flush

    again = Store(store.root)
    reads = _reads(monkeypatch, path)
    got = again.lookup(res.key)
    assert got.status == "hit" and got.result is not None
    assert reads == []  # no file read: the bytes came from state.db
    assert got.result.to_json() == first.result.to_json()
    assert got.result.outputs == res.outputs and got.result.meta == {"frames": 105}
    again.close()


def test_a_rewritten_entry_is_read_and_verified_again(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    res = _result(store, "a", b"one")
    store.put_action(res)
    path = _entry(store, res.key)
    assert store.lookup(res.key).status == "hit"
    # Same length, valid JSON, checksum kept: only the checksum can tell (12 -> 19 frames).
    good = path.read_bytes()
    bad = good.replace(b'"frames": 105', b'"frames": 112')
    assert bad != good and len(bad) == len(good)
    path.write_bytes(bad)
    _touch_later(path)
    reads = _reads(monkeypatch, path)
    got = store.lookup(res.key)
    assert reads == [str(path)]
    assert got.status == "corrupt" and "checksum mismatch" in got.detail
    assert not path.exists()  # quarantined, and its index row forgotten
    assert store.lookup(res.key).status == "absent"
    store.close()


def test_a_removed_entry_is_absent_whatever_the_index_holds(store: Store) -> None:
    res = _result(store, "a", b"one")
    store.put_action(res)
    assert store.lookup(res.key).status == "hit"
    store.close()
    _entry(store, res.key).unlink()
    again = Store(store.root)
    assert again.lookup(res.key).status == "absent"
    again.close()


def test_a_missing_blob_is_found_behind_an_indexed_entry(store: Store) -> None:
    res = _result(store, "a", b"one")
    store.put_action(res)
    assert store.lookup(res.key).status == "hit"
    store.close()
    store.blob_path(res.outputs["out"].digest).unlink()
    again = Store(store.root)
    assert again.lookup(res.key).status == "output-missing"
    again.close()


def test_a_damaged_index_row_is_never_served(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    res = _result(store, "a", b"one")
    store.put_action(res)
    path = _entry(store, res.key)
    assert store.lookup(res.key).status == "hit"
    store.close()
    with closing(sqlite3.connect(store.root / "state.db")) as conn, conn:
        (data,) = conn.execute("SELECT data FROM entries WHERE key = ?", (res.key,)).fetchone()
        forged = json.loads(data)
        forged["meta"]["frames"] = 999  # checksum left as it was
        text = json.dumps({k: v for k, v in forged.items() if k != "checksum"}, sort_keys=True)
        row = (text[:-1] + f', "checksum": "{forged["checksum"]}"}}').encode()
        conn.execute("UPDATE entries SET data = ? WHERE key = ?", (row, res.key))
    again = Store(store.root)
    reads = _reads(monkeypatch, path)
    got = again.lookup(res.key)
    assert reads == [str(path)]  # the row failed its checksum: the file was read instead
    assert got.status == "hit" and got.result is not None and got.result.meta == {"frames": 105}
    again.close()


def test_a_fresh_entry_is_not_indexed(tmp_path: Path) -> None:
    """Within the racy window a same-size rewrite could keep the stat tuple: not indexed."""
    store = Store(tmp_path / "s")
    res = _result(store, "a", b"one")
    store.put_action(res)
    assert store.lookup(res.key).status == "hit"
    assert store.state.known_entry(res.key, _entry(store, res.key).stat()) is None
    store.close()


def test_gc_forgets_the_index_rows_of_removed_entries(store: Store) -> None:
    a, b = _result(store, "a", b"one"), _result(store, "b", b"two")
    for r in (a, b):
        store.put_action(r)
        assert store.lookup(r.key).status == "hit"
    store.close()
    again = Store(store.root)
    again.gc(keep={a.key})
    again.close()
    with closing(sqlite3.connect(store.root / "state.db")) as conn:
        keys = {k for (k,) in conn.execute("SELECT key FROM entries")}
    assert keys == {a.key}


def test_an_indexed_entry_given_its_key_fields_is_split_where_the_members_are(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the caller's key fields, an indexed entry's own copy of them is not parsed: the
    text before and after them is. Key fields holding ``"meta"`` and ``"outputs"`` members of
    their own (the first ``, "meta": `` of the text is theirs) still give the entry's meta and
    outputs, and a damaged row is still refused."""
    fields = {
        "stage": "test",
        "params": {"a": 1, "meta": {"b": 0, "meta": [', "meta": {}'], "outputs": {"x": 1}}},
        "inputs": {"name": "n"},
        "tools": {"t": "t 1"},
    }
    key, key_json = key_of(fields)
    out = store.put_bytes(b"one")
    res = ActionResult(key, "t@n/test", key_json, {"out": out}, meta={"frames": 7, "k": [1]})
    store.put_action(res)
    assert store.lookup(key).status == "hit"
    store.close()

    again = Store(store.root)
    path = _entry(store, key)
    reads = _reads(monkeypatch, path)
    mine = json.loads(json.dumps(key_json))
    got = again.lookup(key, key_json=mine)
    assert reads == []
    assert got.status == "hit" and got.result is not None
    assert got.result.key_json is mine  # served as given, equal to the recorded fields
    assert got.result.to_json() == res.to_json()
    plain = again.lookup(key)  # without them: the whole text is parsed
    assert plain.result is not None and plain.result.to_json() == res.to_json()
    again.close()

    with closing(sqlite3.connect(store.root / "state.db")) as conn, conn:
        (data,) = conn.execute("SELECT data FROM entries WHERE key = ?", (key,)).fetchone()
        assert data.count(b', "meta": ') == 3  # two in the key fields, before the entry's own
        split = store_mod._split_entry(data[: data.rindex(b', "checksum"')], mine)
        assert split is not None and split["meta"] == {"frames": 7, "k": [1]}
        bad = data.replace(b'"frames": 7', b'"frames": 8')
        assert bad != data
        conn.execute("UPDATE entries SET data = ? WHERE key = ?", (bad, key))
    third = Store(store.root)
    reads = _reads(monkeypatch, path)
    got = third.lookup(key, key_json=mine)
    assert reads == [str(path)]  # the row failed its checksum: the file was read instead
    assert got.result is not None and got.result.meta == {"frames": 7, "k": [1]}
    third.close()
