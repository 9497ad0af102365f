"""Load ``restoro.yaml``: YAML 1.2 scalars, node positions, every error at once.

PyYAML implements YAML 1.1, where ``10:00:00:00`` is a base-60 integer and ``no`` is false; a
manifest full of timecodes cannot live with that. ``ManifestLoader`` keeps PyYAML's parser but
resolves plain scalars by the YAML 1.2 core schema, and the manifest is built from the node tree
by hand so that every key and value keeps its position and duplicate keys are caught.
"""

from __future__ import annotations

import copy
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import xxhash
import yaml
from pydantic import ValidationError

from restoro.errors import ManifestError
from restoro.manifest import diagnostics as d
from restoro.manifest.model import Manifest

_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_MAX_DEPTH = 64
MAX_ALIASES = 1000
"""Aliases (``*name``) a manifest may use."""
MAX_VALUES = 100_000
"""Values (scalars, lists, mappings) a manifest may expand to, aliases expanded: a real manifest
has a few thousand; a "billion laughs" document is refused here instead of exhausting memory."""


class AliasLimit(yaml.MarkedYAMLError):
    """Too many aliases, or aliases that expand the document past ``MAX_VALUES``."""


class ManifestLoader(yaml.SafeLoader):
    """A SafeLoader whose implicit scalar types are those of the YAML 1.2 core schema.

    It also counts aliases and the size of every node with its aliases expanded, so an alias
    bomb fails while composing (cheap: aliases share nodes) and never reaches the builder.
    """

    yaml_implicit_resolvers: dict[Any, Any] = {}

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._aliases = 0
        self._sizes: dict[int, int] = {}

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise AliasLimit(problem=f"more than {MAX_ALIASES} aliases", problem_mark=mark)
            return super().compose_node(parent, index)
        node = super().compose_node(parent, index)
        if isinstance(node, yaml.CollectionNode):
            self._sizes[id(node)] = 1 + sum(
                self._sizes.get(id(child), 1)
                for item in node.value
                for child in (item if isinstance(item, tuple) else (item,))
            )
            if self._sizes[id(node)] > MAX_VALUES:
                raise AliasLimit(
                    problem=f"the document expands to more than {MAX_VALUES} values through "
                    "aliases",
                    problem_mark=node.start_mark,
                )
        return node


for _tag, _regex, _first in (
    (_NULL, r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    (_BOOL, r"^(?:true|True|TRUE|false|False|FALSE)$", list("tTfF")),
    (_INT, r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", list("-+0123456789")),
    (
        _FLOAT,
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        list("-+.0123456789"),
    ),
):
    ManifestLoader.add_implicit_resolver(_tag, re.compile(_regex), _first)


def _scalar(node: yaml.ScalarNode) -> Any:
    text = node.value
    if node.tag == _NULL:
        return None
    if node.tag == _BOOL:
        return text.lower() == "true"
    if node.tag == _INT:
        if text.startswith(("0o", "0x")):
            return int(text[2:], 8 if text[1] == "o" else 16)
        return int(text, 10)
    if node.tag == _FLOAT:
        low = text.lower()
        if low.endswith(".inf"):
            return -math.inf if low.startswith("-") else math.inf
        if low == ".nan":
            return math.nan
        return float(text)
    if node.tag == _STR:
        return text
    raise _NodeError(node, f"unsupported YAML tag {node.tag!r}", "remove the tag")


class _NodeError(Exception):
    def __init__(self, node: yaml.Node, message: str, hint: str, code: str = d.E_YAML) -> None:
        super().__init__(message)
        self.node, self.message, self.hint, self.code = node, message, hint, code


def _pos(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


class _Builder:
    """Python data from a node tree, recording positions and duplicate keys."""

    def __init__(self, smap: d.SourceMap) -> None:
        self.smap = smap
        self.diagnostics: list[Any] = []

    def build(self, node: yaml.Node, path: d.JsonPath = (), depth: int = 0) -> Any:
        if depth > _MAX_DEPTH:
            raise _NodeError(
                node,
                "the document nests too deeply (recursive alias?)",
                f"nest at most {_MAX_DEPTH} levels; an alias (*name) cannot refer to the node "
                "that contains it",
            )
        self.smap.values.setdefault(path, _pos(node))
        if isinstance(node, yaml.ScalarNode):
            return _scalar(node)
        if isinstance(node, yaml.SequenceNode):
            if node.tag != _SEQ:
                raise _NodeError(node, f"unsupported YAML tag {node.tag!r}", "remove the tag")
            return [self.build(n, (*path, i), depth + 1) for i, n in enumerate(node.value)]
        assert isinstance(node, yaml.MappingNode)
        if node.tag != _MAP:
            raise _NodeError(node, f"unsupported YAML tag {node.tag!r}", "remove the tag")
        out: dict[Any, Any] = {}
        first: dict[Any, yaml.Node] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise _NodeError(key_node, "mapping keys must be plain names", "quote the key")
            key = _scalar(key_node)
            if not isinstance(key, str):
                self.diagnostics.append(
                    self.smap.at(
                        *_pos(key_node),
                        d.E_UNKNOWN_KEY,
                        f"key {key_node.value!r} is {d.describe_value(key)}, not a name",
                        f"keys are names; quote it ('{key_node.value}':) if you mean the text",
                    )
                )
                continue
            if key in first:
                line, _ = _pos(first[key])
                self.diagnostics.append(
                    self.smap.at(
                        *_pos(key_node),
                        d.E_DUPLICATE_KEY,
                        f"duplicate key {key!r} (first defined on line {line})",
                        "remove one of the two; YAML keeps only one of them",
                    )
                )
                continue
            first[key] = key_node
            self.smap.keys[(*path, key)] = _pos(key_node)
            out[key] = self.build(value_node, (*path, key), depth + 1)
        return out


_CParser: Any
try:  # PyYAML built with libyaml
    from yaml.cyaml import CParser as _CParser  # type: ignore[attr-defined,no-redef]
except ImportError:  # pragma: no cover - a PyYAML without libyaml: the pure-Python loader
    _CParser = None


if _CParser is not None:

    class CManifestLoader(_CParser, yaml.resolver.Resolver):  # type: ignore[misc]
        """libyaml's parser and composer (C, several times faster) with the YAML 1.2 core
        scalars of ``ManifestLoader``; positions are libyaml's marks (same lines and columns).
        Aliases are counted and sizes checked after composing (``_within_limits``)."""

        yaml_implicit_resolvers = ManifestLoader.yaml_implicit_resolvers


def _within_limits(root: yaml.Node) -> bool:
    """Whether a composed tree keeps to ``MAX_ALIASES`` and ``MAX_VALUES``, counted as
    ``ManifestLoader`` counts them while composing: aliases share nodes, so every edge to a
    node met before is an alias; a collection's size is 1 plus its children's (aliases
    expanded, each node counted once); a node met again while its own size is being counted
    (a recursive alias) counts 1."""
    sizes: dict[int, int] = {}
    seen: set[int] = {id(root)}
    aliases = 0

    def size_of(node: yaml.Node) -> int:
        nonlocal aliases
        sizes[id(node)] = 1  # while in progress
        total = 1
        for item in node.value:
            for child in item if isinstance(item, tuple) else (item,):
                if id(child) in seen:
                    aliases += 1
                    if aliases > MAX_ALIASES:
                        raise _OverLimit
                    total += sizes.get(id(child), 1)
                else:
                    seen.add(id(child))
                    if isinstance(child, yaml.CollectionNode):
                        total += size_of(child)
                    else:
                        total += 1
        if total > MAX_VALUES:
            raise _OverLimit
        sizes[id(node)] = total
        return total

    if not isinstance(root, yaml.CollectionNode):
        return True
    try:
        size_of(root)
    except (_OverLimit, RecursionError):
        return False
    return True


class _OverLimit(Exception):
    pass


def _compose(text: str) -> Any:
    """The node tree of ``text``: by libyaml when PyYAML has it and the document is well-formed
    and within the limits; else (and for every error, so diagnostics and their positions are
    one implementation's) by the pure-Python ``ManifestLoader``."""
    if _CParser is not None:
        try:
            node = yaml.compose(text, Loader=CManifestLoader)  # type: ignore[arg-type]
        except yaml.YAMLError:
            pass
        else:
            if node is None or _within_limits(node):
                return node
    return yaml.compose(text, Loader=ManifestLoader)


def parse_yaml(text: str, smap: d.SourceMap) -> tuple[Any, list[Any]]:
    """YAML text → (data, diagnostics); data is None when the text does not parse."""
    try:
        node = _compose(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or "invalid YAML"
        if exc.context:
            where = exc.context_mark
            at = f" started on line {where.line + 1}" if where and where.line + 1 != line else ""
            problem = f"{problem} ({exc.context}{at})"
        hint = "check the indentation and quoting around this line"
        if isinstance(exc, AliasLimit):
            hint = "write the repeated parts out, or use fewer aliases (*name)"
        elif "\t" in problem or "tab" in problem:
            hint = "YAML indents with spaces, never tabs"
        return None, [smap.at(line, col, d.E_YAML, f"invalid YAML: {problem}", hint)]
    except yaml.YAMLError as exc:
        return None, [smap.at(1, 1, d.E_YAML, f"invalid YAML: {exc}", None)]
    if node is None:
        return None, []
    builder = _Builder(smap)
    try:
        data = builder.build(node)
    except _NodeError as exc:
        return None, [smap.at(*_pos(exc.node), exc.code, exc.message, exc.hint or None)]
    return data, builder.diagnostics


@dataclass(frozen=True)
class LoadedManifest:
    """A valid manifest with its file, directory, text, digest and node positions."""

    manifest: Manifest
    path: Path
    root: Path
    text: str
    digest: str
    smap: d.SourceMap = field(repr=False, compare=False)

    def locate(self, path: tuple[str | int, ...]) -> tuple[int, int]:
        """(line, col) of the node at a JSON path, or of its nearest known ancestor."""
        return self.smap.locate(path)


def manifest_digest(manifest: Manifest) -> str:
    """xxh128 of the canonical JSON of the manifest: comments, order, whitespace do not count."""
    canonical = json.dumps(
        manifest.model_dump(mode="json"),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )
    return "xxh128:" + xxhash.xxh3_128_hexdigest(canonical.encode())


_SECTIONS = ("sources", "pipelines", "titles", "variants", "deliverables")
_PLACEHOLDERS: dict[str, Any] = {"restoro": 1, "project": "invalid", "output": "out", "qc": {}}
_PRUNE_ROUNDS = 8


def _remove(
    data: dict[Any, Any], path: d.JsonPath, broken: set[tuple[str, ...]]
) -> d.JsonPath | None:
    """Remove the node at ``path`` (a whole pipeline at least: its shape is checked later).

    Returns the path of a removed list item, None when something else was removed.
    """
    if not path:
        return None
    section = path[0]
    if len(path) == 1 or section not in _SECTIONS or (section == "pipelines" and len(path) > 2):
        path = path[:2]
    if len(path) == 1:
        if section in _PLACEHOLDERS:
            data[str(section)] = copy.deepcopy(_PLACEHOLDERS[str(section)])
        elif section in _SECTIONS:
            data[str(section)] = {}
            broken.add((str(section),))
        else:
            data.pop(section, None)
        return None
    if len(path) == 2 and section in _SECTIONS:
        broken.add((str(section), str(path[1])))
    parent: Any = data
    for key in path[:-1]:
        parent = parent[key]
    if isinstance(parent, dict):
        parent.pop(path[-1], None)
    elif isinstance(parent, list) and isinstance(path[-1], int) and path[-1] < len(parent):
        parent.pop(path[-1])
        return path
    return None


def _sort_key(path: d.JsonPath) -> tuple[int, tuple[tuple[int, int | str], ...]]:
    return len(path), tuple((0, x) if isinstance(x, int) else (1, str(x)) for x in path)


def _valid_part(
    data: dict[Any, Any], first: ValidationError, smap: d.SourceMap
) -> tuple[Manifest | None, set[tuple[str, ...]]]:
    """The manifest without the parts that failed validation, and the names dropped whole.

    Lets cross-reference checks run anyway, so every error is reported at once; references
    to a dropped item are not reported as unknown. Dropped list items are recorded in
    ``smap.removed`` so later diagnostics still point at the right lines.
    """
    pruned, exc = copy.deepcopy(data), first
    broken: set[tuple[str, ...]] = set()
    for _ in range(_PRUNE_ROUNDS):
        paths = set()
        for e in exc.errors(include_url=False):
            path, _at_key = d.json_path(pruned, e["loc"], keep_last=e["type"] == "missing")
            if e["type"] == "missing":
                path = path[:-1]
            if path and path[-1] in ("stage", "cache"):
                path = path[:-1]
            paths.add(path)
        originals = {p: smap.original(p) for p in paths}
        # Deepest first, list items from the end, so removals do not shift each other.
        for path in sorted(paths, key=_sort_key, reverse=True):
            try:
                item = _remove(pruned, path, broken)
            except (KeyError, IndexError, TypeError):
                continue
            if item is not None:
                orig = originals[path] if item == path else smap.original(item)
                smap.removed.setdefault(orig[:-1], set()).add(int(orig[-1]))
        try:
            return Manifest.model_validate(pruned), broken
        except ValidationError as again:
            exc = again
    return None, broken


def _nonfinite(data: Any, smap: d.SourceMap, path: d.JsonPath = ()) -> dict[tuple[int, int], Any]:
    """A diagnostic for every infinite or NaN number (``.inf``, ``.nan``, ``1e999``), by
    position: no field of a manifest means infinity, and JSON (the digest) cannot hold it."""
    out: dict[tuple[int, int], Any] = {}
    items = (
        data.items()
        if isinstance(data, dict)
        else enumerate(data)
        if isinstance(data, list)
        else ()
    )
    for key, value in items:
        out.update(_nonfinite(value, smap, (*path, key)))
    if isinstance(data, float) and not math.isfinite(data):
        pos = smap.locate(path)
        out[pos] = smap.at(
            *pos,
            d.E_INVALID,
            f"{path[-1] if path else 'value'}: expected a finite number, got {data}",
            "write an ordinary number; infinity and NaN are not accepted",
        )
    return out


def load_manifest(path: Path) -> LoadedManifest:
    """Read, parse and validate a manifest; raise ManifestError with every problem found."""
    from restoro.manifest.validate import validate_references

    shown = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ManifestError(
            [
                d.SourceMap(shown, "").at(
                    1,
                    1,
                    d.E_FILE,
                    f"no manifest at {shown}",
                    "create one with `restoro init`, or pass -f PATH",
                )
            ]
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ManifestError(
            [
                d.SourceMap(shown, "").at(
                    1,
                    1,
                    d.E_FILE,
                    f"cannot read the manifest: {reason}",
                    "check the file's permissions and that it is UTF-8 text",
                )
            ]
        ) from None
    smap = d.SourceMap(shown, text)
    data, diags = parse_yaml(text, smap)
    if data is None and not diags:
        diags = [
            smap.at(
                1,
                1,
                d.E_INVALID,
                "the manifest is empty",
                "start from `restoro init`, or write `restoro: 1` and `project: NAME`",
            )
        ]
    elif data is not None and not isinstance(data, dict):
        diags.append(
            smap.diag(
                (),
                d.E_INVALID,
                f"the manifest must be a mapping, got {d.describe_value(data)}",
                "start with `restoro: 1` and `project: NAME`",
            )
        )
    if diags and not isinstance(data, dict):
        raise ManifestError(diags)
    assert isinstance(data, dict)
    nonfinite = _nonfinite(data, smap)
    diags += nonfinite.values()
    manifest: Manifest | None = None
    broken: set[tuple[str, ...]] = set()
    try:
        manifest = Manifest.model_validate(data)
    except ValidationError as exc:
        diags += d.translate(exc, data, smap, root=Manifest)
        manifest, broken = _valid_part(data, exc, smap)
    if manifest is not None:
        diags += validate_references(manifest, smap, broken)
    # A non-finite number is reported once, not again as out of range by its field.
    diags = [
        x
        for x in diags
        if (x.line, x.col) not in nonfinite or x.code == d.E_INVALID and "finite" in x.message
    ]
    if diags or manifest is None:
        raise ManifestError(sorted(diags, key=lambda x: (x.line, x.col)))
    return LoadedManifest(
        manifest=manifest,
        path=Path(path),
        root=Path(path).resolve().parent,
        text=text,
        digest=manifest_digest(manifest),
        smap=smap,
    )
