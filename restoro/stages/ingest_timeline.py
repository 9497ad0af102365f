"""Title-rate ingest: per-segment cadence handling, then the title's frames on its timeline.

``ingest_title`` makes title frames [k0, k1) (see ``restoro.media.timeline``):

1. the source is cut into segments — the cadence map's (``auto``) or one segment (a fixed mode);
2. each segment that holds wanted frames is processed on its own: ``telecine`` by field matching
   (``fieldmatch``), deinterlacing of the frames no field matches (orphans, ``bwdif`` on frames
   flagged combed) and decimation of the repeated frame in every five (``decimate``);
   ``interlaced`` by ``bwdif``; ``progressive`` as is. Of a telecine segment, the whole
   5-frame cycles (counted from the segment's start, as decimation counts them) around the
   wanted frames are processed, ``IVTC_MARGIN`` cycles more each side, so a shot's own ingest
   and an ingest piece give the same frames as the whole title's;
3. every title frame takes the segment frame nearest in time (``decimate``), a blend of the
   two around it (``blend``) or their motion-compensated interpolation (``mci``), which
   converts video-rate segments to a film-rate title (and film to video rate by repetition)
   while the title keeps the source's duration.
"""

from __future__ import annotations

from fractions import Fraction
from math import floor
from typing import TYPE_CHECKING, Any

import numpy as np

from restoro.errors import StageError

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence
    from pathlib import Path

    from restoro.media.cadence import Segment
    from restoro.media.frames import FrameFormat
    from restoro.media.probe import SourceInfo
    from restoro.media.shots import FrameScorer
    from restoro.media.timeline import Timeline
    from restoro.stages.ingest import IngestParams

MODE_OF_KIND = {"telecine": "ivtc", "interlaced": "deinterlace", "progressive": "progressive"}


def plan_segments(
    params: IngestParams,
    timeline: Timeline,
    cadence: Sequence[Segment] | None,
    want: tuple[int, int],
) -> list[tuple[int, int, str]]:
    """(start, end, mode) in source frames of the segments title frames ``want`` come from."""
    a, b = timeline.span
    if params.mode == "auto" and cadence:
        segs = [(max(s.start, a), min(s.end, b), MODE_OF_KIND[s.kind]) for s in cadence]
        segs = [s for s in segs if s[0] < s[1]]
    else:
        lo = timeline.source_frame(want[0])
        hi = max(timeline.source_frame(want[1]), timeline.source_frame(want[1] - 1) + 1)
        segs = [(lo, min(b, hi), params.mode)]
    lo_src = timeline.source_frame(want[0])
    hi_src = timeline.source_frame(want[1] - 1) + 1
    return [s for s in segs if s[0] < hi_src and s[1] > lo_src]


def _ivtc_chain(order: str) -> list[str]:
    parity = order if order in ("tff", "bff") else "tff"
    return [
        f"fieldmatch=order={parity}:combmatch=full",
        f"bwdif=mode=send_frame:parity={parity}:deint=interlaced",
        "decimate=cycle=5",
    ]


IVTC_MARGIN = 2
"""Cycles of five source frames processed before and after the wanted frames of a telecine
segment (and dropped): field matching looks one frame either side, decimation at its cycle
and the frame before it."""

GROUP = 16
"""Segments made by one ffmpeg run: the title is decoded once per group, not once per segment
(decoding every segment from frame 0 grew with the square of the segment count)."""


def _branch(
    info: SourceInfo,
    params: IngestParams,
    seg: tuple[int, int, str],
    want_src: tuple[int, int],
    order: str,
) -> tuple[list[str], Fraction, Fraction, int]:
    """One segment's filters on the decoded source: (filters, rate, time of its frame 0 in
    source frames, frames expected or -1 when decimation decides)."""
    from restoro.stages.ingest import _deinterlace

    v = info.video
    s_rate = Fraction(v.frame_rate)
    start, end, mode = seg
    if mode == "ivtc":
        # Whole 5-frame cycles of the segment (counted from its start, as decimation counts
        # them) around the wanted range, with ``IVTC_MARGIN`` cycles more each side: field
        # matching and decimation decide from a frame's neighbours and its own cycle, so these
        # cycles come out as from the whole segment, and a piece of a long film segment does
        # not process all of it.
        c0 = max(0, (want_src[0] - start) // 5 - IVTC_MARGIN)
        c1 = -(-(want_src[1] - start) // 5) + IVTC_MARGIN
        lo, hi = start + 5 * c0, min(end, start + 5 * c1)
        pre = [f"trim=start_frame={lo}:end_frame={hi}", "setpts=PTS-STARTPTS"]
        return [*pre, *_ivtc_chain(order)], s_rate * Fraction(4, 5), Fraction(lo), -1
    # Frame-by-frame modes: the wanted range (plus a frame each side for blending), the same
    # frames whatever range is asked for. A deinterlacer sees one frame either side of the
    # frame it makes (bwdif and yadif), so the range is cut with one frame of margin, which
    # gives the frames of a whole-stream deinterlace.
    lo, hi = max(start, want_src[0] - 1), min(end, want_src[1] + 1)
    if hi > v.frame_count:
        raise StageError(f"frame range [{lo}, {hi}) is past the end ({v.frame_count} frames)")
    deint = _deinterlace(params.model_copy(update={"mode": mode}), order)
    per = 2 if deint is not None and params.rate == "field" else 1
    if deint is None:
        filters = [f"trim=start_frame={lo}:end_frame={hi}", "setpts=PTS-STARTPTS"]
    else:
        a0, b0 = max(0, lo - 1), min(v.frame_count, hi + 1)
        filters = [
            f"trim=start_frame={a0}:end_frame={b0}", "setpts=PTS-STARTPTS", deint,
            f"trim=start_frame={(lo - a0) * per}:end_frame={(hi - a0) * per}",
            "setpts=PTS-STARTPTS",
        ]  # fmt: skip
    return filters, s_rate * per, Fraction(lo), (hi - lo) * per


def _process_group(
    source: Path,
    info: SourceInfo,
    params: IngestParams,
    branches: list[list[str]],
    fmt: FrameFormat,
    crop: tuple[int, int, int, int],
    outs: list[Path],
) -> None:
    """Write each branch's frames to its intermediate, decoding the source once."""
    from restoro.media.ffmpeg import run_ffmpeg
    from restoro.media.frameio import output_args
    from restoro.stages.ingest import convert_to_working, to_working

    if params.chroma == "guided":  # a numpy pass between two ffmpeg runs, per segment
        for filters, out in zip(branches, outs, strict=True):
            convert_to_working(source, info, params, filters, fmt, crop, out)
        return
    v = info.video
    n = len(branches)
    labels = "".join(f"[in{i}]" for i in range(n))
    graph = [f"[0:{v.index}]split={n}{labels}"]
    native = _native(info)
    # A source in a native layout keeps it in the temporary segments (a quarter of the samples
    # of 16-bit RGB for 8-bit 4:2:0): they are converted to working frames as they are read
    # back (``read_segment``), by the same zscale on the same samples, so the bytes are the same.
    tail = [f"format={native}"] if native else to_working(fmt, crop)
    graph += [
        f"[in{i}]" + ",".join([*filters, *tail]) + f"[out{i}]" for i, filters in enumerate(branches)
    ]
    args = ["-i", str(source), "-filter_threads", "1", "-filter_complex", ";".join(graph)]
    for i, out in enumerate(outs):
        out.parent.mkdir(parents=True, exist_ok=True)
        args += ["-map", f"[out{i}]", "-fps_mode", "passthrough"]
        if native:
            args += ["-c:v", "ffvhuff", "-threads", "1", "-f", "matroska", str(out)]
        else:
            args += output_args(fmt, out)
    run_ffmpeg(args)


NATIVE_LAYOUTS = ("yuv420p", "yuv422p", "yuv444p")
"""8-bit planar Y'CbCr layouts every ingest filter (fieldmatch, yadif, bwdif, decimate, trim)
passes through as they are, which the temporary segments keep."""


def _native(info: SourceInfo) -> str | None:
    pix = info.video.pix_fmt
    return pix if pix in NATIVE_LAYOUTS else None


def read_segment(
    tmp: Path, info: SourceInfo, params: IngestParams, fmt: FrameFormat, crop: tuple[int, ...]
) -> Iterator[np.ndarray]:
    """A temporary segment's frames as working frames: RGB uint16 (H, W, 3)."""
    from restoro.media.frameio import read_frames, read_through
    from restoro.stages.ingest import to_working

    if params.chroma == "guided" or not _native(info):
        return read_frames(tmp)
    left, top, _right, _bottom = crop
    return read_through(tmp, ",".join(to_working(fmt, (left, top, 0, 0))), fmt)


def ingest_title(
    source: Path,
    info: SourceInfo,
    params: IngestParams,
    *,
    timeline: Timeline,
    cadence: Sequence[Segment] | None,
    want: tuple[int, int] | None = None,
    crop: tuple[int, int, int, int] = (0, 0, 0, 0),
    color: str = "auto",
    field_order: str = "auto",
    out: Path,
    work: Path,
    scorer: FrameScorer | None = None,
) -> tuple[FrameFormat, int]:
    """Write title frames ``want`` (default: all) at the title's rate to ``out``; ``scorer``
    scores each frame as it is written (a title's ingest piece: its shot scores)."""
    from restoro.media.frameio import FrameWriter, count_frames
    from restoro.media.frames import FrameFormat
    from restoro.stages.ingest import working_colour

    v = info.video
    k0, k1 = want if want is not None else (0, timeline.frames)
    if not 0 <= k0 < k1 <= timeline.frames:
        raise StageError(f"title frames [{k0}, {k1}) outside the title (0 to {timeline.frames})")
    left, top, right, bottom = crop
    width, height = v.width - left - right, v.height - top - bottom
    if min(crop) < 0 or width < 16 or height < 16:
        raise StageError(f"crop {list(crop)} does not fit a {v.width}x{v.height} picture")
    order = v.field_order if field_order == "auto" else field_order
    rate = timeline.rate
    fmt = FrameFormat(
        width=width,
        height=height,
        frame_rate=f"{rate.numerator}/{rate.denominator}",
        sar=v.sar,
        colour=working_colour(info, color, params),
    )
    want_src = (timeline.source_frame(k0), timeline.source_frame(k1 - 1) + 1)
    segs = plan_segments(params, timeline, cadence, (k0, k1))
    work.mkdir(parents=True, exist_ok=True)
    convert = params.convert
    # Which title frames each segment gives: a segment whose frames are all taken before it
    # starts (a rate change) gives none; the last one takes the rest.
    jobs: list[tuple[int, tuple[int, int, str], list[int]]] = []
    k = k0
    for i, seg in enumerate(segs):
        last = i == len(segs) - 1
        ks = [j for j in range(k, k1) if last or timeline.source_frame(j) < seg[1]]
        if ks:
            jobs.append((i, seg, ks))
            k = ks[-1] + 1
    with FrameWriter(out, fmt) as writer:
        for g in range(0, len(jobs), GROUP):
            group = jobs[g : g + GROUP]
            plans = [_branch(info, params, seg, want_src, order) for _, seg, _ in group]
            tmps = [work / f"seg{i}.mkv" for i, _, _ in group]
            _process_group(source, info, params, [p[0] for p in plans], fmt, crop, tmps)
            for (_, seg, ks), (_, seg_rate, t0, expect), tmp in zip(
                group, plans, tmps, strict=True
            ):
                n = count_frames(tmp)
                if n == 0 or (expect >= 0 and n != expect):
                    raise StageError(
                        f"segment [{seg[0]}, {seg[1]}) of {source} gave {n} frames"
                        + (f", expected {expect}" if expect >= 0 else ""),
                        hint="the source may be damaged; run `restoro probe` on it",
                    )
                frames = read_segment(tmp, info, params, fmt, crop)
                for frame in _select(frames, n, seg_rate, t0, timeline, ks, convert):
                    writer.write(frame)
                    if scorer is not None:
                        scorer.add(frame)
                tmp.unlink()
        count = writer.count
    if count != k1 - k0:
        raise StageError(f"ingest of {source} gave {count} frames, expected {k1 - k0}")
    return fmt, count


def _select(
    frames: Iterator[np.ndarray],
    n: int,
    seg_rate: Fraction,
    t0: Fraction,
    timeline: Timeline,
    ks: list[int],
    convert: str,
) -> Iterator[np.ndarray]:
    """Title frames ``ks`` from a segment's frames (``n`` of them at ``seg_rate``, frame 0 at
    source frame ``t0``): nearest in time (``decimate``), or made from the two around it:
    mixed by time (``blend``) or motion-compensated (``mci``)."""
    from restoro.stages.ingest_mci import mc_interpolate

    s_rate = timeline.source_rate
    buf: dict[int, np.ndarray] = {}
    it = enumerate(frames)
    have = -1

    def get(j: int) -> np.ndarray:
        nonlocal have
        j = max(0, min(n - 1, j))
        while have < j:
            have, f = next(it)
            buf[have] = f
            for old in [x for x in buf if x < have - 1]:
                del buf[old]
        return buf[j]

    for k in ks:
        # position of title frame k in segment frames
        t = Fraction(timeline.span[0]) / s_rate + timeline.time(k)
        x = (t - t0 / s_rate) * seg_rate
        if x == int(x) or convert == "decimate":
            yield get(floor(x + Fraction(1, 2)))
            continue
        j = floor(x)
        w = float(x - j)
        if convert == "mci":
            yield mc_interpolate(get(j), get(j + 1), w)
            continue
        a, b = get(j).astype(np.float32), get(j + 1).astype(np.float32)
        yield np.clip(np.rint(a * (1 - w) + b * w), 0, 65535).astype(np.uint16)


def decide(
    source: Path, info: SourceInfo, p: Mapping[str, Any]
) -> tuple[dict[str, Any], Timeline, list[Segment] | None, str]:
    """What an ``ingest`` action with params ``p`` decides before it makes a frame: (meta so
    far — cadence map and warnings —, the title's timeline, the cadence segments, the field
    order). Runs the cadence analysis when the mode needs it and ``p`` brings no cadence."""
    from restoro.media.cadence import Segment, analyse
    from restoro.media.timeline import Timeline, choose_rate
    from restoro.stages.ingest import IngestParams

    params = IngestParams.model_validate(p["ingest"])
    v = info.video
    s_rate = Fraction(v.frame_rate)
    span = (int(p["span"][0]), int(p["span"][1]))
    declared = p["field_order"] if p["field_order"] != "auto" else v.field_order
    meta: dict[str, Any] = {"warnings": []}
    cadence: list[Segment] | None = None
    if p.get("cadence") is not None:
        cadence = [Segment.model_validate(s) for s in p["cadence"]]
    field_order = p["field_order"]
    if params.mode in ("auto", "ivtc") and cadence is None:
        lo, hi = span
        if p.get("timeline") and p.get("want"):
            tl0 = Timeline.from_json(p["timeline"])
            lo = max(span[0], tl0.source_frame(p["want"][0]) - 10)
            hi = min(span[1], tl0.source_frame(p["want"][1]) + 10)
        cmap = analyse(source, v.index, width=v.width, height=v.height, start=lo, end=hi,
                       declared=declared)  # fmt: skip
        meta["cadence"] = cmap.model_dump(mode="json")
        meta["warnings"] += cmap.warnings
        cadence = cmap.segments
        if field_order == "auto" and cmap.field_order != "unknown":
            field_order = cmap.field_order  # the evidence wins over the stream's flag
    if p.get("timeline"):
        timeline = Timeline.from_json(p["timeline"])
    else:
        share = sum(s.end - s.start for s in cadence if s.kind == "telecine") / max(
            1, span[1] - span[0]
        ) if cadence else None  # fmt: skip
        rate = choose_rate(s_rate, share, p.get("frame_rate"), params.mode)
        if params.mode == "deinterlace" and params.rate == "field" and not p.get("frame_rate"):
            rate = s_rate * 2
        timeline = Timeline(span=span, source_rate=s_rate, rate=rate)
    return meta, timeline, cadence, field_order


def working_format(info: SourceInfo, p: Mapping[str, Any], timeline: Timeline) -> FrameFormat:
    """The working frames' format an ``ingest`` action with params ``p`` writes: the cropped
    picture at the title's rate, in the working colour (what ``ingest`` and ``ingest_title``
    give, known before any frame is made)."""
    from restoro.media.frames import FrameFormat
    from restoro.stages.ingest import IngestParams, working_colour

    v = info.video
    left, top, right, bottom = p["crop"]
    width, height = v.width - left - right, v.height - top - bottom
    if min(p["crop"]) < 0 or width < 16 or height < 16:
        raise StageError(f"crop {list(p['crop'])} does not fit a {v.width}x{v.height} picture")
    rate = timeline.rate
    colour = working_colour(info, p["color"], IngestParams.model_validate(p["ingest"]))
    return FrameFormat(
        width=width,
        height=height,
        frame_rate=f"{rate.numerator}/{rate.denominator}",
        sar=v.sar,
        colour=colour,
    )


def analyse_title(source: Path, info: SourceInfo, p: Mapping[str, Any]) -> dict[str, Any]:
    """The ``analysis`` action of a title: its cadence (when the mode needs it), timeline and
    working format, without making a frame. ``p`` is a title ingest's params; the meta
    (cadence, timeline, format, frames, field_order, warnings) is what the title's ingest
    pieces are planned from (``restoro.plan.pieces``)."""
    meta, timeline, _cadence, field_order = decide(source, info, p)
    fmt = working_format(info, p, timeline)
    meta.update(
        format=fmt.model_dump(mode="json"),
        frames=timeline.frames,
        timeline=timeline.to_json(),
        field_order=field_order,
    )
    return meta


def run_ingest_action(
    source: Path,
    info: SourceInfo,
    p: Mapping[str, Any],
    out: Path,
    work: Path,
    scores: Path | None = None,
) -> dict[str, Any]:
    """The ``ingest`` action: ``p`` is its params (see ``restoro.plan.titles.ingest_params``);
    returns its meta (format, frames, timeline, cadence, warnings). A title's ingest piece
    (``p["scores"]``: the shot detector's metric) also writes the shot scores of its frames to
    ``scores`` (little-endian float64, ``restoro.media.shots.FrameScorer``): scored as they are
    written where the frames pass through restoro, else decoded back from ``out``."""
    from restoro.media.shots import FrameScorer, frame_scores
    from restoro.stages.ingest import IngestParams, ingest

    params = IngestParams.model_validate(p["ingest"])
    crop = tuple(p["crop"])
    meta, timeline, cadence, field_order = decide(source, info, p)
    want = tuple(p["want"]) if p.get("want") else (0, timeline.frames)
    field_rate = params.mode in ("deinterlace", "auto") and params.rate == "field"
    metric = p.get("scores")
    if metric is not None and scores is None:
        raise StageError("an ingest piece with shot scores needs a file to write them to")
    if params.mode in ("progressive", "deinterlace") and timeline.identity and not field_rate:
        # One frame per source frame: the plain ingest, no re-timing pass (one ffmpeg graph
        # from the source to the intermediate: its scores are decoded back from it).
        a = timeline.source_frame(want[0])
        fmt, n = ingest(source, info, params, start=a, end=a + want[1] - want[0], crop=crop,  # type: ignore[arg-type]
                        color=p["color"], field_order=field_order, out=out)  # fmt: skip
        values = frame_scores(out, metric=metric) if metric is not None else None
    else:
        scorer = FrameScorer(metric, timeline.rate) if metric is not None else None
        fmt, n = ingest_title(
            source, info, params, timeline=timeline, cadence=cadence, want=want,  # type: ignore[arg-type]
            crop=crop, color=p["color"], field_order=field_order, out=out, work=work,
            scorer=scorer,
        )  # fmt: skip
        values = scorer.array() if scorer is not None else None
    if scores is not None and values is not None:
        if len(values) != n:
            raise StageError(f"shot scores of {len(values)} frames for an ingest of {n}")
        scores.write_bytes(values.astype("<f8").tobytes())
    meta.update(format=fmt.model_dump(mode="json"), frames=n, timeline=timeline.to_json())
    return meta
