"""What the review page shows: the shots of the compared variants, their cached outputs, QC
results and review status, read from plans (nothing runs but the proxies' encoding).

``ReviewSession.refresh()`` plans every variant it needs (the compared ones and any variant a
decision names) with QC nodes, so it learns each shot's final-frames digest per variant and the
QC results a build or ``restoro qc`` left in the cache (``restoro.qc.collect``, as the report
reads them). The page's list reloads call it again, so a rebuilt shot shows ``needs review``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from restoro import review_file as D
from restoro.errors import UsageError

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from restoro.engine.store import ActionResult
    from restoro.plan.workspace import Workspace
    from restoro.qc.collect import ShotRow
    from restoro.review.outputs import ShotOutput

# QC metrics shown in the list, as (check, metric, label).
LIST_METRICS = (
    ("fidelity", "psnr", "PSNR"),
    ("fidelity", "ssim", "SSIM"),
    ("flicker", "flicker", "flicker"),
)


def default_compare(ws: Workspace) -> tuple[str, ...]:
    """The manifest's first two variants; with one, ``base`` and it; with none, ``base``."""
    names = list(ws.manifest.variants)
    if len(names) >= 2:
        return (names[0], names[1])
    if len(names) == 1:
        return (D.BASE, names[0])
    return (D.BASE,)


def check_labels(ws: Workspace, labels: Sequence[str]) -> None:
    for label in labels:
        if label != D.BASE:
            ws.check_variant(label)
    if len(set(labels)) != len(labels):
        raise UsageError(f"--compare names {labels[0]!r} twice", hint="name two variants")


@dataclass
class ShotState:
    """One shot as the page knows it."""

    id: str
    title: str
    index: int
    start: int
    end: int
    frame_rate: str
    timecode: str
    tags: tuple[str, ...]
    outputs: dict[str, ShotOutput] = field(default_factory=dict)
    """Per variant label planned: the shot's cached outputs."""
    qc: dict[str, ShotRow] = field(default_factory=dict)
    """Per variant label: the shot's cached QC row (absent when QC did not run)."""

    @property
    def frames(self) -> int:
        return self.end - self.start

    def digest(self, label: str) -> str | None:
        out = self.outputs.get(label)
        return out.digest if out is not None else None

    def result(self, label: str) -> ActionResult | None:
        out = self.outputs.get(label)
        return out.result if out is not None else None

    @property
    def source(self) -> ActionResult | None:
        for out in self.outputs.values():
            if out.source is not None:
                return out.source
        return None


class ReviewSession:
    """The state behind one ``restoro review``: a workspace, the variants compared, the review
    file, the reviewer, and the shots of the last refresh."""

    def __init__(
        self,
        ws: Workspace,
        *,
        compare: Sequence[str] | None = None,
        reviewer: str | None = None,
        titles: Sequence[str] = (),
        device: str = "auto",
    ) -> None:
        self.ws = ws
        self.labels: tuple[str, ...] = tuple(compare) if compare else default_compare(ws)
        check_labels(ws, self.labels)
        for t in titles:
            if t not in ws.manifest.titles:
                raise UsageError(
                    f"unknown title {t!r}",
                    hint=f"titles: {', '.join(sorted(ws.manifest.titles))}",
                )
        self.titles = tuple(titles)
        self.device = device
        self.review_file = D.review_path(ws.manifest_path)
        self.reviewer = reviewer or D.default_reviewer(ws.root)
        self.shots: dict[str, ShotState] = {}
        self.order: list[str] = []
        self.entries: dict[str, D.Entry] = {}
        self.lock = threading.RLock()
        self._manifest_sig = _signature(ws.manifest_path)

    # -- reading -------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Plan the variants again (re-reading the manifest when it changed) and re-read the
        review file."""
        with self.lock:
            self._reload_manifest()
            entries = D.load(self.review_file)
            wanted = list(self.labels)
            known = {D.BASE, *self.ws.manifest.variants}
            for e in entries.values():  # a decision about another variant: check it too
                if e.variant and e.variant in known and e.variant not in wanted:
                    wanted.append(e.variant)
            shots: dict[str, ShotState] = {}
            order: list[str] = []
            for label in wanted:
                outs, rows = self._plan(label)
                for title, items in outs.items():
                    for i, o in enumerate(items):
                        st = shots.get(o.shot.id)
                        if st is None:
                            st = shots[o.shot.id] = self._state(title, i, o)
                            order.append(o.shot.id)
                        st.outputs[label] = o
                        if o.shot.id in rows:
                            st.qc[label] = rows[o.shot.id]
            self.shots, self.order, self.entries = shots, order, entries

    def _reload_manifest(self) -> None:
        from restoro.plan.workspace import Workspace

        sig = _signature(self.ws.manifest_path)
        if sig == self._manifest_sig:
            return
        new = Workspace(self.ws.manifest_path)
        try:
            check_labels(new, self.labels)
        except BaseException:
            new.close()
            raise
        old, self.ws, self._manifest_sig = self.ws, new, sig
        old.close()

    def _plan(self, label: str) -> tuple[dict[str, list[ShotOutput]], dict[str, ShotRow]]:
        from restoro.plan.build import Builder, BuildOptions
        from restoro.plan.qc import collect
        from restoro.review.outputs import outputs_of

        opts = BuildOptions(
            targets=self.titles, variant=D.build_variant(label), device=self.device, qc=True
        )
        b = Builder(self.ws, opts)
        b.plan()
        outs = outputs_of(b)
        rows = {r.id: r for r in collect(b)[0]}
        return outs, rows

    def _state(self, title: str, index: int, o: ShotOutput) -> ShotState:
        from restoro.plan.titles import title_timecode

        src = self.ws.sources[self.ws.manifest.titles[title].source]
        return ShotState(
            id=o.shot.id,
            title=title,
            index=index,
            start=o.shot.start,
            end=o.shot.end,
            frame_rate=o.shot.frame_rate,
            timecode=title_timecode(src, o.shot),
            tags=o.tags,
        )

    def digests(self, st: ShotState) -> dict[str, str | None]:
        return {label: out.digest for label, out in st.outputs.items()}

    def status(self, shot_id: str) -> str:
        st = self.shots[shot_id]
        return D.status(self.entries.get(shot_id), self.digests(st))

    def build_command(self, st: ShotState, label: str) -> str:
        """The command that builds variant ``label`` of the shot."""
        parts = ["restoro", "build"]
        if self.ws.manifest_path.name != "restoro.yaml":
            parts += ["-f", str(self.ws.manifest_path)]
        v = D.build_variant(label)
        if v is not None:
            parts += ["--variant", v]
        return " ".join([*parts, f"'{st.id}'"])

    # -- writing -------------------------------------------------------------------------------
    def decide(
        self,
        shot_id: str,
        decision: str,
        *,
        variant: str | None,
        comment: str,
    ) -> D.Entry | None:
        """Record a decision (checked by the caller: ``check_decision``); ``unreviewed``
        removes the shot's entry. Returns the entry written (None after a removal)."""
        with self.lock:
            st = self.shots[shot_id]
            if decision == "unreviewed":
                self.entries = D.forget(self.review_file, shot_id)
                return None
            if decision == "rejected" and variant is None:
                # A rejection is of the shot; it keeps the first built variant's digest, so a
                # rebuild after the rejection shows the shot as needing review.
                variant = next((lb for lb in self.labels if st.digest(lb)), None)
            entry = D.Entry(
                shot=shot_id,
                decision=decision,  # type: ignore[arg-type]
                variant=variant if decision != "note" else None,
                digest=(st.digest(variant) if variant and decision != "note" else None),
                reviewer=self.reviewer,
                time=D.now(),
                comment=comment,
            )
            self.entries = D.record(self.review_file, entry)
            return entry


def _signature(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_mtime_ns, st.st_size


class DecisionError(ValueError):
    """A decision the page sent that cannot be recorded; the message says why."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


MAX_COMMENT = 4000


def check_decision(session: ReviewSession, shot_id: str, body: Any) -> dict[str, Any]:
    """The decision in a POST body, checked against the session; DecisionError when not valid.

    ``{"decision": "approved"|"rejected"|"note"|"unreviewed", "variant": label,
    "comment": text, "digest": the digest the page showed (optional)}``.
    """
    if shot_id not in session.shots:
        raise DecisionError(f"unknown shot {shot_id!r}")
    if not isinstance(body, dict):
        raise DecisionError("the body must be a JSON object")
    unknown = set(body) - {"decision", "variant", "comment", "digest"}
    if unknown:
        raise DecisionError(f"unknown field {sorted(unknown)[0]!r}")
    decision = body.get("decision")
    if decision not in (*D.DECISIONS, "unreviewed"):
        raise DecisionError(
            f"decision must be one of {', '.join((*D.DECISIONS, 'unreviewed'))}, not {decision!r}"
        )
    variant = body.get("variant")
    comment = body.get("comment", "")
    digest = body.get("digest")
    if not isinstance(comment, str) or len(comment) > MAX_COMMENT:
        raise DecisionError(f"comment must be text of at most {MAX_COMMENT} characters")
    if variant is not None and (not isinstance(variant, str) or variant not in session.labels):
        raise DecisionError(
            f"unknown variant {variant!r}: this review compares {', '.join(session.labels)}"
        )
    if digest is not None and not isinstance(digest, str):
        raise DecisionError("digest must be text")
    st = session.shots[shot_id]
    if decision == "approved":
        if variant is None:
            raise DecisionError("an approval must name its variant")
        if st.digest(variant) is None:
            raise DecisionError(
                f"variant {variant} of {shot_id} is not built: nothing to approve",
            )
    if decision == "note" and not comment.strip():
        raise DecisionError("a note needs a comment")
    if digest is not None and variant is not None and digest != st.digest(variant):
        raise DecisionError(
            f"{shot_id} changed since the page showed it (variant {variant}); reload the page",
            status=409,
        )
    return {"decision": decision, "variant": variant, "comment": comment.strip(), "digest": digest}


def open_session(
    manifest: Path,
    *,
    compare: Sequence[str] | None = None,
    reviewer: str | None = None,
    titles: Sequence[str] = (),
    device: str = "auto",
) -> ReviewSession:
    from restoro.plan.workspace import Workspace

    ws = Workspace(manifest)
    try:
        s = ReviewSession(ws, compare=compare, reviewer=reviewer, titles=titles, device=device)
        s.refresh()
    except BaseException:
        ws.close()
        raise
    return s
