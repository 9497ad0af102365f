"""QC in the build graph: a ``qc`` action per shot and per deliverable, cached like any other.

A shot's QC node reads the shot's final frames and its ingested frames; a deliverable's reads the
delivered file. Their keys hold the checks' ids, versions and thresholds, so a no-op build finds
every QC result in the cache and only a changed shot (or threshold) is checked again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from restoro.engine.actions import RunContext, RunOutput, runner
from restoro.engine.graph import ActionSpec
from restoro.plan.chains import fold_params
from restoro.plan.nodes import Node, Results, Shot, ShotEntry, digest_of
from restoro.plan.qc_package import (
    PACKAGE_KINDS,
    caption_tracks,
    deliverable_qc_id,
    package_node,
    title_timing,
)
from restoro.plan.titles import title_timecode

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping

    import numpy as np

    from restoro.engine.store import ActionResult
    from restoro.plan.makers import Walk
    from restoro.plan.workspace import Workspace
    from restoro.qc.collect import DeliverableRow, ShotRow

QC_VERSION = 1
# Kinds whose main output is one movie file, and the codec it must carry.
MOVIE_KINDS = {"prores": "prores"}
_PRORES_NAMES = {"422hq": "hq", "4444": "4444", "4444xq": "xq"}


def qc_in_build(ws: Workspace) -> bool:
    """QC runs in ``restoro build`` when the manifest has a ``qc:`` section."""
    return "qc" in ws.manifest.model_fields_set


def make(walk: Walk, title: str) -> list[Node]:
    """The title's QC nodes (its shots, the deliverables made so far), when QC runs in this
    build: ``--qc``/``--no-qc``, else the manifest's ``qc:`` section."""
    qc = walk.opts.qc
    if qc is False or (qc is None and not qc_in_build(walk.ws)):
        return []
    return qc_nodes(
        walk.ws,
        {title: walk.shots[title]},
        [n.id for n in walk.made],
        walk.sel.deliverables,
        walk.opts.variant,
        images=bool(qc),
    )


def shot_qc_id(shot_id: str) -> str:
    return f"{shot_id}/qc"


def qc_nodes(
    ws: Workspace,
    title_shots: Mapping[str, list[ShotEntry]],
    node_ids: Iterable[str],
    deliverables: list[str],
    variant: str | None,
    *,
    images: bool = False,
) -> list[Node]:
    """QC nodes for every shot in ``title_shots`` and every deliverable among ``node_ids``;
    with ``images`` (``restoro qc``) also each shot's thumbnail and worst-frame crop."""
    import json

    from restoro.qc.checks import shot_check_params

    cfg = ws.manifest.qc
    # One JSON text: the key of each of hundreds of QC actions normalises one string.
    checks = json.dumps(shot_check_params(cfg), sort_keys=True, separators=(",", ":"))
    ids = set(node_ids)
    nodes: list[Node] = []
    for title, entries in title_shots.items():
        for shot, final_id, _rs in entries:
            nodes.append(_shot_node(title, shot, final_id, checks, variant))
            if images:
                nodes.append(_images_node(title, shot, final_id, variant))
        audio = sorted(i for i in ids if i.startswith(f"{title}/audio/"))
        for d in deliverables:
            kind = ws.manifest.deliverables[d].kind
            if f"{title}/{d}" not in ids or "deliverable" in cfg.skip:
                continue
            if kind in MOVIE_KINDS:
                nodes.append(_deliverable_node(ws, title, d, entries, audio, variant))
            elif kind in PACKAGE_KINDS:
                nodes.append(package_node(ws, title, d, entries, ids, deliverables, variant))
    return nodes


def _shot_node(title: str, shot: Shot, final_id: str, checks: str, variant: str | None) -> Node:
    first_id = f"{shot.id}/ingest"
    nid = shot_qc_id(shot.id)

    def make(deps: Results) -> ActionSpec:
        return ActionSpec(
            id=nid,
            stage="qc",
            version=QC_VERSION,
            params={
                "scope": "shot",
                "checks": checks,
                "frame0": shot.start,
                **fold_params(final_id, deps[final_id]),
            },
            inputs={
                "output": digest_of(deps[final_id], "frames"),
                "ingested": digest_of(deps[first_id], "frames"),
            },
            title=title,
            shot=shot.id,
            variant=variant,
            frames=shot.end - shot.start,
        )

    deps = tuple(dict.fromkeys((first_id, final_id)))
    return Node(nid, deps, make, kind="shot", title=title, shot=shot.id)


def _images_node(title: str, shot: Shot, final_id: str, variant: str | None) -> Node:
    """The shot's thumbnail (middle frame) and a crop of its worst-fidelity frame."""
    first_id, qc_id = f"{shot.id}/ingest", shot_qc_id(shot.id)
    nid = f"{shot.id}/qc-images"
    n = shot.end - shot.start

    def make(deps: Results) -> ActionSpec:
        worst = deps[qc_id].meta.get("worst_frame")
        return ActionSpec(
            id=nid,
            stage="qc-images",
            version=QC_VERSION,
            params={
                "mid": n // 2,
                "worst": (worst - shot.start) if worst is not None else 0,
                **fold_params(final_id, deps[final_id]),
            },
            inputs={
                "output": digest_of(deps[final_id], "frames"),
                "ingested": digest_of(deps[first_id], "frames"),
            },
            title=title,
            shot=shot.id,
            variant=variant,
            frames=n,
        )

    deps = tuple(dict.fromkeys((qc_id, first_id, final_id)))
    return Node(nid, deps, make, kind="shot", title=title, shot=shot.id)


def _deliverable_node(
    ws: Workspace,
    title: str,
    d: str,
    entries: list[ShotEntry],
    audio: list[str],
    variant: str | None,
) -> Node:
    spec = ws.manifest.deliverables[d]
    nid, main = deliverable_qc_id(title, d), f"{title}/{d}"
    frames = sum(s.end - s.start for s, _f, _r in entries)
    rate = entries[0][0].frame_rate if entries else ""
    tolerance = ws.manifest.qc.loudness_tolerance
    # The caption sidecars travel with the master: check the tracks they are made from.
    caps, cap_digests = ([], []) if "captions" in ws.manifest.qc.skip else caption_tracks(ws, title)
    timing: dict[str, Any] = {}
    if caps:
        timing = {"timecode": title_timing(ws, title, entries)["timecode"], "captions": caps}
        if ws.manifest.qc.fail_on_captions:
            timing["fail_on_captions"] = True

    def make(deps: Results) -> ActionSpec:
        from restoro.plan import deliverables as registry
        from restoro.qc.deliverable import DeliverableCheck

        res = deps[main]
        kind = registry.get(spec.kind)
        assert kind is not None
        tracks = [
            {k: deps[a].meta.get(k) for k in ("loudness", "target", "true_peak", "ceiling")}
            for a in audio
        ]
        params = {
            "scope": "deliverable",
            "check": [DeliverableCheck.id, DeliverableCheck.version],
            "frames": frames,
            "frame_rate": rate,
            "raster": getattr(spec, "raster", None),
            "codec": MOVIE_KINDS[spec.kind],
            "profile": _PRORES_NAMES.get(getattr(spec, "profile", ""), None),
            "audio": tracks,
            **({"loudness_tolerance": tolerance} if tolerance is not None else {}),
            **timing,
        }
        return ActionSpec(
            id=nid,
            stage="qc",
            version=QC_VERSION,
            params=params,
            inputs={
                "delivered": res.outputs[kind.primary(res)].digest,
                **({"captions": cap_digests} if caps else {}),
            },
            title=title,
            variant=variant,
            frames=frames,
        )

    return Node(nid, (main, *audio), make, kind="deliver", title=title)


def _final_frames(spec: ActionSpec, ctx: RunContext) -> Iterator[np.ndarray]:
    """The shot's final frames: decoded from its last cache point, or made from the folded
    segment's input by its filters (``fold_params``), the samples the chain would have stored."""
    src = ctx.blob(spec.inputs["output"])
    if "fold" not in spec.params:
        from restoro.media.frameio import read_frames

        return read_frames(src)
    from restoro.media.frameio import read_through
    from restoro.media.frames import FrameFormat
    from restoro.plan.chains import unfold

    fmt = FrameFormat.model_validate(spec.params["fold_format"])
    graph, out = unfold(spec.id, src, spec.params["fold"], fmt)
    return read_through(src, graph, out)


@runner("qc")
def run_qc(spec: ActionSpec, ctx: RunContext) -> RunOutput:
    if spec.params["scope"] in PACKAGE_KINDS:
        from restoro.plan.qc_package import run_package_qc

        return RunOutput(meta=run_package_qc(spec, ctx))
    if spec.params["scope"] == "deliverable":
        from restoro.qc.deliverable import movie_qc

        return RunOutput(meta=movie_qc(spec, ctx))
    import json

    from restoro.qc.shot import run_shot_qc

    meta = run_shot_qc(
        _final_frames(spec, ctx),
        ctx.blob(spec.inputs["ingested"]),
        json.loads(spec.params["checks"]),
        spec.params["frame0"],
        progress=ctx.progress,
    )
    return RunOutput(meta=meta)


@runner("qc-images")
def run_qc_images(spec: ActionSpec, ctx: RunContext) -> RunOutput:
    from restoro.qc.shot import shot_images

    files = shot_images(
        _final_frames(spec, ctx),
        ctx.blob(spec.inputs["ingested"]),
        mid=spec.params["mid"],
        worst=spec.params["worst"],
        temp=ctx.temp,
    )
    return RunOutput(files=files)


@runner("qc-compare")
def run_qc_compare(spec: ActionSpec, ctx: RunContext) -> RunOutput:
    """Two variants of one shot: PSNR and VMAF between them, and the side-by-side crop."""
    from restoro.qc.compare import compare_frames

    out = ctx.temp(".png")
    p = spec.params
    info = compare_frames(
        ctx.blob(spec.inputs["a"]),
        ctx.blob(spec.inputs["b"]),
        out,
        want=p["frame"],
        start=p["start"],
        crop=p["crop"],
    )
    return RunOutput(files={"image": out} if "crop" in info else {}, meta=info)


def _image(res: Any, name: str) -> str | None:
    return res.outputs[name].digest if res is not None and name in res.outputs else None


class Built(Protocol):
    """What ``collect`` reads of a build (a ``restoro.plan.build.Builder``)."""

    @property
    def ws(self) -> Workspace: ...
    @property
    def qc_results(self) -> Mapping[str, ActionResult]: ...
    @property
    def _resolved(self) -> Mapping[str, list[ShotEntry]]: ...


def collect(b: Built) -> tuple[list[ShotRow], list[DeliverableRow]]:
    """The rows of a build that ran (or found cached) its QC nodes."""
    # (imported here: a build without QC still asks this module for its nodes)
    from restoro.qc.collect import DeliverableRow, ShotRow
    from restoro.qc.verdict import findings

    ws = b.ws
    shots: list[ShotRow] = []
    for title, entries in b._resolved.items():
        src = ws.sources[ws.manifest.titles[title].source]
        for shot, _final, rs in entries:
            res = b.qc_results.get(f"{shot.id}/qc")
            if res is None:
                continue
            meta = res.meta
            checks = meta.get("checks", {})
            imgs = b.qc_results.get(f"{shot.id}/qc-images")
            shots.append(
                ShotRow(
                    id=shot.id,
                    title=title,
                    start=shot.start,
                    end=shot.end,
                    timecode=title_timecode(src, shot),
                    tags=list(rs.tags),
                    pipeline=rs.pipeline,
                    stages=[st.stage for st in rs.stages],
                    metrics={c: v.get("metrics", {}) for c, v in checks.items()},
                    series={c: v.get("series", {}) for c, v in checks.items()},
                    findings=findings(meta),
                    output=res.key_json["inputs"]["output"],
                    thumb=_image(imgs, "thumb"),
                    worst=_image(imgs, "worst"),
                    worst_frame=meta.get("worst_frame"),
                )
            )
    delivs = [
        DeliverableRow(
            nid.removesuffix("/qc"),
            res.meta.get("metrics", {}),
            res.meta.get("findings", []),
            kind=res.meta.get("kind", "movie"),
        )
        for nid, res in sorted(b.qc_results.items())
        if nid.endswith("/qc") and res.meta.get("scope") == "deliverable"
    ]
    return shots, delivs
