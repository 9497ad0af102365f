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

Leases live on the object store too (``restoro.engine.remote_leases``). Credentials and the
endpoint come from the standard AWS environment that botocore reads (``AWS_ENDPOINT_URL``,
``AWS_ENDPOINT_URL_S3``, ``AWS_ACCESS_KEY_ID``, ``AWS_PROFILE``…); ``RESTORO_STORE_OPTIONS`` may
hold a JSON object of extra fsspec/s3fs storage options. Only the URL (never a credential) is
recorded anywhere.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlparse

import xxhash

from restoro.engine.keys import digest_file, digest_hex, digest_stream, is_digest
from restoro.engine.store import (
    STORE_SCHEMA,
    ActionResult,
    Lookup,
    Output,
    Store,
    VerifyReport,
)
from restoro.errors import CorruptEntry, StoreError, UsageError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

OBJECT_SCHEMES = ("s3", "s3a")
CONNECT_TIMEOUT = 3.0
_HEX = frozenset("0123456789abcdef")
Fetched = Literal["ok", "missing", "corrupt"]


# -- URLs -------------------------------------------------------------------------------------


def is_remote_url(url: str | Path) -> bool:
    """Whether ``url`` names something other than a local path or a ``file://`` URL."""
    text = str(url)
    return "://" in text and urlparse(text).scheme not in ("", "file")


@dataclass(frozen=True)
class ObjectURL:
    """A parsed ``s3://bucket/prefix``."""

    url: str
    bucket: str
    prefix: str


def parse_url(url: str) -> ObjectURL:
    """Check an object-store URL; UsageError naming the scheme for what we cannot do."""
    parsed = urlparse(url)
    scheme = parsed.scheme.lower()
    if scheme not in OBJECT_SCHEMES:
        try:
            from fsspec.registry import known_implementations
        except ImportError:
            known: set[str] = set()
        else:
            known = set(known_implementations)
        if scheme in known:
            raise UsageError(
                f"store URL scheme {scheme!r} is not supported: a shared store needs an atomic "
                "put-if-absent, which restoro does on s3:// object stores and filesystems",
                hint="use s3://bucket/prefix, a shared-filesystem path, or sync a local store "
                "with `restoro cache push --to URL`",
            )
        raise UsageError(
            f"unknown store URL scheme {scheme!r} in {url!r}",
            hint="use a path, file:///absolute/path or s3://bucket/prefix",
        )
    if "@" in parsed.netloc:
        raise UsageError(
            "the store URL carries credentials",
            hint="remove them from the URL; set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or "
            "AWS_PROFILE in the environment instead",
        )
    if not parsed.netloc or parsed.query or parsed.fragment:
        raise UsageError(
            f"store URL {url!r} is not of the form s3://bucket/prefix",
            hint="name the bucket, then an optional prefix: s3://bucket/restoro",
        )
    prefix = parsed.path.strip("/")
    return ObjectURL(f"s3://{parsed.netloc}/{prefix}".rstrip("/"), parsed.netloc, prefix)


def storage_options() -> dict[str, Any]:
    """fsspec storage options from ``RESTORO_STORE_OPTIONS`` (a JSON object), if set."""
    raw = os.environ.get("RESTORO_STORE_OPTIONS", "").strip()
    if not raw:
        return {}
    try:
        opts = json.loads(raw)
    except ValueError:
        opts = None
    if not isinstance(opts, dict):
        raise UsageError(
            "RESTORO_STORE_OPTIONS is not a JSON object",
            hint='e.g. RESTORO_STORE_OPTIONS=\'{"client_kwargs": {"region_name": "eu-west-1"}}\'',
        )
    return opts


def _endpoint_hint(opts: dict[str, Any]) -> str:
    """The endpoint botocore will use, as far as the environment says (for the cache id)."""
    client = opts.get("client_kwargs") or {}
    return str(
        client.get("endpoint_url")
        or opts.get("endpoint_url")
        or os.environ.get("AWS_ENDPOINT_URL_S3")
        or os.environ.get("AWS_ENDPOINT_URL")
        or "aws"
    )


def cache_root(url: str) -> Path:
    """The local cache directory of the store at ``url`` (one per URL and endpoint)."""
    loc = parse_url(url)
    ident = f"{loc.url}|{_endpoint_hint(storage_options())}"
    base = os.environ.get("RESTORO_CACHE_DIR")
    if base:
        root = Path(base).expanduser()
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        root = (Path(xdg) if xdg else Path.home() / ".cache") / "restoro"
    return root.absolute() / "stores" / xxhash.xxh3_64_hexdigest(ident.encode())


# -- the object store -------------------------------------------------------------------------


def _s3_code(exc: BaseException) -> str:
    """The S3 error code behind an exception (s3fs translates ClientErrors into OSErrors)."""
    seen: BaseException | None = exc
    for _ in range(4):
        if seen is None:
            break
        resp = getattr(seen, "response", None)
        if isinstance(resp, dict):
            return str(resp.get("Error", {}).get("Code", ""))
        seen = seen.__cause__ or seen.__context__
    return ""


def _lost_race(exc: BaseException) -> bool:
    """A conditional request that did not hold (412) or raced another one (409)."""
    return isinstance(exc, FileExistsError) or _s3_code(exc) in (
        "PreconditionFailed",
        "ConditionalRequestConflict",
        "412",
        "409",
    )


class ObjectStore:
    """The few object-store requests the store needs, on one bucket under one prefix.

    Conditional writes go straight to the S3 API through the client s3fs holds, so the
    conditions (``IfNoneMatch``, ``IfMatch``) are exactly the ones sent.
    """

    def __init__(self, loc: ObjectURL, opts: dict[str, Any]) -> None:
        try:
            import s3fs
        except ImportError:
            raise UsageError(
                f"the store {loc.url} needs the 's3fs' package",
                hint="pip install 'restoro[farm]'",
            ) from None
        self.loc = loc
        self.fs = s3fs.S3FileSystem(
            **{"skip_instance_cache": True, "use_listings_cache": False, **opts}
        )

    def key(self, rel: str) -> str:
        return f"{self.loc.prefix}/{rel}" if self.loc.prefix else rel

    def _path(self, rel: str) -> str:
        return f"{self.loc.bucket}/{self.key(rel)}"

    def _call(self, method: str, rel: str, **kw: Any) -> Any:
        return self.fs.call_s3(method, Bucket=self.loc.bucket, Key=self.key(rel), **kw)

    def head(self, rel: str) -> tuple[int, str] | None:
        """``(size, etag)`` of an object, None when absent."""
        try:
            r = self._call("head_object", rel)
        except FileNotFoundError:
            return None
        return int(r["ContentLength"]), str(r["ETag"])

    def get(self, rel: str) -> tuple[bytes, str, float] | None:
        """``(content, etag, last-modified time)`` of a small object, None when absent."""
        from fsspec.asyn import sync

        async def fetch() -> tuple[bytes, str, float]:
            r = await self.fs._call_s3("get_object", Bucket=self.loc.bucket, Key=self.key(rel))
            async with r["Body"] as body:
                data = await body.read()
            return data, str(r["ETag"]), float(r["LastModified"].timestamp())

        try:
            out: tuple[bytes, str, float] = sync(self.fs.loop, fetch)
        except FileNotFoundError:
            return None
        return out

    def put(
        self, rel: str, data: bytes, *, if_none_match: bool = False, if_match: str | None = None
    ) -> str | None:
        """Write ``data``; the new ETag, or None when the condition did not hold."""
        cond: dict[str, str] = {}
        if if_none_match:
            cond["IfNoneMatch"] = "*"
        if if_match is not None:
            cond["IfMatch"] = if_match
        try:
            r = self._call("put_object", rel, Body=data, **cond)
        except FileNotFoundError:
            if if_match is None:
                raise
            return None  # If-Match on an object that is gone
        except OSError as e:
            if cond and _lost_race(e):
                return None
            raise
        return str(r["ETag"])

    def delete(self, rel: str, *, if_match: str | None = None) -> bool:
        """Delete an object (only the version with ``if_match`` when given); False if not."""
        try:
            self._call("delete_object", rel, **({"IfMatch": if_match} if if_match else {}))
        except FileNotFoundError:
            return False
        except OSError as e:
            if if_match and _lost_race(e):
                return False
            raise
        return True

    def upload(self, path: Path, rel: str) -> None:
        self.fs.put_file(str(path), self._path(rel))

    def download(self, rel: str, path: Path) -> None:
        self.fs.get_file(self._path(rel), str(path))

    def open(self, rel: str) -> Any:
        return self.fs.open(self._path(rel), "rb")

    def copy(self, src: str, dst: str) -> None:
        self._call("copy_object", dst, CopySource={"Bucket": self.loc.bucket, "Key": self.key(src)})

    def listing(self, rel_dir: str) -> dict[str, int]:
        """``{path relative to the prefix: size}`` of every object under ``rel_dir``."""
        base = self._path(rel_dir).rstrip("/")
        try:
            found = self.fs.find(base, detail=True)
        except FileNotFoundError:
            return {}
        start = len(self._path(""))
        return {p[start:]: int(info.get("size") or 0) for p, info in found.items()}

    def endpoint(self) -> str:
        self.fs.connect()
        return str(self.fs.s3.meta.endpoint_url)


def cas_rel(digest: str) -> str:
    hx = digest_hex(digest)
    return f"cas/{hx[:2]}/{hx[2:]}"


def _ac_rel(key: str) -> str:
    return f"ac/{key[:2]}/{key[2:]}.json"


def _entry_bytes(result: ActionResult) -> bytes:
    text = json.dumps(result.to_json(), sort_keys=True, ensure_ascii=False, allow_nan=False)
    return text.encode("utf-8")


def parse_entry(key: str, data: bytes) -> ActionResult:
    result = ActionResult.from_json(json.loads(data))
    if result.key != key:
        raise ValueError(f"entry is for key {result.key}")
    return result


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
        from restoro.engine.remote_leases import ObjectLeases

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
    def lookup(self, key: str, *, verify: bool = True) -> Lookup:
        with self._local():
            local = super().lookup(key, verify=verify)
        if self._is_local() or local.status == "hit":
            return local
        self._check_version_remote(writing=False)
        remote = self._remote_lookup(key, verify=verify)
        if remote.status == "absent" and local.status != "absent":
            return local
        return remote

    def _remote_entry(self, key: str) -> tuple[ActionResult | None, str, Lookup | None]:
        """The remote entry for ``key`` and its ETag; a Lookup when there is none to use."""
        rel = _ac_rel(key)
        got = self.remote.get(rel)
        if got is None:
            return None, "", Lookup("absent")
        data, etag, _ = got
        try:
            return parse_entry(key, data), etag, None
        except ValueError as e:
            self._quarantine_remote(rel, etag, f"unreadable action entry: {e}")
            return None, etag, Lookup("corrupt", detail=str(e))

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
        self.remote.put(_ac_rel(result.key), _entry_bytes(result))
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
        rel, data = _ac_rel(result.key), _entry_bytes(result)
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
            self._version_written = True
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
                result = parse_entry(key, got[0])
            except ValueError as e:
                problem = f"unreadable action entry: {e}"
            else:
                problem = next(
                    (
                        f"action {result.action_id}: output {name} missing or bad"
                        for name, o in result.outputs.items()
                        if good.get(o.digest) != o.size
                    ),
                    "",
                )
            if problem:
                report.actions_bad += 1
                report.problems.append(f"{rel}: {problem}")
                self._quarantine_remote(rel, got[1], problem)
        self._remote_blobs.clear()
        return report


def open_remote(url: str) -> RemoteStore:
    """The store at an object-store URL (checked; no request is made yet)."""
    return RemoteStore(url)


def remote_identity(url: str) -> str:
    """What makes two opens of ``url`` the same store in one process (URL, endpoint, cache)."""
    opts = storage_options()
    return f"{parse_url(url).url}|{_endpoint_hint(opts)}|{cache_root(url)}|{sorted(opts)}"
