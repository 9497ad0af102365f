"""QC in real builds on tiny media: planted defects are found and located to the shot, clean
material passes with the default thresholds, QC is cached like any action, and a ``safe``
variant built after ``clean`` reuses every action they share."""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pytest
from buildkit import build, cli
from pydantic import Field

from restoro.media.ffmpeg import run_ffmpeg
from restoro.qc.verdict import QcFailed

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

from restoro.stages.base import FrameStage, StageContext, StageParams


class PulseParams(StageParams):
    depth: float = Field(0.08, description="Brightness swing, up and down (0-1).")


class Pulse(FrameStage):
    """A planted defect for tests: brightness pulsing frame to frame (flicker)."""

    id: ClassVar[str] = "qctestpulse"
    version: ClassVar[int] = 1
    Params: ClassVar[type[StageParams]] = PulseParams

    def process(
        self, frames: Iterator[np.ndarray], params: StageParams, ctx: StageContext
    ) -> Iterator[np.ndarray]:
        assert isinstance(params, PulseParams)
        for i, f in enumerate(frames):
            gain = 1 + (params.depth if i % 2 else -params.depth)
            yield np.clip(f.astype(np.float32) * gain, 0, 65535).astype(np.uint16)


@pytest.fixture(scope="module", autouse=True)
def _pulse_stage() -> Iterator[None]:
    """Registered for this module only: the schema tests must not see it."""
    from restoro.stages import registry

    registry.register(Pulse)
    yield
    registry._REGISTRY.pop(Pulse.id, None)


HEAD = """\
restoro: 1
project: qctest
sources:
  tape:
    path: media/source.mkv
pipelines:
  main:
    - {stage: ingest, mode: %(mode)s}
    - {stage: upscale, model: bicubic, scale: 2, cache: true}
    - {stage: grain, amount: 0.0}
  hallucinate:
    - {stage: ingest, mode: %(mode)s}
    - {stage: upscale, model: bicubic, scale: 2, cache: true}
    - {stage: grain, amount: 0.5}
%(pulse)stitles:
  ep1:
    source: tape
    pipeline: main
    shots: {detector: content, threshold: 27, min_frames: 4}
%(overrides)s
variants:
  clean: {params: {grain: {amount: 0.0}}}
  safe: {params: {grain: {amount: 0.01}}}
deliverables:
  master: {kind: prores, profile: 422hq, raster: 320x240, fit: pillarbox}
qc: {%(qc)s}
"""


PULSE = """\
  pulse:
    - {stage: ingest, mode: %s}
    - {stage: upscale, model: bicubic, scale: 2, cache: true}
    - {stage: qctestpulse, depth: 0.08}
"""


def make_ws(tmp: Path, source: Path, *, mode: str = "progressive", overrides: str = "",
            qc: str = "", pulse: bool = False) -> Path:  # fmt: skip
    (tmp / "media").mkdir(parents=True, exist_ok=True)
    shutil.copy(source, tmp / "media" / "source.mkv")
    m = tmp / "restoro.yaml"
    m.write_text(
        HEAD
        % {"mode": mode, "overrides": overrides, "qc": qc, "pulse": PULSE % mode if pulse else ""},
        encoding="utf-8",
    )
    return m


def qc_of(report: Any) -> dict[str, str]:
    return {r.id: r.status for r in report.records if r.stage == "qc"}


def shot_meta(manifest: Path, **opts: Any) -> dict[str, dict[str, Any]]:
    """QC metas by shot id, from a (cached) build."""
    from restoro.plan.build import Builder, BuildOptions
    from restoro.plan.workspace import Workspace

    ws = Workspace(manifest)
    try:
        b = Builder(ws, BuildOptions(**opts))
        try:
            b.build()
        except QcFailed:
            pass
        return {k.removesuffix("/qc"): v.meta for k, v in b.qc_results.items()}
    finally:
        ws.close()


@pytest.mark.slow
def test_clean_material_passes_and_qc_is_cached(tmp_path: Path, progressive_source: Path) -> None:
    m = make_ws(tmp_path, progressive_source)
    first = build(m)
    ran = qc_of(first)
    assert len(ran) == 4 and set(ran.values()) == {"executed"}  # 3 shots + the master
    metas = shot_meta(m)
    for sid, meta in metas.items():
        errors = [f for c in meta.get("checks", {}).values() for f in c["findings"]]
        errors += meta.get("findings", [])
        assert [f for f in errors if f["severity"] != "info"] == [], sid
    master = metas["ep1/master"]["metrics"]
    assert master["frames"] == 36 and master["codec"] == "prores"
    assert master["raster"] == "320x240" and master["av_diff_frames"] < 1
    assert master["av_offset_ms"] == 0  # the master's sound starts with its picture
    again = build(m)
    assert again.executed == 0 and set(qc_of(again).values()) == {"cached"}
    skipped = build(m, qc=False)
    assert qc_of(skipped) == {} and skipped.executed == 0


@pytest.mark.slow
def test_planted_defects_fail_and_are_located(tmp_path: Path, progressive_source: Path) -> None:
    overrides = (
        "    overrides:\n"
        "      - {shots: ['ep1@00:00:00:12'], pipeline: hallucinate}\n"
        "      - {shots: ['ep1@00:00:00:24'], pipeline: pulse}\n"
    )
    m = make_ws(tmp_path, progressive_source, overrides=overrides, pulse=True)
    with pytest.raises(QcFailed) as info:
        build(m)
    fails = info.value.failures
    assert sorted(fails) == ["ep1@00:00:00:12", "ep1@00:00:00:24"]
    assert {f["check"] for f in fails["ep1@00:00:00:12"]} >= {"fidelity"}
    assert [f["check"] for f in fails["ep1@00:00:00:24"]] == ["flicker"]
    lines = info.value.message.splitlines()[1:]
    assert len(lines) == 2 and lines[0].strip().startswith("ep1@00:00:00:12: ")
    # The outputs were still written; the build is just not approved.
    assert (tmp_path / "out" / "master" / "ep1.mov").exists()
    # Thresholds in the manifest move the line.
    m.write_text(m.read_text().replace("qc: {}", "qc: {fidelity_min_psnr: 5, max_flicker: 50}"))
    assert build(m).failed == 0


@pytest.mark.slow
def test_black_and_frozen_frames_found_at_their_frames(
    tmp_path: Path, progressive_source: Path
) -> None:
    src = tmp_path / "planted.mkv"
    vf = (
        "drawbox=x=0:y=0:w=iw:h=ih:color=black:t=fill:enable='between(n,4,5)',split[a][b];"
        "[a][b]freezeframes=first=18:last=19:replace=17[v]"
    )
    graph = f"[0:v]{vf}"
    run_ffmpeg(["-i", str(progressive_source), "-filter_complex", graph, "-map", "[v]",
                "-map", "0:a", "-c:v", "ffv1", "-c:a", "copy", "-fflags", "+bitexact",
                "-map_metadata", "-1", str(src)])  # fmt: skip
    m = make_ws(tmp_path / "ws", src, qc="max_black_frames: 0")
    with pytest.raises(QcFailed) as info:
        build(m)
    metas = shot_meta(m)
    black = {sid: f for sid, meta in metas.items() if meta["scope"] == "shot"
             for f in meta["checks"]["black"]["findings"]}  # fmt: skip
    frozen = {sid: f for sid, meta in metas.items() if meta["scope"] == "shot"
              for f in meta["checks"]["frozen"]["findings"]}  # fmt: skip
    assert [f["frames"] for f in black.values()] == [[4, 5]]
    assert [f["frames"] for f in frozen.values()] == [[18, 19]]
    # Located to the shot whose frames hold them; black fails (max 0), frozen only warns.
    (bsid,) = black
    assert list(info.value.failures) == [bsid]
    (fsid,) = frozen
    assert fsid == "ep1@00:00:00:12" and frozen[fsid]["severity"] == "warning"
    f0 = metas[bsid]["frame0"]
    assert f0 <= 4 and 5 < f0 + metas[bsid]["frames"]


@pytest.mark.slow
def test_combed_shot_flagged(tmp_path: Path, interlaced_source: Path) -> None:
    combed = make_ws(tmp_path / "a", interlaced_source, mode="progressive")
    metas = shot_meta(combed)
    flagged = {s for s, m in metas.items() if m["scope"] == "shot" and
               m["checks"]["combing"]["findings"]}  # fmt: skip
    assert "ep1@00:00:00:00" in flagged  # testsrc2 moves everywhere
    fine = make_ws(tmp_path / "b", interlaced_source, mode="deinterlace")
    metas = shot_meta(fine)
    assert not [s for s, m in metas.items() if m["scope"] == "shot" and
                m["checks"]["combing"]["findings"]]  # fmt: skip


@pytest.mark.slow
def test_safe_after_clean_reuses_every_shared_action(
    tmp_path: Path, progressive_source: Path
) -> None:
    m = make_ws(tmp_path, progressive_source)
    clean = build(m, variant="clean")
    keys = {r.key for r in clean.records if r.key}
    safe = build(m, variant="safe")
    shared = [r for r in safe.records if r.key in keys]
    assert shared and all(r.status == "cached" for r in shared)
    assert {r.stage for r in shared} >= {"ingest", "shots", "extract", "chain", "audio"}
    assert not [r for r in safe.records if r.status == "executed" and r.key in keys]
    # What differs is the grain segment and what follows it (chunks, master, QC).
    differ = {r.stage for r in safe.records if r.status == "executed"}
    assert differ == {"chain", "prores-chunk", "prores-master", "qc"}


@pytest.mark.slow
def test_qc_outputs_are_deterministic(tmp_path: Path, progressive_source: Path) -> None:
    m = make_ws(tmp_path, progressive_source)
    build(m)
    from restoro.plan.workspace import Workspace

    def digests() -> dict[str, Any]:
        ws = Workspace(m)
        try:
            return {
                r.action_id: ({k: v.digest for k, v in r.outputs.items()}, r.meta)
                for r in ws.store.iter_actions()
                if r.key_json.get("stage") == "qc"
            }
        finally:
            ws.close()

    before = digests()
    build(m, force=True)
    assert digests() == before and len(before) == 4


def _pack(manifest: Path, report: Any) -> tuple[str | None, dict[str, Any], dict[str, Any]]:
    """The QC pack's key, its entries, and the metas in the QC actions' own entries (the
    report's QC keys), read straight from the store."""
    from restoro.engine.store import Store
    from restoro.plan.qc_pack import QC_PACK_ID
    from restoro.plan.workspace import Workspace

    keys = {r.key for r in report.records if r.stage == "qc"}
    ws = Workspace(manifest)
    try:
        ref = ws.store.state.get_ref(f"|{QC_PACK_ID}")
        pack = Store.lookup(ws.store, ref).result if ref else None
        own = {k: Store.lookup(ws.store, k).result.meta for k in keys}  # type: ignore[union-attr]
        return ref, (pack.meta["entries"] if pack else {}), own
    finally:
        ws.close()


@pytest.mark.slow
def test_cached_qc_reads_one_pack_and_rechecks_only_what_changed(
    tmp_path: Path, progressive_source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from restoro.engine.store import Store

    m = make_ws(tmp_path, progressive_source)
    first = build(m)
    ref, packed, own = _pack(m, first)
    assert ref is not None and len(own) == 4 and packed == own  # 3 shots + the master

    real_lookup = Store.lookup
    looked: list[str] = []

    def counting(self: Store, key: str, **kw: Any) -> Any:
        looked.append(key)
        return real_lookup(self, key, **kw)

    monkeypatch.setattr(Store, "lookup", counting)

    # A no-op build: every QC result cached and read from the pack, no QC entry opened.
    again = build(m)
    assert again.executed == 0 and set(qc_of(again).values()) == {"cached"}
    assert not set(own) & set(looked) and looked.count(ref) == 1
    metas = shot_meta(m)
    assert sorted(metas.values(), key=repr) == sorted(own.values(), key=repr)

    # One shot changes: exactly its QC runs again (and the master's); the pack follows.
    shot = "ep1@00:00:00:12"
    line = "    shots: {detector: content, threshold: 27, min_frames: 4}\n"
    override = (
        f"    overrides:\n      - {{shots: ['{shot}'], params: {{grain: {{amount: 0.01}}}}}}\n"
    )
    m.write_text(m.read_text(encoding="utf-8").replace(line, line + override), encoding="utf-8")
    changed = build(m)
    ran = {i for i, status in qc_of(changed).items() if status == "executed"}
    assert ran == {f"{shot}/qc", "ep1/master/qc"} and len(qc_of(changed)) == 4
    new_ref, packed, own = _pack(m, changed)
    assert new_ref not in (None, ref) and packed == own

    # The pack gone: the QC entries are read one by one, and the pack is written again.
    (m.parent / ".restoro" / "ac" / new_ref[:2] / f"{new_ref[2:]}.json").unlink()  # type: ignore[index]
    looked.clear()
    third = build(m)
    assert third.executed == 0 and set(qc_of(third).values()) == {"cached"}
    assert set(own) <= set(looked)
    assert _pack(m, third) == (new_ref, own, own)

    # `cache gc` keeps the pack that the current manifest's QC results are all in.
    monkeypatch.setattr(Store, "lookup", real_lookup)
    proc = cli("cache", "gc", "-f", str(m), "--json")
    assert proc.returncode == 0, proc.stderr
    assert _pack(m, third) == (new_ref, own, own)


def test_fewer_gc_passes_nests_and_restores_the_threshold() -> None:
    import gc

    from restoro.engine.gcpause import GC_GEN0, fewer_gc_passes

    before = gc.get_threshold()
    with fewer_gc_passes():
        assert gc.get_threshold()[0] >= GC_GEN0
        with fewer_gc_passes():
            pass
        assert gc.get_threshold()[0] >= GC_GEN0  # the inner exit keeps the outer's setting
    assert gc.get_threshold() == before


def test_a_walk_pauses_the_gc_but_for_running_actions() -> None:
    """Planning and cache hits run without cyclic-GC passes; actions (the executor) with them,
    so a long build frees its garbage cycles; everything is restored afterwards."""
    import gc

    from restoro.engine.executor import LocalExecutor, Task
    from restoro.engine.gcpause import GC_GEN0, fewer_gc_passes

    before, enabled = gc.get_threshold(), gc.isenabled()
    seen: list[bool] = []

    def action(_deps: object) -> int:
        seen.append(gc.isenabled())
        return 1

    with fewer_gc_passes(pause=False):
        assert gc.isenabled() == enabled and gc.get_threshold()[0] >= GC_GEN0
        with fewer_gc_passes():  # a build's walk
            assert not gc.isenabled()
            outcomes = LocalExecutor(1).run([Task(id="a", fn=action)])
            assert outcomes["a"].status == "ok" and seen == [enabled]
            assert not gc.isenabled()
        assert gc.isenabled() == enabled
    assert (gc.get_threshold(), gc.isenabled()) == (before, enabled)
