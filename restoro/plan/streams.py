"""Which audio stream of its source each audio track of a title reads, checked in preflight.

It reads the workspace through a protocol, not an import, as the workspace runs the check.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from restoro.deliver.audio import pick_stream

if TYPE_CHECKING:
    from collections.abc import Mapping

    from restoro.manifest.loader import LoadedManifest
    from restoro.manifest.model import Manifest


class Workspace(Protocol):
    """What the stream checks read of a workspace (``restoro.plan.workspace.Workspace``)."""

    @property
    def manifest(self) -> Manifest: ...
    @property
    def sources(self) -> Mapping[str, Any]: ...
    @property
    def loaded(self) -> LoadedManifest: ...


def resolve_stream(ws: Workspace, title: str, track: int) -> int:
    """The container index of audio track ``track`` of ``title``: its ``stream`` when given,
    else the source's first audio stream in the track's ``language`` (when that is not
    ``und`` and the source tags its streams with languages), else the source's first audio
    stream. Exit-2 error naming the streams that exist when nothing matches."""
    from restoro.errors import InputError

    t = ws.manifest.titles[title]
    tr = t.audio[track]
    name = tr.source or t.source
    streams = ws.sources[name].info.audio
    where = f"titles.{title}.audio[{track}]"
    listing = ", ".join(
        f"{s.index} ({s.language or 'no language'}, {s.codec} {s.layout})" for s in streams
    )
    if tr.stream is not None:
        if tr.stream not in {s.index for s in streams}:
            raise InputError(
                f"source {name!r} has no audio stream {tr.stream} "
                f"(audio streams: {listing or 'none'})",
                location=where,
                hint="pick an audio stream index from `restoro probe`, or a `language`",
            )
        return tr.stream
    if not streams:
        raise InputError(f"source {name!r} has no audio stream", location=where)
    index = pick_stream(tr, streams)
    if index is None:
        raise InputError(
            f"source {name!r} has no audio stream in language {tr.language!r} "
            f"(audio streams: {listing})",
            location=where,
            hint="give one of those languages, or the stream index as `stream`",
        )
    return index


def audio_stream_diagnostics(ws: Workspace, titles: list[str]) -> list[Any]:
    """Preflight: every audio track of ``titles`` resolves to an audio stream of its source
    (a diagnostic at the track's ``stream`` or ``language`` for each that does not)."""
    from restoro.errors import InputError
    from restoro.manifest import diagnostics as d

    out = []
    for title in titles:
        for i, tr in enumerate(ws.manifest.titles[title].audio):
            if tr.stems or (tr.source or ws.manifest.titles[title].source) not in ws.sources:
                continue
            try:
                resolve_stream(ws, title, i)
            except InputError as exc:
                key = "stream" if tr.stream is not None else "language"
                path = ("titles", title, "audio", i, key)
                out.append(ws.loaded.smap.diag(path, d.E_UNKNOWN_REF, exc.message, exc.hint))
    return out
