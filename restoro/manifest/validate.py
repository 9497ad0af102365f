"""Cross-reference checks of a manifest, and checks against the probed media.

``validate_references`` runs inside ``load_manifest`` (no media needed): names, stage ids and
params, pipeline shape, shot-id syntax, range order. ``check_against_media`` runs once the
sources are probed: every position must exist in its source and lie inside its title.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import ValidationError

from restoro.manifest import diagnostics as d
from restoro.media.timecode import frames_to_timecode, is_drop_frame, parse_position
from restoro.stages import registry

if TYPE_CHECKING:
    from collections.abc import Collection, Iterator, Mapping

    from restoro.errors import Diagnostic
    from restoro.manifest.model import Manifest, Title


class Loaded(Protocol):
    """What the checks read of a loaded manifest (``restoro.manifest.loader.LoadedManifest``;
    named here, not imported, as the loader imports these checks)."""

    @property
    def manifest(self) -> Manifest: ...
    @property
    def smap(self) -> d.SourceMap: ...


Path = tuple[str | int, ...]


@dataclass(frozen=True)
class SourceFacts:
    """What the planner knows about a probed source, in frames.

    ``start_frame`` is the source's first timecode as an absolute frame count; ``drop_frame``
    (None: as the manifest's ``timecode`` says) picks how frame indices are shown as timecode.
    """

    frame_rate: Fraction
    frame_count: int
    start_frame: int
    drop_frame: bool | None = None


# -- load-time checks ----------------------------------------------------------------------------


def validate_references(
    m: Manifest, smap: d.SourceMap, broken: Collection[tuple[str, ...]] = ()
) -> list[Diagnostic]:
    """Every name refers to something that exists, stage params validate, ranges are ordered.

    ``broken`` holds (section,) or (section, name) of items that failed validation; references
    to them are not reported again.
    """
    out: list[Diagnostic] = []

    def ref(section: str, name: str | None, known: Mapping[str, Any], path: Path) -> None:
        if name is None or name in known or (section,) in broken or (section, name) in broken:
            return
        what = section.removesuffix("s")
        out.append(
            smap.diag(
                path,
                d.E_UNKNOWN_REF,
                f"unknown {what} {name!r}",
                d.did_you_mean(name, known) or f"define it under {section}:",
            )
        )

    for name, entries in m.pipelines.items():
        out += _check_pipeline(name, entries, smap)
    for tname, t in m.titles.items():
        base: Path = ("titles", tname)
        ref("sources", t.source, m.sources, (*base, "source"))
        ref("pipelines", t.pipeline, m.pipelines, (*base, "pipeline"))
        out += _check_order(t.range, (*base, "range"), smap)
        for i, o in enumerate(t.overrides):
            op: Path = (*base, "overrides", i)
            ref("pipelines", o.pipeline, m.pipelines, (*op, "pipeline"))
            ref("sources", o.source, m.sources, (*op, "source"))
            out += _check_order(o.range, (*op, "range"), smap)
            out += _check_params_map(o.params, (*op, "params"), smap)
            for j, sid in enumerate(o.shots or []):
                owner = sid.partition("@")[0]
                if owner != tname:
                    out.append(
                        smap.diag(
                            (*op, "shots", j),
                            d.E_SHOT_ID,
                            f"shot {sid!r} belongs to title {owner!r}, not {tname!r}",
                            f"shot ids of this title start with {tname}@",
                        )
                    )
        for i, a in enumerate(t.audio):
            ref("sources", a.source, m.sources, (*base, "audio", i, "source"))
        for i, c in enumerate(t.captions):
            ref("sources", c.source, m.sources, (*base, "captions", i, "source"))
    for vname, v in m.variants.items():
        out += _check_params_map(v.params, ("variants", vname, "params"), smap)
    out += _check_review(m, smap)
    for dname, deliv in m.deliverables.items():
        seen: set[str] = set()
        for i, tname in enumerate(deliv.titles or []):
            path = ("deliverables", dname, "titles", i)
            ref("titles", tname, m.titles, path)
            if tname in seen:
                out.append(
                    smap.diag(
                        path,
                        d.E_DUPLICATE_NAME,
                        f"title {tname!r} is listed twice",
                        "list each title once",
                    )
                )
            seen.add(tname)
        if dname in m.titles:
            out.append(
                smap.diag(
                    ("deliverables", dname),
                    d.E_DUPLICATE_NAME,
                    f"{dname!r} names both a title and a deliverable",
                    "build targets must be unambiguous: rename one of them",
                    at_key=True,
                )
            )
    return out


def _check_review(m: Manifest, smap: d.SourceMap) -> list[Diagnostic]:
    """Approvals (docs/review.md): ``base`` names the build without ``--variant``, so no variant
    may take it (E222); ``fallback`` needs ``select`` (E213) and names a variant or ``base``."""
    from restoro.review_file import BASE

    out: list[Diagnostic] = []
    if BASE in m.variants:
        out.append(
            smap.diag(
                ("variants", BASE),
                d.E_RESERVED,
                f"a variant cannot be named {BASE!r}: reviews use it for the build without "
                "--variant",
                "rename the variant",
                at_key=True,
            )
        )
    for dname, deliv in m.deliverables.items():
        fb = deliv.fallback
        if fb is None:
            continue
        path = ("deliverables", dname, "fallback")
        if deliv.select is None:
            out.append(
                smap.diag(
                    path,
                    d.E_NEEDS_KEY,
                    "fallback is used only with select: approved",
                    "add select: approved, or remove fallback",
                    at_key=True,
                )
            )
        if fb != BASE and fb not in m.variants:
            out.append(
                smap.diag(
                    path,
                    d.E_UNKNOWN_REF,
                    f"unknown variant {fb!r}",
                    d.did_you_mean(fb, [*m.variants, BASE])
                    or f"define it under variants:, or use {BASE} (the build without --variant)",
                )
            )
    return out


def _check_pipeline(name: str, entries: list[Any], smap: d.SourceMap) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    base: Path = ("pipelines", name)
    if not entries:
        return [
            smap.diag(
                base,
                d.E_PIPELINE,
                f"pipeline {name!r} is empty",
                "start it with {stage: ingest}",
                at_key=True,
            )
        ]
    if entries[0].stage != "ingest":
        out.append(
            smap.diag(
                (*base, 0, "stage"),
                d.E_PIPELINE,
                f"pipeline {name!r} must start with the ingest stage, not {entries[0].stage!r}",
                "add {stage: ingest} as the first entry",
            )
        )
    for i, entry in enumerate(entries):
        path: Path = (*base, i)
        if entry.stage == "ingest" and i > 0:
            out.append(
                smap.diag(
                    (*path, "stage"),
                    d.E_PIPELINE,
                    "ingest may only be the first stage of a pipeline",
                    "a pipeline reads its source once, at the start",
                )
            )
        cls = registry.get(entry.stage)
        if cls is None:
            out.append(_unknown_stage(entry.stage, (*path, "stage"), smap, at_key=False))
            continue
        try:
            cls.Params.model_validate(entry.params)
        except ValidationError as exc:
            out += d.translate(
                exc,
                entry.params,
                smap,
                root=cls.Params,
                base=path,
                code=d.E_STAGE_PARAMS,
                subject=f"{entry.stage}.",
            )
    return out


def _unknown_stage(stage: str, path: Path, smap: d.SourceMap, *, at_key: bool) -> Diagnostic:
    close = registry.suggest(stage)
    hint = f"did you mean {close!r}?" if close else None
    hint = hint or d.did_you_mean(stage, list(registry.all_stages()))
    return smap.diag(path, d.E_UNKNOWN_REF, f"unknown stage {stage!r}", hint, at_key=at_key)


def _check_params_map(
    params: Mapping[str, Mapping[str, Any]], base: Path, smap: d.SourceMap
) -> list[Diagnostic]:
    """Params by stage id (overrides, variants): each key a known field with a valid value."""
    out: list[Diagnostic] = []
    for stage, values in params.items():
        cls = registry.get(stage)
        if cls is None:
            out.append(_unknown_stage(stage, (*base, stage), smap, at_key=True))
            continue
        try:
            cls.Params.model_validate(dict(values))
        except ValidationError as exc:
            # Overrides are merged onto the pipeline's params: required fields may be elsewhere.
            out += d.translate(
                exc,
                dict(values),
                smap,
                root=cls.Params,
                base=(*base, stage),
                code=d.E_STAGE_PARAMS,
                subject=f"{stage}.",
                ignore=("missing",),
            )
    return out


_TC_PARTS = re.compile(r"^(\d+):(\d+):(\d+)[:;.](\d+)$")


def _order_key(pos: int | str) -> tuple[str, Any]:
    """A key that orders positions of the same kind without knowing the frame rate."""
    if isinstance(pos, int):
        return ("frame", pos)
    text = pos.strip()
    if text.isdigit():
        return ("frame", int(text))
    if text.endswith("s"):
        return ("seconds", Fraction(text[:-1]))
    m = _TC_PARTS.match(text)
    return ("timecode", tuple(int(x) for x in m.groups()) if m else ())


def _check_order(rng: list[int | str] | None, path: Path, smap: d.SourceMap) -> list[Diagnostic]:
    if rng is None:
        return []
    (ka, va), (kb, vb) = _order_key(rng[0]), _order_key(rng[1])
    if ka == kb and va >= vb:
        return [
            smap.diag(
                (*path, 1),
                d.E_RANGE_ORDER,
                f"range end {rng[1]!r} is not after its start {rng[0]!r}",
                "a range is [start, end) with end after start",
            )
        ]
    return []


# -- checks against media ------------------------------------------------------------------------


def _drop(m: Manifest, name: str, f: SourceFacts) -> bool:
    if f.drop_frame is not None:
        return f.drop_frame
    return is_drop_frame(m.sources[name].timecode) and f.frame_rate in (
        Fraction(30000, 1001),
        Fraction(60000, 1001),
    )


def show_frame(m: Manifest, source: str, f: SourceFacts, index: int) -> str:
    """A source frame index as that source's timecode (how users wrote it)."""
    return frames_to_timecode(max(0, f.start_frame + index), f.frame_rate, _drop(m, source, f))


def _positions(t: Title) -> Iterator[tuple[Path, int | str, str]]:
    """(path, position, role) of every title-source position of a title."""
    for k, v in enumerate(t.shots.cuts):
        yield ("shots", "cuts", k), v, "cut"
    for k, v in enumerate(t.shots.joins):
        yield ("shots", "joins", k), v, "join"
    for i, o in enumerate(t.overrides):
        for k, v in enumerate(o.range or []):
            yield ("overrides", i, "range", k), v, "override range"


def check_against_media(loaded: Loaded, facts: Mapping[str, SourceFacts]) -> list[Diagnostic]:
    """Every position exists in its source and lies inside its title (E230, E231, E233, E234)."""
    m, smap = loaded.manifest, loaded.smap
    out: list[Diagnostic] = []

    def parse(pos: int | str, src: str, path: Path) -> int | None:
        f = facts[src]
        try:
            return parse_position(pos, f.frame_rate, start_frame=f.start_frame)
        except ValueError as exc:
            out.append(
                smap.diag(
                    path,
                    d.E_TIMECODE,
                    str(exc),
                    f"source {src!r} runs at "
                    f"{f.frame_rate} fps and starts at {show_frame(m, src, f, 0)}",
                )
            )
            return None

    for sname, f in facts.items():
        if (
            sname in m.sources
            and is_drop_frame(m.sources[sname].timecode)
            and f.frame_rate not in (Fraction(30000, 1001), Fraction(60000, 1001))
        ):
            out.append(
                smap.diag(
                    ("sources", sname, "timecode"),
                    d.E_TIMECODE,
                    f"drop-frame timecode at {f.frame_rate} fps",
                    "drop-frame (';') exists only at 29.97 and 59.94 fps: use ':'",
                )
            )
    for tname, t in m.titles.items():
        if t.source not in facts:
            continue
        f, base = facts[t.source], ("titles", tname)
        end_tc = show_frame(m, t.source, f, f.frame_count)
        lo, hi = 0, f.frame_count
        if t.range is not None:
            a, b = (parse(p, t.source, (*base, "range", k)) for k, p in enumerate(t.range))
            for k, v in ((0, a), (1, b)):
                if v is not None and v > f.frame_count:
                    out.append(
                        smap.diag(
                            (*base, "range", k),
                            d.E_OUTSIDE,
                            f"{t.range[k]!r} is after the end of source {t.source!r}",
                            f"the source ends at {end_tc}",
                        )
                    )
            if a is not None and b is not None:
                if a >= b:
                    out.append(
                        smap.diag(
                            (*base, "range", 1),
                            d.E_RANGE_ORDER,
                            "the title range ends before it starts",
                            "a range is [start, end) with end after start",
                        )
                    )
                lo, hi = a, min(b, f.frame_count)
        first, last = show_frame(m, t.source, f, lo), show_frame(m, t.source, f, hi)
        parsed: dict[Path, int] = {}
        for rel, pos, role in _positions(t):
            v = parse(pos, t.source, (*base, *rel))
            if v is None:
                continue
            parsed[rel] = v
            if not lo <= v <= hi:
                out.append(
                    smap.diag(
                        (*base, *rel),
                        d.E_OUTSIDE,
                        f"{role} {pos!r} is outside the title ({first} to {last})",
                        f"the title ends at {last}",
                    )
                )
        for i, o in enumerate(t.overrides):
            op = (*base, "overrides", i)
            ra, rb = (
                parsed.get(("overrides", i, "range", 0)),
                parsed.get(("overrides", i, "range", 1)),
            )
            if ra is not None and rb is not None and ra >= rb:
                out.append(
                    smap.diag(
                        (*op, "range", 1),
                        d.E_RANGE_ORDER,
                        "the override range ends before it starts",
                        "a range is [start, end) with end after start",
                    )
                )
            if o.source is None or o.source not in facts:
                continue
            g = facts[o.source]
            if g.frame_rate != f.frame_rate:
                out.append(
                    smap.diag(
                        (*op, "source"),
                        d.E_RATE,
                        f"source {o.source!r} runs at {g.frame_rate} fps, the "
                        f"title's source at {f.frame_rate} fps",
                        "conform elements must have the title's frame rate",
                    )
                )
                continue
            if o.source_in is not None:
                sin = parse(o.source_in, o.source, (*op, "source_in"))
            elif ra is not None:
                sin = ra + f.start_frame - g.start_frame
            else:
                continue
            if sin is None or ra is None or rb is None:
                continue
            where = (*op, "source_in") if o.source_in is not None else (*op, "source")
            out += _check_coverage(loaded, (t.source, f), (o.source, g), (ra, rb), sin, where)
    return sorted(out, key=lambda x: (x.line, x.col))


def _check_coverage(
    loaded: Loaded,
    title_src: tuple[str, SourceFacts],
    elem: tuple[str, SourceFacts],
    rng: tuple[int, int],
    sin: int,
    where: Path,
) -> list[Diagnostic]:
    """A conform element covers its range exactly: frames from ``sin`` for the whole range."""
    m, smap = loaded.manifest, loaded.smap
    (tname, f), (ename, g) = title_src, elem
    ra, rb = rng
    first, end = show_frame(m, ename, g, 0), show_frame(m, ename, g, g.frame_count)
    runs = f"{ename!r} runs from {first} to {end}"
    if sin < 0:
        return [
            smap.diag(
                where,
                d.E_OUTSIDE,
                f"{ename} starts {-sin} frames ({_duration(m, ename, g, -sin)}) after the range "
                f"starts at {show_frame(m, tname, f, ra)}",
                runs,
            )
        ]
    gap = sin + (rb - ra) - g.frame_count
    if gap > 0:
        return [
            smap.diag(
                where,
                d.E_OUTSIDE,
                f"{ename} ends {gap} frames ({_duration(m, ename, g, gap)}) before the range "
                f"ends at {show_frame(m, tname, f, rb)}",
                f"{runs}; shorten the range or use a longer element",
            )
        ]
    return []


def _duration(m: Manifest, source: str, f: SourceFacts, frames: int) -> str:
    """A frame count as a timecode duration at the source's rate and drop-frame mode."""
    return frames_to_timecode(frames, f.frame_rate, _drop(m, source, f))


def check_shot_ids(loaded: Loaded, known: Mapping[str, set[str]]) -> list[Diagnostic]:
    """Every shot id an override names exists among the detected shots of its title (E232)."""
    out: list[Diagnostic] = []
    for tname, t in loaded.manifest.titles.items():
        if tname not in known:
            continue
        for i, o in enumerate(t.overrides):
            for j, sid in enumerate(o.shots or []):
                if sid in known[tname]:
                    continue
                hint = d.did_you_mean(sid, sorted(known[tname]))
                if hint is None or not hint.startswith("did"):
                    hint = f"run `restoro shots {tname}` to list the shots"
                out.append(
                    loaded.smap.diag(
                        ("titles", tname, "overrides", i, "shots", j),
                        d.E_SHOT_ID,
                        f"unknown shot {sid!r}",
                        hint,
                    )
                )
    return out
