"""``restoro check``: re-run a sample of cached actions and compare their output bytes.

The engine's early cutoff and every cache hit rest on one promise: identical inputs give
identical bytes. A stage that breaks it (an unseeded random number, a thread race, a tool that
stamps the time) does not fail a build; it silently makes caches disagree between machines and
reruns. This module finds such stages: it plans the build, picks cached actions (at least one of
every stage, then more at random from a seeded generator, so the same command picks the same
actions), runs each one again from its stored key (stage, version, params, input digests) into
a scratch directory, and compares the digest of every output with the cached one. Nothing is
written to the store: the re-run's files are hashed and thrown away.
"""

from __future__ import annotations

import random
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from restoro.engine.keys import digest_file
from restoro.errors import UsageError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from restoro.engine.events import EventBus
    from restoro.engine.store import ActionResult
    from restoro.plan.build import ActionRecord, Builder


@dataclass
class ActionCheck:
    id: str
    stage: str
    shot: str
    key: str
    status: str  # same | differs | failed
    seconds: float = 0.0
    differing: list[str] = field(default_factory=list)
    """Names of the outputs (or ``meta``) whose bytes differ."""
    error: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "stage": self.stage,
            "shot": self.shot,
            "key": self.key,
            "status": self.status,
            "seconds": round(self.seconds, 3),
            "differing": self.differing,
            **({"error": self.error} if self.error else {}),
        }


@dataclass
class CheckReport:
    checked: list[ActionCheck] = field(default_factory=list)
    not_built: int = 0
    """Actions of the plan that are not in the cache (a build would run them)."""
    available: int = 0
    """Cached actions the sample was drawn from."""

    @property
    def differing(self) -> list[ActionCheck]:
        return [c for c in self.checked if c.status == "differs"]

    @property
    def failed(self) -> list[ActionCheck]:
        return [c for c in self.checked if c.status == "failed"]

    def stages(self, status: str) -> list[str]:
        return sorted({c.stage for c in self.checked if c.status == status})


def pick(
    records: Sequence[ActionRecord], sample: int, stages: Sequence[str], seed: int
) -> list[ActionRecord]:
    """At least one action of every stage (the first in plan order), then more at random.

    ``sample`` <= 0 picks every cached action. ``stages`` (when given) limits the choice.
    """
    pool = [r for r in records if r.status == "cached" and (not stages or r.stage in stages)]
    if sample <= 0 or sample >= len(pool):
        return pool
    chosen: dict[str, ActionRecord] = {}
    for r in pool:
        if r.stage not in {c.stage for c in chosen.values()}:
            chosen[r.id] = r
    rest = [r for r in pool if r.id not in chosen]
    extra = max(0, sample - len(chosen))
    for r in random.Random(seed).sample(rest, min(extra, len(rest))):
        chosen[r.id] = r
    order = {r.id: i for i, r in enumerate(pool)}
    return sorted(chosen.values(), key=lambda r: order[r.id])


def check_determinism(
    b: Builder,
    *,
    sample: int = 8,
    stages: Sequence[str] = (),
    seed: int = 0,
    events: EventBus | None = None,
) -> CheckReport:
    """Plan with ``b`` (nothing runs), then re-run and compare a sample of its cached actions."""
    from restoro.engine.actions import RUNNERS
    from restoro.engine.execute import load_runners

    load_runners()
    unknown = [s for s in stages if s not in RUNNERS]
    if unknown:
        import difflib

        close = difflib.get_close_matches(unknown[0], RUNNERS, n=1)
        raise UsageError(
            f"unknown action stage {unknown[0]!r} for --stage"
            + (f"; did you mean {close[0]!r}?" if close else ""),
            hint="action stages: " + ", ".join(sorted(RUNNERS)),
        )
    plan = b.plan()
    report = CheckReport(
        not_built=sum(1 for r in plan.records if r.status != "cached"),
        available=sum(1 for r in plan.records if r.status == "cached"),
    )
    ws = b.ws
    sources = {s.digest: (s.path, s.info) for s in ws.sources.values() if s.digest}
    for rec in pick(plan.records, sample, stages, seed):
        lk = ws.store.lookup(rec.key)
        if lk.status != "hit" or lk.result is None:
            continue  # gone since planning (a concurrent gc): nothing to compare against
        if events is not None:
            events.emit("check-start", id=rec.id, stage=rec.stage, shot=rec.shot)
        res = _recheck(rec, lk.result, ws.store, sources, b.opts.device)
        report.checked.append(res)
        if events is not None:
            events.emit("check", **res.to_json())
    return report


def _recheck(
    rec: ActionRecord,
    cached: ActionResult,
    store: Any,
    sources: dict[str, tuple[Any, Any]],
    device: str,
) -> ActionCheck:
    """Run ``cached``'s action again from its key fields; compare outputs (and meta)."""
    from restoro.engine.actions import RUNNERS, RunContext
    from restoro.engine.execute import _source_map, input_digests, load_runners
    from restoro.engine.graph import ActionSpec

    kj = cached.key_json
    spec = ActionSpec(
        id=rec.id,
        stage=kj["stage"],
        version=kj["version"],
        params=kj["params"],
        inputs=kj["inputs"],
        tools=kj.get("tools", {}),
        title=rec.title,
        shot=rec.shot,
        frames=int(cached.meta.get("frames", 0) or 0) if isinstance(cached.meta, dict) else 0,
    )
    out = ActionCheck(rec.id, rec.stage, rec.shot, rec.key, "same")
    if spec.key()[0] != cached.key:
        # The stored key fields do not hash to the entry's key: a damaged entry, not a
        # nondeterministic stage. `cache verify` is the tool for that.
        out.status, out.error = "failed", "the entry's key fields do not match its key"
        return out
    if spec.stage not in RUNNERS:
        load_runners()
    t0 = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="restoro-check-", dir=store.tmp))
    try:
        for name in input_digests(spec):
            if not store.verify_blob(name):
                raise UsageError(f"input {name} of {spec.id} is missing or corrupt in the store")
        ctx = RunContext(store=store, sources=_source_map(sources), device=device, work_dir=work)
        run = RUNNERS[spec.stage](spec, ctx)
        for name, path in sorted(run.files.items()):
            want = cached.outputs.get(name)
            if want is None or digest_file(Path(path)) != want.digest:
                out.differing.append(name)
        missing = sorted(set(cached.outputs) - set(run.files))
        out.differing += missing
        if _comparable(run.meta) != _comparable(cached.meta):
            out.differing.append("meta")
        if out.differing:
            out.status = "differs"
    except Exception as exc:  # noqa: BLE001 - reported per action, the check goes on
        out.status = "failed"
        text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        out.error = text.splitlines()[0]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out.seconds = time.monotonic() - t0
    return out


def _comparable(meta: Any) -> Any:
    """Meta as the store keeps it (a JSON round trip: tuples become lists)."""
    import orjson

    return orjson.loads(orjson.dumps(meta, option=orjson.OPT_SORT_KEYS)) if meta else {}
