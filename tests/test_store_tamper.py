"""Tampered ``ac/`` entries: every kind is reported by ``cache verify`` and quarantined by a build.

Each kind of damage is planted in a real entry of a built project: a byte of an input digest or
of a tool fingerprint in the recorded key fields, a valid-JSON edit of the meta, an output digest
(and size) pointing at another shot's chunk, the checksum removed or garbled, the JSON cut off.
``cache verify`` must exit 1 naming the entry, its action and what is wrong; a build must move
the entry aside, warn, run that one action again and deliver the same master bytes.
"""

from __future__ import annotations

import json
import re
import shutil
from typing import TYPE_CHECKING, Any

import pytest
import xxhash
from buildkit import json_lines
from conftest import SMALL_MANIFEST

from restoro.cli.app import main
from restoro.engine.keys import key_of
from restoro.engine.store import (
    ACTION_SCHEMA,
    LEGACY_ACTION_SCHEMA,
    STORE_SCHEMA,
    ActionResult,
    EntryError,
    Store,
    entry_bytes,
    parse_entry,
)

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    Tamper = Callable[[bytes, dict[str, dict[str, Any]]], bytes]

SHOT2 = "ep1@00:00:00:12"
SHOT3 = "ep1@00:00:00:24"


# -- planting damage ----------------------------------------------------------------------------


def _rewrite(obj: dict[str, Any]) -> bytes:
    """``obj`` written back exactly as restoro lays an entry out, keeping its recorded checksum
    (what an editor that re-serialises valid JSON leaves behind)."""
    body = {k: v for k, v in obj.items() if k != "checksum"}
    text = json.dumps(body, sort_keys=True, ensure_ascii=False)
    return (text[:-1] + f', "checksum": "{obj["checksum"]}"}}').encode("utf-8")


def _other_hex(digest: str) -> str:
    """``digest`` with its last hex digit changed (one byte of the file)."""
    return digest[:-1] + ("0" if digest[-1] != "0" else "1")


def input_digest(data: bytes, entries: dict[str, dict[str, Any]]) -> bytes:
    obj = json.loads(data)
    obj["key_json"]["inputs"]["frames"] = _other_hex(obj["key_json"]["inputs"]["frames"])
    return _rewrite(obj)


def tool_fingerprint(data: bytes, entries: dict[str, dict[str, Any]]) -> bytes:
    obj = json.loads(data)
    tools = obj["key_json"]["tools"]
    name = sorted(tools)[0]
    tools[name] = tools[name][:-1] + ("0" if tools[name][-1] != "0" else "1")
    return _rewrite(obj)


def meta_frames(data: bytes, entries: dict[str, dict[str, Any]]) -> bytes:
    obj = json.loads(data)
    obj["meta"]["frames"] += 7  # 12 -> 19, like the reported 105 -> 112
    return _rewrite(obj)


def output_swapped(data: bytes, entries: dict[str, dict[str, Any]]) -> bytes:
    obj = json.loads(data)
    obj["outputs"]["chunk"] = entries[f"{SHOT3}/master"]["outputs"]["chunk"]  # digest and size
    return _rewrite(obj)


def checksum_removed(data: bytes, entries: dict[str, dict[str, Any]]) -> bytes:
    obj = json.loads(data)
    del obj["checksum"]
    return json.dumps(obj, sort_keys=True, ensure_ascii=False).encode("utf-8")


def checksum_garbled(data: bytes, entries: dict[str, dict[str, Any]]) -> bytes:
    obj = json.loads(data)
    obj["checksum"] = _other_hex(obj["checksum"])
    return _rewrite(obj)


def truncated(data: bytes, entries: dict[str, dict[str, Any]]) -> bytes:
    return data[: len(data) // 2]


# (kind, tamper, the action whose entry is damaged, what verify and the build must say)
KINDS: list[tuple[str, Tamper, str, str]] = [
    ("input-digest", input_digest, f"{SHOT2}/upscale", "key fields hash to"),
    ("tool-fingerprint", tool_fingerprint, f"{SHOT2}/master", "key fields hash to"),
    ("meta", meta_frames, f"{SHOT2}/upscale", "checksum mismatch"),
    ("output-digest", output_swapped, f"{SHOT2}/master", "checksum mismatch"),
    ("checksum-removed", checksum_removed, "ep1/audio/0", "no checksum"),
    ("checksum-garbled", checksum_garbled, "ep1@00:00:00:00/master", "checksum mismatch"),
    ("truncated", truncated, "ep1/shots", "not valid JSON"),
]


# -- a built project to damage ------------------------------------------------------------------


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, progressive_source: Path) -> Path:
    """A 3-shot project built once: the pristine store every test copies."""
    root = tmp_path_factory.mktemp("pristine")
    (root / "media").mkdir()
    shutil.copy(progressive_source, root / "media" / "source.mkv")
    (root / "restoro.yaml").write_text(SMALL_MANIFEST, encoding="utf-8")
    assert main(["build", "-f", str(root / "restoro.yaml"), "--json"]) == 0
    return root


def _entries(root: Path) -> dict[str, tuple[Path, dict[str, Any]]]:
    out = {}
    for path in sorted((root / ".restoro" / "ac").glob("*/*.json")):
        obj = json.loads(path.read_bytes())
        out[obj["action_id"]] = (path, obj)
    return out


def _damaged_copy(built: Path, dest: Path, tamper: Tamper, action: str) -> tuple[Path, bytes]:
    """A copy of the built project with ``action``'s entry damaged; (entry path, its bytes)."""
    shutil.copytree(built, dest, symlinks=True)
    entries = _entries(dest)
    path, _ = entries[action]
    before = path.read_bytes()
    after = tamper(before, {a: obj for a, (_, obj) in entries.items()})
    assert after != before
    path.chmod(0o644)
    path.write_bytes(after)
    return path, after


def _quarantined(root: Path) -> dict[str, bytes]:
    q = root / ".restoro" / "quarantine"
    return {p.name: p.read_bytes() for p in q.iterdir() if not p.name.endswith(".note.json")}


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "tamper", "action", "says"), KINDS, ids=[k[0] for k in KINDS])
def test_cache_verify_reports_each_tampering(
    built: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    kind: str,
    tamper: Tamper,
    action: str,
    says: str,
) -> None:
    capsys.readouterr()
    root = tmp_path / "p"
    path, bad = _damaged_copy(built, root, tamper, action)
    rel = path.relative_to(root / ".restoro").as_posix()
    assert main(["cache", "verify", "-f", str(root / "restoro.yaml")]) == 1
    out = capsys.readouterr().out
    [line] = [ln for ln in out.splitlines() if ln.startswith("quarantined:")]
    assert rel in line and f"(action {action}" in line and says in line, line
    assert "1 problems" in out
    assert not path.exists()
    assert bad in _quarantined(root).values()
    # The damage is gone, so the store verifies again (nothing else was touched).
    assert main(["cache", "verify", "-f", str(root / "restoro.yaml"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "tamper", "action", "says"), KINDS, ids=[k[0] for k in KINDS])
def test_build_quarantines_each_tampering_and_delivers_the_same_bytes(
    built: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    kind: str,
    tamper: Tamper,
    action: str,
    says: str,
) -> None:
    capsys.readouterr()
    root = tmp_path / "p"
    path, bad = _damaged_copy(built, root, tamper, action)
    master = root / "out" / "master" / "ep1.mov"
    master.unlink()  # delivered again from the store: only right entries may feed it
    rel = path.relative_to(root / ".restoro").as_posix()

    assert main(["build", "-f", str(root / "restoro.yaml"), "--json"]) == 0
    events = json_lines(capsys.readouterr().out)
    warnings = [e["message"] for e in events if e["event"] == "warning"]
    assert any(action in w and rel in w and says in w for w in warnings), warnings
    ran = {
        e["id"]: e["reason"] for e in events if e["event"] == "action" and e["status"] == "executed"
    }
    assert ran == {action: "corrupt"}  # that action alone: its outputs are the same bytes
    assert bad in _quarantined(root).values()
    assert master.read_bytes() == (built / "out" / "master" / "ep1.mov").read_bytes()
    store = Store(root / ".restoro")
    try:
        assert store.verify().ok
        key = path.parent.name + path.stem
        assert parse_entry(key, path.read_bytes(), full=True).action_id == action
    finally:
        store.close()


# -- the entry format, without a build -------------------------------------------------------


def _result(store: Store, name: str, data: bytes) -> ActionResult:
    key, key_json = key_of({"stage": "test", "inputs": {"name": name}, "tools": {"t": "t 1"}})
    out = store.put_bytes(data)
    return ActionResult(key, f"t@{name}/test", key_json, {"out": out}, meta={"frames": 105})


def test_an_entry_ends_with_the_checksum_of_the_rest(tmp_path: Path) -> None:
    store = Store(tmp_path / "s")
    res = _result(store, "a", b"one")
    data = entry_bytes(res)
    m = re.fullmatch(rb'(\{.*), "checksum": "(xxh128:[0-9a-f]{32})"\}', data)
    assert m is not None
    body = m.group(1) + b"}"
    assert m.group(2).decode() == "xxh128:" + xxhash.xxh3_128_hexdigest(body)
    assert json.loads(body)["schema"] == ACTION_SCHEMA == 2
    assert parse_entry(res.key, data, full=True).meta == {"frames": 105}
    store.close()


def test_every_kind_of_damage_is_refused_by_a_lookup(tmp_path: Path) -> None:
    """The store level: each damaged entry is a corrupt lookup, quarantined with its reason."""
    store = Store(tmp_path / "s")
    a, b = _result(store, "a", b"one"), _result(store, "b", b"other shot")
    store.put_action(a)
    store.put_action(b)
    entries = {r.action_id: json.loads(entry_bytes(r)) for r in (a, b)}
    path = store.ac / a.key[:2] / f"{a.key[2:]}.json"
    good = path.read_bytes()

    def swap(data: bytes, _: Any) -> bytes:
        obj = json.loads(data)
        obj["outputs"]["out"] = entries[b.action_id]["outputs"]["out"]
        return _rewrite(obj)

    def tool(data: bytes, _: Any) -> bytes:
        obj = json.loads(data)
        obj["key_json"]["tools"]["t"] = "t 2"
        return _rewrite(obj)

    def name(data: bytes, _: Any) -> bytes:
        obj = json.loads(data)
        obj["key_json"]["inputs"]["name"] = "b"
        return _rewrite(obj)

    def meta(data: bytes, _: Any) -> bytes:
        return meta_frames(data, {})

    cases = [
        (name, "key fields hash to"),
        (tool, "key fields hash to"),
        (meta, "checksum mismatch"),
        (swap, "checksum mismatch"),
        (checksum_removed, "no checksum"),
        (checksum_garbled, "checksum mismatch"),
        (truncated, "not valid JSON"),
        (lambda d, _: d + b"\n", "not its last member"),
    ]
    for tamper, says in cases:
        bad = tamper(good, entries)
        assert bad != good
        path.write_bytes(bad)
        got = store.lookup(a.key)
        assert got.status == "corrupt" and got.result is None, tamper
        assert says in got.detail and f"ac/{a.key[:2]}/{a.key[2:]}.json" in got.detail, got.detail
        assert not path.exists()
        path.write_bytes(bad)
        report = store.verify()
        [problem] = report.problems
        assert says in problem, problem
        # A changed key field names the action the entry claims; a cut-off entry names none.
        assert ("(action t@a/test)" in problem) == (tamper is not truncated), problem
        assert not path.exists()
        store.put_action(a)
        good = path.read_bytes()
        assert store.lookup(a.key).status == "hit"
    assert store.lookup(b.key).status == "hit"  # the other shot's blob was never blamed
    store.close()


def test_checksum_layout_is_strict(tmp_path: Path) -> None:
    store = Store(tmp_path / "s")
    res = _result(store, "a", b"one")
    data = entry_bytes(res)
    obj = json.loads(data)
    reordered = json.dumps(obj, sort_keys=True).encode()  # same members, checksum moved
    with pytest.raises(EntryError, match="not its last member"):
        parse_entry(res.key, reordered)
    with pytest.raises(EntryError, match="malformed"):
        parse_entry(res.key, data.replace(obj["checksum"].encode(), b"xxh128:nothex" + b"0" * 26))
    with pytest.raises(EntryError, match="stored under key"):
        parse_entry("0" * 32, data)
    store.close()


def _legacy_bytes(res: ActionResult) -> bytes:
    """An entry as restoro wrote it before checksums (schema 1)."""
    obj = res.to_json() | {"schema": LEGACY_ACTION_SCHEMA}
    return json.dumps(obj, sort_keys=True, ensure_ascii=False).encode("utf-8")


def test_legacy_entries_are_served_while_their_key_fields_hold(tmp_path: Path) -> None:
    store = Store(tmp_path / "s")
    res = _result(store, "a", b"one")
    path = store.ac / res.key[:2] / f"{res.key[2:]}.json"
    path.parent.mkdir(parents=True)
    path.write_bytes(_legacy_bytes(res))
    got = store.lookup(res.key)
    assert got.status == "hit" and got.result is not None and got.result.schema == 1
    report = store.verify()
    assert report.ok and report.actions_legacy == 1
    assert path.read_bytes() == _legacy_bytes(res)  # verify does not rewrite it

    obj = json.loads(_legacy_bytes(res))
    obj["key_json"]["tools"]["t"] = "t 2"  # a legacy entry whose key fields changed
    path.write_bytes(json.dumps(obj, sort_keys=True).encode())
    got = store.lookup(res.key)
    assert got.status == "corrupt" and "key fields hash to" in got.detail
    assert not path.exists()
    # Re-recorded, a legacy result gets the current format and its checksum.
    store.put_action(res)
    assert json.loads(path.read_bytes())["schema"] == ACTION_SCHEMA
    assert store.verify().actions_legacy == 0
    store.close()


def test_a_wrong_size_in_an_entry_does_not_quarantine_the_blob_it_names(tmp_path: Path) -> None:
    """A legacy entry (no checksum to catch it) pointing at another shot's blob with its own
    size: the lookup is refused, and the other shot's intact blob stays in the store."""
    store = Store(tmp_path / "s")
    a, b = _result(store, "a", b"one"), _result(store, "b", b"other shot")
    store.put_action(b)
    obj = json.loads(_legacy_bytes(a))
    obj["outputs"]["out"]["digest"] = b.outputs["out"].digest  # the size stays a's
    path = store.ac / a.key[:2] / f"{a.key[2:]}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(json.dumps(obj, sort_keys=True).encode())
    assert store.lookup(a.key).status == "corrupt"
    assert store.lookup(b.key).status == "hit"
    assert store.blob_path(b.outputs["out"].digest).is_file()
    report = store.verify()
    [problem] = report.problems
    assert "(action t@a/test)" in problem and "has 10 bytes, the entry records 3" in problem
    assert store.lookup(b.key).status == "hit"
    store.close()


def test_an_older_store_version_is_raised_on_first_use(tmp_path: Path) -> None:
    root = tmp_path / "s"
    root.mkdir()
    (root / "VERSION").write_text("1\n")
    store = Store(root)
    assert (root / "VERSION").read_text() == "1\n"  # opening writes nothing
    store.put_bytes(b"x")
    assert (root / "VERSION").read_text() == f"{STORE_SCHEMA}\n" == "2\n"
    store.close()
