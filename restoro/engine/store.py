"""The local store: content-addressed blobs (``cas/``) and action results (``ac/``).

Commit protocol (DESIGN.md): write to a temp file under ``tmp/`` (same filesystem) → fsync →
validate → hash → rename into ``cas/ab/cdef…`` → fsync the directory → write the ``ac/`` entry
last, the same way. A crash therefore leaves at worst an orphan blob or a temp file, never an
entry pointing at missing or partial data. Reads verify digests (through the stat cache, so an
untouched blob costs one ``stat``); anything that fails is moved to ``quarantine/`` and never
served. GC deletes ``ac/`` entries before the blobs they reference.

An ``ac/`` entry proves itself: its last member ``"checksum"`` is the xxh3-128 of the entry's
JSON text without that member, and its ``key_json`` hashes to its key (``entry_bytes``,
``parse_entry``). A lookup checks the checksum (one hash over the bytes read); ``verify`` also
recomputes the key. Anything that fails is quarantined and the action runs again.

A lookup reads an entry's file once: the stat cache indexes the verified bytes with the file's
stat tuple (``StateDB.known_entry``), so while the file is untouched a lookup costs one ``stat``,
a dict lookup and the checksum over bytes already in memory. A changed, replaced or removed file
misses the index and is read (and verified, or quarantined) as before.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import orjson
import xxhash

from restoro.engine.keys import (
    DIGEST_PREFIX,
    canonical_json,
    digest_bytes,
    digest_file,
    digest_hex,
    is_digest,
)
from restoro.engine.state import StateDB
from restoro.errors import CorruptEntry, StoreError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

STORE_SCHEMA = 2  # 2: ac/ entries carry a checksum (older restoro would quarantine them)
ACTION_SCHEMA = 2  # 2: the entry's last member is "checksum"
LEGACY_ACTION_SCHEMA = 1  # no checksum: served only while its key fields hash to its key
TMP_MAX_AGE = 3600.0
_HEX = frozenset("0123456789abcdef")
_KEY_MATCH = re.compile(r"[0-9a-f]{32}").fullmatch
_DIGEST_MATCH = re.compile(r"xxh128:[0-9a-f]{32}").fullmatch  # (as ``keys.is_digest``)
# An entry ends with its checksum member, exactly as ``entry_bytes`` writes it.
_CHECKSUM_HEAD = b', "checksum": "'
_CHECKSUM_TAIL = re.compile(rb', "checksum": "xxh128:([0-9a-f]{32})"\}').fullmatch
_CHECKSUM_LEN = len(_CHECKSUM_HEAD) + len(DIGEST_PREFIX) + 32 + 2

LookupStatus = Literal["hit", "absent", "output-missing", "corrupt"]


def export_temp(dst: Path) -> Path:
    """Where ``dst`` outside the store is written before its rename: hidden, beside it, named
    by our pid (so a later build can tell a dead writer's leftovers)."""
    return dst.with_name(f".{dst.name}.{os.getpid()}.tmp")


@dataclass(frozen=True)
class Output:
    """One output of an action: a blob digest and its size in bytes."""

    digest: str
    size: int

    def to_json(self) -> dict[str, Any]:
        return {"digest": self.digest, "size": self.size}

    @classmethod
    def from_json(cls, data: Any) -> Output:
        if not isinstance(data, dict) or set(data) != {"digest", "size"}:
            raise ValueError(f"bad output record: {data!r}")
        digest, size = data["digest"], data["size"]
        if not isinstance(digest, str) or not is_digest(digest):
            raise ValueError(f"bad digest: {digest!r}")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ValueError(f"bad size: {size!r}")
        return cls(digest, size)


@dataclass
class ActionResult:
    """What an action produced, with the key JSON it was built from (for ``explain``)."""

    key: str
    action_id: str
    key_json: dict[str, Any]
    outputs: dict[str, Output]
    meta: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    created: float = field(default_factory=time.time)
    schema: int = ACTION_SCHEMA

    def to_json(self) -> dict[str, Any]:
        """The entry's fields without its checksum; always written in the current schema."""
        return {
            "schema": ACTION_SCHEMA,
            "key": self.key,
            "action_id": self.action_id,
            "key_json": self.key_json,
            "outputs": {name: o.to_json() for name, o in sorted(self.outputs.items())},
            "meta": self.meta,
            "timings": self.timings,
            "created": self.created,
        }

    @classmethod
    def from_json(cls, data: Any) -> ActionResult:
        """Parse and check an ``ac/`` record; ValueError for anything malformed."""
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        if data.get("schema") not in (ACTION_SCHEMA, LEGACY_ACTION_SCHEMA):
            raise ValueError(f"unknown action schema {data.get('schema')!r}")
        types: dict[str, type | tuple[type, ...]] = {
            "key": str,
            "action_id": str,
            "key_json": dict,
            "outputs": dict,
            "meta": dict,
            "timings": dict,
            "created": (int, float),
        }
        for name, kind in types.items():
            if not isinstance(data.get(name), kind):
                raise ValueError(f"field {name!r} missing or of the wrong type")
        _check_key(data["key"])
        return cls(
            key=data["key"],
            action_id=data["action_id"],
            key_json=data["key_json"],
            outputs={str(n): Output.from_json(o) for n, o in data["outputs"].items()},
            meta=data["meta"],
            timings=data["timings"],
            created=float(data["created"]),
            schema=data["schema"],
        )


@dataclass(frozen=True)
class Lookup:
    """The answer of ``Store.lookup``: a result only when ``status == "hit"``."""

    status: LookupStatus
    result: ActionResult | None = None
    detail: str = ""


@dataclass
class VerifyReport:
    blobs_checked: int = 0
    blobs_bad: int = 0
    actions_checked: int = 0
    actions_bad: int = 0
    actions_legacy: int = 0  # schema 1 (no checksum): key fields and outputs checked
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class GcReport:
    actions_removed: int = 0
    blobs_removed: int = 0
    bytes_removed: int = 0
    tmp_removed: int = 0


def _check_key(key: str) -> str:
    # A compiled fullmatch: called twice per lookup, thousands of times in a no-op build.
    if _KEY_MATCH(key) is None:
        raise ValueError(f"not an action key: {key!r}")
    return key


class EntryError(ValueError):
    """An ``ac/`` entry that cannot be trusted; ``action_id`` when the entry still names one."""

    def __init__(self, message: str, action_id: str | None = None) -> None:
        super().__init__(message)
        self.action_id = action_id


def entry_bytes(result: ActionResult) -> bytes:
    """An ``ac/`` entry's bytes: the result's JSON text (sorted keys) with a last member
    ``"checksum": "xxh128:…"``, the xxh3-128 of the text without it.

    ``json.dumps`` (one call to the C encoder), not ``json.dump`` (which streams through the
    pure-Python encoder: 3x slower on a large entry).
    """
    text = json.dumps(result.to_json(), sort_keys=True, ensure_ascii=False, allow_nan=False)
    body = text.encode("utf-8")
    return body[:-1] + _CHECKSUM_HEAD + digest_bytes(body).encode("ascii") + b'"}'


def recorded_key(key_json: Any) -> str:
    """The action key that an entry's recorded key fields hash to (as ``keys.key_text`` does)."""
    return xxhash.xxh3_128_hexdigest(canonical_json(key_json).encode("utf-8"))


def _checksum_problem(data: bytes, obj: dict[str, Any]) -> str:
    """What is wrong with a current-schema entry's checksum ("" when it matches its bytes)."""
    recorded = obj.get("checksum")
    if recorded is None:
        return "it has no checksum (entries of schema 2 carry one)"
    if not isinstance(recorded, str) or not is_digest(recorded):
        return f"its checksum {str(recorded)[:60]!r} is malformed"
    tail = _CHECKSUM_TAIL(data[-_CHECKSUM_LEN:])
    if tail is None or DIGEST_PREFIX + tail.group(1).decode("ascii") != recorded:
        return "its checksum is not its last member as restoro writes it (the entry was edited)"
    actual = digest_bytes(data[:-_CHECKSUM_LEN] + b"}")
    if actual != recorded:
        return (
            f"checksum mismatch: its text hashes to {actual}, it records {recorded} "
            "(the entry was changed after it was written)"
        )
    return ""


def check_entry(key: str, data: bytes, *, full: bool = False) -> tuple[ActionResult, bool]:
    """The action result in an ``ac/`` entry's bytes and whether it is a legacy (schema 1,
    checksum-less) entry; EntryError naming everything wrong when it cannot be trusted as
    ``key``'s.

    A current entry must match its checksum; a legacy one must hash to its key from its recorded
    key fields. ``full`` (``verify``) recomputes the key of current entries too (a lookup only
    when the checksum failed, to say what changed).
    """
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as e:
        raise EntryError(f"it is not valid JSON (truncated?): {e}") from None
    if not isinstance(obj, dict):
        raise EntryError("it is not a JSON object")
    action_id = obj.get("action_id") if isinstance(obj.get("action_id"), str) else None
    problems: list[str] = []
    legacy = obj.get("schema") == LEGACY_ACTION_SCHEMA
    if obj.get("schema") == ACTION_SCHEMA:
        problem = _checksum_problem(data, obj)
        if problem:
            problems.append(problem)
    try:
        result = ActionResult.from_json(obj)
    except ValueError as e:
        problems.append(str(e))
        raise EntryError("; ".join(problems), action_id) from None
    if result.key != key:
        problems.append(f"it is the entry of key {result.key}, stored under key {key}")
    if legacy or full or problems:  # a failed checksum: say whether the key fields changed
        try:
            hashed = recorded_key(result.key_json)
        except (TypeError, ValueError) as e:
            hashed = f"nothing ({e})"
        if hashed != result.key:
            problems.append(
                f"its key fields hash to {hashed}, not to its key {result.key} "
                "(an input digest, tool, version or parameter was changed)"
            )
    if problems:
        raise EntryError("; ".join(problems), action_id)
    return result, legacy


def indexed_entry(
    key: str, data: bytes, key_json: dict[str, Any] | None = None
) -> ActionResult | None:
    """The result in entry bytes from the ``ac/`` index, or None (the caller then reads the
    file). The bytes were verified when indexed and the file's stat tuple is unchanged since; the
    checksum is checked again here (one hash: a damaged index row is never served), the fields
    are not re-validated.

    ``key_json``: the key fields the caller hashed to ``key``. The entry's own copy (the
    largest part of its text) is then not parsed again and the caller's is served: the entry is
    filed under, and names, ``key``, and its checksum proves its text is the one restoro wrote
    with those fields (an entry whose recorded fields were changed and its checksum rewritten
    is out of what the checksum guards, docs/engine.md)."""
    tail = _CHECKSUM_TAIL(data[-_CHECKSUM_LEN:])
    if tail is None:
        return None
    body = data[:-_CHECKSUM_LEN]
    if xxhash.xxh3_128_hexdigest(body + b"}") != tail.group(1).decode("ascii"):
        return None
    try:
        obj = _split_entry(body, key_json) if key_json is not None else None
        if obj is None:
            obj = orjson.loads(data)
        if obj["key"] != key or obj["schema"] != ACTION_SCHEMA:
            return None
        return ActionResult(
            key,
            obj["action_id"],
            obj["key_json"],
            {n: Output(o["digest"], o["size"]) for n, o in obj["outputs"].items()},
            obj["meta"],
            obj["timings"],
            float(obj["created"]),
            ACTION_SCHEMA,
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
        return None


_KEY_JSON_AT = b', "key_json": '
_META_AT = b', "meta": '


def _split_entry(body: bytes, key_json: dict[str, Any]) -> dict[str, Any] | None:
    """An entry's members (its text without the checksum member and the closing brace) with
    ``key_json`` in place of its recorded key fields, parsing the text before and after them
    only; None when the split does not hold (the caller parses the whole text).

    Members are written with sorted names: ``action_id``, ``created``, ``key``, ``key_json``,
    ``meta``, ... . A quote inside a string is escaped, so the first ``, "key_json": `` is the
    member's. A ``, "meta": `` after it may be a member of an object inside the key fields:
    the text after it then closes one object more than it opens and does not parse as one
    object, so the first one that does is the entry's own ``meta``."""
    i = body.find(_KEY_JSON_AT)
    if i < 0:
        return None
    try:
        head = orjson.loads(body[:i] + b"}")
    except orjson.JSONDecodeError:
        return None
    j = i
    for _ in range(8):  # (more nested "meta" members than that: parse it all)
        j = body.find(_META_AT, j + 1)
        if j < 0:
            return None
        try:
            rest = orjson.loads(b"{" + body[j + 2 :] + b"}")
        except orjson.JSONDecodeError:
            continue
        if type(head) is not dict or type(rest) is not dict or "key_json" in rest:
            return None
        head.update(rest)
        head["key_json"] = key_json
        return head
    return None


def parse_entry(key: str, data: bytes, *, full: bool = False) -> ActionResult:
    """The action result in an ``ac/`` entry's bytes; EntryError (a ValueError) naming what is
    wrong when it cannot be trusted as ``key``'s (see ``check_entry``)."""
    return check_entry(key, data, full=full)[0]


def entry_problem(rel: str, exc: ValueError, planned: str | None = None) -> str:
    """One line for a bad entry: where it is, whose it is (the entry's own word, else the
    action last planned with its key), what is wrong."""
    action_id = getattr(exc, "action_id", None)
    if action_id:
        whose = f" (action {action_id})"
    elif planned:
        whose = f" (action {planned}, as last planned)"
    else:
        whose = ""
    return f"{rel}{whose}: {exc}"


def planned_actions(refs: Mapping[str, str]) -> dict[str, str]:
    """``{key: action id}`` from the stat cache's refs (``variant|node id`` → key text)."""
    out: dict[str, str] = {}
    for ref, text in refs.items():
        variant, _, node = ref.partition("|")
        name = f"{node} (variant {variant})" if variant else node or ref
        out[xxhash.xxh3_128_hexdigest(text.encode("utf-8"))] = name
    return out


def output_problem(rel: str, result: ActionResult, sizes: Mapping[str, int | None]) -> str:
    """What is wrong with a trusted entry's outputs, given the size of each verified blob
    (None: missing or corrupt); "" when every output is there with its recorded size."""
    wrong = []
    for name, out in sorted(result.outputs.items()):
        size = sizes.get(out.digest)
        if size is None:
            wrong.append(f"output {name!r}: blob {out.digest} is missing or corrupt")
        elif size != out.size:
            wrong.append(
                f"output {name!r}: blob {out.digest} has {size} bytes, the entry records {out.size}"
            )
    return f"{rel} (action {result.action_id}): {'; '.join(wrong)}" if wrong else ""


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Store:
    """A store rooted at ``root`` (normally ``<manifest dir>/.restoro``)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.cas = self.root / "cas"
        self.ac = self.root / "ac"
        self._cas_s, self._ac_s = str(self.cas), str(self.ac)  # (lookups format paths)
        self.tmp = self.root / "tmp"
        self.quarantine_dir = self.root / "quarantine"
        self.locks = self.root / "locks"
        self._ready = False
        self._state: StateDB | None = None
        self._state_lock = threading.Lock()
        self._check_version()

    # -- layout --------------------------------------------------------------------------------

    def _check_version(self) -> None:
        vfile = self.root / "VERSION"
        self._version = 0
        if not vfile.exists():
            return
        text = vfile.read_text(encoding="utf-8").strip()
        if not text.isdigit():
            raise StoreError(
                f"{vfile} is unreadable ({text[:40]!r})",
                hint=f"if {self.root} is a restoro store, delete that file to reset it",
            )
        if int(text) > STORE_SCHEMA:
            raise StoreError(
                f"the store at {self.root} has schema {text}; this restoro knows {STORE_SCHEMA}",
                hint="upgrade restoro, or point the build at another store",
            )
        self._version = int(text)

    def _ensure(self) -> None:
        if self._ready:
            return
        for d in (self.cas, self.ac, self.tmp, self.quarantine_dir, self.locks):
            d.mkdir(parents=True, exist_ok=True)
        vfile = self.root / "VERSION"
        if self._version < STORE_SCHEMA:  # new, or older: older restoro then refuses it
            tmp = self.tmp / f"VERSION.{uuid.uuid4().hex}"
            tmp.write_text(f"{STORE_SCHEMA}\n", encoding="utf-8")
            os.replace(tmp, vfile)
            self._version = STORE_SCHEMA
        self._ready = True

    @property
    def state(self) -> StateDB:
        """The stat cache, opened on first use (from any thread)."""
        with self._state_lock:
            if self._state is None:
                self._ensure()
                self._state = StateDB(self.root / "state.db")
            return self._state

    def close(self) -> None:
        """Flush and close the stat cache (it reopens if the store is used again)."""
        with self._state_lock:
            if self._state is not None:
                self._state.close()
                self._state = None

    def temp_path(self, suffix: str = "") -> Path:
        """A fresh path under ``tmp/`` (same filesystem as ``cas/``, so rename is atomic)."""
        self._ensure()
        return self.tmp / f"{uuid.uuid4().hex}{suffix}"

    def blob_path(self, digest: str) -> Path:
        hx = digest_hex(digest)
        # One Path from one string: a no-op build resolves thousands of these.
        return Path(f"{self.cas}/{hx[:2]}/{hx[2:]}")

    def _ac_path(self, key: str) -> Path:
        _check_key(key)
        return Path(f"{self.ac}/{key[:2]}/{key[2:]}.json")

    def _mkdir_synced(self, d: Path) -> None:
        if not d.is_dir():
            d.mkdir(parents=True, exist_ok=True)
            _fsync_dir(d.parent)

    def _quarantine(self, path: Path, reason: str) -> None:
        """Move ``path`` out of the way with a note saying why; never serve it again."""
        self._ensure()
        rel = path.relative_to(self.root).as_posix().replace("/", "_")
        dest = (
            self.quarantine_dir / f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}-{rel}"
        )
        try:
            os.rename(path, dest)
        except FileNotFoundError:
            return  # someone else quarantined or removed it first
        note = {"path": str(path.relative_to(self.root)), "reason": reason, "time": time.time()}
        Path(str(dest) + ".note.json").write_text(json.dumps(note, indent=1), encoding="utf-8")
        if path.is_relative_to(self.cas):
            self.state.forget_blobs([path])
        elif path.is_relative_to(self.ac):
            self.state.forget_entries([path.parent.name + path.stem])

    # -- blobs ---------------------------------------------------------------------------------

    def put_file(self, tmp: Path, *, validate: Callable[[Path], None] | None = None) -> Output:
        """Commit ``tmp`` (consumed: moved or deleted) as a blob and return its digest and size.

        ``validate`` may raise to refuse the file (wrong size, undecodable...): the temp file
        is deleted and the exception propagates.
        """
        self._ensure()
        tmp = Path(tmp)
        try:
            _fsync_file(tmp)
            if validate is not None:
                validate(tmp)
            digest = digest_file(tmp)
            size = tmp.stat().st_size
            dest = self.blob_path(digest)
            if dest.exists() and self._check_blob(digest, size, dest) == "ok":
                tmp.unlink()
                return Output(digest, size)
            os.chmod(tmp, 0o444)
            self._mkdir_synced(dest.parent)
            try:
                os.rename(tmp, dest)
            except OSError as e:
                if e.errno != errno.EXDEV:  # tmp lives on another filesystem
                    raise
                local = self.temp_path()
                shutil.copyfile(tmp, local)
                tmp.unlink()
                return self.put_file(local)
            _fsync_dir(dest.parent)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        self.state.mark_blob_verified(dest, digest)
        return Output(digest, size)

    def put_bytes(self, data: bytes) -> Output:
        """Commit ``data`` as a blob."""
        tmp = self.temp_path()
        with open(tmp, "wb") as f:
            f.write(data)
        return self.put_file(tmp)

    def has_blob(self, digest: str) -> bool:
        return self.blob_path(digest).is_file()

    def read_bytes(self, digest: str) -> bytes:
        """A blob's content, checked against its digest (CorruptEntry if it does not match)."""
        path = self.blob_path(digest)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise StoreError(f"blob {digest} is not in the store") from None
        if digest_bytes(data) != digest:
            self._quarantine(path, "content does not match its digest")
            raise CorruptEntry(f"blob {digest} was corrupt and has been quarantined")
        return data

    def export(self, digest: str, dest: Path) -> Path:
        """Copy a verified blob to ``dest`` atomically (writable copy; the blob stays put).

        The copy is made as ``.NAME.<pid>.tmp`` beside ``dest``: what a killed export leaves,
        the next build removes (``restoro.engine.materialise``)."""
        if not self.verify_blob(digest):
            raise CorruptEntry(f"blob {digest} is missing or corrupt", hint="rebuild it")
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = export_temp(dest)
        try:
            shutil.copyfile(self.blob_path(digest), part)
            os.replace(part, dest)
        finally:
            part.unlink(missing_ok=True)
        return dest

    def _check_blob(
        self, digest: str, size: int | None, path: Path | None = None, *, full: bool = False
    ) -> Literal["ok", "missing", "corrupt"]:
        if path is None:
            # The common case (thousands per no-op build): one string, one stat, one dict
            # lookup; a Path only on the slow path.
            hx = digest_hex(digest)
            fast = f"{self._cas_s}/{hx[:2]}/{hx[2:]}"
            try:
                st = os.stat(fast)
            except FileNotFoundError:
                return "missing"
            if (
                (size is None or st.st_size == size)
                and not full
                and (self._state or self.state).blob_verified(fast, digest, st)
            ):
                return "ok"
            path = Path(fast)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return "missing"
        if size is not None and st.st_size != size:
            # An intact blob of another size is a wrong entry's fault (a digest pointing at
            # another output): keep the blob, refuse the pair.
            self._check_blob(digest, None, path, full=full)  # quarantined if its content is bad
            return "corrupt"
        if not full and self.state.blob_verified(path, digest, st):
            return "ok"
        try:
            actual = digest_file(path)
        except FileNotFoundError:
            return "missing"
        if actual != digest:
            self._quarantine(path, f"content hashes to {actual}")
            return "corrupt"
        self.state.mark_blob_verified(path, digest, st)
        return "ok"

    def _check_size(self, digest: str, size: int) -> Literal["ok", "missing", "corrupt"]:
        try:
            if self.blob_path(digest).stat().st_size == size:
                return "ok"
        except FileNotFoundError:
            return "missing"
        return self._check_blob(digest, size)  # quarantines it

    def verify_blob(self, digest: str, size: int | None = None) -> bool:
        """Whether the blob exists, has ``size`` and hashes to ``digest``; bad ones quarantined."""
        return self._check_blob(digest, size) == "ok"

    # -- action results ------------------------------------------------------------------------

    def lookup(
        self, key: str, *, verify: bool = True, key_json: dict[str, Any] | None = None
    ) -> Lookup:
        """Find the result of action ``key``; only a complete, verified result is a hit.

        With ``verify=False`` outputs are only checked to exist with the right size.
        ``key_json``: the key fields that hash to ``key``, when the caller has them (an entry
        served from the ``ac/`` index then skips parsing its own copy: ``indexed_entry``).
        """
        _check_key(key)
        path = f"{self._ac_s}/{key[:2]}/{key[2:]}.json"
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return Lookup("absent")
        state = self._state or self.state  # (the property takes a lock: once per lookup here)
        known = state.known_entry(key, st)  # the bytes verified before, if the file is untouched
        result = indexed_entry(key, known, key_json) if known is not None else None
        if result is None:
            try:
                with open(path, "rb") as fh:
                    raw = fh.read()
                    st = os.fstat(fh.fileno())  # the stat of the bytes read
            except FileNotFoundError:
                return Lookup("absent")
            try:
                result, legacy = check_entry(key, raw)
            except ValueError as e:  # EntryError, and anything else malformed
                self._quarantine(self._ac_path(key), f"untrusted action entry: {e}")
                return Lookup("corrupt", detail=entry_problem(f"ac/{key[:2]}/{key[2:]}.json", e))
            if not legacy:  # a legacy entry is checked by its key fields every time
                state.remember_entry(key, st, raw)
        # No write batch here: an unchanged blob costs one stat and no write at all.
        for name, out in result.outputs.items():
            if verify:
                # ``_check_blob``'s common case inline (thousands per no-op build): a
                # well-formed digest, its blob's stat and the stat cache's row; anything
                # else (missing, another size, changed since verified) goes the full way.
                digest = out.digest
                if _DIGEST_MATCH(digest) is not None:
                    fast = f"{self._cas_s}/{digest[7:9]}/{digest[9:]}"
                    try:
                        st = os.stat(fast)
                    except FileNotFoundError:
                        return Lookup("output-missing", detail=f"{name} ({digest})")
                    if st.st_size == out.size and state.blob_verified(fast, digest, st):
                        continue
                status = self._check_blob(digest, out.size)
            else:
                status = self._check_size(out.digest, out.size)
            if status == "missing":
                return Lookup("output-missing", detail=f"{name} ({out.digest})")
            if status == "corrupt":
                return Lookup("corrupt", detail=f"{name} ({out.digest})")
        return Lookup("hit", result)

    def put_action(self, result: ActionResult) -> None:
        """Record ``result`` atomically; every output blob must already be in the store."""
        self._ensure()
        for name, out in result.outputs.items():
            try:
                size = self.blob_path(out.digest).stat().st_size
            except FileNotFoundError:
                raise StoreError(
                    f"action {result.action_id}: output {name!r} ({out.digest}) is not in the store"
                ) from None
            if size != out.size:
                raise StoreError(f"action {result.action_id}: output {name!r} has the wrong size")
        path = self._ac_path(result.key)
        tmp = self.temp_path(".json")
        try:
            tmp.write_bytes(entry_bytes(result))
            _fsync_file(tmp)
            self._mkdir_synced(path.parent)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        _fsync_dir(path.parent)

    def put_action_if_absent(self, result: ActionResult) -> ActionResult:
        """Record ``result`` unless a valid entry for its key exists; return what the store holds.

        The entry is written to ``tmp/`` and hard-linked into ``ac/`` (``link`` fails if the name
        exists, so two workers committing the same key never overwrite each other). An existing
        entry that does not verify is quarantined and replaced.
        """
        self._ensure()
        path = self._ac_path(result.key)
        for _ in range(3):
            existing = self.lookup(result.key)
            if existing.status == "hit" and existing.result is not None:
                return existing.result
            if existing.status != "absent":
                path.unlink(missing_ok=True)  # output-missing: the new blobs make it whole
            tmp = self.temp_path(".json")
            try:
                tmp.write_bytes(entry_bytes(result))
                _fsync_file(tmp)
                self._mkdir_synced(path.parent)
                for name, out in result.outputs.items():
                    if self._check_blob(out.digest, out.size) != "ok":
                        raise StoreError(
                            f"action {result.action_id}: output {name!r} ({out.digest}) "
                            "is not in the store"
                        )
                try:
                    os.link(tmp, path)
                except FileExistsError:
                    continue  # another worker won; check and return its entry
                except OSError as e:
                    if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP):
                        raise
                    if path.exists():  # no hard links here: best effort exclusive rename
                        continue
                    os.replace(tmp, path)
                _fsync_dir(path.parent)
                return result
            finally:
                tmp.unlink(missing_ok=True)
        raise StoreError(f"could not record action {result.action_id} ({result.key})")

    def check_writable(self) -> None:
        """StoreError (with a hint) unless this process can create files in the store."""
        try:
            self._ensure()
            probe = self.temp_path(".probe")
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as e:
            raise StoreError(
                f"the store at {self.root} is not writable: {e.strerror or e}",
                hint="check the path and its permissions (every worker writes outputs there)",
            ) from None

    def _ac_files(self) -> Iterator[Path]:
        if self.ac.is_dir():
            yield from sorted(self.ac.glob("*/*.json"))

    def _read_entry(self, path: Path, *, full: bool = False) -> tuple[ActionResult, bool]:
        """The entry at ``path`` and whether it is legacy; EntryError if it is not trusted."""
        key = path.parent.name + path.stem
        if _KEY_MATCH(key) is None or path != self._ac_path(key):
            raise EntryError(f"{path.name} is not the name of an action entry")
        return check_entry(key, path.read_bytes(), full=full)

    def iter_actions(self) -> Iterator[ActionResult]:
        """Every readable action result (unreadable ones are skipped; ``verify`` reports them)."""
        for path in self._ac_files():
            try:
                yield self._read_entry(path)[0]
            except (ValueError, FileNotFoundError):
                continue

    def _blob_files(self) -> Iterator[tuple[Path, str | None]]:
        """Every file under ``cas/`` with the digest its name says (None: not a blob name)."""
        if not self.cas.is_dir():
            return
        for path in sorted(self.cas.rglob("*")):
            if path.is_dir():
                continue
            rel = path.relative_to(self.cas).parts
            hx = "".join(rel)
            ok = len(rel) == 2 and len(rel[0]) == 2 and len(hx) == 32 and set(hx) <= _HEX
            yield path, (DIGEST_PREFIX + hx if ok else None)

    # -- maintenance ---------------------------------------------------------------------------

    def verify(self, *, full: bool = True) -> VerifyReport:
        """Check every blob and every action entry; quarantine what is bad and report it.

        ``full`` rehashes every blob, ignoring the stat cache.
        """
        report = VerifyReport()
        planned: dict[str, str] | None = None
        good: dict[str, int] = {}  # digest → size of every blob that checked out
        with self.state.batch():
            for path, digest in self._blob_files():
                report.blobs_checked += 1
                if digest is None:
                    self._quarantine(path, "not a blob name")
                    status = "corrupt"
                else:
                    status = self._check_blob(digest, None, path, full=full)
                if status == "ok" and digest is not None:
                    with contextlib.suppress(FileNotFoundError):  # removed meanwhile
                        good[digest] = path.stat().st_size
                if status == "corrupt":
                    report.blobs_bad += 1
                    report.problems.append(f"blob {path.relative_to(self.root)}: corrupt")
            for path in self._ac_files():
                report.actions_checked += 1
                rel = path.relative_to(self.root).as_posix()
                try:
                    result, legacy = self._read_entry(path, full=True)
                except FileNotFoundError:
                    continue  # removed meanwhile
                except ValueError as e:
                    if planned is None:
                        planned = planned_actions(self.state.all_refs())
                    problem = entry_problem(rel, e, planned.get(path.parent.name + path.stem))
                else:
                    report.actions_legacy += legacy
                    problem = output_problem(rel, result, good)
                if problem:
                    report.actions_bad += 1
                    report.problems.append(problem)
                    self._quarantine(path, problem)
        return report

    def gc(self, keep: set[str]) -> GcReport:
        """Delete action entries not in ``keep``, then unreferenced blobs, then stale temp files.

        The caller holds the workspace lock, so no build is committing blobs meanwhile.
        """
        report = GcReport()
        referenced: set[str] = set()
        touched: set[Path] = set()
        gone: list[str] = []
        for path in self._ac_files():
            try:
                result: ActionResult | None = self._read_entry(path)[0]
            except (ValueError, FileNotFoundError):
                result = None
            if result is not None and result.key in keep:
                referenced.update(o.digest for o in result.outputs.values())
                continue
            path.unlink(missing_ok=True)
            touched.add(path.parent)
            gone.append(path.parent.name + path.stem)
            report.actions_removed += 1
        for d in touched:  # the entries must be gone for good before their blobs go
            _fsync_dir(d)
        if gone:
            self.state.forget_entries(gone)
        removed: list[Path] = []
        for path, digest in self._blob_files():
            if digest in referenced:
                continue
            report.bytes_removed += path.stat().st_size
            path.unlink()
            removed.append(path)
            report.blobs_removed += 1
        if removed:
            self.state.forget_blobs(removed)
        now = time.time()
        if self.tmp.is_dir():
            for path in self.tmp.iterdir():
                try:
                    if path.is_file() and now - path.stat().st_mtime > TMP_MAX_AGE:
                        path.unlink()
                        report.tmp_removed += 1
                except FileNotFoundError:
                    continue
        return report

    def usage(self) -> dict[str, int]:
        """Counts and bytes of what the store holds."""
        blobs = [p for p, _ in self._blob_files()]

        def count(d: Path) -> int:
            return sum(1 for p in d.iterdir() if p.is_file()) if d.is_dir() else 0

        quarantined = self.quarantine_dir.glob("*") if self.quarantine_dir.is_dir() else ()
        return {
            "actions": sum(1 for _ in self._ac_files()),
            "blobs": len(blobs),
            "bytes": sum(p.stat().st_size for p in blobs),
            "tmp_files": count(self.tmp),
            "quarantined": sum(1 for p in quarantined if not p.name.endswith(".note.json")),
        }


def store_root(url: str | Path) -> Path:
    """The directory of a store addressed by a local path or a ``file://`` URL.

    Other schemes are not directories: UsageError. Object stores (``s3://``) are opened by
    ``restoro.farm.remote`` (``execute.open_store`` and ``Workspace`` dispatch on the URL).
    """
    from urllib.parse import unquote, urlparse

    from restoro.errors import UsageError

    text = str(url)
    if "://" not in text:
        return Path(text).expanduser().absolute()
    parsed = urlparse(text)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise UsageError(f"store URL {text!r} names a host", hint="use file:///absolute/path")
        return Path(unquote(parsed.path)).absolute()
    raise UsageError(
        f"store URL scheme {parsed.scheme!r} is not supported",
        hint="use a local or shared-filesystem path, or a file:// URL",
    )
