"""Cadence analysis: which parts of an SD source are progressive, 3:2-telecined film or true
interlaced video, which field comes first, and where the pulldown phase breaks.

Evidence per frame (luma, mean squared errors; see ``EVIDENCE``): five weaves of
opposite-parity fields — within the frame, and across frames one and three fields apart in
interlaced time — and the two same-parity differences with the previous frame (a repeated field
shows as coding noise only). Each kind of picture predicts a pattern of these, normalised to the
local motion: progressive frames weave within themselves; interlaced fields weave best with the
field one field-time away, whichever frame holds it; 3:2 pulldown gives five patterns in a
fixed order (two combed frames, one repeated field in each parity). Comparing the four weaves
across frames among themselves cancels the coding noise a frame's own fields share, which is
what lets slow interlaced motion be seen at all. ffmpeg's ``idet`` runs over the same frames;
its per-frame verdicts are evidence too (a repeated top or bottom field; combed or
progressive).

A Viterbi pass finds the cheapest sequence of states — progressive, interlaced, or telecine in
one of five phases — for each field order: each frame costs its distance from the state's
pattern (weighted by how much motion it has: a still frame or a cut says nothing), a change of
kind costs ``SWITCH`` and a cadence break ``BREAK``. The field order is the one whose path costs
less; the path's runs are the segments (a boundary inside a run of still frames sits in its
middle). ``benchmarks/bench_cadence.py`` measures the map against clips with known truth.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel

from restoro.errors import MediaError

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    import numpy as np

Kind = Literal["progressive", "telecine", "interlaced"]
CADENCE_VERSION = 2
"""Version of the analysis (2: the per-state model with idet's verdicts; 1: thresholds)."""
ANALYSIS_WIDTH = 360


class Segment(BaseModel):
    """Source frames [start, end) of one kind; ``phase``: index mod 5 of the first combed
    frame of each 3:2 cycle (telecine only)."""

    start: int
    end: int
    kind: Kind
    phase: int | None = None


class CadenceMap(BaseModel):
    """The cadence of a source (or of a span of it)."""

    start: int
    end: int
    segments: list[Segment]
    field_order: Literal["tff", "bff", "unknown"]
    """Field order from the evidence (votes of frames with motion)."""
    votes: dict[str, int]
    """``tff``/``bff`` votes and per-frame class counts (progressive, telecine, interlaced,
    static)."""
    idet: dict[str, int]
    """ffmpeg idet's totals (repeated fields and single-frame detection)."""
    warnings: list[str] = []
    version: int = CADENCE_VERSION
    """The analysis that made the map (``CADENCE_VERSION``)."""

    @property
    def mixed(self) -> bool:
        return len({s.kind for s in self.segments}) > 1

    def film_share(self) -> float:
        total = sum(s.end - s.start for s in self.segments) or 1
        return sum(s.end - s.start for s in self.segments if s.kind == "telecine") / total

    def summary(self) -> str:
        kinds = sorted({s.kind for s in self.segments})
        return "mixed (" + ", ".join(kinds) + ")" if len(kinds) > 1 else kinds[0]


def _luma(
    path: Path, stream: int, span: tuple[int, int], size: tuple[int, int], log: Path
) -> Iterator[np.ndarray]:
    """Luma planes of frames [start, end) (reduced horizontally only, so fields stay intact);
    ffmpeg's idet writes its per-frame verdicts to ``log`` on the way."""
    import numpy as np

    w, h = min(size[0], ANALYSIS_WIDTH), size[1]
    chain = (
        f"trim=start_frame={span[0]}:end_frame={span[1]},scale=w={w}:h={h}:flags=area,"
        f"format=gray,idet,metadata=mode=print:file={log}"
    )
    args = ["-i", str(path), "-map", f"0:{stream}", "-an", "-sn", "-dn",
            "-filter_threads", "1", "-vf", chain, "-f", "rawvideo", "-"]  # fmt: skip
    for buf in _read_raw(args, w * h):
        yield np.frombuffer(buf, np.uint8).reshape(h, w).astype(np.float32)


def _read_raw(args: list[str], size: int) -> Iterator[bytes]:
    """Run ffmpeg writing raw frames to stdout; yield ``size``-byte frames; fail loudly."""
    import subprocess
    import threading

    from restoro.media.ffmpeg import full_argv

    argv = full_argv(args)
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    err: list[bytes] = []
    assert proc.stdout is not None and proc.stderr is not None
    reader = threading.Thread(target=lambda: err.append(proc.stderr.read()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        while len(buf := proc.stdout.read(size)) == size:
            yield buf
    finally:
        proc.stdout.close()
        code = proc.wait()
        reader.join()
        proc.stderr.close()
    if code != 0:
        tail = b"".join(err).decode(errors="replace").strip().splitlines()[-3:]
        raise MediaError(
            "cadence analysis failed: " + " / ".join(tail),
            hint="the source may be damaged; run `restoro probe` on it",
        )


def _weave_mse(top: np.ndarray, bottom: np.ndarray) -> float:
    """How badly two fields of opposite parity weave (mean squared error of each field's lines
    against the other's interpolated between them): the spatial error of the picture plus the
    motion between the fields' moments, which add."""
    import numpy as np

    n = min(len(top), len(bottom)) - 1
    e1 = bottom[:n] - (top[:n] + top[1 : n + 1]) / 2  # bottom line k lies between top k, k+1
    e2 = top[1 : n + 1] - (bottom[:n] + bottom[1 : n + 1]) / 2  # top k+1: bottom k, k+1
    return float((np.mean(e1 * e1) + np.mean(e2 * e2)) / 2)


def _mse(a: np.ndarray, b: np.ndarray) -> float:
    import numpy as np

    d = a - b
    return float(np.mean(d * d))


EVIDENCE = ("a", "p", "n", "q", "r", "sf", "ss")
"""One frame's measurements (mean squared errors, 8-bit luma), with F its first field and S its
second in the order assumed. Weaves of opposite-parity fields: ``a`` F(i)+S(i), ``p``
F(i)+S(i-1), ``n`` S(i)+F(i+1), ``q`` F(i)+S(i+1), ``r`` S(i)+F(i-1). Same parity: ``sf`` F(i)
against F(i-1), ``ss`` S(i) against S(i-1) (no spatial error: a repeated field gives only the
coding noise).

In true interlaced video ``p`` and ``n`` join fields one field apart, ``q`` and ``r`` three, and
``a`` one; in progressive video ``a`` joins one moment and the other four one frame apart. The
four across frames carry the same coding noise, which ``a`` (coded with its frame) does not:
comparing them among themselves is what tells slow interlaced motion from progressive."""
# The same measurements with the bottom field first, from the top-first ones: F and S swap.
_BFF = [EVIDENCE.index(k) for k in ("a", "r", "q", "n", "p", "ss", "sf")]


def frame_evidence(frames: Iterator[np.ndarray]) -> dict[str, np.ndarray]:
    """Per frame evidence (rows of ``EVIDENCE``) for each field order, ``tff`` and ``bff``, in
    one pass holding three frames (a frame at either end borrows its one neighbour for the
    missing one)."""
    import numpy as np

    rows: list[list[float]] = []
    # Weaves by (frame of the top field, frame of the bottom field): a frame's ``n`` is the
    # next frame's ``p`` and its ``r`` the previous frame's ``q``, so each is computed once.
    weaves: dict[tuple[int, int], float] = {}
    it = iter(frames)
    prev, cur = None, next(it, None)
    nxt = next(it, None) if cur is not None else None
    i = 0
    while cur is not None:
        before = prev if prev is not None else (nxt if nxt is not None else cur)
        after = nxt if nxt is not None else before
        b_i = i - 1 if prev is not None else (i + 1 if nxt is not None else i)
        a_i = i + 1 if nxt is not None else b_i
        pics = {i: cur, b_i: before, a_i: after}

        def weave(t: int, b: int, pics: dict[int, np.ndarray] = pics) -> float:
            if (t, b) not in weaves:
                weaves[(t, b)] = _weave_mse(pics[t][0::2], pics[b][1::2])
            return weaves[(t, b)]

        top, bottom = cur[0::2], cur[1::2]
        rows.append(
            [
                weave(i, i),
                weave(i, b_i),
                weave(a_i, i),
                weave(i, a_i),
                weave(b_i, i),
                _mse(top, before[0::2]),
                _mse(bottom, before[1::2]),
            ]
        )
        for key in [k for k in weaves if min(k) < i]:
            del weaves[key]
        prev, cur = cur, nxt
        nxt = next(it, None) if nxt is not None else None
        i += 1
    tff = np.array(rows, dtype=np.float64).reshape(-1, len(EVIDENCE))
    return {"tff": tff, "bff": tff[:, _BFF]}


# -- the model: states, what each predicts, and the best path through them ------------------------

STATES = ("progressive", "interlaced", "t0", "t1", "t2", "t3", "t4")
"""Progressive, interlaced, and telecine with the first combed frame of each 3:2 cycle at
index ≡ k (mod 5)."""
# What the normalised evidence (u, p, n, q, r, sf, ss) looks like — u = a against the lowest
# weave across frames (-1 lower by a frame's motion, 0 alike, 1 higher), p..r above the lowest
# of them, sf/ss the same-parity motion (0: a repeated field) — per 3:2 position (0 = the first
# combed frame, BC of AA BB BC CD DD), for progressive and for interlaced pictures.
_PULLDOWN = (
    (1, 0, 0, 1, 1, 0, 1),  # B C: F repeats the previous F and belongs with the previous S
    (1, 0, 0, 1, 1, 1, 1),  # C D: F belongs with the previous S, S with the next F
    (0, 0, 1, 1, 1, 1, 0),  # D D: S repeats the previous S
    (-1, 0, 0, 0, 0, 1, 1),  # E E: a whole film frame
    (0, 1, 0, 1, 1, 1, 1),  # F F: S belongs with the next F as well
)
_PROGRESSIVE = (-1, 0, 0, 0, 0, 1, 1)
_INTERLACED = (0, 0, 0, 0.5, 0.5, 1, 1)  # fields 1 field apart weave better than 3 apart
SWITCH = 6.0
"""Cost of a change of kind (frames of contrary evidence it takes to start a new segment)."""
BREAK = 4.0
"""Cost of a cadence break (a telecine phase change: an edit after the pulldown)."""
NOISE = 2.0
"""Coding noise floor of a field comparison (MSE, 8-bit): motion well under it is no evidence."""
CLEAR = 0.5
"""How much cheaper a frame's best kind must be than the next to count it (else ``static``)."""
ORDER_MARGIN = 4.0
"""How much cheaper the best path in one field order must be to name it."""
IDET_REPEATED = 0.35
"""Weight of ffmpeg idet's repeated-field verdict against one frame of restoro's evidence."""
IDET_SINGLE = 0.6
"""Weight of idet's single-frame verdict (combed in the field order, or progressive) between
progressive and interlaced: its three-line test sees slow interlaced motion that coding noise
hides from the weaves (it does not tell telecine from interlaced: pulldown combs too)."""


def _normalised(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per frame (u, p, n, q, r, sf, ss) on the scale of the local motion, and the weight of
    the frame's evidence (0 for a still picture, near 1 with clear motion)."""
    import numpy as np

    cross = raw[:, 1:5]
    low = cross.min(axis=1, keepdims=True)
    same = np.maximum(raw[:, 5:] - NOISE, 0.0)
    motion = same.max(axis=1)
    # the motion of the neighbourhood (a repeated field or a still frame is not the scale)
    k = 3
    padded = np.pad(motion, k, mode="edge")
    local = np.array([np.median(padded[i : i + 2 * k + 1]) for i in range(len(motion))])
    # A cut: the frame after it compares fields of two scenes (and the one before it, with its
    # next frame); neither says anything about the cadence.
    cut = motion > 4 * local + 8 * NOISE
    # A frozen or duplicated frame (both fields repeat the previous frame's; pulldown repeats
    # one at a time) is no evidence either.
    frozen = motion < 0.15 * local
    local = np.maximum(local, motion)
    scale = (local + NOISE)[:, None]
    u = np.clip((raw[:, :1] - low) / scale, -1.0, 1.0)
    feats = np.concatenate(
        [u, np.clip((cross - low) / scale, 0.0, 1.0), np.clip(same / scale, 0.0, 1.0)], axis=1
    )
    weight = local / (local + 4 * NOISE)
    weight[cut | frozen] = 0.0
    weight[np.flatnonzero(cut[1:])] = 0.0
    return feats, weight


def _costs(
    feats: np.ndarray, weight: np.ndarray, idet: list[tuple[str, str]], order: str, start: int
) -> np.ndarray:
    """Cost of each state on each frame (frames x states)."""
    import numpy as np

    n = len(feats)
    pat = np.array(_PULLDOWN, dtype=np.float64)
    out = np.zeros((n, len(STATES)))
    out[:, 0] = np.abs(feats - np.array(_PROGRESSIVE)).sum(axis=1)
    out[:, 1] = np.abs(feats - np.array(_INTERLACED)).sum(axis=1)
    idx = np.arange(n) + start
    for k in range(5):
        pos = (idx - k) % 5
        out[:, 2 + k] = np.abs(feats - pat[pos]).sum(axis=1)
    out *= weight[:, None]
    first, second = ("top", "bottom") if order != "bff" else ("bottom", "top")
    for i, (rep, single) in enumerate(idet[:n]):
        if rep in (first, second):
            pos = (idx[i] - np.arange(5)) % 5
            want = 0 if rep == first else 2
            out[i, 2:] += IDET_REPEATED * (pos != want)
            out[i, :2] += IDET_REPEATED
        if single in ("tff", "bff"):  # combed (the same either way: the order is ours)
            out[i, 0] += IDET_SINGLE
            if single != order:
                out[i, 1] += IDET_SINGLE
        elif single == "progressive":
            out[i, 1] += IDET_SINGLE
    return out


def _viterbi(cost: np.ndarray) -> tuple[list[int], float]:
    """The cheapest state path (a change of kind costs ``SWITCH``, of phase ``BREAK``)."""
    import numpy as np

    n, m = cost.shape
    kind = np.array([0, 1, 2, 2, 2, 2, 2])
    trans = np.where(kind[:, None] != kind[None, :], SWITCH, BREAK)
    np.fill_diagonal(trans, 0.0)
    total = cost[0].copy()
    back = np.zeros((n, m), dtype=np.int64)
    for i in range(1, n):
        cand = total[:, None] + trans  # from x to y
        back[i] = cand.argmin(axis=0)
        total = cand.min(axis=0) + cost[i]
    path = [int(total.argmin())]
    for i in range(n - 1, 0, -1):
        path.append(int(back[i, path[-1]]))
    return path[::-1], float(total.min())


def _segments(path: list[int], weight: np.ndarray, start: int) -> list[Segment]:
    """Runs of the path as segments; a boundary inside a run of frames without evidence (a
    still, a fade through black) moves to the middle of that run."""
    segs: list[Segment] = []
    for i, st in enumerate(path):
        name = STATES[st]
        kind = name if st < 2 else "telecine"
        phase = int(name[1]) if st >= 2 else None
        if segs and segs[-1].kind == kind and segs[-1].phase == phase:
            segs[-1].end = start + i + 1
        else:
            segs.append(Segment(start=start + i, end=start + i + 1, kind=kind, phase=phase))  # type: ignore[arg-type]
    quiet = weight < 0.25
    for left, right in zip(segs, segs[1:], strict=False):
        b = left.end - start
        lo, hi = b, b
        while lo > left.start - start + 1 and quiet[lo - 1]:
            lo -= 1
        while hi < right.end - start - 1 and quiet[hi]:
            hi += 1
        if hi > lo and (quiet[b - 1] or quiet[min(b, len(quiet) - 1)]):
            left.end = right.start = start + (lo + hi + 1) // 2
    for s in segs:
        if s.phase is not None:
            s.phase = (s.phase - s.start) % 5  # counted from the segment's own start
    return segs


_IDET_FRAME = re.compile(r"frame:(\d+)")
_IDET_KEY = re.compile(r"lavfi\.idet\.(repeated|single)\.current_frame=(\w+)")


def _idet_frames(text: str) -> list[tuple[str, str]]:
    """ffmpeg idet's per-frame verdicts: (repeated field: neither/top/bottom, single-frame:
    tff/bff/progressive/undetermined)."""
    out: list[tuple[str, str]] = []
    for block in _IDET_FRAME.split(text)[2::2]:
        found = dict(_IDET_KEY.findall(block))
        out.append((found.get("repeated", "neither"), found.get("single", "undetermined")))
    return out


def analyse(
    path: Path,
    stream: int,
    *,
    width: int,
    height: int,
    start: int,
    end: int,
    declared: str = "unknown",
) -> CadenceMap:
    """The cadence map of frames [start, end) of video stream ``stream`` of ``path``.

    ``declared`` is the field order the stream or the manifest claims; a contradiction with the
    evidence is reported in ``warnings`` (the caller decides which one wins).
    """
    import tempfile
    from pathlib import Path as _Path

    with tempfile.TemporaryDirectory(prefix="restoro-cadence-") as tmp:
        log = _Path(tmp) / "idet.txt"
        # (ffmpeg may repeat the last frame of a very short span to fill its output rate)
        luma = _luma(path, stream, (start, end), (width, height), log)
        evidence = frame_evidence(f for _, f in zip(range(end - start), luma, strict=False))
        # ffmpeg writes idet's log as it goes and completes it on exit: read the frames it still
        # sends and wait for it (``_read_raw``'s end) before reading the log, or a busy machine
        # sees it partly written.
        for _ in luma:
            pass
        text = log.read_text(errors="replace") if log.exists() else ""
    idet_frames = _idet_frames(text)
    idet: Counter[str] = Counter()
    for rep, single in idet_frames:
        idet[f"repeated.{rep}"] += 1
        idet[f"single.{single}"] += 1
    count = len(evidence["tff"])
    if not count:
        return CadenceMap(start=start, end=end, segments=[], field_order="unknown", votes={},
                          idet=dict(sorted(idet.items())))  # fmt: skip
    runs = {}
    for order in ("tff", "bff"):
        feats, weight = _normalised(evidence[order])
        cost = _costs(feats, weight, idet_frames, order, start)
        path_, total = _viterbi(cost)
        runs[order] = (path_, total, weight, cost, _costs(feats, weight, [], order, start))
    # The field order: the one whose best path costs less. Progressive pictures look the same
    # either way; only interlaced and telecined frames tell.
    votes: Counter[str] = Counter()
    for i in range(count):
        bt, bb = runs["tff"][3][i][1:].min(), runs["bff"][3][i][1:].min()
        if abs(bt - bb) > 0.25:
            votes["tff" if bt < bb else "bff"] += 1
    diff = runs["bff"][1] - runs["tff"][1]
    if abs(diff) > ORDER_MARGIN:
        order: Literal["tff", "bff", "unknown"] = "tff" if diff > 0 else "bff"
    else:
        order = "unknown"
    use = order if order != "unknown" else (declared if declared in ("tff", "bff") else "tff")
    path_, _total, weight, _cost, cost = runs[use]
    segs = _segments(path_, weight, start)
    counts: Counter[str] = Counter()  # restoro's own per-frame verdicts (idet's are beside)
    for i in range(count):
        # a frame's own class: the kind whose best state beats the others' clearly (a whole
        # film frame of a 3:2 cycle, its fourth position, is progressive on its own)
        tele = min(cost[i, 2 + k] for k in range(5) if (start + i - k) % 5 != 3)
        by_kind = sorted([(cost[i, 0], "progressive"), (cost[i, 1], "interlaced"),
                          (tele, "telecine")])  # fmt: skip
        clear = weight[i] >= 0.25 and by_kind[1][0] - by_kind[0][0] >= CLEAR
        counts[by_kind[0][1] if clear else "static"] += 1
    warnings = []
    if order != "unknown" and declared in ("tff", "bff") and declared != order:
        warnings.append(
            f"the field order is declared {declared} but the picture says {order} "
            f"({votes[order]} frames vote {order}, {votes[declared]} vote {declared})"
        )
    moving = sum(s.end - s.start for s in segs if s.kind != "progressive")
    if declared == "progressive" and moving > max(3, (end - start) // 10):
        warnings.append(
            f"the stream is flagged progressive but {moving} of {end - start} frames are "
            f"interlaced or telecined ({counts['telecine']} telecine, {counts['interlaced']} "
            "interlaced by their own evidence)"
        )
    return CadenceMap(
        start=start,
        end=end,
        segments=segs,
        field_order=order,
        votes={**{k: votes[k] for k in ("tff", "bff")}, **dict(sorted(counts.items()))},
        idet=dict(sorted(idet.items())),
        warnings=warnings,
    )
