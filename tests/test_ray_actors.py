"""The Ray executor's model actors, memory reservations, remote progress and failure reports, on
a real local Ray cluster (a head and a worker node on loopback, see test_ray_farm.py)."""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING, Any, ClassVar

import pytest

ray = pytest.importorskip("ray")
torch = pytest.importorskip("torch")
pytest.importorskip("spandrel")

from buildkit import build  # noqa: E402
from raykit import Cluster, node_killed_mid_build, running_cluster  # noqa: E402
from test_ray_farm import _nothing_started  # noqa: E402

from restoro.engine.store import Store  # noqa: E402
from restoro.errors import BuildFailed, UsageError  # noqa: E402
from restoro.plan.build import Builder, BuildOptions  # noqa: E402
from restoro.plan.workspace import Workspace  # noqa: E402
from restoro.stages.base import FrameStage, StageContext, StageParams  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    import numpy as np

SHOTS = 5
MANIFEST = """\
restoro: 1
project: actors
sources:
  tape: {path: media/source.mkv}
pipelines:
  main:
    - {stage: ingest, mode: progressive}
    - {stage: upscale, model: models/tiny.safetensors, scale: 2}
    - {stage: STAGE}
titles:
  ep1:
    source: tape
    pipeline: main
    shots: {detector: content, threshold: 27, min_frames: 2}
deliverables:
  master: {kind: prores, profile: 422hq, raster: 128x72, fit: pillarbox}
"""


class Invert(FrameStage):
    """A plugin stage installed on the coordinator only (not on the Ray workers)."""

    id: ClassVar[str] = "raytestinvert"
    version: ClassVar[int] = 1
    Params: ClassVar[type[StageParams]] = StageParams

    def process(
        self, frames: Iterator[np.ndarray], params: StageParams, ctx: StageContext
    ) -> Iterator[np.ndarray]:
        for f in frames:
            yield 65535 - f


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with running_cluster(tmp_path_factory.mktemp("ray"), "w1") as c:
        yield c


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 5-shot 48x32 source and a tiny random Compact x2 model (spandrel, safetensors)."""
    from safetensors.torch import save_file
    from spandrel.architectures.Compact import Compact

    from restoro.testing.synth import make_source

    d = tmp_path_factory.mktemp("assets")
    make_source(
        d / "source.mkv",
        width=48,
        height=32,
        shots=SHOTS,
        shot_frames=4,
        codec="ffv1",
        sar="1:1",
        audio_channels=0,
    )
    torch.manual_seed(1)
    m = Compact(num_in_ch=3, num_out_ch=3, num_feat=8, num_conv=2, upscale=2)
    save_file({k: v.contiguous() for k, v in m.state_dict().items()}, str(d / "tiny.safetensors"))
    return d


def _project(root: Path, assets: Path, stage: str = "sharpen") -> Path:
    (root / "media").mkdir(parents=True)
    (root / "models").mkdir()
    shutil.copy(assets / "source.mkv", root / "media" / "source.mkv")
    shutil.copy(assets / "tiny.safetensors", root / "models" / "tiny.safetensors")
    manifest = root / "restoro.yaml"
    manifest.write_text(MANIFEST.replace("STAGE", stage), encoding="utf-8")
    return manifest


def _build(manifest: Path, **kw: Any) -> tuple[Any, list[dict[str, Any]]]:
    ws = Workspace(manifest)
    events: list[dict[str, Any]] = kw.pop("events_out", [])
    b = Builder(ws, BuildOptions(device="cpu", **kw))
    b.events.subscribe(events.append)
    try:
        return b.build(), events
    finally:
        ws.close()


@pytest.fixture(scope="module")
def local_run(
    tmp_path_factory: pytest.TempPathFactory, assets: Path
) -> tuple[bytes, list[dict[str, Any]]]:
    manifest = _project(tmp_path_factory.mktemp("local"), assets)
    report, events = _build(manifest)
    assert report.failed == 0
    return (manifest.parent / "out" / "master" / "ep1.mov").read_bytes(), events


def _actors(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        if e["event"] == "actor":
            out.setdefault(e["actor"], []).append(e)
    return out


@pytest.mark.slow
def test_model_actions_run_in_actors_and_load_weights_once(
    cluster: Cluster, tmp_path: Path, assets: Path, local_run: tuple[bytes, Any]
) -> None:
    master, local_events = local_run
    manifest = _project(tmp_path / "p", assets)
    report, events = _build(manifest, executor="ray", ray_address=cluster.address)
    assert report.failed == 0
    assert (manifest.parent / "out" / "master" / "ep1.mov").read_bytes() == master
    assert Store(manifest.parent / ".restoro").verify().ok

    ran = {r.id: r for r in report.records if r.status == "executed"}
    model = {i for i in ran if i.endswith("/upscale")}  # the chains that run the model
    assert len(model) == SHOTS
    placed = {e["id"]: e for e in events if e["event"] == "action-host"}
    assert set(placed) == set(ran)  # every remote action says where it ran
    actors = _actors(events)
    for i in model:  # every model action ran in one of the pool's actors
        assert placed[i]["worker"] in actors, placed[i]
    for i in set(ran) - model:  # and nothing else did
        assert placed[i]["worker"] == "task"
    # Each actor loaded the weights exactly once, however many shots it ran; the pool is
    # smaller than the work, so some actor ran several.
    assert 1 <= len(actors) < len(model)
    for label, evs in actors.items():
        assert [e["status"] for e in evs] == ["started", "loaded", "retired"], evs
        assert evs[1]["loads"] == evs[2]["loads"] == 1
        assert evs[2]["actions"] == sum(placed[i]["worker"] == label for i in model)
        assert evs[1]["host"] and evs[1]["pid"] == evs[2]["pid"]

    # Progress: the same events, with the same fields, as a local build.
    def progress(evs: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        for e in evs:
            if e["event"] == "progress":
                out.setdefault(e["id"], []).append(e)
        return out

    local_p, ray_p = progress(local_events), progress(events)
    assert set(ray_p) == set(local_p) and model <= set(ray_p)
    for i, evs in ray_p.items():
        assert {tuple(sorted(e)) for e in evs} == {tuple(sorted(e)) for e in local_p[i]}
        assert evs[-1]["done"] == evs[-1]["total"] == local_p[i][-1]["total"]
        assert [e["done"] for e in evs] == sorted({e["done"] for e in evs})
    # ... between the action's start and its end.
    names = [(e["event"], e.get("id")) for e in events]
    for i in model:
        first = names.index(("progress", i))
        assert names.index(("action-start", i)) < first < names.index(("action", i))


@pytest.mark.slow
def test_worker_failure_names_shot_stage_host_and_log(
    cluster: Cluster, tmp_path: Path, assets: Path
) -> None:
    """A plugin installed on the coordinator but not on the workers: the chain fails there."""
    from restoro.stages import registry

    registry.register(Invert)
    try:
        manifest = _project(tmp_path / "p", assets, stage=Invert.id)
        events: list[dict[str, Any]] = []
        with pytest.raises(BuildFailed) as err:
            _build(manifest, executor="ray", ray_address=cluster.address, events_out=events)
    finally:
        registry._REGISTRY.pop(Invert.id, None)
    assert "failed; first: ep1@" in err.value.message
    # The terminal shows the first failure's worker log tail too (the error's hint).
    assert "run_chain" in (err.value.hint or "") and "is not a frame stage" in err.value.hint
    failed = [e for e in events if e["event"] == "action" and e["status"] == "failed"]
    reports = {e["id"]: e for e in events if e["event"] == "worker-failure"}
    assert failed and set(reports) == {e["id"] for e in failed}
    for ev in failed:
        text, shot = ev["error"], ev["shot"]  # one line: which shot, stage, host, what
        assert text.startswith(f"{shot}/{Invert.id}: shot {shot}, stage chain ({Invert.id})")
        assert " failed on host " in text and "(pid " in text
        assert text.endswith(f"stage {Invert.id!r} is not a frame stage")
        report = reports[ev["id"]]  # the worker's log tail, for --json consumers
        assert (report["stage"], report["shot"]) == ("chain", shot)
        assert report["host"] and report["pid"] and report["error"] in text
        assert "run_chain" in report["log"]  # the traceback tail, then the error
        assert report["log"].rstrip().endswith("is not a frame stage")


@pytest.mark.slow
def test_actor_on_a_killed_node_is_retried_and_replaced(
    cluster: Cluster, tmp_path: Path, assets: Path, local_run: tuple[bytes, Any]
) -> None:
    # Work only on two nodes labelled "pool" (the head and w1 cannot take it): w2 surely runs
    # a model actor, is killed while it holds a chain's lease, and w3's actor takes over.
    manifest = _project(tmp_path / "p", assets)
    leases = manifest.parent / ".restoro" / "locks" / "leases"
    with node_killed_mid_build(cluster, leases, holds="/upscale") as killed:
        report, events = _build(
            manifest, executor="ray", ray_address=cluster.address, ray_resources={"pool": 1.0}
        )
    assert killed, "no model action ran on the worker node w2"
    actors = _actors(events)
    lost = [label for label, evs in actors.items() if any(e["status"] == "lost" for e in evs)]
    assert lost, actors
    retries = [e for e in events if e["event"] == "retry"]
    assert retries and all(e["stage"] == "chain" and e["attempt"] <= 2 for e in retries)
    ids = [r.id for r in report.records]
    assert len(ids) == len(set(ids)) and report.failed == 0
    for e in retries:  # the lost action ran again, in an actor still alive
        last = [p for p in events if p["event"] == "action-host" and p["id"] == e["id"]]
        assert last and last[-1]["worker"] not in lost
    assert (manifest.parent / "out" / "master" / "ep1.mov").read_bytes() == local_run[0]
    assert Store(manifest.parent / ".restoro").verify().ok


@pytest.mark.slow
def test_action_fitting_on_no_node_fails_before_work(
    cluster: Cluster, tmp_path: Path, assets: Path
) -> None:
    """Every resource is offered by some node, but no node offers what one action needs at
    once: the label ``small`` only on a node with 256 MiB, the stages' memory elsewhere."""
    cluster.add_worker("small", memory=256 * 1024 * 1024)
    manifest = _project(tmp_path / "p", assets)
    events: list[dict[str, Any]] = []
    with pytest.raises(UsageError) as err:
        _build(
            manifest,
            executor="ray",
            ray_address=cluster.address,
            ray_resources={"small": 1.0},
            events_out=events,
        )
    e = err.value
    assert e.exit_code == 2
    assert "no single node of the Ray cluster offers what stage ingest asks for at once" in (
        e.message
    )
    assert "(CPU 1, small 1, memory 512 MiB)" in e.message
    assert "memory 256 MiB, small 1" in e.message  # the small node, as it offers itself
    assert e.hint and "--memory" in e.hint
    assert [ev["event"] for ev in events] == ["build-start"]
    _nothing_started(manifest)


@pytest.mark.slow
def test_nodes_carry_memory_outside_the_action_key(tmp_path: Path, assets: Path) -> None:
    """Chain nodes carry the largest memory_mb of their stages; keys do not depend on it."""
    from restoro.engine.records import BuildOptions as Opts
    from restoro.engine.records import Selection
    from restoro.plan import analysis, chains, pieces
    from restoro.plan import nodes as N
    from restoro.plan.makers import Walk

    manifest = _project(tmp_path / "p", assets)
    report = build(manifest, device="cpu", executor="local")
    ws = Workspace(manifest)
    try:
        ws.preflight(["ep1"])
        ws.hash_sources()
        node = analysis.analysis_node(ws, "ep1", None)
        walk = Walk(ws, Selection(["ep1"], [], None), Opts())
        walk.analyses["ep1"] = ws.store.lookup(_key(report, node.id)).result
        made = pieces.make(walk, "ep1")
        # the analysis declares nothing; an ingest piece 512 (ingest's), shots none
        assert [node.memory_mb] + [n.memory_mb for n in made] == [0, 512, 0]
        done = {n.id: ws.store.lookup(_key(report, n.id)).result for n in made}
        ingest = pieces.title_ingest(walk, "ep1", done)
        assert ingest is not None
        shot = N.Shot("ep1@00:00:00:00", 0, 4)
        nodes, _, _ = chains.shot_nodes(ws, "ep1", shot, None, ingest, device="cpu")
        assert [n.memory_mb for n in nodes] == [0, 4096, 256]  # extract, upscale, sharpen
        spec = nodes[1].make({nodes[0].id: ws.store.lookup(_key(report, nodes[0].id)).result})
        assert "memory" not in str(spec.key_fields())
        assert spec.key()[0] == _key(report, nodes[1].id)
    finally:
        ws.close()


def _key(report: Any, action_id: str) -> str:
    return next(r.key for r in report.records if r.id == action_id)
