"""Resolution: what runs on one shot, and where a title must (not) be cut.

A shot's stage chain is resolved in this order, later steps winning:

1. the title's ``pipeline``;
2. each override that selects the shot, in manifest order: a ``range`` override selects the
   shots lying inside [start, end); a ``shots`` override the shots it lists. ``pipeline``
   replaces the whole chain (dropping params merged so far), ``params`` merge into the stage of
   that id (keys replace keys; ids not in the chain are ignored), ``tags`` accumulate,
   ``source``/``source_in`` conform the shot from another source;
3. the variant's ``params``.

All positions are frame indices in the title's source (end exclusive) unless named otherwise.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from pydantic import ValidationError

from restoro.errors import InputError, UsageError
from restoro.media.timecode import frames_to_timecode, parse_position
from restoro.stages import registry

if TYPE_CHECKING:
    from collections.abc import Mapping

    from restoro.manifest.model import Manifest, Override
    from restoro.manifest.validate import SourceFacts
    from restoro.stages.base import StageParams


@dataclass(frozen=True)
class ResolvedStage:
    """One stage of a shot's chain with validated params (defaults filled in)."""

    stage: str
    params: StageParams
    cache: bool


@dataclass(frozen=True)
class ResolvedShot:
    """What runs on one shot, and where its frames come from.

    ``source_in`` is the frame index in ``source`` of the shot's first frame when the shot is
    conformed from another element; None: the title's source at the shot's own position.
    """

    pipeline: str
    stages: tuple[ResolvedStage, ...]
    tags: tuple[str, ...]
    source: str
    source_in: int | None


def _pos(value: int | str, facts: SourceFacts) -> int:
    return parse_position(value, facts.frame_rate, start_frame=facts.start_frame)


def _range(o: Override, facts: SourceFacts) -> tuple[int, int] | None:
    if o.range is None:
        return None
    return _pos(o.range[0], facts), _pos(o.range[1], facts)


def title_span(manifest: Manifest, title: str, facts: Mapping[str, SourceFacts]) -> tuple[int, int]:
    """(start, end) of the title in its source's frames; the whole source without a range."""
    t = manifest.titles[title]
    f = facts[t.source]
    if t.range is None:
        return 0, f.frame_count
    return _pos(t.range[0], f), min(_pos(t.range[1], f), f.frame_count)


def forced_cuts(manifest: Manifest, title: str, facts: Mapping[str, SourceFacts]) -> list[int]:
    """Frames that must start a shot: every override range's start and end, and ``shots.cuts``.

    Cutting at range bounds makes a range override apply to whole shots. Only positions
    strictly inside the title span are returned (its bounds are cuts anyway).
    """
    t = manifest.titles[title]
    f = facts[t.source]
    lo, hi = title_span(manifest, title, facts)
    cuts = {_pos(c, f) for c in t.shots.cuts}
    for o in t.overrides:
        r = _range(o, f)
        if r is not None:
            cuts.update(r)
    return sorted(c for c in cuts if lo < c < hi)


def joins(manifest: Manifest, title: str, facts: Mapping[str, SourceFacts]) -> list[int]:
    """Frames where a detected cut is to be ignored (the shot joins the previous one)."""
    t = manifest.titles[title]
    f = facts[t.source]
    return sorted({_pos(j, f) for j in t.shots.joins})


def shot_id(
    title: str, start_frame: int, facts_of_source: SourceFacts, *, drop_frame: bool | None = None
) -> str:
    """``<title>@<source timecode of the shot's first frame>``: stable across re-detection.

    ``drop_frame`` defaults to ``facts_of_source.drop_frame`` (False when unknown).
    """
    f = facts_of_source
    df = drop_frame if drop_frame is not None else bool(f.drop_frame)
    return f"{title}@{frames_to_timecode(start_frame + f.start_frame, f.frame_rate, df)}"


def _merge(chain: list[dict[str, Any]], params: Mapping[str, Mapping[str, Any]]) -> None:
    for entry in chain:
        extra = params.get(entry["stage"])
        if extra:
            entry["params"] = {**entry["params"], **extra}


def resolve_shot(
    manifest: Manifest,
    title: str,
    *,
    shot_id: str,
    start: int,
    end: int,
    facts: Mapping[str, SourceFacts],
    variant: str | None,
) -> ResolvedShot:
    """The resolved stage chain, tags and frame source of shot [start, end) of ``title``."""
    t = manifest.titles[title]
    f = facts[t.source]
    pipeline = t.pipeline

    def chain_of(name: str) -> list[dict[str, Any]]:
        return [
            {"stage": e.stage, "params": dict(e.params), "cache": e.cache}
            for e in manifest.pipelines[name]
        ]

    chain: list[dict[str, Any]] | None = None
    tags: list[str] = []
    source, source_in = t.source, None
    for o in t.overrides:
        r = _range(o, f)
        if r is not None:
            if not (r[0] <= start and end <= r[1]):
                continue
        elif shot_id not in (o.shots or []):
            continue
        if o.pipeline is not None:
            pipeline, chain = o.pipeline, chain_of(o.pipeline)
        elif chain is None:
            chain = chain_of(pipeline)
        _merge(chain, o.params)
        tags += [tag for tag in o.tags if tag not in tags]
        if o.source is not None:
            g = facts[o.source]
            if o.source_in is not None and r is not None:
                source_in = _pos(o.source_in, g) + (start - r[0])
            else:
                # Same timecode in the conform element as in the title's source.
                source_in = start + f.start_frame - g.start_frame
            source = o.source
    plain = chain is None  # no override selects the shot: the title's chain, as resolved before
    if plain:
        known_shot = _PLAIN.get((id(manifest), title, variant))
        if known_shot is not None and known_shot[0] is manifest:
            return known_shot[1]
        chain = chain_of(pipeline)
    assert chain is not None
    if variant is not None:
        if variant not in manifest.variants:
            close = difflib.get_close_matches(variant, list(manifest.variants), n=1)
            raise UsageError(
                f"unknown variant {variant!r}",
                hint=f"did you mean {close[0]!r}?"
                if close
                else f"variants: {', '.join(sorted(manifest.variants)) or 'none defined'}",
            )
        _merge(chain, manifest.variants[variant].params)
    stages = []
    for entry in chain:
        cls = registry.get(entry["stage"])
        if cls is None:  # load_manifest refuses these; a plugin may have gone since
            raise UsageError(
                f"unknown stage {entry['stage']!r}", hint="install the package that provides it"
            )
        memo = _memo_key(cls, entry)
        known = _RESOLVED.get(memo) if memo is not None else None
        if known is not None:
            stages.append(known)
            continue
        try:
            params = cls.Params.model_validate(entry["params"])
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'params'}: {e['msg']}"
                for e in exc.errors(include_url=False)
            )
            raise InputError(
                f"shot {shot_id}: invalid params for stage {entry['stage']!r}: {problems}",
                hint="check the pipeline, the overrides selecting this shot and the variant",
            ) from None
        resolved = ResolvedStage(entry["stage"], params, entry["cache"])
        if memo is not None:
            if len(_RESOLVED) >= _MEMO_MAX:
                _RESOLVED.clear()
            _RESOLVED[memo] = resolved
        stages.append(resolved)
    shot = ResolvedShot(pipeline, tuple(stages), tuple(tags), source, source_in)
    if plain:
        if len(_PLAIN) >= _MEMO_MAX:
            _PLAIN.clear()
        _PLAIN[(id(manifest), title, variant)] = (manifest, shot)
    return shot


_PLAIN: dict[tuple[int, str, str | None], tuple[Manifest, ResolvedShot]] = {}
"""The resolved shot of each (manifest, title, variant) for shots no override selects: the
same for all of them (its stages are the memo's below), so a title's thousands of shots
resolve their chain once ("batch the planning per title"). The manifest is kept with it, so
a key whose ``id`` was reused by another manifest never matches."""


_RESOLVED: dict[tuple[Any, ...], ResolvedStage] = {}
"""Validated stages by (stage class, stage id, raw params as sorted JSON, cache flag): the
shots of a title mostly share their chain, and validating it through pydantic per shot is most
of the planning of a no-op build. Results are immutable (frozen params), so they are shared."""
_MEMO_MAX = 4096


def _memo_key(cls: Any, entry: Mapping[str, Any]) -> tuple[Any, ...] | None:
    """The memo key of a raw chain entry; None when its params are not plain JSON values of
    exact types (they are then validated every time). JSON keeps 1, 1.0 and true apart, as
    strict validation does."""
    params = entry["params"]
    if not _plain(params):
        return None
    try:
        raw = orjson.dumps(params, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:  # e.g. an integer beyond 64 bits
        return None
    return (cls, entry["stage"], raw, entry["cache"])


_SCALARS = frozenset((str, int, float, bool, type(None)))


def _plain(obj: Any) -> bool:
    t = type(obj)
    if t in _SCALARS:
        return True
    if t is dict:
        return all(type(k) is str and _plain(v) for k, v in obj.items())
    if t is list:  # not a tuple: strict validation refuses one where a list is wanted
        return all(_plain(v) for v in obj)
    return False
