"""Canonical JSON, action keys and digests."""

from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path

import pytest
import xxhash

from restoro.engine.keys import (
    KEY_SCHEME,
    canonical_json,
    digest_bytes,
    digest_file,
    digest_hex,
    is_digest,
    key_of,
)


def test_canonical_json_sorted_compact_utf8() -> None:
    assert canonical_json({"b": 1, "a": [1, "é", None, True]}) == '{"a":[1,"é",null,true],"b":1}'


def test_canonical_json_key_order_does_not_matter() -> None:
    a = OrderedDict([("x", 1), ("y", {"q": 2, "p": 3})])
    b = {"y": {"p": 3, "q": 2}, "x": 1}
    assert canonical_json(a) == canonical_json(b)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.0, "1"),
        (-0.0, "0"),
        (2.5, "2.5"),
        (0.1, "0.1"),
        (1e-7, "1e-07"),
        (3, "3"),
        (1e20, "100000000000000000000"),
    ],
)
def test_canonical_json_normalises_numbers(value: float, text: str) -> None:
    assert canonical_json(value) == text


def test_integral_float_and_int_give_the_same_key() -> None:
    assert key_of({"strength": 1.0})[0] == key_of({"strength": 1})[0]
    assert key_of({"strength": 0.3})[0] != key_of({"strength": 0.30000000000000004})[0]


def test_tuples_are_lists() -> None:
    assert canonical_json({"crop": (8, 0, 8, 0)}) == '{"crop":[8,0,8,0]}'


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_rejected(bad: float) -> None:
    with pytest.raises(ValueError, match=r"\$\.p\[1\]"):
        canonical_json({"p": [0, bad]})


def test_non_json_type_names_its_path() -> None:
    with pytest.raises(TypeError, match=r"\$\.params\.lut: PosixPath is not a JSON type"):
        canonical_json({"params": {"lut": Path("x.cube")}})
    with pytest.raises(TypeError, match=r"key 1 is int"):
        canonical_json({"m": {1: "a"}})
    with pytest.raises(TypeError, match="set"):
        canonical_json([{1, 2}])


def test_key_of_returns_hashed_dict_with_scheme() -> None:
    key, hashed = key_of({"stage": "denoise", "params": {"strength": 2.0}})
    assert hashed == {"scheme": KEY_SCHEME, "stage": "denoise", "params": {"strength": 2}}
    assert len(key) == 32 and all(c in "0123456789abcdef" for c in key)
    expected = xxhash.xxh3_128_hexdigest(
        json.dumps(hashed, sort_keys=True, separators=(",", ":")).encode()
    )
    assert key == expected
    # the stored key JSON round-trips through JSON to the same key
    assert (
        key_of({k: v for k, v in json.loads(json.dumps(hashed)).items() if k != "scheme"})[0] == key
    )


def test_key_of_refuses_scheme_field() -> None:
    with pytest.raises(ValueError, match="scheme"):
        key_of({"scheme": 2})


def test_key_changes_with_any_field() -> None:
    base = {"stage": "upscale", "version": 1, "inputs": {"frames": digest_bytes(b"a")}}
    keys = {key_of(base)[0]}
    keys.add(key_of({**base, "version": 2})[0])
    keys.add(key_of({**base, "inputs": {"frames": digest_bytes(b"b")}})[0])
    keys.add(key_of({**base, "tools": {"ffmpeg": "n9"}})[0])
    assert len(keys) == 4


def test_digests(tmp_path: Path) -> None:
    data = bytes(range(256)) * 100_000  # 25.6 MB: more than one 8 MiB chunk
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    d = digest_bytes(data)
    assert d == "xxh128:" + xxhash.xxh3_128_hexdigest(data)
    assert digest_file(path) == d
    assert is_digest(d) and digest_hex(d) == d[7:]
    assert digest_bytes(b"") != d


@pytest.mark.parametrize(
    "bad", ["", "xxh128:", "sha1:" + "0" * 32, "xxh128:" + "G" * 32, "xxh128:../../etc"]
)
def test_malformed_digests_refused(bad: str) -> None:
    assert not is_digest(bad)
    with pytest.raises(ValueError):
        digest_hex(bad)


def test_fast_key_path_matches_the_careful_one_on_random_structures() -> None:
    """``key_text``'s fast paths (leaves taken without a call, orjson when no non-integral float)
    give exactly the text, key and dict of the careful normalisation with ``json.dumps``."""
    import random

    from restoro.engine.keys import _normalise, key_text

    rnd = random.Random(12)
    leaves: list[object] = [1, -7, 2**70, 1.0, 0.5, 1e-7, 3.25e20, 2.0**60, "a.b", "ü", True]
    leaves += [False, None, (1, 2.0), []]

    def gen(depth: int) -> object:
        c = rnd.random()
        if depth > 3 or c < 0.5:
            return rnd.choice(leaves)
        if c < 0.75:
            return {f"{rnd.choice('abxyz')}{i}": gen(depth + 1) for i in range(rnd.randint(0, 4))}
        items = [gen(depth + 1) for _ in range(rnd.randint(0, 4))]
        return items if rnd.random() < 0.8 else tuple(items)

    for _ in range(3000):
        fields = {"params": gen(0), "inputs": gen(0)}
        key, hashed, text = key_text(fields)
        careful = _normalise({"scheme": KEY_SCHEME, **fields}, "$")
        ref = json.dumps(
            careful, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
        assert text == ref
        assert key == xxhash.xxh3_128_hexdigest(ref.encode("utf-8"))
        assert hashed == careful and json.dumps(hashed) == json.dumps(careful)
