"""Cadence map accuracy on synthetic sources with known per-frame truth.

Runs ``restoro.media.cadence.analyse`` over the clips of ``restoro.testing.cadence`` (3:2 film
with fast and slow motion, true 59.94-field video with fast pans and slow drift, static titles
over video, fades, cadence breaks and edits mid-cycle, film with orphan fields, bottom field
first) and reports, per clip:

* ``frames ok``: frames whose map kind (telecine / interlaced / progressive) is the truth's;
* ``phase ok``: telecine frames whose pulldown phase is also the truth's;
* ``boundaries``: the truth's segment boundaries (a change of kind or of pulldown phase), the
  largest distance from one to the nearest map boundary, and how many map boundaries are not
  within 3 frames of a true one (fragments);
* the field order found, and whether the clip meets the goal (≥ 98 % of frames right, every
  boundary within 3 frames, no fragment).

    python benchmarks/bench_cadence.py [--keep DIR] [--markdown FILE] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from restoro.media.cadence import CadenceMap, analyse
from restoro.testing.cadence import Clip, benchmark_clips, make_clip, write_clip

TOLERANCE = 3


def labels(cmap: CadenceMap, n: int) -> tuple[list[str], list[int | None]]:
    """Per-frame kind and absolute phase (index mod 5 of the first combed frame)."""
    kinds: list[str] = ["?"] * n
    phases: list[int | None] = [None] * n
    for s in cmap.segments:
        for i in range(s.start, s.end):
            kinds[i] = s.kind
            phases[i] = (s.start + s.phase) % 5 if s.phase is not None else None
    return kinds, phases


def score(clip: Clip, cmap: CadenceMap) -> dict[str, object]:
    n = len(clip.frames)
    kinds, phases = labels(cmap, n)
    right = sum(a == b for a, b in zip(kinds, clip.kinds, strict=True))
    tele = [i for i in range(n) if clip.kinds[i] == "telecine"]
    phase_ok = sum(kinds[i] == "telecine" and phases[i] == clip.phases[i] for i in tele)
    truth_b = [s[0] for s in clip.segments()[1:]]
    found_b = [s.start for s in cmap.segments[1:]]
    errors = [min((abs(t - f) for f in found_b), default=n) for t in truth_b]
    extra = [f for f in found_b if min((abs(t - f) for t in truth_b), default=n) > TOLERANCE]
    accuracy = right / n
    ok = accuracy >= 0.98 and all(e <= TOLERANCE for e in errors) and not extra
    return {
        "frames": n,
        "accuracy": accuracy,
        "phase": phase_ok / len(tele) if tele else None,
        "boundaries": len(truth_b),
        "worst": max(errors, default=0),
        "extra": len(extra),
        "order": cmap.field_order,
        "truth_order": clip.order,
        # the field order must be found where there are fields to tell it
        "ok": ok
        and cmap.field_order
        in ((clip.order,) if set(clip.kinds) != {"progressive"} else ("unknown",)),
        "map": " ".join(
            f"{s.kind[0]}{'' if s.phase is None else s.phase}:{s.start}-{s.end}"
            for s in cmap.segments
        ),  # fmt: skip
        "truth": " ".join(
            f"{k[0]}{'' if p is None else (p - a) % 5}:{a}-{b}" for a, b, k, p in clip.segments()
        ),  # fmt: skip
    }


def table(rows: list[tuple[str, dict[str, object]]]) -> str:
    out = [
        "| clip | frames | frames right | telecine phase right | boundaries | worst boundary "
        "error | fragments | field order | goal |",
        "|---|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for name, r in rows:
        phase = "–" if r["phase"] is None else f"{100 * float(r['phase']):.1f} %"  # type: ignore[arg-type]
        out.append(
            f"| {name} | {r['frames']} | {100 * float(r['accuracy']):.1f} % | {phase} | "  # type: ignore[arg-type]
            f"{r['boundaries']} | {r['worst']} | {r['extra']} | {r['order']} "
            f"(truth {r['truth_order']}) | {'met' if r['ok'] else 'NOT met'} |"
        )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--keep", type=Path, help="write the clips here (and reuse them)")
    ap.add_argument("--markdown", type=Path, help="also write the table to this file")
    ap.add_argument("--only", nargs="*", help="clip names to run")
    ap.add_argument("--verbose", action="store_true", help="print the maps and the truth")
    ap.add_argument("--seed", type=int, default=0, help="vary the pictures (0: the table's)")
    ap.add_argument("--size", default="360x240", help="picture size (default 360x240)")
    ap.add_argument("--quality", type=int, default=3, help="MPEG-2 qscale (default 3)")
    args = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-cadence-") as tmp:
        root = args.keep or Path(tmp)
        w, h = (int(x) for x in args.size.split("x"))
        for name, parts, order in benchmark_clips(args.seed):
            if args.only and name not in args.only:
                continue
            clip = make_clip(name, parts, order=order, width=w, height=h)
            path = root / f"{name}-{args.seed}-{args.size}-q{args.quality}.mpg"
            if not path.exists():
                write_clip(clip, path, quality=args.quality)
            t0 = time.perf_counter()
            cmap = analyse(path, 0, width=w, height=h, start=0, end=len(clip.frames),
                           declared=order)  # fmt: skip
            r = score(clip, cmap)
            r["seconds"] = time.perf_counter() - t0
            rows.append((name, r))
            line = f"{name}: {100 * r['accuracy']:.1f} % right, worst boundary {r['worst']}, "
            line += f"{r['extra']} fragments, {r['order']}, {r['seconds']:.1f} s"
            print(line, flush=True)
            if args.verbose:
                print("  map:  ", r["map"], "\n  truth:", r["truth"], flush=True)
    text = table(rows)
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n", encoding="utf-8")
    return 0 if all(r["ok"] for _, r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
