"""The stat cache (``state.db``): what we already know about files, so we hash them once.

A file's digest is remembered with its stat tuple and reused while the tuple is unchanged, so a
40 GB source is hashed once and a CAS blob that nobody touched is verified with one ``stat``.
The database is a cache: an unknown schema or an unreadable file is dropped and recreated.

It also indexes ``ac/`` entries (table ``entries``): the bytes of an entry that a lookup read
and verified, with the entry file's stat tuple. While the file's stat tuple is unchanged a lookup
takes the bytes from here instead of reading the file (``restoro.engine.store``; the checksum is
still checked); any write to the file (an edit, a rewrite, a replace) changes its ctime, so the
file is read and verified again. The whole index is read in one query, like the blob rows.

Timestamps have a coarse granularity (a kernel tick), so a file rewritten within the same tick
as it was hashed keeps its stat tuple. Like git's "racy clean" rule, a result is not remembered
while the file's timestamps are younger than ``racy_window_ns``.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import threading
import time
import weakref
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from restoro.engine.keys import digest_file

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping

SCHEMA = 1
_FLUSH_AT = 2000
_CHUNK = 500  # host parameters per query, well under SQLite's limit

# Added to schema 1 without a bump (a bump would drop the files table: every source rehashed);
# created where it is missing, and older restoro ignores it.
_ENTRIES = (
    "CREATE TABLE IF NOT EXISTS entries (key TEXT PRIMARY KEY, ino INTEGER, size INTEGER,"
    " mtime_ns INTEGER, ctime_ns INTEGER, data BLOB NOT NULL)"
)

_TABLES = (
    "CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE files (path TEXT PRIMARY KEY, ino INTEGER, size INTEGER, mtime_ns INTEGER,"
    " ctime_ns INTEGER, digest TEXT NOT NULL)",
    "CREATE TABLE blobs (path TEXT PRIMARY KEY, ino INTEGER, size INTEGER, mtime_ns INTEGER,"
    " ctime_ns INTEGER, digest TEXT NOT NULL)",
    "CREATE TABLE refs (action_id TEXT PRIMARY KEY, key TEXT NOT NULL)",
    _ENTRIES,
)

Row = tuple[int, int, int, int, str]  # ino, size, mtime_ns, ctime_ns, digest
EntryRow = tuple[int, int, int, int, bytes]  # ino, size, mtime_ns, ctime_ns, entry bytes


def _row(st: os.stat_result, digest: str) -> Row:
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, digest)


class StateDB:
    """SQLite stat cache and action-id → key refs, safe across threads and processes."""

    racy_window_ns: int = 2_000_000_000

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        self._batch_depth = 0
        self._blob_rows: dict[str, Row] | None = None
        self._entry_rows: dict[str, EntryRow] | None = None
        self._pending: dict[str, dict[str, Row | str]] = {"files": {}, "blobs": {}, "refs": {}}
        self._pending_entries: dict[str, EntryRow] = {}
        self._conn = self._open()
        # Dropped without close() (say, a throwaway Store), it still closes its connection,
        # quietly: Python 3.13 warns about an unclosed one. Unflushed rows are only cache.
        self._close_conn = weakref.finalize(self, self._conn.close)

    # -- connection and schema -------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        for attempt in range(50):
            try:
                return self._connect()
            except sqlite3.OperationalError:
                # Busy or locked (another process is creating the file): never a reason to
                # delete it. Wait and retry.
                if attempt == 49:
                    raise
                time.sleep(0.1)
            except sqlite3.DatabaseError:
                break
        try:
            return self._connect()
        except sqlite3.DatabaseError:
            # Not a database (truncated, overwritten): it is only a cache, start again.
            for suffix in ("", "-wal", "-shm"):
                Path(str(self.path) + suffix).unlink(missing_ok=True)
            return self._connect()

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            self.path, timeout=30.0, isolation_level=None, check_same_thread=False
        )
        try:
            conn.execute("PRAGMA busy_timeout = 30000")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("BEGIN IMMEDIATE")
            try:
                self._ensure_schema(conn)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except BaseException:
            conn.close()
            raise
        return conn

    @staticmethod
    def _ensure_schema(conn: sqlite3.Connection) -> None:
        version = None
        try:
            got = conn.execute("SELECT value FROM meta WHERE name = 'schema'").fetchone()
            version = got[0] if got else None
        except sqlite3.OperationalError:
            pass  # no meta table: new or foreign database
        if version == str(SCHEMA):
            conn.execute(_ENTRIES)
            return
        names = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        for (name,) in names:
            if not name.startswith("sqlite_"):
                conn.execute(f'DROP TABLE "{name}"')
        for ddl in _TABLES:
            conn.execute(ddl)
        conn.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA),))

    def close(self) -> None:
        """Write pending rows and close the connection."""
        with self._lock:
            self.flush()
            self._close_conn()

    def __enter__(self) -> StateDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- write-behind ----------------------------------------------------------------------

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Buffer writes until the outermost batch ends (one transaction instead of thousands)."""
        with self._lock:
            self._batch_depth += 1
        try:
            yield
        finally:
            with self._lock:
                self._batch_depth -= 1
                if self._batch_depth == 0:
                    self.flush()

    def flush(self) -> None:
        """Commit buffered writes in one transaction."""
        with self._lock:
            files, blobs, refs = (self._pending[t] for t in ("files", "blobs", "refs"))
            entries = self._pending_entries
            if not (files or blobs or refs or entries):
                return
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                for table, rows in (("files", files), ("blobs", blobs)):
                    conn.executemany(
                        f"INSERT OR REPLACE INTO {table} VALUES (?, ?, ?, ?, ?, ?)",
                        [(p, *r) for p, r in rows.items()],
                    )
                conn.executemany("INSERT OR REPLACE INTO refs VALUES (?, ?)", list(refs.items()))
                conn.executemany(
                    "INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?, ?, ?)",
                    [(k, *r) for k, r in entries.items()],
                )
                conn.execute("COMMIT")
            except BaseException as exc:
                if conn.in_transaction:  # SQLite already rolled back on a full disk
                    conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.OperationalError) and "full" in str(exc):
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.path)) from exc
                raise
            for rows in self._pending.values():
                rows.clear()
            entries.clear()

    def _write(self, table: str, name: str, value: Row | str) -> None:
        with self._lock:
            self._pending[table][name] = value
            if table == "blobs" and self._blob_rows is not None:
                self._blob_rows[name] = value  # type: ignore[assignment]
            if self._batch_depth == 0 or len(self._pending[table]) >= _FLUSH_AT:
                self.flush()

    def _read(self, table: str, path: str) -> Row | None:
        with self._lock:
            pending = self._pending[table].get(path)
            if pending is not None:
                return pending  # type: ignore[return-value]
            if table == "blobs":
                # A build checks thousands of blobs: read the table once, not row by row. Rows
                # other processes add later are simply re-verified (a hash) on first use.
                if self._blob_rows is None:
                    self._blob_rows = {
                        r[0]: r[1:]
                        for r in self._conn.execute(
                            "SELECT path, ino, size, mtime_ns, ctime_ns, digest FROM blobs"
                        )
                    }
                return self._blob_rows.get(path)  # type: ignore[return-value]
            got = self._conn.execute(
                f"SELECT ino, size, mtime_ns, ctime_ns, digest FROM {table} WHERE path = ?",
                (path,),
            ).fetchone()
        return tuple(got) if got else None

    def _racy(self, st: os.stat_result, now_ns: int) -> bool:
        return max(st.st_mtime_ns, st.st_ctime_ns) >= now_ns - self.racy_window_ns

    # -- source files ----------------------------------------------------------------------

    def file_digest(self, path: Path | str) -> str:
        """Digest of a file's content; rehashed only when (inode, size, mtime) changed."""
        real = os.path.realpath(path)
        st = os.stat(real)
        cached = self._read("files", real)
        if cached is not None and cached[:3] == (st.st_ino, st.st_size, st.st_mtime_ns):
            return cached[4]
        now = time.time_ns()
        digest = digest_file(real)
        after = os.stat(real)
        same = (after.st_ino, after.st_size, after.st_mtime_ns) == (
            st.st_ino,
            st.st_size,
            st.st_mtime_ns,
        )
        if same and not self._racy(after, now):
            self._write("files", real, _row(after, digest))
        return digest

    # -- tool fingerprints -----------------------------------------------------------------

    def known_tool(self, name: str, path: str, st: os.stat_result) -> str | None:
        """The fingerprint last computed for tool ``name`` at ``path`` (e.g. ffmpeg's, from
        its ``-version`` run), if the binary (stat ``st``) has not changed since: same inode,
        size, mtime and ctime. Kept in ``files`` under ``tool:<name>:<path>``."""
        row = self._read("files", f"tool:{name}:{path}")
        if row is None or row[:4] != (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns):
            return None
        return row[4]

    def remember_tool(self, name: str, path: str, st: os.stat_result, fingerprint: str) -> None:
        """Remember a tool's fingerprint, computed from the binary with stat ``st`` (not while
        the binary is racy: a rewrite in the same tick would keep its stat tuple)."""
        if not self._racy(st, time.time_ns()):
            self._write("files", f"tool:{name}:{path}", _row(st, fingerprint))

    # -- CAS blobs -------------------------------------------------------------------------

    def blob_verified(
        self, path: Path | str, digest: str, st: os.stat_result | None = None
    ) -> bool:
        """Whether ``path`` was verified to hold ``digest`` and has not changed since (one stat)."""
        key = path if type(path) is str else str(path)
        try:
            st = st or os.stat(key)
        except FileNotFoundError:
            return False
        rows = self._blob_rows  # once read, it holds the pending rows too (``_write``)
        if rows is not None:  # the common case: no lock, no tuple
            row = rows.get(key)
            return (
                row is not None
                and row[4] == digest
                and row[0] == st.st_ino
                and row[1] == st.st_size
                and row[2] == st.st_mtime_ns
                and row[3] == st.st_ctime_ns
            )
        cached = self._read("blobs", key)
        return cached is not None and cached == (
            st.st_ino,
            st.st_size,
            st.st_mtime_ns,
            st.st_ctime_ns,
            digest,
        )

    def mark_blob_verified(
        self, path: Path | str, digest: str, st: os.stat_result | None = None
    ) -> None:
        """Remember that ``path`` (with its current stat tuple) holds ``digest``."""
        key = str(path)
        now = time.time_ns()
        st = st or os.stat(key)
        if not self._racy(st, now):
            self._write("blobs", key, _row(st, digest))

    def _delete(self, table: str, column: str, names: list[str]) -> None:
        """Delete the rows of ``table`` whose ``column`` is one of ``names`` (in chunks that
        stay under SQLite's limit of bound parameters); the caller holds the lock."""
        for i in range(0, len(names), _CHUNK):
            part = names[i : i + _CHUNK]
            marks = ",".join("?" * len(part))
            self._conn.execute(f"DELETE FROM {table} WHERE {column} IN ({marks})", part)

    def forget_blobs(self, paths: Iterable[Path | str]) -> None:
        """Drop cache rows for blobs that were removed or quarantined."""
        names = [str(p) for p in paths]
        with self._lock:
            for name in names:
                self._pending["blobs"].pop(name, None)
                if self._blob_rows is not None:
                    self._blob_rows.pop(name, None)
            self._delete("blobs", "path", names)

    # -- the ac/ index ---------------------------------------------------------------------

    def known_entry(self, key: str, st: os.stat_result) -> bytes | None:
        """The bytes last verified for action ``key``'s entry, if its file (stat ``st``) has
        not changed since (same inode, size, mtime and ctime)."""
        rows = self._entry_rows  # once read, it holds the pending rows too (remember_entry)
        if rows is not None:
            row = rows.get(key)
            if (
                row is None
                or row[0] != st.st_ino
                or row[1] != st.st_size
                or row[2] != st.st_mtime_ns
                or row[3] != st.st_ctime_ns
            ):
                return None
            return row[4] if type(row[4]) is bytes else None
        with self._lock:
            row = self._pending_entries.get(key)
            if row is None:
                if self._entry_rows is None:
                    # One query for the whole index (a no-op build looks up thousands).
                    self._entry_rows = {
                        r[0]: r[1:]  # type: ignore[misc]
                        for r in self._conn.execute(
                            "SELECT key, ino, size, mtime_ns, ctime_ns, data FROM entries"
                        )
                    }
                row = self._entry_rows.get(key)
        if row is None or row[:4] != (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns):
            return None
        return row[4] if isinstance(row[4], bytes) else None  # a foreign row: read the file

    def remember_entry(self, key: str, st: os.stat_result, data: bytes) -> None:
        """Index ``data``, just verified as action ``key``'s entry, read from a file with stat
        ``st``. Buffered until the next flush (``close``, a batch's end): it is only a cache.
        Not while the file is racy (a rewrite in the same tick would keep its stat tuple)."""
        if self._racy(st, time.time_ns()):
            return
        row = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, bytes(data))
        with self._lock:
            self._pending_entries[key] = row
            if self._entry_rows is not None:
                self._entry_rows[key] = row
            if len(self._pending_entries) >= _FLUSH_AT:
                self.flush()

    def forget_entries(self, keys: Iterable[str]) -> None:
        """Drop index rows of entries that were removed or quarantined."""
        names = list(keys)
        with self._lock:
            for name in names:
                self._pending_entries.pop(name, None)
                if self._entry_rows is not None:
                    self._entry_rows.pop(name, None)
            self._delete("entries", "key", names)

    # -- refs: the last key planned for each logical action --------------------------------

    def get_ref(self, action_id: str) -> str | None:
        """The key last planned for ``action_id``, if any."""
        return self.get_refs([action_id]).get(action_id)

    def get_refs(self, ids: Iterable[str]) -> dict[str, str]:
        """Keys last planned for many action ids, in as few queries as possible."""
        wanted = list(dict.fromkeys(ids))
        out: dict[str, str] = {}
        with self._lock:
            left = wanted
            if len(wanted) > 2 * _CHUNK:
                # Thousands (a no-op build's): one read of the table is faster than queries
                # by id, while the table is not much larger than what is wanted.
                (rows,) = self._conn.execute("SELECT count(*) FROM refs").fetchone()
                if rows <= 2 * len(wanted):
                    every = dict(self._conn.execute("SELECT action_id, key FROM refs").fetchall())
                    out.update((k, every[k]) for k in wanted if k in every)
                    left = []
            for i in range(0, len(left), _CHUNK):
                part = left[i : i + _CHUNK]
                marks = ",".join("?" * len(part))
                found = self._conn.execute(
                    f"SELECT action_id, key FROM refs WHERE action_id IN ({marks})", part
                )
                out.update(dict(found.fetchall()))
            for action_id in wanted:
                pending = self._pending["refs"].get(action_id)
                if isinstance(pending, str):
                    out[action_id] = pending
        return out

    def all_refs(self) -> dict[str, str]:
        """Every action id with the key text last planned for it (to name the action behind
        an unreadable entry)."""
        with self._lock:
            out = dict(self._conn.execute("SELECT action_id, key FROM refs").fetchall())
            out.update((k, v) for k, v in self._pending["refs"].items() if isinstance(v, str))
        return out

    def set_refs(self, mapping: Mapping[str, str]) -> None:
        """Record the key planned for each action id (one transaction)."""
        with self.batch():
            for action_id, key in mapping.items():
                self._write("refs", action_id, key)
