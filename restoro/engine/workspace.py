"""A workspace: the loaded manifest, its sources (checked and probed), and its store.

Everything here runs before the store is written to, so bad input (a manifest error, a missing,
truncated or non-media source, a pinned digest that does not match) exits with status 2 and leaves
the store as it was.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from restoro.errors import InputError, ManifestError, MediaError, UsageError

if TYPE_CHECKING:
    from restoro.engine.store import Store
    from restoro.manifest.loader import LoadedManifest
    from restoro.manifest.validate import SourceFacts
    from restoro.media.probe import SourceInfo

STORE_DIR = ".restoro"
PROBE_VERSION = 1


class SourceErrors(MediaError):
    """Several sources are unusable: each is reported with its own location and hint."""

    def __init__(self, errors: list[InputError]) -> None:
        super().__init__(f"{len(errors)} sources are unusable")
        self.errors = errors

    def render(self) -> str:
        return "\n".join(e.render() for e in self.errors)


@dataclass
class SourceState:
    """A source as the build sees it: where it is, what it is, and (once known) its digest."""

    name: str
    path: Path
    info: SourceInfo
    facts: SourceFacts
    digest: str = ""
    drop_frame: bool = False


class Workspace:
    """The manifest, its directory, and the store beside it (opened lazily)."""

    def __init__(
        self,
        manifest_path: Path,
        *,
        store_path: Path | None = None,
        store_url: str | None = None,
    ) -> None:
        """``store_url`` (a path, ``file://`` or ``s3://`` URL) or ``store_path`` names the
        store; the default is ``.restoro`` beside the manifest."""
        from restoro.manifest.loader import load_manifest

        self.manifest_path = manifest_path
        self.loaded: LoadedManifest = load_manifest(manifest_path)
        self.manifest = self.loaded.manifest
        self.root = self.loaded.root
        self.remote_url: str | None = None
        if store_url is not None and is_remote_store(store_url):
            from restoro.engine.remote_objects import cache_root, parse_url

            self.remote_url = parse_url(store_url).url
            store_path = cache_root(store_url)  # the local cache in front of it
        elif store_url is not None:
            from restoro.engine.store import store_root

            store_path = store_root(store_url)
        self.store_path = store_path or (self.root / STORE_DIR)
        self.output_dir = self.root / self.manifest.output
        self._store: Store | None = None
        self.sources: dict[str, SourceState] = {}
        self._pending_probes: dict[str, str] = {}
        """Probes made before the store existed, recorded in its state db once it does."""

    # -- the store ---------------------------------------------------------------------------
    @property
    def store_url(self) -> str:
        """What workers open (``restoro.engine.execute.open_store``): the URL or the path."""
        return self.remote_url or str(self.store_path)

    @property
    def store_exists(self) -> bool:
        if self.remote_url is not None:
            return True  # the object store is checked when opened; its cache is ours to fill
        return (self.store_path / "cas").is_dir() or (self.store_path / "state.db").exists()

    @property
    def store(self) -> Store:
        if self._store is None:
            if self.remote_url is not None:
                from restoro.engine.remote import RemoteStore

                self._store = RemoteStore(self.remote_url, cache=self.store_path)
            else:
                from restoro.engine.store import Store

                self._store = Store(self.store_path)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    # -- checks before anything is written ----------------------------------------------------
    def check_variant(self, variant: str | None) -> None:
        if variant is not None and variant not in self.manifest.variants:
            import difflib

            close = difflib.get_close_matches(variant, list(self.manifest.variants), n=1)
            known = ", ".join(sorted(self.manifest.variants)) or "none defined"
            raise UsageError(
                f"unknown variant {variant!r} (variants: {known})",
                hint=f"did you mean {close[0]!r}?" if close else "add it under variants:",
            )

    def used_sources(self, titles: list[str]) -> list[str]:
        names: set[str] = set()
        for t in titles:
            title = self.manifest.titles[t]
            names.add(title.source)
            for ov in title.overrides:
                if ov.source:
                    names.add(ov.source)
            for track in title.audio:
                names.add(track.source or title.source)
        return sorted(names)

    def preflight(self, titles: list[str]) -> dict[str, SourceState]:
        """Check and probe every source the titles use, then the manifest against the media."""
        from restoro.deliver.audio_graph import audio_stream_diagnostics
        from restoro.manifest.validate import check_against_media

        errors: list[InputError] = []
        for name in self.used_sources(titles):
            if name in self.sources:
                continue
            try:
                self.sources[name] = self._probe_source(name)
            except InputError as exc:
                errors.append(exc)
        if errors:
            if len(errors) == 1:
                raise errors[0]
            raise SourceErrors(errors)
        facts = {n: s.facts for n, s in self.sources.items()}
        diags = check_against_media(self.loaded, facts)
        diags += audio_stream_diagnostics(self, titles)
        if diags:
            raise ManifestError(diags)
        return self.sources

    def _probe_source(self, name: str) -> SourceState:
        from restoro.engine.keys import digest_file
        from restoro.manifest.validate import SourceFacts
        from restoro.media.probe import SourceInfo, probe
        from restoro.media.timecode import is_drop_frame, timecode_to_frames

        src = self.manifest.sources[name]
        path = (self.root / src.path).resolve()
        line, col = self.loaded.locate(("sources", name, "path"))
        where = f"{self.loaded.path}:{line}:{col}"
        if not path.is_file():
            raise MediaError(
                f"source {name!r}: {src.path} does not exist"
                + (" (it is a directory)" if path.is_dir() else ""),
                location=where,
                code="E301",
                hint="check the path; it is relative to the manifest's directory",
            )
        if path.stat().st_size == 0:
            raise MediaError(
                f"source {name!r}: {src.path} is empty",
                location=where,
                code="E302",
                hint="the file was probably not copied completely",
            )
        cached = self._cached_probe(path)
        if cached is None:
            try:
                info = probe(path)
            except MediaError as exc:
                exc.location = exc.location or where
                exc.message = f"source {name!r}: {exc.message}"
                raise
            self._remember_probe(path, info)
        else:
            info = SourceInfo.model_validate(cached)
        rate = Fraction(info.video.frame_rate)
        tc = src.timecode
        if "timecode" not in src.model_fields_set and info.video.timecode:
            tc = info.video.timecode
        start = timecode_to_frames(tc, rate)
        facts = SourceFacts(frame_rate=rate, frame_count=info.video.frame_count, start_frame=start)
        state = SourceState(
            name=name, path=path, info=info, facts=facts, drop_frame=is_drop_frame(tc)
        )
        if src.digest:
            state.digest = self.source_digest(path) if self.store_exists else digest_file(path)
            if state.digest != src.digest:
                raise MediaError(
                    f"source {name!r}: {src.path} has digest {state.digest}, "
                    f"but the manifest pins {src.digest}",
                    location=where,
                    code="E303",
                    hint="the file changed; restore the pinned file or update the digest",
                )
        return state

    # The probe cache lives in the state db (when a store exists) keyed by the file's stat, so a
    # no-op build does not re-read a 40 GB source.
    def _probe_ref(self, path: Path) -> str:
        st = path.stat()
        return f"probe:{PROBE_VERSION}|{path}|{st.st_ino}|{st.st_size}|{st.st_mtime_ns}"

    def _cached_probe(self, path: Path) -> dict[str, Any] | None:
        if not self.store_exists:
            return None
        raw = self.store.state.get_ref(self._probe_ref(path))
        return dict(json.loads(raw)) if raw else None

    def _remember_probe(self, path: Path, info: SourceInfo) -> None:
        self._pending_probes[self._probe_ref(path)] = json.dumps(info.model_dump(mode="json"))
        if self.store_exists:
            self.flush_probes()

    def flush_probes(self) -> None:
        pending = self._pending_probes
        if pending:
            self.store.state.set_refs(pending)
            self._pending_probes = {}

    def source_digest(self, path: Path) -> str:
        return self.store.state.file_digest(path)

    def hash_sources(self) -> None:
        """Digest every checked source (stat-cached) once the store may be written."""
        self.flush_probes()
        for state in self.sources.values():
            if not state.digest:
                state.digest = self.source_digest(state.path)

    def assert_sources_unchanged(self) -> None:
        """Sources must not change during a build (they are never written by restoro)."""
        for state in self.sources.values():
            if self.source_digest(state.path) != state.digest:
                raise MediaError(
                    f"source {state.name!r} changed while the build was running",
                    hint="do not modify sources during a build; run the build again",
                )


def is_remote_store(url: str) -> bool:
    """Whether ``url`` names an object store (anything but a path or a ``file://`` URL)."""
    from restoro.engine.remote_objects import is_remote_url

    return is_remote_url(url)


def check_store(url: str) -> None:
    """Open the store at ``url`` and check this process can write there, before any work:
    UsageError (exit 2) for an unknown or unsupported scheme, a missing s3fs, an unreachable
    endpoint, a missing bucket or no write access."""
    if is_remote_store(url):
        from restoro.engine.remote import RemoteStore

        remote = RemoteStore(url)
        try:
            remote.check_writable()
        finally:
            remote.close()
        return
    from restoro.engine.store import Store, store_root

    Store(store_root(url)).check_writable()


def find_manifest(path: Path | None) -> Path:
    """The manifest path from ``-f`` or ``./restoro.yaml``, with a clear error when absent."""
    p = path or Path("restoro.yaml")
    if p.is_dir():
        p = p / "restoro.yaml"
    if not p.exists():
        raise UsageError(
            f"no manifest at {p}",
            hint="run `restoro init` to create one, or pass -f PATH",
        )
    return p
