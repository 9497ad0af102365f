"""Object-store access for the ``s3://`` store: URLs, storage options, the local cache location,
and the few S3 requests the store makes (``ObjectStore``).

Objects are named as in a local store: blobs ``cas/ab/cdef…`` (``cas_rel``), action entries
``ac/ab/….json`` (``ac_rel``), under the URL's prefix. Credentials and the endpoint come from the
standard AWS environment that botocore reads (``AWS_ENDPOINT_URL``, ``AWS_ENDPOINT_URL_S3``,
``AWS_ACCESS_KEY_ID``, ``AWS_PROFILE``…); ``RESTORO_STORE_OPTIONS`` may hold a JSON object of
extra fsspec/s3fs storage options. Only the URL (never a credential) is recorded anywhere.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import xxhash

from restoro.engine.keys import digest_hex
from restoro.errors import UsageError

OBJECT_SCHEMES = ("s3", "s3a")


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


def endpoint_hint(opts: dict[str, Any]) -> str:
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
    ident = f"{loc.url}|{endpoint_hint(storage_options())}"
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


# -- object names ----------------------------------------------------------------------------


def cas_rel(digest: str) -> str:
    """Where the blob ``digest`` lives, relative to the prefix."""
    hx = digest_hex(digest)
    return f"cas/{hx[:2]}/{hx[2:]}"


def ac_rel(key: str) -> str:
    """Where the action entry for ``key`` lives, relative to the prefix."""
    return f"ac/{key[:2]}/{key[2:]}.json"
