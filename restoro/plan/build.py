"""Plan and build: walk the graph, reuse cached results, run the rest, materialise outputs.

``Builder.build()`` is what ``restoro build`` calls and ``Builder.plan()`` what ``restoro plan``
calls; both are ordinary library calls. Every step is reported as an event on ``self.events``.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from restoro.engine.events import EventBus
from restoro.engine.gcpause import fewer_gc_passes
from restoro.engine.graph import ActionSpec, reason_for
from restoro.engine.records import ActionRecord, BuildOptions, BuildReport, Selection
from restoro.errors import BuildFailed, ManifestError, UsageError
from restoro.plan import executors, makers
from restoro.plan import nodes as N
from restoro.plan import runners as _runners  # noqa: F401 - registers the action runners
from restoro.plan.local_executor import cuda_devices, gpu_slots
from restoro.plan.makers import Walk
from restoro.plan.qc_pack import QC_PACK_ID, QcPack

__all__ = [
    "ActionRecord",
    "BuildOptions",
    "BuildReport",
    "Builder",
    "Selection",
    "check_device",
    "gpu_slots",
]

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from restoro.engine.store import ActionResult, Lookup
    from restoro.plan.deliverables import DeliverableKind
    from restoro.plan.executors import Executor
    from restoro.plan.workspace import Workspace


_UNSET: Any = object()  # "not given" (None is a value: no earlier key)


class Builder:
    """One build (or plan) of a workspace."""

    def __init__(self, ws: Workspace, opts: BuildOptions, events: EventBus | None = None) -> None:
        self.ws = ws
        self.opts = opts
        self.events = events or EventBus()
        self.report = BuildReport()
        self._refs: dict[str, str | None] = {}
        self._new_refs: dict[str, str] = {}
        self._resolved: dict[str, list[N.ShotEntry]] = {}
        self._prepared: dict[str, tuple[ActionSpec, str, dict[str, Any], str, Lookup]] = {}
        self.qc_results: dict[str, ActionResult] = {}
        self.results: dict[str, ActionResult] = {}
        """Every node's result known after the walk, by node id (in a plan: the cached ones)."""
        self.qc_pack: QcPack | None = None
        self.dry = False
        self._executor: Executor | None = None
        """The build's executor (restoro/plan/executors.py), opened by ``build()``."""
        self.shots_only = False
        """Plan or build the shots only, no deliverable (what a review looks at)."""
        self.approvals: Any = None
        """The deliverables that follow reviews (restoro/plan/approvals.py), after the walk."""

    # -- selection ----------------------------------------------------------------------------
    def select(self) -> Selection:
        m = self.ws.manifest
        self.ws.check_variant(self.opts.variant)
        check_device(self.opts.device, local=executors.get(self.opts.executor).local_device)
        titles: set[str] = set()
        delivs: set[str] = set()
        shots: set[str] = set()
        for t in self.opts.targets:
            if t in m.deliverables:
                delivs.add(t)
            elif t in m.titles:
                titles.add(t)
            elif "@" in t and t.split("@", 1)[0] in m.titles:
                shots.add(t)
                titles.add(t.split("@", 1)[0])
            else:
                import difflib

                names = [*m.deliverables, *m.titles]
                close = difflib.get_close_matches(t, names, n=1)
                raise UsageError(
                    f"unknown target {t!r}: not a deliverable, title or shot id",
                    hint=f"did you mean {close[0]!r}?"
                    if close
                    else f"targets: {', '.join(sorted(names))}",
                )
        if shots and not delivs and titles == {s.split("@", 1)[0] for s in shots}:
            return Selection(sorted(titles), [], shots)
        if not delivs and not titles:
            delivs = set(m.deliverables)
            titles = set(m.titles)
        elif not delivs:
            delivs = {
                d
                for d, spec in m.deliverables.items()
                if spec.titles is None or titles & set(spec.titles)
            }
        if not titles:
            for d in delivs:
                titles |= set(m.deliverables[d].titles or m.titles)
        return Selection(sorted(titles), sorted(delivs), shots or None)

    # -- entry points -------------------------------------------------------------------------
    def plan(self) -> BuildReport:
        self.dry = True
        sel = self.select()
        self.ws.preflight(sel.titles, sel.deliverables)
        self.ws.hash_sources()
        with fewer_gc_passes():
            self._walk(sel)
        return self.report

    def build(self) -> BuildReport:
        from restoro.engine.lock import WorkspaceLock

        sel = self.select()
        self.ws.preflight(sel.titles, sel.deliverables)
        check_output_dirs(self.ws, [self._out_dir(d) for d in sel.deliverables])
        lock_path = self.ws.root / ".restoro" / "locks" / "workspace.lock"
        lock_path.parent.mkdir(parents=True, exist_ok=True)

        def waiting(holder: Any) -> None:
            self.events.emit("waiting", holder=_holder_text(holder))

        self.events.emit(
            "build-start",
            project=self.ws.manifest.project,
            variant=self.opts.variant,
            jobs=self.opts.jobs,
        )
        for title, message in self.ws.source_warnings(sel.titles):  # e.g. a cut VOB
            self.events.emit("warning", title=title, message=message)
        if self._executor is None:
            # A cluster connects and checks it offers what the plan needs before any work.
            self._executor = executors.open_executor(
                self.opts.executor, self.opts, self.ws, self.events, titles=sel.titles
            )
        with (
            WorkspaceLock(
                lock_path, timeout=self.opts.lock_timeout, on_wait=waiting, command="restoro build"
            ),
            fewer_gc_passes(),
        ):
            self._remove_interrupted_exports()
            self.ws.hash_sources()
            self._walk(sel)
            self.ws.assert_sources_unchanged()
        from restoro.qc.verdict import verdict

        qc_failed = verdict(self.qc_results, self.events) if self.qc_results else None
        failed = self.report.failed
        self.events.emit(
            "summary",
            executed=self.report.executed,
            cached=self.report.cached,
            failed=failed,
            outputs=dict(self.report.outputs),
        )
        if failed:
            first = next(r for r in self.report.records if r.status == "failed")
            raise BuildFailed(
                f"{failed} action{'s' if failed != 1 else ''} failed; first: {first.id}: "
                f"{first.error}",
                hint=(f"{first.hint}\n  " if first.hint else "")
                + "fix the cause and run the build again; finished actions stay cached",
            )
        if qc_failed is not None:
            raise qc_failed
        if self.approvals is not None:
            self.approvals.raise_refused()
        return self.report

    # -- the walk -----------------------------------------------------------------------------
    def _walk(self, sel: Selection) -> None:
        """Run the node makers' phases (restoro/plan/makers.py) and what lies between them."""
        ws = self.ws
        walk = Walk(ws, sel, self.opts)
        analysis = makers.make("analysis", walk)
        self.events.emit("phase", name="analysis", actions=len(analysis))
        done = self._run_nodes(analysis)
        self._analyses(walk, done)
        pieces = makers.make("ingest", walk)
        if pieces:
            self.events.emit("phase", name="ingest", actions=len(pieces))
            done = self._run_nodes(pieces, done)

        lock = self._read_lock()
        from restoro.plan.approvals import Approvals

        approvals = self.approvals = walk.approvals = Approvals(self, sel)
        self._shot_lists(walk, done, lock)
        per_shot = makers.make("shots", walk)
        title_shots = self._resolved = walk.shots
        self._check_shot_refs({t: {s.id for s in ss} for t, ss in walk.shot_lists.items()}, sel)
        reviewed: dict[str, ActionResult] = {}
        deliver: list[N.Node] = []
        if sel.shots is None and not self.shots_only:
            reviewed = approvals.run(title_shots, walk.ingests)
            deliver = makers.make("deliver", walk)
        qc = makers.make("qc", walk)
        if qc:
            self.qc_pack = QcPack(ws.store, self._ref(QC_PACK_ID))
            self.qc_pack.load()
        self.events.emit("phase", name="shots", actions=len(per_shot) + len(deliver) + len(qc))
        done2 = self._run_nodes(per_shot + deliver + qc, reviewed)
        self.results = {**done, **done2}
        for n in deliver:  # e.g. IMF: "audio track 0 is 44100 Hz: resampled to 48 kHz"
            res = done2.get(n.id)
            for notice in res.meta.get("notices", []) if res is not None else []:
                self.events.emit("warning", title=n.title, message=f"{n.id}: {notice}")
        self.qc_results = {n.id: done2[n.id] for n in qc if n.id in done2}
        if qc and not self.dry:
            assert self.qc_pack is not None
            pack_key = self.qc_pack.save(self.qc_results.values())
            if pack_key is not None:
                self._new_refs[self.qc_pack.ref] = pack_key
        # Loudness as measured and as delivered, per audio track, for review in git.
        for title in title_shots:
            tracks = sorted(k for k in done2 if k.startswith(f"{title}/audio/"))
            if tracks and title in lock["titles"]:
                lock["titles"][title]["audio"] = [
                    {k: v for k, v in done2[k].meta.items() if k != "frames"} for k in tracks
                ]
        if not self.dry:
            self._flush_refs()
            self._materialise(sel, done2, lock)
            for name, s in ws.sources.items():
                lock["sources"][name] = {
                    "path": ws.manifest.sources[name].path,
                    "digest": s.digest,
                    "size": s.path.stat().st_size,
                }
            self._write_lock(lock)
        else:
            self._flush_refs()

    def _analyses(self, walk: Walk, done: Mapping[str, ActionResult]) -> None:
        """Each analysed title's analysis into the walk (what its ingest pieces are planned
        from), its warnings reported."""
        from restoro.plan.analysis import analysis_id

        for title in walk.sel.titles:
            res = done.get(analysis_id(title))
            if res is None:
                continue  # failed, or (plan) not known until the analysis runs
            for warning in res.meta.get("warnings", []):
                self.events.emit("warning", title=title, message=warning)
            walk.analyses[title] = res

    def _shot_lists(
        self, walk: Walk, done: Mapping[str, ActionResult], lock: dict[str, Any]
    ) -> None:
        """Each ingested title's shots (from its pieces and shot detection) into the walk, the
        report and the lock; whether the build's own chains of the title are needed."""
        from restoro.plan.pieces import shots_id, title_ingest
        from restoro.plan.titles import shot_list

        ws = self.ws
        for title in walk.sel.titles:
            ingest, shots_res = title_ingest(walk, title, done), done.get(shots_id(title))
            if ingest is None or shots_res is None:
                continue  # failed, or (plan) not known until the analysis and pieces run
            shots = shot_list(ws, title, shots_res.meta["cuts"], ingest)
            walk.ingests[title] = ingest
            walk.shot_lists[title] = shots
            walk.own[title] = walk.sel.shots is not None or walk.approvals.own_shots(title)
            self.report.shots[title] = len(shots)
            self.events.emit("shots", title=title, count=len(shots))
            lock["titles"][title] = {
                "source": ws.manifest.titles[title].source,
                "frame_rate": ingest.format["frame_rate"],
                "span": ingest.span,
                "shots": [{"id": s.id, "start": s.start, "end": s.end} for s in shots],
            }

    def _kind(self, deliverable: str) -> DeliverableKind:
        from restoro.plan import deliverables as registry

        kind = registry.get(self.ws.manifest.deliverables[deliverable].kind)
        assert kind is not None
        return kind

    def _delivers(self, deliverable: str, title: str) -> bool:
        from restoro.plan.deliverables import delivers

        return delivers(self.ws, deliverable, title)

    def _check_shot_refs(self, known: Mapping[str, set[str]], sel: Selection) -> None:
        from restoro.manifest.validate import check_shot_ids

        diags = check_shot_ids(self.ws.loaded, known)
        if diags:
            raise ManifestError(diags)
        if sel.shots:
            for s in sorted(sel.shots):
                title = s.split("@", 1)[0]
                if title in known and s not in known[title]:
                    import difflib

                    close = difflib.get_close_matches(s, sorted(known[title]), n=1)
                    raise UsageError(
                        f"unknown shot {s!r}",
                        hint=f"did you mean {close[0]!r}?"
                        if close
                        else "run `restoro shots TITLE` to list them",
                    )

    # -- running nodes ------------------------------------------------------------------------
    def _run_nodes(
        self, nodes: list[N.Node], given: Mapping[str, ActionResult] | None = None
    ) -> dict[str, ActionResult]:
        """Run ``nodes``; their deps are among them or in ``given`` (results of an earlier
        phase, also returned)."""
        if not nodes:
            return dict(given or {})
        refs = self.ws.store.state.get_refs([self._ref(n.id) for n in nodes])
        self._refs.update(refs)
        if self.dry:
            results: dict[str, ActionResult] = dict(given or {})
            for n in nodes:
                if all(d in results for d in n.deps):
                    res = self._evaluate(n, {d: results[d] for d in n.deps})
                    if res is not None:
                        results[n.id] = res
                else:
                    self._record(
                        n,
                        None,
                        "pending",
                        reason="after " + next(d for d in n.deps if d not in results),
                    )
            return results
        # Fast path: cache hits are resolved here, in order, without the thread pool; only
        # misses (and what depends on them) become executor tasks.
        done: dict[str, ActionResult] = dict(given or {})
        pending: list[N.Node] = []
        for n in nodes:
            try:
                given_deps = {d: done[d] for d in n.deps}
            except KeyError:  # a dependency waits for the executor
                pending.append(n)
                continue
            hit = self._evaluate(n, given_deps, run=False)
            if hit is not None:
                done[n.id] = hit
                continue
            pending.append(n)
        if not pending:
            return done
        from restoro.engine.executor import LocalExecutor, Task

        def task_fn(n: N.Node) -> Callable[[Mapping[str, Any]], ActionResult | None]:
            def fn(deps: Mapping[str, Any]) -> ActionResult | None:
                given = {d: done[d] for d in n.deps if d in done}
                return self._evaluate(n, {**given, **deps})

            return fn

        waiting = {n.id for n in pending}
        tasks = [
            Task(
                id=n.id,
                fn=task_fn(n),
                deps=tuple(d for d in n.deps if d in waiting),
                resources=n.resources,
                label=n.id,
            )
            for n in pending
        ]
        if self._executor is None:
            self._executor = executors.open_executor(
                self.opts.executor, self.opts, self.ws, self.events
            )
        jobs, gpus = self._executor.slots_for(pending)
        outcomes = LocalExecutor(jobs, gpus=gpus).run(tasks, keep_going=self.opts.keep_going)
        by_id = {n.id: n for n in pending}
        recorded = {r.id for r in self.report.records if r.status == "failed"}
        for tid, oc in outcomes.items():
            if oc.status == "ok" and oc.result is not None:
                done[tid] = oc.result
            elif oc.status in ("skipped", "cancelled"):
                self._record(by_id[tid], None, "skipped", reason=oc.status)
            elif oc.status == "failed" and tid not in recorded and oc.error is not None:
                # It failed before its action started (making its spec): unrecorded, the
                # build would end without error and without the outputs that need it.
                self._record(
                    by_id[tid],
                    None,
                    "failed",
                    error=_one_line(oc.error),
                    hint=getattr(oc.error, "hint", None) or "",
                )
        return done

    def _ref(self, node_id: str) -> str:
        return f"{self.opts.variant or ''}|{node_id}"

    def _record(
        self,
        n: N.Node,
        spec: ActionSpec | None,
        status: str,
        *,
        reason: str = "",
        key: str = "",
        seconds: float = 0.0,
        cpu_s: float = 0.0,
        error: str = "",
        hint: str = "",
        key_json: dict[str, Any] | None = None,
        old: str | None = _UNSET,
    ) -> None:
        if old is _UNSET:
            old = self._refs.get(self._ref(n.id))
        stage = spec.stage if spec else ""
        # Positional, and one plain emit for the common case: a no-op build records thousands.
        self.report.records.append(
            ActionRecord(
                n.id,
                stage,
                n.title,
                n.shot,
                status,
                reason,
                key,
                seconds,
                cpu_s,
                error,
                hint,
                key_json,
                old,
            )
        )
        if cpu_s or error:
            self.events.emit(
                "action",
                id=n.id,
                stage=stage,
                title=n.title,
                shot=n.shot,
                status=status,
                reason=reason,
                key=key,
                seconds=round(seconds, 3),
                **({"cpu_s": round(cpu_s, 3)} if cpu_s else {}),
                **({"error": error} if error else {}),
            )
        else:
            self.events.send(
                {
                    "event": "action",
                    "ts": time.time(),
                    "id": n.id,
                    "stage": stage,
                    "title": n.title,
                    "shot": n.shot,
                    "status": status,
                    "reason": reason,
                    "key": key,
                    "seconds": round(seconds, 3),
                }
            )

    def _evaluate(
        self, n: N.Node, deps: Mapping[str, ActionResult], *, run: bool = True
    ) -> ActionResult | None:
        """The node's result: from the cache, or (when ``run``) by running it."""
        store = self.ws.store
        prepared = self._prepared.pop(n.id, None)
        if prepared is None:
            spec = n.make(deps)
            key, key_json, new_ref = spec.key_text()
            packed = self.qc_pack.hit(spec, key, key_json) if self.qc_pack else None
            lk = packed or store.lookup(key, key_json=key_json)
            if lk.status == "corrupt":  # what failed is quarantined; the action runs again
                self.events.emit(
                    "warning",
                    title=n.title,
                    message=f"{n.id}: cached result refused, running the action again: {lk.detail}",
                )
        else:  # the coordinator's fast path already built the spec and looked it up
            spec, key, key_json, new_ref, lk = prepared
        ref = self._ref(n.id)
        if lk.status == "hit" and not self.opts.force:
            old = self._refs.get(ref)
            if old != new_ref:
                self._new_refs[ref] = new_ref
            self._record(n, spec, "cached", key=key, key_json=key_json, old=old)
            return lk.result
        if not run and not self.dry:
            # Keep the spec and the lookup for the executor task: no second spec, key or lookup
            # (a second lookup would also see a just-quarantined corrupt entry as missing).
            self._prepared[n.id] = (spec, key, key_json, new_ref, lk)
            return None
        old_raw = self._refs.get(ref)
        reason = reason_for(
            json.loads(old_raw) if old_raw else None, key_json, lk.status, self.opts.force
        )
        if self.dry:
            self._record(n, spec, "run", reason=reason, key=key, key_json=key_json)
            return None
        self.events.emit(
            "action-start",
            id=n.id,
            stage=spec.stage,
            title=n.title,
            shot=n.shot,
            reason=reason,
            frames=spec.frames,
        )
        assert self._executor is not None
        t0 = time.monotonic()
        try:
            ex = self._executor.run(n, spec)
            result = ex.result
            assert result is not None
            if ex.takeovers:  # the lease of a dead worker or build was taken over
                self.events.emit("lease-takeover", id=n.id, count=ex.takeovers, host=ex.host)
        except Exception as exc:
            self._record(
                n,
                spec,
                "failed",
                reason=reason,
                key=key,
                seconds=time.monotonic() - t0,
                error=_one_line(exc),
                hint=getattr(exc, "hint", None) or "",
            )
            raise
        self._new_refs[ref] = new_ref
        self._record(
            n,
            spec,
            "executed" if ex.ran else "cached",
            reason=reason if ex.ran else "",
            key=key,
            seconds=time.monotonic() - t0,
            cpu_s=ex.cpu_s,
        )
        return result

    def _flush_refs(self) -> None:
        state = self.ws.store.state
        if self._new_refs:
            state.set_refs(self._new_refs)
            self._new_refs = {}
        state.flush()  # also the ac/ index rows this build's lookups learned

    # -- outputs ------------------------------------------------------------------------------
    def _out_dir(self, deliverable: str) -> Any:
        base = self.ws.output_dir
        if self.opts.variant:
            base = base / "variants" / self.opts.variant
        return base / deliverable

    def _remove_interrupted_exports(self) -> None:
        from restoro.engine.materialise import remove_interrupted_exports

        removed = remove_interrupted_exports(self.ws)
        if removed:
            self.events.emit("temp-removed", paths=[str(p) for p in removed])

    def _materialise(
        self, sel: Selection, results: Mapping[str, ActionResult], lock: dict[str, Any]
    ) -> None:
        for d in sel.deliverables:
            out_dir = self._out_dir(d)
            for title in sel.titles:
                res = results.get(f"{title}/{d}")
                if res is None:
                    continue
                paths = self._kind(d).materialise(
                    self.ws,
                    d,
                    title,
                    res,
                    out_dir,
                    self.approvals.entries(title, d, self._resolved.get(title, [])),
                    self.opts.variant,
                )
                path = paths[0]
                self.report.files.extend(str(p) for p in paths)
                self.report.outputs[d] = str(out_dir)
                main_output = self._kind(d).primary(res)
                entry = {
                    "path": str(path.relative_to(self.ws.root))
                    if path.is_relative_to(self.ws.root)
                    else str(path),
                    "digest": res.outputs[main_output].digest,
                }
                section = (
                    lock["deliverables"]
                    if not self.opts.variant
                    else lock.setdefault("variants", {}).setdefault(self.opts.variant, {})
                )
                section.setdefault(d, {})[title] = entry
                self.events.emit(
                    "output", deliverable=d, title=title, path=str(path), digest=entry["digest"]
                )

    def _read_lock(self) -> dict[str, Any]:
        from restoro.engine.lockfile import LOCK_NAME, read_lockfile

        lock = read_lockfile(self.ws.root / LOCK_NAME)
        # Titles and sources no longer in the manifest drop out of the lock.
        for key, names in (
            ("titles", self.ws.manifest.titles),
            ("sources", self.ws.manifest.sources),
        ):
            lock[key] = {k: v for k, v in lock.get(key, {}).items() if k in names}
        lock["manifest"] = self.ws.loaded.digest
        return lock

    def _write_lock(self, lock: dict[str, Any]) -> None:
        from restoro.engine.lockfile import LOCK_NAME, write_lockfile

        write_lockfile(self.ws.root / LOCK_NAME, lock)


def check_device(device: str, *, local: bool = True) -> None:
    """``auto``, ``cpu`` or ``cuda:N``; anything else is a usage error, and so is a CUDA device
    this machine does not have when the build runs here (``local``; a Ray build checks its
    cluster's GPUs in ``ray_preflight``) — refused before anything runs."""
    import re

    m = re.fullmatch(r"auto|cpu|cuda(?::(\d+))?", device)
    if not m:
        raise UsageError(f"unknown device {device!r}", hint="use auto, cpu or cuda:N")
    if not local or not device.startswith("cuda"):
        return
    index = int(m.group(1) or 0)
    count = cuda_devices()
    if index >= count:
        seen = f"this machine has {count} CUDA device{'s' if count != 1 else ''}"
        raise UsageError(
            f"--device {device}: no such device ({seen})",
            hint=f"use --device cuda:0 to cuda:{count - 1}, auto or cpu"
            if count
            else "use --device cpu (or auto: it picks a GPU when there is one)",
        )


def check_output_dirs(ws: Workspace, dirs: list[Any]) -> None:
    """The output folders can be created and written, before any work (InputError, E250):
    not a file on the way, not read-only. Probed by creating a file, which also catches
    read-only mounts, immutable folders and ACLs that permission bits do not show."""
    import os
    import tempfile

    from restoro.errors import InputError

    given = "output" in ws.manifest.model_fields_set
    line, col = ws.loaded.locate(("output",)) if given else (1, 1)
    where = f"{ws.loaded.path}:{line}:{col}"
    for target in dirs or [ws.output_dir]:
        probe = target
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        if not probe.is_dir():
            raise InputError(
                f"cannot create the output folder {target}: {probe} is a file",
                location=where,
                code="E250",
                hint=f"move {probe} away, or set output: to another folder",
            )
        try:
            fd, name = tempfile.mkstemp(prefix=".restoro-write-check-", dir=probe)
        except OSError as exc:
            raise InputError(
                f"cannot write in the output folder {probe}: {exc.strerror or exc}",
                location=where,
                code="E250",
                hint="make it writable (chmod u+w, a read-write mount), or set output: to "
                "another folder",
            ) from None
        os.close(fd)
        os.unlink(name)


def _one_line(exc: BaseException) -> str:
    from restoro.errors import disk_full

    full = disk_full(exc) if isinstance(exc, OSError) else None
    if full:
        return full
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return text.splitlines()[0] if text else type(exc).__name__


def _holder_text(holder: Any) -> str:
    if holder is None:
        return "another process"
    get = holder.get if isinstance(holder, dict) else lambda k, d=None: getattr(holder, k, d)
    return f"pid {get('pid')} on {get('host')} ({get('command') or 'restoro'})"
