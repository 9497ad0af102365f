"""Cadence analysis: which parts of an SD source are progressive, 3:2-telecined film or true
interlaced video, and which field comes first.

Evidence per frame (luma, fields woven in the three ways field matching considers): with F the
first field of frame i and S the second, ``c`` is how combed F+S(i) looks, ``p`` F+S(i-1) and
``n`` F+S(i+1), each divided by the field's own vertical detail so the numbers mean the same on
soft and on detailed pictures. Then

* a progressive frame has ``c`` low and ``p`` high (its fields belong together);
* a telecined frame that straddles two film frames has ``p`` low and ``c`` high (its first field
  belongs to the previous frame's second field); 3:2 pulldown gives two such frames in five;
* a true interlaced frame has ``c`` and ``p`` both high (every field is its own moment);
* the field order shows in ``p`` against ``n``: the earlier field matches the neighbour that is
  adjacent in time.

ffmpeg's ``idet`` runs over the same frames and its repeated-field counts are reported beside
restoro's own classification. Frames are classified, smoothed over a window of ten, cut into
segments (a change of kind or of pulldown phase starts a segment), and short runs are merged into
their neighbours.
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
COMB = 0.8
"""A weave is combed when its error is this many times the field's own vertical detail (a
progressive frame's own weave sits near 0.5, a combed one at 1 and above)."""
MATCH = 0.55
"""A weave matches when its error is under this fraction of the other weave's."""
WINDOW = 10
MIN_SEGMENT = 6
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


def _weave_error(first: np.ndarray, second: np.ndarray) -> float:
    """How badly ``second``'s lines fit between ``first``'s (mean absolute error)."""
    import numpy as np

    n = min(len(first), len(second)) - 1
    between = (first[:n] + first[1 : n + 1]) / 2
    return float(np.mean(np.abs(second[:n] - between)))


def _detail(field: np.ndarray) -> float:
    """The field's own vertical detail: error predicting its lines from their neighbours."""
    import numpy as np

    return float(np.mean(np.abs(field[1:-1] - (field[:-2] + field[2:]) / 2)))


def frame_evidence(frames: Iterator[np.ndarray]) -> list[dict[str, float]]:
    """Per frame: ``c``, ``p``, ``n`` for top-first (``t``) and bottom-first (``b``) weaves."""
    items = list(frames)  # SD luma at 360 wide: ~170 kB a frame
    out: list[dict[str, float]] = []
    for i, f in enumerate(items):
        prev = items[i - 1] if i > 0 else None
        nxt = items[i + 1] if i + 1 < len(items) else None
        row: dict[str, float] = {}
        for tag, a, b in (("t", 0, 1), ("b", 1, 0)):
            first, second = f[a::2], f[b::2]
            ref = max(_detail(first), 0.5)
            row[tag + "c"] = _weave_error(first, second) / ref
            row[tag + "p"] = (_weave_error(first, prev[b::2]) / ref) if prev is not None else 99.0
            row[tag + "n"] = (_weave_error(first, nxt[b::2]) / ref) if nxt is not None else 99.0
        out.append(row)
    return out


def classify(ev: dict[str, float], order: str) -> str:
    """``progressive`` | ``telecine`` (first field matches the previous frame) |
    ``interlaced`` | ``static`` (no evidence either way)."""
    t = "t" if order != "bff" else "b"
    c, p = ev[t + "c"], ev[t + "p"]
    if c <= MATCH * p and c <= COMB:
        return "progressive"
    if p <= MATCH * c and c > COMB:
        return "telecine"
    if min(c, p) > COMB:
        return "interlaced"
    return "static"


def _order_votes(evidence: list[dict[str, float]]) -> Counter[str]:
    """With the top field first, T(i) is one field from B(i-1) and three from B(i+1)."""
    votes: Counter[str] = Counter()
    for ev in evidence:
        p, n = ev["tp"], ev["tn"]
        if max(p, n) > COMB and min(p, n) < 0.7 * max(p, n):
            votes["tff" if p < n else "bff"] += 1
    return votes


def _segments(labels: list[str], start: int) -> list[Segment]:
    n = len(labels)
    kinds: list[str] = []
    phases: list[int | None] = []
    for i in range(n):
        lo, hi = max(0, i - WINDOW // 2), min(n, i + WINDOW // 2)
        win = Counter(labels[lo:hi])
        moving = hi - lo - win["static"]
        if win["interlaced"] * 2 >= max(moving, 1) and win["interlaced"] >= 3:
            kinds.append("interlaced")
            phases.append(None)
        elif win["telecine"] >= 2 and win["interlaced"] * 2 < max(moving, 1):
            kinds.append("telecine")
            tele = [j for j in range(lo, hi) if labels[j] == "telecine"]
            # the first of a pair of combed frames (j with j-1 not combed)
            firsts = [j for j in tele if j - 1 not in tele]
            phases.append(Counter((start + j) % 5 for j in firsts).most_common(1)[0][0])
        else:
            kinds.append("progressive")
            phases.append(None)
    segs: list[Segment] = []
    for i in range(n):
        k, ph = kinds[i], phases[i]
        if segs and segs[-1].kind == k and (k != "telecine" or segs[-1].phase == ph):
            segs[-1].end = start + i + 1
        else:
            segs.append(Segment(start=start + i, end=start + i + 1, kind=k, phase=ph))  # type: ignore[arg-type]
    # Merge short runs into the longer neighbour (boundary noise of the smoothing window).
    changed = True
    while changed and len(segs) > 1:
        changed = False
        for i, s in enumerate(segs):
            if s.end - s.start >= MIN_SEGMENT:
                continue
            left = segs[i - 1] if i > 0 else None
            right = segs[i + 1] if i + 1 < len(segs) else None
            if right is None or (left is not None and _len(left) >= _len(right)):
                into = left
            else:
                into = right
            assert into is not None
            into.start, into.end = min(into.start, s.start), max(into.end, s.end)
            del segs[i]
            changed = True
            break
    merged: list[Segment] = []
    for s in segs:
        if merged and merged[-1].kind == s.kind and merged[-1].phase == s.phase:
            merged[-1].end = s.end
        else:
            merged.append(s)
    _refine(merged, labels, start)
    # A telecine phase counts from each segment's own start.
    for s in merged:
        if s.phase is not None:
            s.phase = (s.phase - s.start) % 5
    return merged


def _len(s: Segment) -> int:
    return s.end - s.start


_SUPPORT = {
    "telecine": ("telecine", "progressive"),
    "interlaced": ("interlaced",),
    "progressive": ("progressive",),
}


def _refine(segs: list[Segment], labels: list[str], start: int) -> None:
    """Move each boundary (within a window) to where the frame labels agree best with the kinds
    on either side: the smoothing window blurs boundaries by up to half its width."""
    for left, right in zip(segs, segs[1:], strict=False):
        lo = max(left.start + 1, left.end - WINDOW)
        hi = min(right.end - 1, left.end + WINDOW)

        def score(x: int, left: Segment = left, right: Segment = right, lo: int = lo,
                  hi: int = hi) -> int:  # fmt: skip
            a = sum(labels[i - start] in _SUPPORT[left.kind] for i in range(lo - 1, x))
            b = sum(labels[i - start] in _SUPPORT[right.kind] for i in range(x, hi + 1))
            return a + b

        best = max(range(lo, hi + 1), key=lambda x: (score(x), -abs(x - left.end)), default=None)
        if best is not None:
            left.end = right.start = best


_IDET = re.compile(r"lavfi\.idet\.(repeated|single)\.current_frame=(\w+)")


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
        evidence = frame_evidence(_luma(path, stream, (start, end), (width, height), log))
        text = log.read_text(errors="replace") if log.exists() else ""
    idet: Counter[str] = Counter(f"{a}.{b}" for a, b in _IDET.findall(text))
    votes = _order_votes(evidence)
    if votes["tff"] + votes["bff"] >= 3 and max(votes["tff"], votes["bff"]) >= 2 * min(
        votes["tff"], votes["bff"]
    ):
        order: Literal["tff", "bff", "unknown"] = "tff" if votes["tff"] >= votes["bff"] else "bff"
    else:
        order = "unknown"
    use = order if order != "unknown" else (declared if declared in ("tff", "bff") else "tff")
    labels = [classify(ev, use) for ev in evidence]
    counts = Counter(labels)
    segs = _segments(labels, start) if labels else []
    warnings = []
    if order != "unknown" and declared in ("tff", "bff") and declared != order:
        warnings.append(
            f"the field order is declared {declared} but the picture says {order} "
            f"({votes[order]} frames vote {order}, {votes[declared]} vote {declared})"
        )
    moving = counts["telecine"] + counts["interlaced"]
    if declared == "progressive" and moving > max(3, (end - start) // 10):
        warnings.append(
            f"the stream is flagged progressive but {moving} of {end - start} frames are combed "
            f"({counts['telecine']} telecine, {counts['interlaced']} interlaced)"
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
