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
    from collections.abc import Iterator, Mapping
    from pathlib import Path

    from restoro.errors import Diagnostic
    from restoro.manifest.loader import LoadedManifest
    from restoro.media.probe import SourceInfo

JsonPath = tuple[str | int, ...]


def check_inputs(
    loaded: LoadedManifest, titles: list[str], sources: Mapping[str, SourceInfo]
) -> list[Diagnostic]:
    """Diagnostics (E235, E236, E240) for the titles' crops, audio, captions, stems, models."""
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
            if track.stems:
                for j, stem in enumerate(track.stems):
                    out += _side_file(loaded, stem, (*tp, "stems", j), "stem")
                continue
            src = track.source or t.source
            info = sources.get(src)
            if info is None:
                continue
            streams = {a.index: a for a in info.audio}
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
            path: JsonPath = (*base, "captions", i, "path")
            problems = _side_file(loaded, cap.path, path, "caption file")
            if not problems:
                problems = _caption(loaded, cap.path, path)
            out += problems
    out += _check_stages(loaded, pipelines, titles, root)
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
    loaded: LoadedManifest, pipelines: set[str], titles: list[str], root: Path
) -> list[Diagnostic]:
    """Each stage's ``check`` and its model file (exists, loads, has the asked scale)."""
    from pydantic import ValidationError

    from restoro.stages import registry
    from restoro.stages.base import FrameStage

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
                _check_model_file(model, getattr(p, "scale", 1), root, stage)
        except RestoroError as exc:
            pos = at.get("model", where) if isinstance(model, str) else where
            diag = loaded.smap.diag(pos, d.E_STAGE_PARAMS, exc.message, exc.hint)
        if diag is not None and (where, diag.message) not in seen:
            seen.add((where, diag.message))
            out.append(diag)
    return out


def _check_model_file(ref: str, scale: int | None, root: Path, stage: str) -> None:
    """A model file named by path must exist, load (torch, spandrel) and have the asked scale.

    Errors name the file as the manifest does, never a store blob."""
    from restoro.models import builtin
    from restoro.models.refs import is_file_ref

    if builtin.is_builtin_name(ref) or not is_file_ref(ref):
        return
    path = (root / ref).resolve()
    if not path.is_file():
        raise InputError(
            f"{stage}: model file {ref} does not exist"
            + (" (it is a directory)" if path.is_dir() else f" (looked in {path.parent})"),
            hint="paths are relative to the manifest's directory",
        )
    from restoro.engine.keys import digest_file
    from restoro.models.loader import info_for

    try:
        info = info_for(path, digest_file(path))
    except InputError as exc:
        raise InputError(f"{stage}: {exc.message.replace(str(path), ref)}", hint=exc.hint) from None
    if scale is not None and info.scale != scale:
        raise InputError(
            f"{stage}: {ref} is a x{info.scale} {info.architecture} model but the manifest "
            f"asks for scale {scale}",
            hint=f"set scale: {info.scale} (use final: WxH for another output size)",
        )
