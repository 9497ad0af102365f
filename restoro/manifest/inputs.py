"""Plan-time checks of everything a build will read besides the sources' pictures.

``check_inputs`` runs in ``Workspace.preflight`` (``validate``, ``plan`` and ``build``, before
the first action) once the sources are probed: crops fit the frame, audio streams exist, stems,
caption files and model files exist and parse, and each stage's own ``check`` passes. Every
problem is a diagnostic at the manifest line that names the file or value, so a build never
fails half-way on something that could be known before it started.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from restoro.errors import InputError, RestoroError
from restoro.manifest import diagnostics as d

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping
    from pathlib import Path

    from restoro.errors import Diagnostic
    from restoro.manifest.loader import LoadedManifest
    from restoro.media.probe import SourceInfo

JsonPath = tuple[str | int, ...]


def check_inputs(
    loaded: LoadedManifest,
    titles: list[str],
    sources: Mapping[str, SourceInfo],
    deliverables: list[str] | None = None,
    file_digest: Callable[[Path], str] | None = None,
) -> list[Diagnostic]:
    """Diagnostics (E231, E235, E236, E240) for the titles' crops, audio, captions, stems,
    models, and for ``deliverables`` (None: all of them, except the earlier packages that
    supplemental IMF deliverables refer to: those may not be built yet).

    ``file_digest`` digests a model file (the store's stat cache, where there is a store: an
    unchanged model is not hashed again); None: hashed once per check."""
    m, smap, root = loaded.manifest, loaded.smap, loaded.root
    out: list[Diagnostic] = []
    for name, info in sources.items():
        if name in m.sources:
            out += _check_crop(loaded, name, info)
    pipelines: set[str] = set()
    for tname in titles:
        t, base = m.titles[tname], ("titles", tname)
        pipelines.add(t.pipeline)
        pipelines.update(o.pipeline for o in t.overrides if o.pipeline)
        for i, track in enumerate(t.audio):
            tp: JsonPath = (*base, "audio", i)
            out += _check_track_layout(loaded, track, tp)
            if track.stems:
                for j, stem in enumerate(track.stems):
                    out += _side_file(loaded, stem, (*tp, "stems", j), "stem") or _stem(
                        loaded, stem, (*tp, "stems", j)
                    )
                continue
            src = track.source or t.source
            info = sources.get(src)
            if info is None:
                continue
            streams = {a.index: a for a in info.audio}
            if track.stream is None:  # chosen by language (plan.audio checks that)
                continue
            if track.stream not in streams:
                have = ", ".join(f"{a.index} ({a.codec}, {a.layout})" for a in info.audio)
                out.append(
                    smap.diag(
                        (*tp, "stream") if "stream" in track.model_fields_set else tp,
                        E_STREAM,
                        f"source {src!r} has no audio stream {track.stream}",
                        f"its audio streams: {have}" if have else f"{src!r} has no audio at all",
                    )
                )
        for i, cap in enumerate(t.captions):
            if cap.source:  # embedded in a source: workspace.embedded_captions checks it
                continue
            path: JsonPath = (*base, "captions", i, "path")
            problems = _side_file(loaded, cap.path, path, "caption file")
            if not problems:
                problems = _caption(loaded, cap.path, path)
            out += problems
    out += _check_stages(loaded, pipelines, titles, root, file_digest)
    out += _check_deliverables(loaded, titles, sources, deliverables)
    return out


E_STREAM, E_SIDE_FILE = "E235", "E236"


def _check_crop(loaded: LoadedManifest, name: str, info: SourceInfo) -> list[Diagnostic]:
    left, top, right, bottom = loaded.manifest.sources[name].crop
    w, h = info.video.width, info.video.height
    if left + right < w and top + bottom < h:
        return []
    return [
        loaded.smap.diag(
            ("sources", name, "crop"),
            d.E_OUTSIDE,
            f"crop [{left}, {top}, {right}, {bottom}] removes the whole {w}x{h} picture of "
            f"source {name!r}",
            f"left + right must be under {w} and top + bottom under {h}",
        )
    ]


def _side_file(loaded: LoadedManifest, rel: str, path: JsonPath, what: str) -> list[Diagnostic]:
    full = (loaded.root / rel).resolve()
    if full.is_file():
        try:
            with open(full, "rb"):
                return []
        except OSError as exc:
            problem = f"{what} {rel} cannot be read: {exc.strerror or exc}"
            return [loaded.smap.diag(path, E_SIDE_FILE, problem, "check its permissions")]
    problem = f"{what} {rel} does not exist" + (" (it is a directory)" if full.is_dir() else "")
    return [
        loaded.smap.diag(
            path, E_SIDE_FILE, problem, "paths are relative to the manifest's directory"
        )
    ]


def _caption(loaded: LoadedManifest, rel: str, path: JsonPath) -> list[Diagnostic]:
    from restoro.deliver.captions.io import read_cues

    try:
        read_cues(loaded.root / rel)
    except InputError as exc:
        message = exc.message.replace(str(loaded.root / rel), rel)
        return [loaded.smap.diag(path, E_SIDE_FILE, message, exc.hint)]
    return []


def _stage_params(
    loaded: LoadedManifest, pipelines: set[str], titles: list[str]
) -> Iterator[tuple[str, dict[str, Any], JsonPath, dict[str, JsonPath]]]:
    """(stage, params, where, position of each param) of every pipeline entry the titles run,
    and of every override and variant merged onto the entries of its stage."""
    m = loaded.manifest
    entries: dict[str, list[tuple[dict[str, Any], JsonPath]]] = {}
    for pname in sorted(pipelines):
        for i, entry in enumerate(m.pipelines.get(pname, [])):
            where: JsonPath = ("pipelines", pname, i)
            entries.setdefault(entry.stage, []).append((dict(entry.params), where))
            yield entry.stage, dict(entry.params), where, {k: (*where, k) for k in entry.params}
    layers: list[tuple[Mapping[str, Mapping[str, Any]], JsonPath]] = []
    for tname in titles:
        for i, o in enumerate(m.titles[tname].overrides):
            layers.append((o.params, ("titles", tname, "overrides", i, "params")))
    for vname, v in m.variants.items():
        layers.append((v.params, ("variants", vname, "params")))
    for params, base in layers:
        for stage, values in params.items():
            for own, where in entries.get(stage, []):
                merged = {**own, **values}
                at = {k: (*where, k) for k in own} | {k: (*base, stage, k) for k in values}
                yield stage, merged, (*base, stage), at


def _check_stages(
    loaded: LoadedManifest,
    pipelines: set[str],
    titles: list[str],
    root: Path,
    file_digest: Callable[[Path], str] | None,
) -> list[Diagnostic]:
    """Each stage's ``check`` and its model file (exists, loads, has the asked scale)."""
    from functools import cache

    from pydantic import ValidationError

    from restoro.engine.keys import digest_file
    from restoro.stages import registry
    from restoro.stages.base import FrameStage

    digest = cache(file_digest or digest_file)  # a model several entries use: one digest
    out: list[Diagnostic] = []
    seen: set[tuple[JsonPath, str]] = set()
    for stage, params, where, at in _stage_params(loaded, pipelines, titles):
        cls = registry.get(stage)
        if cls is None or not issubclass(cls, FrameStage):
            continue
        try:
            p = cls.Params.model_validate(params)
        except ValidationError:
            continue  # reported by load_manifest (or a required key given elsewhere)
        model = params.get("model")
        diag: Diagnostic | None = None
        try:
            cls().check(p)
            if isinstance(model, str):
                _check_model_file(model, getattr(p, "scale", 1), root, stage, digest)
        except RestoroError as exc:
            pos = at.get("model", where) if isinstance(model, str) else where
            diag = loaded.smap.diag(pos, d.E_STAGE_PARAMS, exc.message, exc.hint)
        if diag is not None and (where, diag.message) not in seen:
            seen.add((where, diag.message))
            out.append(diag)
    return out


def _check_model_file(
    ref: str, scale: int | None, root: Path, stage: str, digest: Callable[[Path], str]
) -> None:
    """A model file named by path must exist, load (torch, spandrel) and have the asked scale.

    Errors name the file as the manifest does, never a store blob."""
    from restoro.models import builtin
    from restoro.models.refs import check_model_file, is_file_ref, model_path

    if builtin.is_builtin_name(ref) or not is_file_ref(ref):
        return
    path = model_path(ref, root, stage=stage)
    check_model_file(ref, path, digest(path), scale, stage=stage)


def _check_track_layout(loaded: LoadedManifest, track: Any, tp: JsonPath) -> list[Diagnostic]:
    """Stems one per channel of the layout; a loudness target only where it can be measured."""
    from restoro.deliver.audio import _SURROUND, LAYOUTS

    channels = LAYOUTS.get(str(track.layout), ())
    out: list[Diagnostic] = []
    if track.stems and len(track.stems) != len(channels):
        out.append(
            loaded.smap.diag(
                (*tp, "stems"),
                E_STREAM,
                f"{len(track.stems)} stems for the {len(channels)} channels of a "
                f"{track.layout} track",
                f"give one mono file per channel, in the order {' '.join(channels)}",
            )
        )
    if track.loudness is not None and sum(c in _SURROUND for c in channels) > 2:
        out.append(
            loaded.smap.diag(
                (*tp, "loudness"),
                E_STREAM,
                f"a loudness target for a {track.layout} track is not supported (more than two "
                "surround channels)",
                "deliver it without a loudness target, or as 5.1",
            )
        )
    return out


def _stem(loaded: LoadedManifest, rel: str, path: JsonPath) -> list[Diagnostic]:
    """A stem is a media file with one mono audio stream."""
    import av

    try:
        with av.open(str(loaded.root / rel)) as c:
            layouts = [(a.index, a.channels) for a in c.streams.audio]
    except (av.error.FFmpegError, OSError) as exc:
        return [
            loaded.smap.diag(
                path,
                E_SIDE_FILE,
                f"stem {rel} is not an audio file restoro can read ({exc})",
                "stems are mono audio files (WAV, FLAC, ...)",
            )
        ]
    if not layouts or layouts[0][1] != 1:
        what = f"{layouts[0][1]} channels" if layouts else "no audio"
        return [
            loaded.smap.diag(
                path, E_STREAM, f"stem {rel} has {what}, not one mono channel", "split it first"
            )
        ]
    return []


def _check_deliverables(
    loaded: LoadedManifest,
    titles: list[str],
    sources: Mapping[str, SourceInfo],
    selected: list[str] | None,
) -> list[Diagnostic]:
    """What a deliverable needs that the manifest and the probe already tell: an App 2E
    raster, the earlier package a supplemental IMF refers to, passthrough audio streams."""
    m, smap = loaded.manifest, loaded.smap
    out: list[Diagnostic] = []
    for dname, dl in m.deliverables.items():
        base: JsonPath = ("deliverables", dname)
        wanted = [t for t in titles if dl.titles is None or t in dl.titles]
        if not wanted or selected is not None and dname not in selected:
            continue
        if dl.kind == "imf":
            from restoro.deliver.imf.checks import APP_2E_RASTERS  # only here: ~5 ms to import

            w, h = (int(x) for x in dl.raster.split("x"))
            if dl.application == "2e" and (w, h) not in APP_2E_RASTERS:
                allowed = ", ".join(f"{a}x{b}" for a, b in sorted(APP_2E_RASTERS))
                out.append(
                    smap.diag(
                        (*base, "raster"),
                        d.E_INVALID,
                        f"IMF App 2E does not allow a {dl.raster} raster",
                        f"use one of {allowed}",
                    )
                )
            if dl.supplemental_to is not None and selected is not None:
                for t in wanted:
                    out += _assetmap(loaded, dl.supplemental_to, t, (*base, "supplemental_to"))
        if dl.kind in ("hls", "dash"):
            for t in wanted:
                out += _audio_renditions(loaded, t, dl.audio, (*base, "audio"), sources)
    return out


def _assetmap(loaded: LoadedManifest, folder: str, title: str, path: JsonPath) -> list[Diagnostic]:
    import xml.etree.ElementTree as ET

    am = loaded.root / folder / title / "ASSETMAP.xml"
    problem = None
    if not am.is_file():
        problem = f"no ASSETMAP.xml in {folder}/{title}"
    else:
        try:
            ET.parse(am)
        except (ET.ParseError, OSError) as exc:
            problem = f"{folder}/{title}/ASSETMAP.xml is not readable XML ({exc})"
    if problem is None:
        return []
    return [
        loaded.smap.diag(
            path,
            E_SIDE_FILE,
            problem,
            "supplemental_to names the output folder of an earlier imf deliverable (holding "
            "one package folder per title)",
        )
    ]


def _audio_renditions(
    loaded: LoadedManifest,
    title: str,
    renditions: list[Any],
    base: JsonPath,
    sources: Mapping[str, SourceInfo],
) -> list[Diagnostic]:
    """Each audio rendition names an existing track; passthrough needs AC-3/E-AC-3 there."""
    t = loaded.manifest.titles[title]
    n_tracks = len(t.audio) or (1 if t.source in sources and sources[t.source].audio else 0)
    out: list[Diagnostic] = []
    for i, a in enumerate(renditions):
        if a.track >= n_tracks:
            out.append(
                loaded.smap.diag(
                    (*base, i, "track") if "track" in a.model_fields_set else (*base, i),
                    E_STREAM,
                    f"audio rendition {i} encodes track {a.track}, but title {title!r} has "
                    f"{n_tracks} audio track{'s' if n_tracks != 1 else ''}",
                    "tracks count from 0 in the order of the title's audio:",
                )
            )
            continue
        track = t.audio[a.track] if t.audio else None
        if not a.passthrough and track is not None:
            from restoro.deliver.audio import LAYOUTS

            have = len(LAYOUTS.get(str(track.layout), ()))
            if a.channels not in (2, have):
                out.append(
                    loaded.smap.diag(
                        (*base, i, "channels"),
                        E_STREAM,
                        f"audio rendition {i} asks for {a.channels} channels of the "
                        f"{track.layout} track {a.track} of {title!r}",
                        f"use 2 (stereo downmix) or the track's own {have}",
                    )
                )
        if not a.passthrough:
            continue
        if track is not None and track.stems:
            out.append(
                loaded.smap.diag(
                    (*base, i, "passthrough"),
                    E_STREAM,
                    f"audio rendition {i} is passthrough, but track {a.track} of {title!r} is "
                    "made of stems (there is no compressed stream to carry)",
                    "set passthrough: false",
                )
            )
            continue
        name = (track.source if track else None) or t.source
        info = sources.get(name)
        if info is None:
            continue
        if track is None:
            stream = info.audio[0].index if info.audio else -1
        elif track.stream is None:  # by language, as the build picks it
            from restoro.deliver.audio import pick_stream

            stream = pick_stream(track, info.audio)
        else:
            stream = track.stream
        codec = {s.index: s.codec for s in info.audio}.get(stream)
        if codec is not None and codec not in ("ac3", "eac3"):
            out.append(
                loaded.smap.diag(
                    (*base, i, "passthrough"),
                    E_STREAM,
                    f"audio rendition {i} is passthrough, which needs an AC-3 or E-AC-3 stream; "
                    f"stream {stream} of source {name!r} is {codec}",
                    "set passthrough: false to encode the rendition from the remastered track",
                )
            )
    return out
