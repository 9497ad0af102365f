"""Rendering of command results (tables on a terminal, JSON with --json)."""

from __future__ import annotations

import json as _json
import sys
from collections import Counter
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from restoro.errors import UsageError

if TYPE_CHECKING:
    from restoro.media.dvd import DiscInfo
    from restoro.media.probe import SourceInfo
    from restoro.plan.build import Builder, BuildReport
    from restoro.plan.workspace import Workspace

console = Console()


def _line(obj: Any) -> None:
    sys.stdout.write(_json.dumps(obj, separators=(",", ":"), default=str) + "\n")


def show_probe(info: SourceInfo) -> None:
    v = info.video
    t = Table(title=str(info.path), show_header=False)
    t.add_row("container", f"{info.format_name}, {info.duration_s:.3f} s, {info.size} bytes")
    t.add_row("video", f"#{v.index} {v.codec} {v.width}x{v.height} {v.pix_fmt}")
    t.add_row("frames", f"{v.frame_count} at {v.frame_rate} fps")
    t.add_row("field order", v.field_order)
    t.add_row("aspect", f"SAR {v.sar}, DAR {v.dar}")
    t.add_row(
        "colour",
        f"matrix {v.color_matrix}, primaries {v.color_primaries}, "
        f"transfer {v.color_transfer}, range {v.color_range}",
    )
    t.add_row("timecode", v.timecode or "-")
    if info.cadence is not None:
        c = info.cadence
        t.add_row("cadence", f"{c.summary()}; field order from the picture: {c.field_order}")
        for seg in c.segments:
            phase = f" (phase {seg.phase})" if seg.phase is not None else ""
            t.add_row("", f"frames {seg.start}-{seg.end - 1}: {seg.kind}{phase}")
    for w in info.warnings:
        t.add_row("[yellow]warning[/yellow]", w)
    for a in info.audio:
        t.add_row(
            "audio",
            f"#{a.index} {a.codec} {a.channels} ch ({a.layout}) {a.sample_rate} Hz"
            + (f" [{a.language}]" if a.language else ""),
        )
    console.print(t)


def show_disc(disc: DiscInfo) -> None:
    t = Table(title=f"{disc.path} (DVD-Video, {len(disc.titles)} titles)", show_header=True)
    for col in ("title", "frames", "duration", "picture", "chapters", "audio", "captions"):
        t.add_column(col)
    for ti in disc.titles:
        audio = "\n".join(
            f"#{a.index} {a.language or 'und'} {a.codec} {a.layout}" for a in ti.audio
        )
        t.add_row(
            str(ti.title),
            f"{ti.frames} at {ti.frame_rate}",
            f"{ti.duration_s:.3f} s",
            f"{ti.width}x{ti.height} DAR {ti.dar} {ti.field_order}",
            f"{len(ti.chapters)}: " + ", ".join(f"{s:.3f}" for s in ti.chapters),
            audio or "-",
            ", ".join(f"CC{c}" for c in ti.captions) or "none",
        )
    console.print(t)


def show_plan(report: BuildReport, *, as_json: bool) -> None:
    if as_json:
        for r in report.records:
            _line(
                {
                    "event": "plan",
                    "id": r.id,
                    "stage": r.stage,
                    "status": r.status,
                    "reason": r.reason,
                    "key": r.key,
                }
            )
        _line({"event": "plan-summary", **_counts(report)})
        return
    t = Table("action", "stage", "status", "reason")
    for r in report.records:
        if r.status != "cached":
            t.add_row(r.id, r.stage, r.status, r.reason)
    if t.row_count:
        console.print(t)
    c = _counts(report)
    pending = " (shots not yet detected for some titles)" if not report.shots else ""
    print(f"{c['run']} to run, {c['pending']} waiting on them, {c['cached']} cached{pending}")


def _counts(report: BuildReport) -> dict[str, int]:
    c = Counter(r.status for r in report.records)
    return {"run": c["run"], "pending": c["pending"], "cached": c["cached"]}


def show_status(b: Builder, report: BuildReport, *, as_json: bool) -> None:
    from restoro.engine.lockfile import LOCK_NAME, read_lockfile

    lock = read_lockfile(b.ws.root / LOCK_NAME)
    section = (
        lock.get("deliverables", {})
        if not b.opts.variant
        else lock.get("variants", {}).get(b.opts.variant, {})
    )
    outputs = []
    for d, titles in sorted(section.items()):
        for title, entry in sorted(titles.items()):
            path = b.ws.root / entry["path"]
            ok = path.exists() and b.ws.store.state.file_digest(path) == entry["digest"]
            outputs.append(
                {
                    "deliverable": d,
                    "title": title,
                    "path": entry["path"],
                    "state": "ok" if ok else ("missing" if not path.exists() else "modified"),
                }
            )
    c = _counts(report)
    up_to_date = c["run"] == 0 and c["pending"] == 0 and all(o["state"] == "ok" for o in outputs)
    review = _review_counts(b)
    if as_json:
        _line(
            {
                "event": "status",
                "up_to_date": up_to_date,
                **c,
                "shots": report.shots,
                "review": review,
                "outputs": outputs,
            }
        )
        return
    for title, n in sorted(report.shots.items()):
        print(f"{title}: {n} shots")
        if title in review:
            counts = ", ".join(f"{v} {k}" for k, v in review[title].items())
            print(f"  review: {counts}")
    for o in outputs:
        print(f"{o['deliverable']}/{o['title']}: {o['path']} ({o['state']})")
    state = "up to date" if up_to_date else "out of date"
    print(f"{state}: {c['cached']} cached, {c['run']} to run, {c['pending']} waiting on them")


def _review_counts(b: Builder) -> dict[str, dict[str, int]]:
    """Per title with known shots: how many are unreviewed, approved, rejected, need review."""
    from restoro.review.summary import count_statuses, review_statuses

    shots = {t: [s.id for s, _f, _r in entries] for t, entries in b._resolved.items() if entries}
    if not shots:
        return {}
    statuses = review_statuses(b.ws, shots, device=b.opts.device)
    return {t: count_statuses(row) for t, row in sorted(statuses.items())}


def show_shots(ws: Workspace, title: str, *, as_json: bool, thumbnails: bool = False) -> None:
    """A title's shots as the last build recorded them (restoro.lock): id, title frames, source
    timecode in/out (out exclusive) and, with ``thumbnails``, a PNG of each shot's first frame
    (from the shot's frames in the store) under OUTPUT/shots/TITLE/."""
    from fractions import Fraction

    from restoro.engine.lockfile import LOCK_NAME, read_lockfile
    from restoro.media.timecode import frames_to_timecode
    from restoro.media.timeline import Timeline

    if title not in ws.manifest.titles:
        raise UsageError(
            f"unknown title {title!r}", hint="titles: " + ", ".join(sorted(ws.manifest.titles))
        )
    entry = read_lockfile(ws.root / LOCK_NAME).get("titles", {}).get(title)
    if entry is None:
        raise UsageError(
            f"no shots recorded for {title!r} yet",
            hint=f"run `restoro build {title}` (or `restoro plan`) first",
        )
    src = ws.preflight([title])[entry.get("source") or ws.manifest.titles[title].source]
    s_rate = Fraction(src.facts.frame_rate)
    rate = Fraction(entry.get("frame_rate") or s_rate)
    span = entry.get("span") or [0, src.facts.frame_count]
    tl = Timeline((int(span[0]), int(span[1])), s_rate, rate)

    def tc(k: int) -> str:
        return frames_to_timecode(tl.source_frame(k) + src.facts.start_frame, s_rate,
                                  src.drop_frame)  # fmt: skip

    thumbs = _shot_thumbnails(ws, title, [s["id"] for s in entry["shots"]]) if thumbnails else {}
    rows = [
        {**s, "tc_in": tc(s["start"]), "tc_out": tc(s["end"]), "thumbnail": thumbs.get(s["id"])}
        for s in entry["shots"]
    ]
    if as_json:
        for r in rows:
            _line({"event": "shot", "title": title, **r})
        return
    t = Table("shot", "first frame", "end frame", "frames", "source in", "source out")
    if thumbnails:
        t.add_column("thumbnail")
    for r in rows:
        cells = [r["id"], str(r["start"]), str(r["end"]), str(r["end"] - r["start"])]
        cells += [r["tc_in"], r["tc_out"], *([str(r["thumbnail"] or "-")] if thumbnails else [])]
        t.add_row(*cells)
    console.print(t)


def _shot_thumbnails(ws: Workspace, title: str, shot_ids: list[str]) -> dict[str, str]:
    """Write OUTPUT/shots/TITLE/<shot>.png (the shot's first frame, square pixels, 192 wide)
    from the newest ``<shot>/ingest`` result in the store; shot id → path (relative to the
    manifest's directory). Shots whose frames are not in the store get none."""
    import cv2
    import numpy as np

    from restoro.media.frameio import read_format, read_frames

    wanted = {f"{sid}/ingest": sid for sid in shot_ids}
    newest: dict[str, Any] = {}
    for res in ws.store.iter_actions():
        sid = wanted.get(res.action_id)
        if sid is not None and "frames" in res.outputs:
            if sid not in newest or res.created > newest[sid].created:
                newest[sid] = res
    out_dir = ws.output_dir / "shots" / title
    out: dict[str, str] = {}
    for sid, res in newest.items():
        digest = res.outputs["frames"].digest
        if not ws.store.verify_blob(digest):
            continue
        path = ws.store.blob_path(digest)
        fmt = read_format(path)
        first = next(iter(read_frames(path)), None)
        if first is None:
            continue
        w = 192
        h = max(2, round(w / float(fmt.dar)))
        small = cv2.resize(first, (w, h), interpolation=cv2.INTER_AREA)
        rgb8 = ((small.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
        out_dir.mkdir(parents=True, exist_ok=True)
        png = out_dir / (sid.replace("@", "_").replace(":", "-").replace(";", "-") + ".png")
        cv2.imwrite(str(png), cv2.cvtColor(rgb8, cv2.COLOR_RGB2BGR))
        out[sid] = str(png.relative_to(ws.root))
    return out


def show_explain(b: Builder, report: BuildReport, target: str, *, as_json: bool) -> None:
    from restoro.engine.graph import diff_fields

    shot, _, stage = target.partition("/")
    rows = [
        r
        for r in report.records
        if (r.shot == shot or r.id.startswith(shot + "/")) and (not stage or r.id == target)
    ]
    if not rows:
        raise UsageError(
            f"no action matches {target!r}",
            hint="use a shot id from `restoro shots TITLE`, optionally /STAGE",
        )
    for r in rows:
        diff = diff_fields(r.old_key_json, r.key_json) if r.old_key_json and r.key_json else []
        if as_json:
            _line(
                {
                    "event": "explain",
                    "id": r.id,
                    "stage": r.stage,
                    "status": r.status,
                    "reason": r.reason,
                    "key": r.key,
                    "key_json": r.key_json,
                    "changes": diff,
                }
            )
            continue
        head = "cached" if r.status == "cached" else f"{r.status} ({r.reason})"
        console.print(f"[bold]{r.id}[/bold]: {head}")
        if r.key:
            print(f"  key {r.key}")
        for line in diff:
            print(f"  changed {line}")
        if r.key_json and not diff:
            for k in ("stage", "version", "params", "inputs", "tools"):
                print(f"  {k}: {_json.dumps(r.key_json.get(k), sort_keys=True)[:200]}")


def show_cache_ls(ws: Workspace, *, as_json: bool) -> None:
    if not ws.store_exists:
        print("the store is empty")
        return
    rows = Counter()
    size = Counter()
    for r in ws.store.iter_actions():
        stage = r.key_json.get("stage", "?")
        rows[stage] += 1
        size[stage] += sum(o.size for o in r.outputs.values())
    usage = ws.store.usage()
    if as_json:
        _line(
            {
                "event": "cache",
                "stages": {k: {"entries": rows[k], "bytes": size[k]} for k in rows},
                "usage": usage,
            }
        )
        return
    t = Table("stage", "entries", "output bytes")
    for k in sorted(rows):
        t.add_row(k, str(rows[k]), f"{size[k]:,}")
    console.print(t)
    print(_json.dumps(usage))


def show_cache_verify(ws: Workspace, *, as_json: bool) -> bool:
    if not ws.store_exists:
        print("the store is empty")
        return True
    rep = ws.store.verify(full=True)
    problems = list(getattr(rep, "problems", []))
    if as_json:
        _line({"event": "verify", "ok": not problems, "problems": problems, **_public(rep)})
    else:
        for p in problems:
            print(f"quarantined: {p}")
        legacy = rep.actions_legacy
        if legacy:
            print(
                f"{legacy} entries predate entry checksums (schema 1): their key fields and "
                "outputs check out, their meta and output digests cannot be checked "
                "(`restoro build --force` rewrites them)"
            )
        print(
            "store verified: ok"
            if not problems
            else f"{len(problems)} problems (quarantined; the next build rebuilds them)"
        )
    return not problems


def _public(obj: Any) -> dict[str, Any]:
    from dataclasses import asdict, is_dataclass

    d = asdict(obj) if is_dataclass(obj) else dict(getattr(obj, "__dict__", {}))
    return {k: v for k, v in d.items() if k != "problems"}


def show_cache_gc(ws: Workspace, *, keep_variants: bool, as_json: bool) -> None:
    from restoro.plan.build import Builder, BuildOptions

    if not ws.store_exists:
        print("the store is empty")
        return
    keep: set[str] = set()
    variants: list[str | None] = [None]
    if keep_variants:
        variants += sorted(ws.manifest.variants)
    for v in variants:
        b = Builder(ws, BuildOptions(variant=v))
        report = b.plan()
        used = {r.key for r in report.records if r.status == "cached"}
        keep |= used
        pack = b.qc_pack  # the QC pack of this variant, while every result in it is in use
        if pack is not None and pack.key and pack.entries.keys() <= used:
            keep.add(pack.key)
    keep |= ws.made_keys  # disc imports and embedded captions the plans read
    rep = ws.store.gc(keep)
    if as_json:
        _line({"event": "gc", **_public(rep)})
    else:
        print("gc: " + ", ".join(f"{k} {v}" for k, v in _public(rep).items()))
