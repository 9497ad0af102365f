"""The per-deliverable QC nodes of packages (``hls``/``dash`` and ``imf``) and of caption
tracks, and what their ``qc`` actions run.

A streaming package's QC action reads every file of the package (names in its params, digests
as its ``package`` input), the title's ProRes master when the build makes one (``master``, for
VMAF) and the caption tracks the package carries (``captions``); an IMF package's reads its
documents and every track file its CPL plays. Their keys hold the check version and the
thresholds the manifest sets, like every QC action.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from restoro.engine.graph import ActionSpec
from restoro.plan.nodes import Node, Results, ShotEntry

if TYPE_CHECKING:
    from restoro.engine.actions import RunContext
    from restoro.plan.workspace import Workspace

PACKAGE_QC_VERSION = 2  # 2: A/V sync; VMAF pairs frames by order
PACKAGE_KINDS = ("hls", "dash", "imf")
_IMF_CODECS = {"2e": "jpeg2000", "prores": "prores"}


def caption_tracks(ws: Workspace, title: str) -> tuple[list[dict[str, Any]], list[str]]:
    """The title's caption tracks as QC params (label, offset) and their stored digests."""
    from restoro.plan.audio import caption_trim, store_file

    params, digests = [], []
    trim = caption_trim(ws, title)  # a trimmed title's captions are checked as cut to it
    for i, c in enumerate(ws.manifest.titles[title].captions):
        label = f"captions {i} ({c.language} {c.kind})"
        params.append({"label": label, "offset_ms": c.offset_ms, **trim})
        digests.append(store_file(ws, c.path))
    return params, digests


def title_timing(ws: Workspace, title: str, entries: list[ShotEntry]) -> dict[str, Any]:
    from restoro.plan.titles import title_timecode

    src = ws.sources[ws.manifest.titles[title].source]
    first = entries[0][0] if entries else None
    return {
        "frames": sum(s.end - s.start for s, _f, _r in entries),
        "frame_rate": (first.frame_rate if first else "") or str(src.facts.frame_rate),
        "timecode": title_timecode(src, first) if first else "00:00:00:00",
    }


def thresholds(ws: Workspace) -> dict[str, Any]:
    cfg = ws.manifest.qc
    out: dict[str, Any] = {}
    if cfg.min_vmaf is not None:
        out["min_vmaf"] = cfg.min_vmaf
    if cfg.fail_on_captions:
        out["fail_on_captions"] = True
    return out


def deliverable_qc_id(title: str, deliverable: str) -> str:
    return f"{title}/{deliverable}/qc"


def _area(raster: str) -> int:
    w, h = (int(x) for x in raster.split("x"))
    return w * h


def package_node(
    ws: Workspace,
    title: str,
    d: str,
    entries: list[ShotEntry],
    ids: set[str],
    deliverables: list[str],
    variant: str | None,
) -> Node:
    """The QC node of deliverable ``d`` (hls, dash or imf) of ``title``."""
    spec = ws.manifest.deliverables[d]
    nid, main = deliverable_qc_id(title, d), f"{title}/{d}"
    skip = set(ws.manifest.qc.skip)
    timing = title_timing(ws, title, entries)
    caps, cap_digests = caption_tracks(ws, title) if "captions" not in skip else ([], [])
    if spec.kind in ("hls", "dash") and not spec.subtitles:  # type: ignore[union-attr]
        caps, cap_digests = [], []
    # The reference for VMAF: the title's largest ProRes master in this build.
    masters = sorted(
        (m for m in deliverables
         if ws.manifest.deliverables[m].kind == "prores" and f"{title}/{m}" in ids),
        key=lambda m: (-_area(ws.manifest.deliverables[m].raster), m),  # type: ignore[union-attr]
    )  # fmt: skip
    master = masters[0] if masters and spec.kind != "imf" and "vmaf" not in skip else None
    final0 = entries[0][1] if entries else None
    base = {"scope": spec.kind, **timing, **thresholds(ws), "captions": caps}

    def make(deps: Results) -> ActionSpec:
        res = deps[main]
        params: dict[str, Any] = dict(base)
        inputs: dict[str, Any] = {"captions": cap_digests}
        if spec.kind == "imf":
            names = res.meta["names"]
            docs = sorted(names)
            params.update(
                docs=[names[k] for k in docs], cpl=names["cpl"],
                codec=_IMF_CODECS[spec.application], raster=spec.raster,  # type: ignore[union-attr]
                audio_tracks=len(res.key_json["inputs"].get("audio", [])),
            )  # fmt: skip
            inputs["docs"] = [res.outputs[k].digest for k in docs]
            for k in ("picture", "audio", "text"):
                inputs[k] = list(res.key_json["inputs"].get(k, []))
        else:
            names = sorted(res.outputs)
            params.update(
                kind=spec.kind, names=names,
                ladder=[{"id": f"v{i}", "codec": r.codec, "height": r.height,
                         "bitrate": r.bitrate,
                         "bit_depth": 10 if r.codec == "hevc" else r.bit_depth}
                        for i, r in enumerate(spec.ladder)],  # type: ignore[union-attr]
                audio=[{"id": f"a{i}", "codec": None if a.passthrough else a.codec,
                        "channels": None if a.passthrough else a.channels}
                       for i, a in enumerate(spec.audio)],  # type: ignore[union-attr]
            )  # fmt: skip
            if not spec.audio and res.key_json["inputs"].get("audio"):  # type: ignore[union-attr]
                params["audio"] = [{"id": "a0", "codec": "aac", "channels": 2}]
            inputs["package"] = [res.outputs[n].digest for n in names]
            if master is not None and final0 is not None:
                from restoro.deliver.prores import picture_size
                from restoro.media.frames import FrameFormat

                mspec = ws.manifest.deliverables[master]
                rw, rh = (int(x) for x in mspec.raster.split("x"))  # type: ignore[union-attr]
                fmt = FrameFormat.model_validate(deps[final0].meta["format"])
                w, h = picture_size(fmt, (rw, rh), mspec.fit)  # type: ignore[union-attr]
                x, y = (rw - w) // 2 // 2 * 2, (rh - h) // 2 // 2 * 2
                from restoro.qc.vmaf import subsample_for

                params["vmaf"] = {"area": [x, y, w, h], "subsample": subsample_for(base["frames"])}
                inputs["master"] = deps[f"{title}/{master}"].outputs["master"].digest
        return ActionSpec(
            id=nid,
            stage="qc",
            version=PACKAGE_QC_VERSION,
            params=params,
            inputs=inputs,
            title=title,
            variant=variant,
            frames=base["frames"],
        )

    deps = [main]
    if master is not None and final0 is not None:
        deps += [f"{title}/{master}", final0]
    return Node(nid, tuple(deps), make, kind="deliver", title=title)


def run_package_qc(spec: ActionSpec, ctx: RunContext) -> dict[str, Any]:
    """The ``qc`` action of a package: its meta (scope deliverable, metrics, findings)."""
    import tempfile

    from restoro.qc.package import check_imf, check_streaming, stage

    p = dict(spec.params)
    captions = [ctx.blob(x) for x in spec.inputs.get("captions", [])]
    with tempfile.TemporaryDirectory(prefix="restoro-qc-") as tmp:
        from pathlib import Path

        root, work = Path(tmp) / "pkg", Path(tmp) / "work"
        root.mkdir()
        work.mkdir()
        if p["scope"] == "imf":
            from restoro.deliver.imf.reader import read_track_file

            files = [(n, ctx.blob(x)) for n, x in zip(p["docs"], spec.inputs["docs"], strict=True)]
            for kind, key in (("VIDEO", "picture"), ("AUDIO", "audio"), ("TEXT", "text")):
                for x in spec.inputs.get(key, []):
                    blob = ctx.blob(x)
                    files.append((f"{kind}_{read_track_file(blob).id}.mxf", blob))
            stage(root, files)
            metrics, findings = check_imf(root, p["cpl"], p, captions)
        else:
            names = p["names"]
            stage(root, [(n, ctx.blob(x)) for n, x in zip(names, spec.inputs["package"],
                                                           strict=True)])  # fmt: skip
            master = ctx.blob(spec.inputs["master"]) if "master" in spec.inputs else None
            metrics, findings = check_streaming(root, p, master, captions, work)
    return {"scope": "deliverable", "kind": p["scope"], "metrics": metrics, "findings": findings}
