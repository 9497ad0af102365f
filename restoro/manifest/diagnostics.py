"""Manifest diagnostics: positions of YAML nodes and pydantic errors made human.

Every finding becomes a ``restoro.errors.Diagnostic`` rendered as::

    restoro.yaml:12:18: error[E210]: invalid value 'tf' for field_order: expected one of ...
      12 |     field_order: tf
         |                  ^
      hint: did you mean 'tff'?
"""

from __future__ import annotations

import difflib
import re
import types
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel

from restoro.errors import Diagnostic

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from pydantic import ValidationError

JsonPath = tuple[str | int, ...]

# Stable codes; docs/manifest.md lists them.
E_YAML, E_DUPLICATE_KEY = "E201", "E202"
E_INVALID, E_UNKNOWN_KEY, E_MISSING = "E210", "E211", "E212"
E_UNKNOWN_REF, E_DUPLICATE_NAME = "E220", "E221"
E_RESERVED, E_NEEDS_KEY = "E222", "E213"
E_TIMECODE, E_OUTSIDE, E_SHOT_ID, E_RANGE_ORDER, E_RATE = "E230", "E231", "E232", "E233", "E234"
E_STAGE_PARAMS, E_PIPELINE = "E240", "E241"
E_FILE = "E200"

_CUSTOM_CODES = {"timecode": E_TIMECODE, "shot_id": E_SHOT_ID}
_CUSTOM_HINTS = {
    "name": "names are like ep1, main-feature or tape_2",
    "override": "e.g. {range: [01:00:00:00, 01:02:00:00], params: {...}}, or shots: [ids]; "
    "conform: {range: [...], source: NAME, source_in: POSITION}",
}
_FIXED_LENGTHS = {"range": 2, "crop": 4}
_TYPE_WORDS = {
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "string": "a string",
    "dict": "a mapping",
    "model": "a mapping",
    "model_attributes": "a mapping",
    "list": "a list",
    "tuple": "a list",
}


@dataclass
class SourceMap:
    """The manifest text and the 1-based (line, col) of every key and value by JSON path."""

    file: str
    text: str
    values: dict[JsonPath, tuple[int, int]] = field(default_factory=dict)
    keys: dict[JsonPath, tuple[int, int]] = field(default_factory=dict)
    removed: dict[JsonPath, set[int]] = field(default_factory=dict)
    """List items dropped before cross-reference checks (see ``loader``), by list path."""

    def original(self, path: Sequence[str | int]) -> JsonPath:
        """``path`` in a list with ``removed`` items dropped → the same node's path in the file."""
        out: list[str | int] = []
        for item in path:
            if isinstance(item, int) and not isinstance(item, bool):
                for r in sorted(self.removed.get(tuple(out), ())):
                    if r <= item:
                        item += 1
                    else:
                        break
            out.append(item)
        return tuple(out)

    def locate(self, path: Sequence[str | int]) -> tuple[int, int]:
        """Position of the value at ``path``, or of its nearest known ancestor."""
        p = self.original(path)
        while p:
            if p in self.values:
                return self.values[p]
            p = p[:-1]
        return self.values.get((), (1, 1))

    def locate_key(self, path: Sequence[str | int]) -> tuple[int, int]:
        """Position of the mapping key that ends ``path`` (its value's if it has no key)."""
        return self.keys.get(self.original(path)) or self.locate(path)

    def at(
        self, line: int, col: int, code: str, message: str, hint: str | None = None
    ) -> Diagnostic:
        """A diagnostic at (line, col) with the source line and a caret."""
        return Diagnostic(
            self.file, line, col, code, message, hint=hint, snippet=self.snippet(line, col)
        )

    def diag(
        self,
        path: Sequence[str | int],
        code: str,
        message: str,
        hint: str | None = None,
        *,
        at_key: bool = False,
    ) -> Diagnostic:
        """A diagnostic at the value (or key) of ``path``."""
        line, col = self.locate_key(path) if at_key else self.locate(path)
        return self.at(line, col, code, message, hint)

    def snippet(self, line: int, col: int) -> list[str]:
        lines = self.text.splitlines()
        if not 1 <= line <= len(lines):
            return []
        src = lines[line - 1].rstrip()
        gutter = str(line)
        pad = "".join("\t" if ch == "\t" else " " for ch in src[: col - 1])
        return [f"{gutter} | {src}", f"{' ' * len(gutter)} | {pad}^"]


def did_you_mean(name: object, choices: Sequence[str] | Mapping[str, Any]) -> str | None:
    """``did you mean 'x'?`` for the closest choice, else the list of choices (or None)."""
    options = sorted(str(c) for c in choices)
    close = difflib.get_close_matches(str(name), options, n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]!r}?"
    if options:
        shown = ", ".join(options[:12]) + (", ..." if len(options) > 12 else "")
        return f"known: {shown}"
    return None


def describe_value(value: object) -> str:
    """A short human description of a YAML value for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


# -- pydantic → diagnostics ----------------------------------------------------------------------


def _unwrap(tp: Any) -> Any:
    while True:
        if get_origin(tp) is Annotated:
            tp = get_args(tp)[0]
            continue
        if get_origin(tp) in (Union, types.UnionType):
            members = [a for a in get_args(tp) if a is not type(None)]
            if len(members) == 1:
                tp = members[0]
                continue
        return tp


def _model_at(root: type[BaseModel], loc: Sequence[str | int]) -> type[BaseModel] | None:
    """The model class whose fields live at ``loc`` (a pydantic loc, union tags included)."""
    tp: Any = root
    for item in loc:
        tp = _unwrap(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            f = tp.model_fields.get(str(item))
            if f is None:
                return None
            tp = f.annotation
        elif get_origin(tp) is dict:
            tp = get_args(tp)[1]
        elif get_origin(tp) is list:
            tp = get_args(tp)[0]
        elif get_origin(tp) in (Union, types.UnionType):
            tagged = [
                m
                for m in get_args(tp)
                if isinstance(m, type)
                and issubclass(m, BaseModel)
                and item in get_args(_unwrap(m.model_fields["kind"].annotation))
            ]
            if not tagged:
                return None
            tp = tagged[0]
        else:
            return None
    tp = _unwrap(tp)
    return tp if isinstance(tp, type) and issubclass(tp, BaseModel) else None


def json_path(data: Any, loc: Sequence[str | int], keep_last: bool) -> tuple[JsonPath, bool]:
    """Map a pydantic loc onto the data: drop union tags, note a ``[key]`` marker."""
    node, out, at_key = data, [], False
    for i, item in enumerate(loc):
        if item == "[key]":
            at_key = True
        elif isinstance(node, dict) and item in node:
            out.append(item)
            node = node[item]
        elif isinstance(node, list) and isinstance(item, int) and 0 <= item < len(node):
            out.append(item)
            node = node[item]
        elif keep_last and i == len(loc) - 1:
            out.append(item)
    return tuple(out), at_key


def _field_hint(root: type[BaseModel], loc: Sequence[str | int]) -> str | None:
    while loc and isinstance(loc[-1], int):  # a list item: its list's description
        loc = loc[:-1]
    if not loc:
        return None
    model = _model_at(root, loc[:-1])
    f = model.model_fields.get(str(loc[-1])) if model else None
    return f.description if f else None


def _choices(expected: str) -> list[str]:
    quoted = re.findall(r"'([^']*)'", expected)
    return quoted or [x for x in re.split(r",\s*|\s+or\s+", expected) if x]


def translate(
    error: ValidationError,
    data: Any,
    smap: SourceMap,
    *,
    root: type[BaseModel],
    base: JsonPath = (),
    code: str | None = None,
    subject: str = "",
    ignore: tuple[str, ...] = (),
) -> list[Diagnostic]:
    """Diagnostics for a pydantic ValidationError of ``root`` validated from ``data``.

    ``base`` is where ``data`` sits in the manifest; ``code`` forces one code (stage params);
    ``subject`` prefixes key names in messages (``"upscale."``); error types in ``ignore``
    are skipped (``("missing",)`` for partial params).
    """
    out: list[Diagnostic] = []
    seen: set[tuple[JsonPath, str]] = set()
    for e in error.errors(include_url=False):
        loc, kind = tuple(e["loc"]), e["type"]
        if kind in ignore:
            continue
        rel, at_key = json_path(data, loc, keep_last=kind == "missing")
        path = base + rel
        names = [p for p in rel if isinstance(p, str)]
        name = subject + (names[-1] if names else "value")
        value = e.get("input")
        ctx = e.get("ctx") or {}
        hint = _field_hint(root, loc)
        c = _CUSTOM_CODES.get(kind, E_INVALID)
        if kind == "missing":
            c, at_key, path = E_MISSING, True, path[:-1]
            msg = f"missing required key {subject}{loc[-1]}"
            msg = msg if subject else f"missing required key {loc[-1]!r}"
        elif kind == "extra_forbidden":
            c, at_key = E_UNKNOWN_KEY, True
            model = _model_at(root, loc[:-1])
            what = "parameter" if subject else "key"
            msg = f"unknown {what} {loc[-1]!r}" + (f" for stage {subject[:-1]}" if subject else "")
            hint = did_you_mean(loc[-1], list(model.model_fields) if model else [])
        elif kind == "literal_error" and rel == ("restoro",):
            msg = f"unsupported manifest version {value!r}"
            hint = "this restoro reads manifest version 1: write `restoro: 1`"
        elif kind == "literal_error":
            options = _choices(str(ctx.get("expected", "")))
            msg = f"invalid value {value!r} for {name}: expected one of {', '.join(options)}"
            close = difflib.get_close_matches(str(value), options, n=1)
            hint = f"did you mean {close[0]!r}?" if close else hint
        elif kind == "union_tag_invalid":
            if isinstance(value, dict) and "kind" in value:
                path = (*path, "kind")
            options = _choices(str(ctx.get("expected_tags", "")))
            msg = f"unknown deliverable kind {ctx.get('tag')!r}: expected one of "
            msg += ", ".join(options)
            hint = did_you_mean(ctx.get("tag"), options)
        elif kind == "union_tag_not_found":
            c, at_key = E_MISSING, True
            msg = f"missing required key {str(ctx.get('discriminator', 'kind')).strip(chr(39))!r}"
        elif kind.removesuffix("_type").removesuffix("_parsing") in _TYPE_WORDS or kind in (
            "int_from_float",
        ):
            want = _TYPE_WORDS.get(
                kind.removesuffix("_type").removesuffix("_parsing"), "an integer"
            )
            msg = f"{name}: expected {want}, got {describe_value(value)}"
        elif kind in ("too_short", "too_long"):
            n = ctx.get("actual_length")
            exact = _FIXED_LENGTHS.get(str(rel[-1]) if rel else "")
            if exact:
                msg = f"{name}: expected exactly {exact} items, got {n}"
            elif kind == "too_short":
                lo = ctx.get("min_length")
                msg = f"{name}: expected at least {lo} item{'s' if lo != 1 else ''}, got {n}"
            else:
                msg = f"{name}: expected at most {ctx.get('max_length')} items, got {n}"
        elif kind in _CUSTOM_CODES or kind in ("name", "format", "override"):
            msg = e["msg"]
            hint = _CUSTOM_HINTS.get(kind, hint)
            if kind == "timecode":
                hint = _timecode_hint(value)
        else:
            text = str(e["msg"]).removeprefix("Value error, ")
            text = re.sub(r"^Input should be ", "must be ", text)
            msg = f"{name}: {text}" + (f" (got {value})" if isinstance(value, int | float) else "")
        if (path, msg) in seen:
            continue
        seen.add((path, msg))
        out.append(smap.diag(path, code or c, msg, hint, at_key=at_key))
    return out


def _timecode_hint(value: object) -> str:
    m = re.match(r"^(\d{2}:\d{2}):00[;.]0[01]$", str(value))
    if m:
        return f"the minute starts at {m.group(1)}:00;02 in drop-frame counting"
    return (
        "a position is a frame number (1234), a timecode (01:00:00:00, or 01:00:00;00 for "
        'drop-frame) or seconds ("12.5s")'
    )
