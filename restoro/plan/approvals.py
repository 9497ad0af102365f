"""Approved masters: deliverables that follow the reviewers' decisions (docs/review.md).

A deliverable with ``select: approved`` is assembled shot by shot from the variant each shot's
approval in ``restoro.review.yaml`` names; a shot without a valid approval (unreviewed,
rejected, or needs review because the approved variant's output changed since) uses the
deliverable's ``fallback`` variant, or refuses the deliverable. ``select`` applies to the build
without ``--variant``; a ``--variant V`` build makes V's own version of the deliverable (what the
review compares). ``require_approval: true`` refuses the deliverable while a shot of its titles
has no valid approval (without ``select``: no valid approval of the variant being built).

The variants' shot chains join the build's graph under node ids prefixed ``<label>:`` (``safe:
ep1@00:00:01:00/grain``). Their action keys are those of the variant's own build (a key never
names a variant), so what ``restoro build --variant safe`` made is a cache hit here, and so are
the per-shot encodes a deliverable makes from them: assembling a master from shots of several
variants re-runs only the assembly. These nodes run in a ``review`` phase before the
deliverables, so an approval is checked against the digest of the output as it is now, before
any of the deliverable's actions run. A refused deliverable gets no nodes at all (nothing of it
reaches the store's outputs or ``out/``); the other deliverables build, and the build then
fails with ``ApprovalRefused`` (E270, exit 1) listing the shots.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Protocol

from restoro.errors import RestoroError
from restoro.review_file import BASE, build_variant, load, review_path, status, variant_label

if TYPE_CHECKING:
    from collections.abc import Mapping

    from restoro.engine.events import EventBus
    from restoro.engine.records import BuildOptions, Selection
    from restoro.engine.store import ActionResult
    from restoro.plan.nodes import Node, Shot, ShotEntry
    from restoro.plan.titles import TitleIngest
    from restoro.plan.workspace import Workspace
    from restoro.review_file import Entry


class Builder(Protocol):
    """What approvals use of the build (``restoro.plan.build.Builder``, which imports this)."""

    @property
    def ws(self) -> Workspace: ...
    @property
    def opts(self) -> BuildOptions: ...
    @property
    def events(self) -> EventBus: ...
    @property
    def dry(self) -> bool: ...
    def _delivers(self, deliverable: str, title: str) -> bool: ...
    def _run_nodes(
        self, nodes: list[Node], given: Mapping[str, ActionResult] | None = None
    ) -> dict[str, ActionResult]: ...


HINT = (
    "review the shots (`restoro review`), or give the deliverable a fallback: variant for "
    "unapproved shots; see docs/review.md"
)


class ApprovalRefused(RestoroError):
    """A deliverable that follows approvals has shots without a valid approval."""

    code = "E270"


def node_prefix(label: str) -> str:
    """The prefix of a variant's shot nodes in a build that selects approved shots."""
    return f"{label}:"


def prefixed(nodes: list[Node], prefix: str) -> list[Node]:
    """The same nodes under ids with ``prefix`` (their specs, hence their keys, unchanged)."""
    out = []
    for n in nodes:

        def make(deps: Mapping[str, ActionResult], n: Node = n) -> Any:
            return n.make({d: deps[prefix + d] for d in n.deps})

        out.append(
            dataclasses.replace(
                n, id=prefix + n.id, deps=tuple(prefix + d for d in n.deps), make=make
            )
        )
    return out


@dataclasses.dataclass
class Refusal:
    deliverable: str
    why: str
    """``select`` or ``require_approval``."""
    shots: list[tuple[str, str]]
    """(shot id, its status) of each shot that refuses the deliverable."""


class Approvals:
    """The approval side of one build: which variant each shot of a deliverable comes from."""

    def __init__(self, b: Builder, sel: Selection) -> None:
        self.b = b
        self.ws = b.ws
        self.label = variant_label(b.opts.variant)
        self.sel = sel
        m = self.ws.manifest
        self.labels = {BASE, *m.variants}
        # A --variant build makes that variant's version of every deliverable, selecting ones
        # included (what the review compares); the build without --variant selects.
        self.selecting = {
            d for d in sel.deliverables if m.deliverables[d].select and b.opts.variant is None
        }
        self.following = [
            d for d in sel.deliverables if d in self.selecting or m.deliverables[d].require_approval
        ]
        self._decisions: dict[str, Entry] | None = None
        self._shots: dict[str, list[ShotEntry]] = {}
        self._ingest: dict[str, TitleIngest] = {}
        self._planned: dict[tuple[str, str], tuple[str, Any]] = {}
        """(label, shot id) → (prefixed id of the shot's final frames, its resolved chain)."""
        self._entries: dict[tuple[str, str], list[ShotEntry]] = {}
        self.refusals: list[Refusal] = []
        self._refused: set[str] = set()

    # -- which deliverables ---------------------------------------------------------------------
    def _spec(self, d: str) -> Any:
        return self.ws.manifest.deliverables[d]

    def _wanted(self, title: str) -> list[str]:
        return [d for d in self.sel.deliverables if self.b._delivers(d, title)]

    def own_shots(self, title: str) -> bool:
        """Whether the build's own shot chains of ``title`` are needed: not when every
        deliverable of the title selects approved shots, no QC runs, and the title (or a shot
        of it) is not a target by name."""
        wanted = self._wanted(title)
        if not wanted or any(d not in self.selecting for d in wanted):
            return True
        from restoro.plan.qc import qc_in_build

        qc = self.b.opts.qc
        if qc or (qc is None and qc_in_build(self.ws)):
            return True
        return any(t == title or t.startswith(f"{title}@") for t in self.b.opts.targets)

    @property
    def decisions(self) -> dict[str, Entry]:
        if self._decisions is None:
            self._decisions = load(review_path(self.ws.manifest_path))
        return self._decisions

    # -- the review phase ---------------------------------------------------------------------
    def run(
        self, title_shots: Mapping[str, list[ShotEntry]], ingests: Mapping[str, TitleIngest]
    ) -> dict[str, ActionResult]:
        """Run (or find cached) the variants' shot chains the deliverables that follow approvals
        need, decide each shot's variant, and record refusals; returns the chains' results."""
        titles = [t for t in title_shots if any(d in self.following for d in self._wanted(t))]
        if not titles:
            return {}
        self._shots = {t: title_shots[t] for t in titles}
        self._ingest = {t: ingests[t] for t in titles}
        done: dict[str, ActionResult] = {}
        nodes = self._first_nodes()
        while True:  # at most twice: a stale approval can send a shot to the fallback
            if nodes:
                self.b.events.emit("phase", name="review", actions=len(nodes))
                done = self.b._run_nodes(nodes, done)
            nodes = self._decide(done)
            if not nodes:
                break
        for r in self.refusals:
            listed = ", ".join(f"{s} ({st})" for s, st in r.shots)
            self.b.events.emit(
                "warning",
                title=r.deliverable,
                message=f"{'would not be' if self.b.dry else 'not'} built: {len(r.shots)} shot"
                f"{'s' if len(r.shots) != 1 else ''} without a valid approval ({r.why}): {listed}",
            )
        return done

    def _plan(self, title: str, shot: Shot, label: str) -> list[Node]:
        """The shot chain of variant ``label`` under prefixed ids (once per label and shot)."""
        from restoro.plan.chains import shot_nodes

        if (label, shot.id) in self._planned:
            return []
        nodes, final_id, rs = shot_nodes(
            self.ws,
            title,
            shot,
            build_variant(label),
            self._ingest[title],
            device=self.b.opts.device,
        )
        prefix = node_prefix(label)
        self._planned[(label, shot.id)] = (prefix + final_id, rs)
        return prefixed(nodes, prefix)

    def _approved(self, shot_id: str) -> str | None:
        e = self.decisions.get(shot_id)
        if e is not None and e.decision == "approved" and e.variant in self.labels:
            return e.variant
        return None

    def _first_nodes(self) -> list[Node]:
        out: list[Node] = []
        for title, entries in self._shots.items():
            for d in self._wanted(title):
                if d not in self.following:
                    continue
                spec = self._spec(d)
                for shot, _f, _rs in entries:
                    label = self._approved(shot.id)
                    if label is not None and (d in self.selecting or label == self.label):
                        out += self._plan(title, shot, label)
                    elif d in self.selecting and spec.fallback is not None:
                        out += self._plan(title, shot, spec.fallback)
        return out

    def _status(self, shot_id: str, results: Mapping[str, ActionResult]) -> tuple[str, str | None]:
        """The shot's review status against its approved variant's output as built now, and
        the variant when that is a valid approval."""
        e = self.decisions.get(shot_id)
        if e is None:
            return "unreviewed", None
        if e.decision == "approved" and e.variant not in self.labels:
            return f"needs review (variant {e.variant!r} is not in the manifest)", None
        digests: dict[str, str | None] = {}
        if e.variant is not None and (e.variant, shot_id) in self._planned:
            res = results.get(self._planned[(e.variant, shot_id)][0])
            if res is None and not self.b.dry:
                return f"approved: {e.variant}, but its output did not build", None
            digests[e.variant] = res.outputs["frames"].digest if res is not None else None
        text = status(e, digests)
        return text, (e.variant if text.startswith("approved: ") else None)

    def _decide(self, results: Mapping[str, ActionResult]) -> list[Node]:
        """Each shot's variant per deliverable, or the deliverable's refusal; returns the
        fallback chains still to run (for approvals found stale)."""
        more: list[Node] = []
        self.refusals, self._refused, self._entries = [], set(), {}
        for title, entries in self._shots.items():
            for d in self._wanted(title):
                if d not in self.following:
                    continue
                spec = self._spec(d)
                statuses = {s.id: self._status(s.id, results) for s, _f, _rs in entries}
                bad: list[tuple[str, str]] = []
                if spec.require_approval:
                    for s, _f, _rs in entries:
                        st, label = statuses[s.id]
                        if label is not None and d not in self.selecting and label != self.label:
                            st, label = f"{st} (this build is {self.label})", None
                        if label is None:
                            bad.append((s.id, st))
                    if bad:
                        self._refuse(d, "require_approval", bad)
                        continue
                if d not in self.selecting:
                    self._entries[(title, d)] = list(entries)
                    continue
                chosen: list[ShotEntry] = []
                for s, _f, _rs in entries:
                    st, label = statuses[s.id]
                    if label is None:
                        e = self.decisions.get(s.id)
                        fb = spec.fallback
                        rejected_fb = e is not None and e.decision == "rejected" and e.variant == fb
                        if fb is None or rejected_fb:
                            bad.append((s.id, st))
                            continue
                        label = fb
                        if (fb, s.id) not in self._planned:
                            more += self._plan(title, s, fb)
                            continue
                    final_id, rs = self._planned[(label, s.id)]
                    chosen.append((s, final_id, rs))
                if bad:
                    self._refuse(d, "select: approved", bad)
                elif not more:
                    self._entries[(title, d)] = chosen
        return more

    def _refuse(self, d: str, why: str, shots: list[tuple[str, str]]) -> None:
        if d in self._refused:
            next(r for r in self.refusals if r.deliverable == d).shots.extend(shots)
            return
        self._refused.add(d)
        self.refusals.append(Refusal(d, why, shots))

    # -- what the deliverables get ------------------------------------------------------------
    def entries(self, title: str, d: str, own: list[ShotEntry]) -> list[ShotEntry] | None:
        """The shots ``d`` is made of for ``title``: ``own`` (the build's shots) unless it
        follows approvals; None when it is refused."""
        if d not in self.following:
            return own
        if d in self._refused:
            return None
        return self._entries.get((title, d))

    def raise_refused(self) -> None:
        """``ApprovalRefused`` listing every refused deliverable's shots, if any."""
        if not self.refusals:
            return
        lines = []
        for r in self.refusals:
            n = len(r.shots)
            lines.append(
                f"{r.deliverable} not built ({r.why}): {n} shot{'s' if n != 1 else ''} "
                "without a valid approval:"
            )
            lines += [f"    {sid}  {st}" for sid, st in r.shots]
        first = self.refusals[0]
        key = "select" if first.why.startswith("select") else "require_approval"
        line, col = self.ws.loaded.locate(("deliverables", first.deliverable, key))
        raise ApprovalRefused(
            "\n".join(lines),
            location=f"{self.ws.loaded.path}:{line}:{col}",
            hint=HINT,
        )
