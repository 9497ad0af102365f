"""Action keys and content digests.

An action's key is xxh3-128 over the canonical JSON of exactly the fields that determine its
output, plus ``KEY_SCHEME``. Canonical JSON is stable across runs, machines and Python versions:
sorted keys, no whitespace, UTF-8 text, and numbers in one spelling (``1.0`` is ``1``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import IO, TYPE_CHECKING, Any

import orjson
import xxhash

if TYPE_CHECKING:
    from pathlib import Path

KEY_SCHEME: int = 1
# Bump KEY_SCHEME whenever key derivation changes (canonical JSON rules, the hash, or the meaning
# of a field every action carries): every cached action then misses once and is rebuilt.

DIGEST_PREFIX = "xxh128:"
CHUNK = 8 * 1024 * 1024
_DIGEST_RE = re.compile(r"xxh128:[0-9a-f]{32}")


def _normalise(obj: Any, path: str) -> Any:
    """Return ``obj`` with numbers in canonical form; raise TypeError naming the bad path."""
    if obj is None or isinstance(obj, bool | str):
        return obj
    if isinstance(obj, int):
        return int(obj)  # drops int subclasses such as IntEnum, whose repr would differ
    if isinstance(obj, float):
        if not math.isfinite(obj):
            raise ValueError(f"{path}: {obj!r} is not allowed in canonical JSON")
        if obj.is_integer():
            return int(obj)
        return obj
    if isinstance(obj, Mapping):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            if not isinstance(k, str):
                raise TypeError(f"{path}: key {k!r} is {type(k).__name__}, not str")
            out[k] = _normalise(v, f"{path}.{k}")
        return out
    if isinstance(obj, list | tuple):
        return [_normalise(v, f"{path}[{i}]") for i, v in enumerate(obj)]
    raise TypeError(f"{path}: {type(obj).__name__} is not a JSON type")


class _Unusual(Exception):
    """Raised by the fast path for anything but plain JSON types; the careful path decides."""


def normalise(obj: Any) -> Any:
    """The JSON value ``canonical_json`` encodes: plain dicts/lists, integral floats as ints."""
    try:
        return _fast_floats(obj, [])
    except _Unusual:
        return _normalise(obj, "$")


def canonical_json(obj: Any) -> str:
    """Encode ``obj`` as canonical JSON (sorted keys, compact, UTF-8, normalised numbers).

    Floats keep Python's shortest round-trip repr; NaN and infinities raise ValueError;
    anything that is not a JSON type raises TypeError naming where it was (``$.params.lut``).
    """
    return json.dumps(
        normalise(obj), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def key_of(fields: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The action key (32 hex digits) of ``fields`` and the exact dict that was hashed."""
    key, hashed, _text = key_text(fields)
    return key, hashed


_LEAVES = frozenset((str, int, bool, type(None)))


def _fast_floats(obj: Any, floats: list[float]) -> Any:
    """Normalise plain JSON values by exact type (no path strings: the common case, fast), and
    collect the non-integral floats kept; anything unusual goes to the careful path.

    Strings, integers, booleans and None inside a container are taken as they are without a
    call (most of a key's values: a no-op build normalises thousands of keys)."""
    t = type(obj)
    if t is dict:
        out = {}
        for k, v in obj.items():
            if type(k) is not str:
                raise _Unusual
            out[k] = v if type(v) in _LEAVES else _fast_floats(v, floats)
        return out
    if t is list or t is tuple:
        return [v if type(v) in _LEAVES else _fast_floats(v, floats) for v in obj]
    if t in _LEAVES:
        return obj
    if t is float and math.isfinite(obj):
        if obj.is_integer():
            return int(obj)
        floats.append(obj)
        return obj
    raise _Unusual


def key_text(fields: Mapping[str, Any]) -> tuple[str, dict[str, Any], str]:
    """Like ``key_of``, plus the canonical JSON text that was hashed."""
    if "scheme" in fields:
        raise ValueError("'scheme' is reserved in action key fields")
    floats: list[float] = []
    try:
        hashed: dict[str, Any] = _fast_floats({"scheme": KEY_SCHEME, **fields}, floats)
    except _Unusual:
        hashed, floats = normalise({"scheme": KEY_SCHEME, **fields}), [0.5]
    if not floats:
        # No non-integral float: orjson writes exactly the bytes json.dumps would (sorted
        # keys, compact, raw UTF-8), several times faster. Floats keep Python's repr, whose
        # exponent form orjson does not share; integers beyond 64 bits orjson refuses.
        try:
            data = orjson.dumps(hashed, option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError:
            pass
        else:
            return xxhash.xxh3_128_hexdigest(data), hashed, data.decode("utf-8")
    text = json.dumps(
        hashed, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return xxhash.xxh3_128_hexdigest(text.encode("utf-8")), hashed, text


def digest_bytes(data: bytes) -> str:
    """``xxh128:<hex>`` of ``data``."""
    return DIGEST_PREFIX + xxhash.xxh3_128_hexdigest(data)


def digest_stream(stream: IO[bytes]) -> tuple[str, int]:
    """Digest and byte count of everything left in ``stream``, read in 8 MiB chunks."""
    h = xxhash.xxh3_128()
    size = 0
    while chunk := stream.read(CHUNK):
        h.update(chunk)
        size += len(chunk)
    return DIGEST_PREFIX + h.hexdigest(), size


def digest_file(path: Path | str) -> str:
    """``xxh128:<hex>`` of a file's content, streamed so a 40 GB source needs no memory."""
    with open(path, "rb") as f:
        return digest_stream(f)[0]


def is_digest(value: str) -> bool:
    """Whether ``value`` is a well-formed ``xxh128:<32 hex>`` digest."""
    return _DIGEST_RE.fullmatch(value) is not None


def digest_hex(digest: str) -> str:
    """The hex part of a digest; ValueError for anything malformed (never a path fragment)."""
    if not is_digest(digest):
        raise ValueError(f"not an xxh128 digest: {digest!r}")
    return digest[len(DIGEST_PREFIX) :]


def pretty_json(obj: Any, *, indent: int = 2) -> str:
    """Sorted, indented JSON for files people read and diff (lockfile, provenance).

    Containers of containers are laid out one member per line; a list or dict whose members
    are all scalars, and every item of a list of dicts, is written compactly on one line — so a
    shot is one line in ``restoro.lock`` and a 2,000-shot title renders fast (the C encoder
    does the leaves; ``json.dumps(indent=…)`` would fall back to the pure-Python encoder).
    """
    return _pretty(obj, 0, indent) + "\n"


_COMPACT = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(", ", ": ")).encode
"""``json.dumps`` with these arguments, without a new encoder per call (a 2,000-shot title's
provenance and lockfile write one line per shot)."""


def _compact(obj: Any) -> str:
    return _COMPACT(obj)


def _pretty(obj: Any, level: int, indent: int) -> str:
    pad, inner = " " * (indent * level), " " * (indent * (level + 1))
    if isinstance(obj, dict) and obj:
        if all(not isinstance(v, dict | list) for v in obj.values()) and level > 0:
            return _compact(obj)
        items = [
            f"{inner}{json.dumps(k, ensure_ascii=False)}: {_pretty(obj[k], level + 1, indent)}"
            for k in sorted(obj)
        ]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, list) and obj:
        if all(not isinstance(v, dict | list) for v in obj):
            return _compact(obj)
        if all(isinstance(v, dict) for v in obj):
            return "[\n" + ",\n".join(inner + _compact(v) for v in obj) + "\n" + pad + "]"
        return (
            "[\n"
            + ",\n".join(inner + _pretty(v, level + 1, indent) for v in obj)
            + "\n"
            + pad
            + "]"
        )
    return _compact(obj)
