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
PROBE_VERSION = 2


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
            from restoro.farm.remote_objects import cache_root, parse_url

            self.remote_url = parse_url(store_url).url
            store_path = cache_root(store_url)  # the local cache in front of it
        elif store_url is not None:
            from restoro.engine.store import store_root

            store_path = store_root(store_url)
        self.store_path = store_path or (self.root / STORE_DIR)
        self.output_dir = self.root / self.manifest.output
        self._store: Store | None = None
        self.sources: dict[str, SourceState] = {}
        self.made_keys: set[str] = set()
        """Store entries of files made before the build (disc imports, embedded captions)."""
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
                from restoro.farm.remote import RemoteStore

                self._store = RemoteStore(self.remote_url, cache=self.store_path)
            else:
                from restoro.engine.store import Store

                self._store = Store(self.store_path)
            from restoro.media.ffmpeg import remember_fingerprint_in

            remember_fingerprint_in(getattr(self._store, "state", None))
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
            names.update(c.source for c in title.captions if c.source)
        return sorted(names)

    def preflight(
        self, titles: list[str], deliverables: list[str] | None = None
    ) -> dict[str, SourceState]:
        """Check and probe every source the titles use, then the manifest against the media,
        then what the titles and ``deliverables`` (None: all, as ``validate`` checks) read."""
        from restoro.manifest.validate import check_against_media
        from restoro.plan.streams import audio_stream_diagnostics

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
        if not diags:  # side files, streams, crops, models: all before the first action
            from restoro.manifest.inputs import check_inputs

            infos = {n: s.info for n, s in self.sources.items()}
            digest = self.source_digest if self.store_exists else None
            found = check_inputs(self.loaded, titles, infos, deliverables, digest)
            diags = sorted(found, key=lambda x: (x.line, x.col))
        if diags:
            raise ManifestError(diags)
        self.embedded_captions(titles)
        return self.sources

    def source_warnings(self, titles: list[str]) -> list[tuple[str, str]]:
        """(title, message) for what the probe noticed in the titles' sources (a cut file)."""
        out = []
        for t in titles:
            title = self.manifest.titles[t]
            names = {title.source, *(o.source for o in title.overrides if o.source)}
            for name in sorted(names):
                state = self.sources.get(name)
                for w in state.info.warnings if state else []:
                    out.append((t, f"source {name!r}: {w}"))
        return out

    def _probe_source(self, name: str) -> SourceState:
        from restoro.engine.keys import digest_file
        from restoro.manifest.validate import SourceFacts
        from restoro.media.probe import SourceInfo, probe
        from restoro.media.timecode import is_drop_frame, timecode_to_frames

        src = self.manifest.sources[name]
        path = (self.root / src.path).resolve()
        line, col = self.loaded.locate(("sources", name, "path"))
        where = f"{self.loaded.path}:{line}:{col}"
        from restoro.media.dvd import is_disc

        if path.exists() and is_disc(path):
            path = self._import_disc(name, path, where)
        elif src.title is not None or src.chapters is not None or src.angle is not None:
            raise MediaError(
                f"source {name!r}: title:/chapters:/angle: read a DVD-Video disc, and {src.path} "
                "is not one",
                location=where,
                code="E304",
                hint="point path: at the folder holding VIDEO_TS, at VIDEO_TS, or at an .iso",
            )
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

    # -- DVD-Video discs and embedded captions: files made once, kept in the store ------------
    def _made_file(self, key_json: dict[str, Any], make: Any, suffix: str) -> Path:
        """The file ``make(tmp)`` writes for ``key_json``, made once and kept content-addressed
        in the store under an action entry (``restoro cache gc`` keeps it, see ``made_keys``)."""
        import time

        from restoro.engine.keys import key_of
        from restoro.engine.store import ActionResult

        key, key_json = key_of(key_json)
        store = self.store
        found = store.lookup(key)
        if found.status != "hit" or found.result is None:
            tmp = store.temp_path(suffix)
            t0 = time.monotonic()
            try:
                make(tmp)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            out = store.put_file(tmp)
            result = ActionResult(
                key=key,
                action_id=str(key_json["action"]),
                key_json=key_json,
                outputs={"file": out},
                timings={"run": time.monotonic() - t0},
            )
            store.put_action(result)
        else:
            result = found.result
        self.made_keys.add(key)
        digest = result.outputs["file"].digest
        return store.blob_path(digest)  # a remote store fetches a blob it lacks

    def _import_disc(self, name: str, disc: Path, where: str) -> Path:
        """The title (and chapters) the source names, imported from the disc (see
        ``restoro.media.dvd``); its digest is that of the imported file."""
        from restoro.media.dvd import (
            IMPORT_VERSION,
            disc_files,
            import_title,
            list_titles,
            pick_title,
        )
        from restoro.plan.nodes import tool_fingerprints

        src = self.manifest.sources[name]
        label = f"source {name!r}"
        try:
            files = {p.name: self.source_digest(p) for p in disc_files(disc)}
            tools = tool_fingerprints(["ffmpeg"])
            number = src.title
            if number is None:  # the longest title; the listing is kept like an import
                listing = self._made_file(
                    {"action": "disc-titles", "version": IMPORT_VERSION, "disc": files,
                     "tools": tools},
                    lambda tmp: tmp.write_text(json.dumps(
                        [[t.number, t.duration_s] for t in list_titles(disc)])),
                    ".json",
                )  # fmt: skip
                titles = json.loads(listing.read_text(encoding="utf-8"))
                number = int(max(titles, key=lambda t: (t[1], -t[0]))[0])
            chapters = (src.chapters[0], src.chapters[1]) if src.chapters else None
            key_json = {
                "action": "disc-import",
                "version": IMPORT_VERSION,
                "disc": files,
                "title": number,
                "chapters": list(chapters) if chapters else None,
                "tools": tools,
            }
            if src.angle is not None:  # absent otherwise: keys made before the field hold
                key_json["angle"] = src.angle

            def make(tmp: Path, number: int = number) -> None:
                pick_title(disc, number, label)  # a title not on the disc: name those that are
                import_title(disc, number, chapters, tmp, label, src.angle)

            return self._made_file(key_json, make, ".mkv")
        except MediaError as exc:
            field = {"E305": "title", "E306": "chapters", "E308": "angle"}.get(exc.code, "path")
            line, col = self.loaded.locate(("sources", name, field))
            exc.location = exc.location or f"{self.loaded.path}:{line}:{col}"
            raise

    def embedded_captions(self, used: list[str]) -> None:
        """Point every ``captions: [{source: ...}]`` track of the ``used`` titles at a caption file
        extracted from that source's video, timed on the source like a caption file (a title's
        ``range:`` cuts it at delivery, as it cuts any caption file: see
        ``restoro.deliver.captions.embedded``); MediaError when the source carries none."""
        if not any(
            tname in used and any(c.source for c in t.captions)
            for tname, t in self.manifest.titles.items()
        ):
            return  # none: no caption modules to import (xml, logging: ~3 ms of a no-op)
        from restoro.deliver.captions.embedded import EXTRACT_VERSION, extract_all, title_captions
        from restoro.deliver.captions.io import to_srt
        from restoro.engine.materialise import write_text

        titles = dict(self.manifest.titles)
        changed = False
        for tname, t in self.manifest.titles.items():
            if tname not in used or not any(c.source for c in t.captions):
                continue
            caps = list(t.captions)
            for i, c in enumerate(caps):
                if c.source is None:
                    continue
                state = self.sources[c.source]
                line, col = self.loaded.locate(("titles", tname, "captions", i, "source"))
                where = f"{self.loaded.path}:{line}:{col}"
                key_json = {
                    "action": "embedded-captions",
                    "version": EXTRACT_VERSION,
                    "source": self.source_digest(state.path),
                    "stream": state.info.video.index,
                }
                made = self._made_file(
                    key_json,
                    lambda tmp, st=state: tmp.write_text(
                        json.dumps(extract_all(st.path, st.info.video.index)), encoding="utf-8"
                    ),
                    ".json",
                )
                found: dict[str, str] = json.loads(made.read_text(encoding="utf-8"))
                channel = c.channel or 1
                if str(channel) not in found:
                    have = ", ".join(f"CC{k}" for k in sorted(found)) or "none"
                    raise MediaError(
                        f"title {tname!r}: source {c.source!r} has no closed captions on "
                        f"CC{channel} (embedded caption channels: {have})",
                        location=where,
                        code="E307",
                        hint="pick a channel it has, or give the captions as a file (path:)"
                        if found
                        else "give the captions as a file (path:)",
                    )
                rate = state.facts.frame_rate
                cues = title_captions(found[str(channel)], start=0, frame_rate=rate)
                out = self.store_path / "embedded" / f"{tname}.{i}.cc{channel}.srt"
                out.parent.mkdir(parents=True, exist_ok=True)
                write_text(out, to_srt(cues))
                caps[i] = c.model_copy(update={"path": str(out)})
                changed = True
            titles[tname] = t.model_copy(update={"captions": caps})
        if changed:
            self.manifest = self.manifest.model_copy(update={"titles": titles})

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
    from restoro.farm.remote_objects import is_remote_url

    return is_remote_url(url)


def check_store(url: str) -> None:
    """Open the store at ``url`` and check this process can write there, before any work:
    UsageError (exit 2) for an unknown or unsupported scheme, a missing s3fs, an unreachable
    endpoint, a missing bucket or no write access."""
    if is_remote_store(url):
        from restoro.farm.remote import RemoteStore

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
