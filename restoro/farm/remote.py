"""A store on an object store (``s3://bucket/prefix``), with a local store in front as its cache.

The object store holds the same layout as a local store (``cas/ab/cdef…``, ``ac/ab/….json``,
``locks/leases/<key>``, ``quarantine/``). ``RemoteStore`` is a normal ``Store`` rooted at a local
cache directory (``$RESTORO_CACHE_DIR/stores/<id>``, default ``~/.cache/restoro/stores/<id>``)
that also talks to the object store:

* a lookup that misses locally reads the remote ``ac/`` entry and checks each output blob is
  there with the recorded size (one HEAD); blobs are downloaded only when they are used, and
  verified against their digest on arrival: a corrupt one is quarantined (locally and remotely)
  and never served;
* a commit goes to the local cache first, then the blobs are uploaded (content-addressed: an
  existing blob of the right size is left alone), then the ``ac/`` entry LAST with a real atomic
  put-if-absent (S3 conditional write ``If-None-Match: *``); a broken entry is replaced only
  with ``If-Match`` on the ETag that was judged broken;
* a local cache entry is written only once the remote one exists, so a local hit implies a
  remote entry.

URLs, credentials and the requests themselves are in ``restoro.farm.remote_objects``; leases
live on the object store too (``restoro.farm.remote_leases``).
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any, Literal

from restoro.engine.execute import STORE_BACKENDS
from restoro.engine.keys import digest_file, digest_hex, digest_stream, is_digest
from restoro.engine.store import (
    _KEY_MATCH,
    STORE_SCHEMA,
    ActionResult,
    EntryError,
    Lookup,
    Output,
    Store,
    VerifyReport,
    check_entry,
    entry_bytes,
    entry_problem,
    output_problem,
    parse_entry,
    planned_actions,
)
from restoro.errors import CorruptEntry, StoreError, UsageError
from restoro.farm.remote_objects import (
    ObjectStore,
    ac_rel,
    cache_root,
    cas_rel,
    endpoint_hint,
    is_remote_url,
    parse_url,
    storage_options,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

CONNECT_TIMEOUT = 3.0
_HEX = frozenset("0123456789abcdef")
Fetched = Literal["ok", "missing", "corrupt"]


# -- the store --------------------------------------------------------------------------------


class RemoteStore(Store):
    """The store at an ``s3://`` URL, with a local store (the cache) in front of it."""

    def __init__(self, url: str, *, cache: Path | None = None) -> None:
        self.loc = parse_url(url)
        self.url = self.loc.url
        opts = storage_options()
        self.remote = ObjectStore(self.loc, opts)
        super().__init__(cache or cache_root(url))
        self._tl = threading.local()
        self._remote_blobs: set[str] = set()  # digests known to be remotely, with their size
        # Striped locks: two threads wanting one blob download it once.
        self._fetch_locks = [threading.Lock() for _ in range(32)]
        self._version_seen = self._version_written = False
        from restoro.engine.leases import register_backend
        from restoro.farm.remote_leases import ObjectLeases

        register_backend(self.locks / "leases", ObjectLeases(self.remote))

    # Inside ``_local()`` this object behaves exactly as the local ``Store`` it extends: the
    # base class's own calls (lookup from put_action_if_absent, blob_path from put_file…) must
    # not reach the object store.
    def _is_local(self) -> bool:
        return bool(getattr(self._tl, "local", 0))

    class _LocalOnly:
        def __init__(self, store: RemoteStore) -> None:
            self.tl = store._tl

        def __enter__(self) -> None:
            self.tl.local = getattr(self.tl, "local", 0) + 1

        def __exit__(self, *exc: object) -> None:
            self.tl.local -= 1

    def _local(self) -> RemoteStore._LocalOnly:
        return RemoteStore._LocalOnly(self)

    def _ensure(self) -> None:
        if not self._ready:
            super()._ensure()
            marker = self.root / "REMOTE"
            if not marker.exists():
                marker.write_text(self.url + "\n", encoding="utf-8")

    # -- blobs -----------------------------------------------------------------------------
    def blob_path(self, digest: str) -> Path:
        path = super().blob_path(digest)
        if not self._is_local() and not path.is_file():
            self.fetch(digest)
        return path

    def put_file(self, tmp: Path, *, validate: Callable[[Path], None] | None = None) -> Output:
        with self._local():
            out = super().put_file(tmp, validate=validate)
        self._upload_blob(out)
        return out

    def has_blob(self, digest: str) -> bool:
        if self._is_local():
            return super().has_blob(digest)
        return Store.blob_path(self, digest).is_file() or self.fetch(digest) == "ok"

    def verify_blob(self, digest: str, size: int | None = None) -> bool:
        if self._is_local():
            return super().verify_blob(digest, size)
        with self._local():
            if self._check_blob(digest, size) == "ok":
                return True
        return self.fetch(digest, size) == "ok"

    def read_bytes(self, digest: str) -> bytes:
        if not self._is_local() and not Store.blob_path(self, digest).is_file():
            if self.fetch(digest) == "corrupt":
                raise CorruptEntry(
                    f"blob {digest} in {self.url} was corrupt and has been quarantined"
                )
        with self._local():
            return super().read_bytes(digest)

    def _remote_size(self, digest: str) -> int | None:
        head = self.remote.head(cas_rel(digest))
        return None if head is None else head[0]

    def _upload_blob(self, out: Output) -> None:
        """Make sure the object store has the blob (content-addressed: never overwritten when
        it is there with the right size)."""
        if out.digest in self._remote_blobs:
            return
        if self._remote_size(out.digest) != out.size:
            self.remote.upload(Store.blob_path(self, out.digest), cas_rel(out.digest))
        self._remote_blobs.add(out.digest)

    def fetch(self, digest: str, size: int | None = None) -> Fetched:
        """Download a blob into the local cache, verified against its digest on arrival."""
        lock = self._fetch_locks[int(digest_hex(digest)[:4], 16) % len(self._fetch_locks)]
        with lock, self._local():
            if Store.blob_path(self, digest).is_file() and self._check_blob(digest, size) == "ok":
                return "ok"
            rel = cas_rel(digest)
            head = self.remote.head(rel)
            if head is None:
                self._remote_blobs.discard(digest)
                return "missing"
            rsize, etag = head
            if size is not None and rsize != size:
                self._quarantine_remote(rel, etag, f"size {rsize} != recorded {size}")
                return "corrupt"
            tmp = self.temp_path(".fetch")
            try:
                self.remote.download(rel, tmp)
            except FileNotFoundError:
                tmp.unlink(missing_ok=True)
                return "missing"
            actual = digest_file(tmp)
            if actual != digest:
                self._quarantine(tmp, f"downloaded from {self.url}/{rel}: content is {actual}")
                self._quarantine_remote(rel, etag, f"content hashes to {actual}")
                return "corrupt"
            super().put_file(tmp)
            self._remote_blobs.add(digest)
            return "ok"

    def quarantine_blob(self, digest: str, reason: str) -> None:
        """Quarantine the object store's copy of a blob found bad."""
        head = self.remote.head(cas_rel(digest))
        if head is not None:
            self._quarantine_remote(cas_rel(digest), head[1], reason)

    def _quarantine_remote(self, rel: str, etag: str, reason: str) -> None:
        """Move a bad object aside (copy, then delete only the version judged bad)."""
        stamp = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
        dest = f"quarantine/{stamp}-{rel.replace('/', '_')}"
        try:
            self.remote.copy(rel, dest)
            note = {"path": rel, "reason": reason, "time": time.time()}
            self.remote.put(dest + ".note.json", json.dumps(note, indent=1).encode())
        except FileNotFoundError:
            return
        self.remote.delete(rel, if_match=etag)
        if rel.startswith("cas/"):
            self._remote_blobs.discard("xxh128:" + rel[4:].replace("/", ""))

    # -- action results --------------------------------------------------------------------
    def lookup(self, key: str, *, verify: bool = True, key_json: Any = None) -> Lookup:
        with self._local():
            local = super().lookup(key, verify=verify, key_json=key_json)
        if self._is_local() or local.status == "hit":
            return local
        self._check_version_remote(writing=False)
        remote = self._remote_lookup(key, verify=verify)
        if remote.status == "absent" and local.status != "absent":
            return local
        return remote

    def _remote_entry(self, key: str) -> tuple[ActionResult | None, str, Lookup | None]:
        """The remote entry for ``key`` and its ETag; a Lookup when there is none to use."""
        rel = ac_rel(key)
        got = self.remote.get(rel)
        if got is None:
            return None, "", Lookup("absent")
        data, etag, _ = got
        try:
            return parse_entry(key, data), etag, None
        except ValueError as e:  # EntryError, and anything else malformed
            self._quarantine_remote(rel, etag, f"untrusted action entry: {e}")
            return None, etag, Lookup("corrupt", detail=entry_problem(rel, e))

    def _check_remote_outputs(self, result: ActionResult, *, verify: bool) -> Lookup:
        local_ok = True
        for name, out in result.outputs.items():
            with self._local():
                status = (
                    self._check_blob(out.digest, out.size)
                    if verify
                    else self._check_size(out.digest, out.size)
                )
            if status == "ok":
                continue
            local_ok = False
            if out.digest in self._remote_blobs:
                continue
            head = self.remote.head(cas_rel(out.digest))
            if head is None:
                return Lookup("output-missing", detail=f"{name} ({out.digest})")
            if head[0] != out.size:
                self._quarantine_remote(
                    cas_rel(out.digest), head[1], f"size {head[0]} != recorded {out.size}"
                )
                return Lookup("corrupt", detail=f"{name} ({out.digest})")
            self._remote_blobs.add(out.digest)
        if local_ok:  # remember it locally: the next lookup costs no request
            with self._local():
                super().put_action_if_absent(result)
        return Lookup("hit", result)

    def _remote_lookup(self, key: str, *, verify: bool = True) -> Lookup:
        result, _, failed = self._remote_entry(key)
        if failed is not None or result is None:
            return failed or Lookup("absent")
        return self._check_remote_outputs(result, verify=verify)

    def _commit_blobs(self, result: ActionResult) -> None:
        self._check_version_remote()
        for name, out in result.outputs.items():
            with self._local():
                ok = self._check_blob(out.digest, out.size) == "ok"
            if not ok:
                raise StoreError(
                    f"action {result.action_id}: output {name!r} ({out.digest}) is not in the "
                    "local cache of the store"
                )
            self._upload_blob(out)

    def put_action(self, result: ActionResult) -> None:
        if self._is_local():
            return super().put_action(result)
        self._commit_blobs(result)
        self.remote.put(ac_rel(result.key), entry_bytes(result))
        with self._local():
            super().put_action(result)
        return None

    def put_action_if_absent(self, result: ActionResult) -> ActionResult:
        """Blobs up first, then the remote entry only if absent (or broken); returns what the
        object store holds for the key."""
        if self._is_local():
            return super().put_action_if_absent(result)
        self._commit_blobs(result)
        winner = self.put_remote_entry_if_absent(result)
        with self._local():
            if all(self._check_blob(o.digest, o.size) == "ok" for o in winner.outputs.values()):
                super().put_action_if_absent(winner)
        return winner

    def put_remote_entry_if_absent(self, result: ActionResult) -> ActionResult:
        rel, data = ac_rel(result.key), entry_bytes(result)
        for _ in range(5):
            if self.remote.put(rel, data, if_none_match=True) is not None:
                return result
            existing, etag, failed = self._remote_entry(result.key)
            if existing is not None:
                if self._check_remote_outputs(existing, verify=False).status == "hit":
                    return existing
                # Outputs gone: the new blobs make the key whole again. Replace exactly the
                # entry that was judged broken; if it changed meanwhile, look again.
                if self.remote.put(rel, data, if_match=etag) is not None:
                    return result
            elif failed is not None and failed.status == "absent":
                continue  # deleted (quarantined) meanwhile: create it again
        raise StoreError(f"could not record action {result.action_id} ({result.key}) in {self.url}")

    # -- checks ----------------------------------------------------------------------------
    def check_writable(self) -> None:
        """UsageError unless the object store answers, the bucket exists, and this process can
        make a conditional write there (probed with a small marker, then deleted)."""
        if self._is_local():
            return super().check_writable()
        self.check_reachable()
        self._probe_write()
        self._check_version_remote()
        self._ensure()
        return None

    def _check_version_remote(self, *, writing: bool = True) -> None:
        """The object store's ``VERSION`` (written by its first writer) must be one we know;
        checked once per process, before the first lookup or commit."""
        if self._version_seen and (self._version_written or not writing):
            return
        got = self.remote.get("VERSION")
        if got is None and writing:
            self.remote.put("VERSION", f"{STORE_SCHEMA}\n".encode(), if_none_match=True)
            got = self.remote.get("VERSION")
        if got is not None:
            text = got[0].decode("utf-8", "replace").strip()
            if not text.isdigit() or int(text) > STORE_SCHEMA:
                raise UsageError(
                    f"the store {self.url} has schema {text[:40]!r}; this restoro knows "
                    f"{STORE_SCHEMA}",
                    hint="upgrade restoro, or point the build at another store",
                )
            if int(text) < STORE_SCHEMA and writing:  # older restoro then refuses the store
                self.remote.put("VERSION", f"{STORE_SCHEMA}\n".encode(), if_match=got[1])
            self._version_written = writing or int(text) >= STORE_SCHEMA
        self._version_seen = True

    def check_reachable(self) -> None:
        """UsageError unless the endpoint answers (a TCP check with a short timeout, so a dead
        endpoint never hangs a build in retries) and the bucket exists and is ours to use."""
        from urllib.parse import urlsplit

        try:
            endpoint = self.remote.endpoint()
        except Exception as e:  # noqa: BLE001 - botocore raises many kinds for a bad config
            raise UsageError(
                f"cannot open the object store for {self.url}: {e}",
                hint="check AWS_ENDPOINT_URL / AWS_REGION and RESTORO_STORE_OPTIONS",
            ) from None
        parts = urlsplit(endpoint)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            socket.create_connection((parts.hostname or "", port), CONNECT_TIMEOUT).close()
        except OSError as e:
            raise UsageError(
                f"cannot reach the object store at {endpoint} for {self.url}: {e.strerror or e}",
                hint="check AWS_ENDPOINT_URL (or AWS_ENDPOINT_URL_S3), the network and that the "
                "server is up",
            ) from None
        self._check_bucket(endpoint)

    def _check_bucket(self, endpoint: str) -> None:
        try:
            self.remote.fs.call_s3("head_bucket", Bucket=self.loc.bucket)
        except FileNotFoundError:
            raise UsageError(
                f"the bucket {self.loc.bucket!r} does not exist at {endpoint}",
                hint=f"create it (e.g. `aws s3 mb s3://{self.loc.bucket}`) or fix the store URL",
            ) from None
        except PermissionError:
            raise UsageError(
                f"access to the bucket {self.loc.bucket!r} at {endpoint} is denied",
                hint="check the credentials (AWS_ACCESS_KEY_ID… or AWS_PROFILE) and the "
                "bucket's policy",
            ) from None
        except Exception as e:  # noqa: BLE001 - no credentials, bad region...
            raise UsageError(
                f"cannot use the bucket {self.loc.bucket!r} at {endpoint}: {e}",
                hint="check the AWS credentials and region in the environment",
            ) from None

    def _probe_write(self) -> None:
        rel = f"locks/probe-{uuid.uuid4().hex}"
        try:
            first = self.remote.put(rel, b"restoro write probe\n", if_none_match=True)
            second = self.remote.put(rel, b"restoro write probe\n", if_none_match=True)
        except OSError as e:
            raise UsageError(
                f"no write access to the store {self.url}: {e}",
                hint="every build and worker writes there; check the credentials and the "
                "bucket's policy (s3:PutObject and s3:DeleteObject under the prefix)",
            ) from None
        finally:
            try:
                self.remote.delete(rel)
            except OSError:
                pass
        if first is None or second is not None:
            raise UsageError(
                f"the object store of {self.url} does not honour conditional writes "
                "(If-None-Match)",
                hint="restoro needs an atomic put-if-absent to share a store: use AWS S3 or a "
                "server that supports conditional writes",
            )

    # -- whole-store views (cache ls, verify) ----------------------------------------------
    def iter_actions(self) -> Iterator[ActionResult]:
        """Every readable action entry of the object store."""
        if self._is_local():
            yield from super().iter_actions()
            return
        for rel in sorted(self.remote.listing("ac")):
            key = rel[3:5] + rel[6:].removesuffix(".json")
            got = self.remote.get(rel)
            if got is None:
                continue
            try:
                yield parse_entry(key, got[0])
            except ValueError:
                continue

    def remote_blobs(self) -> dict[str, int]:
        """``{digest: size}`` of every well-named blob in the object store."""
        out: dict[str, int] = {}
        for rel, size in self.remote.listing("cas").items():
            hx = rel[4:].replace("/", "")
            if len(hx) == 32 and set(hx) <= _HEX and rel[6:7] == "/":
                out["xxh128:" + hx] = size
        return out

    def usage(self) -> dict[str, int]:
        if self._is_local():
            return super().usage()
        blobs = self.remote_blobs()
        quarantined = self.remote.listing("quarantine")
        return {
            "actions": len(self.remote.listing("ac")),
            "blobs": len(blobs),
            "bytes": sum(blobs.values()),
            "tmp_files": 0,
            "quarantined": sum(1 for p in quarantined if not p.endswith(".note.json")),
        }

    def verify(self, *, full: bool = True) -> VerifyReport:
        """Check the object store: every blob's content (``full``: streamed through the hash;
        else names and sizes) and every entry's outputs; quarantine what is bad."""
        if self._is_local():
            return super().verify(full=full)
        report = VerifyReport()
        planned: dict[str, str] | None = None
        good: dict[str, int] = {}
        for rel, size in sorted(self.remote.listing("cas").items()):
            report.blobs_checked += 1
            hx = rel[4:].replace("/", "")
            digest = "xxh128:" + hx
            problem = "" if is_digest(digest) and rel[6:7] == "/" else "not a blob name"
            if not problem and full:
                with self.remote.open(rel) as fh:
                    actual, _ = digest_stream(fh)
                if actual != digest:
                    problem = f"content hashes to {actual}"
            if problem:
                head = self.remote.head(rel)
                if head is not None:
                    self._quarantine_remote(rel, head[1], problem)
                report.blobs_bad += 1
                report.problems.append(f"blob {rel}: {problem}")
            else:
                good[digest] = size
        for rel in sorted(self.remote.listing("ac")):
            report.actions_checked += 1
            got = self.remote.get(rel)
            if got is None:
                continue
            key = rel[3:5] + rel[6:].removesuffix(".json")
            try:
                if _KEY_MATCH(key) is None or rel != ac_rel(key):
                    raise EntryError(f"{rel} is not the name of an action entry")
                result, legacy = check_entry(key, got[0], full=True)
            except ValueError as e:
                if planned is None:
                    planned = planned_actions(self.state.all_refs())
                problem = entry_problem(rel, e, planned.get(key))
            else:
                report.actions_legacy += legacy
                problem = output_problem(rel, result, good)
            if problem:
                report.actions_bad += 1
                report.problems.append(problem)
                self._quarantine_remote(rel, got[1], problem)
        self._remote_blobs.clear()
        return report


def open_remote(url: str) -> RemoteStore:
    """The store at an object-store URL (checked; no request is made yet)."""
    return RemoteStore(url)


def remote_identity(url: str) -> str:
    """What makes two opens of ``url`` the same store in one process (URL, endpoint, cache)."""
    opts = storage_options()
    return f"{parse_url(url).url}|{endpoint_hint(opts)}|{cache_root(url)}|{sorted(opts)}"


def _backend(url: str) -> tuple[str, Callable[[], Store]] | None:
    """``restoro.engine.execute.open_store``'s way to an object-store URL."""
    if not is_remote_url(url):
        return None
    return remote_identity(url), lambda: RemoteStore(url)


STORE_BACKENDS.append(_backend)
