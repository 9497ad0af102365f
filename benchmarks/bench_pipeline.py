"""restoro's first build of a DVD-like hybrid title against the equivalent single ffmpeg command.

    python benchmarks/bench_pipeline.py [--dir DIR] [--frames 370] [--rasters 1920x1080,3840x2160]
        [--skip-4k] [--jobs 1] [--noop-shots 2000] [--skip-rebuild] [--skip-noop]

The source is ``restoro.testing.synth.make_hybrid``: NTSC 480i 29.97 MPEG-2 (720x480, 8:9 pixels,
so 4:3), 3:2-pulled-down film, then true interlaced video, then film again with its cadence
broken, and AC-3 5.1 audio; about ``--frames`` frames in all. For each raster, in the same run:

* **restoro**, first build from an empty store: ingest ``mode: auto`` (IVTC or deinterlace per
  cadence segment), ``upscale`` lanczos x2, a ProRes 422 HQ master pillarboxed into the raster
  with the 5.1 track as 24-bit PCM, a plain ``restoro build`` (the manifest has no ``qc:``
  section; the classical upscale is folded into the ProRes chunks: no chain action,
  docs/engine.md);
* **ffmpeg**, one command doing the same job: ``fieldmatch``, ``yadif=deint=interlaced``,
  ``decimate``, ``zscale`` lanczos straight to the picture size with the BT.601 → BT.709
  conversion, ``pad``, ``prores_ks`` 422 HQ and ``pcm_s24le``, with the same ffmpeg binary;
* **one-shot change**: an override gives one shot another upscale filter (spline36), then the
  rebuild; its CPU is set against that shot's own actions plus the assembly, as measured in the
  first build (the goal's ratio);

and once: **no-op** build of a 2,000-shot project (``bench_noop.py``'s project, fully cached).

Every command runs as a child process; its CPU is ``getrusage(RUSAGE_CHILDREN)`` user + system
after minus before, which includes every process it started and waited for (ffmpeg, PyAV
threads, all of them). Per action kind, the CPU comes from the ``cpu_s`` of the build's
``action`` events (docs/cli.md): exact per action with ``--jobs 1`` (the default here); with more
jobs an action's figure includes whatever ran beside it. Prints Markdown tables and writes
``results.json`` in DIR (without ``--dir``, a temporary directory removed at exit).
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_noop  # noqa: E402
from bench_qc import CODE, cpu_children  # noqa: E402

from restoro.media.ffmpeg import ffmpeg_exe  # noqa: E402
from restoro.media.frameio import count_frames  # noqa: E402
from restoro.testing.synth import make_hybrid, telecine_frames  # noqa: E402

MANIFEST = """\
restoro: 1
project: bench-pipeline
sources:
  dvd: {{path: {source}}}
pipelines:
  main:
    - {{stage: ingest, mode: auto}}
    - {{stage: upscale, model: lanczos, scale: 2}}
titles:
  ep:
    source: dvd
    pipeline: main
    shots: {{detector: content, threshold: 27, min_frames: 4}}
    audio:
      - {{stream: 1, layout: "5.1"}}
{overrides}deliverables:
  master: {{kind: prores, profile: 422hq, raster: {raster}, fit: pillarbox}}
"""

OVERRIDE = """\
    overrides:
      - shots: ["{shot}"]
        params: {{upscale: {{model: spline36}}}}
"""


def measured(cmd: list[str]) -> dict[str, Any]:
    """Run ``cmd`` as a child process: wall, CPU of it and its descendants, load, output."""
    load0 = os.getloadavg()[0]
    samples: list[float] = []
    done = threading.Event()

    def sample() -> None:
        while not done.wait(2.0):
            samples.append(os.getloadavg()[0])

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    c0 = cpu_children()
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    cpu = cpu_children() - c0
    done.set()
    sampler.join()
    mean = statistics.mean(samples) if samples else os.getloadavg()[0]
    if res.returncode != 0:
        sys.exit(f"failed ({res.returncode}): {' '.join(cmd)}\n{res.stderr[-4000:]}")
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "load": [round(load0, 2), round(os.getloadavg()[0], 2), round(mean, 2)],
        "stdout": res.stdout,
    }


def restoro(*args: str) -> dict[str, Any]:
    out = measured([sys.executable, "-c", CODE, *args])
    out["events"] = [json.loads(ln) for ln in out.pop("stdout").splitlines() if ln.strip()]
    return out


def actions(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e.get("event") == "action" and e.get("status") == "executed"]


def per_kind(events: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    kinds: dict[str, dict[str, float]] = defaultdict(lambda: {"n": 0, "cpu_s": 0.0, "wall_s": 0.0})
    for e in actions(events):
        k = kinds[e["stage"]]
        k["n"] += 1
        k["cpu_s"] += e.get("cpu_s", 0.0)
        k["wall_s"] += e["seconds"]
    return dict(kinds)


def make_source(path: Path, frames: int) -> tuple[int, list[Any]]:
    """A hybrid source of about ``frames`` frames: 40 % film, 27 % video, the rest film."""
    film_a = max(8, round(frames * 0.40 * 4 / 5))
    video = max(6, round(frames * 0.27))
    rest = frames - telecine_frames(film_a) - video
    film_b = max(8, round((rest + 2) * 4 / 5))
    _, truth = make_hybrid(path, film=(film_a, film_b), video_frames=video, skip=2)
    return truth[-1].end, truth


def ffmpeg_cmd(src: Path, raster: tuple[int, int], out: Path) -> list[str]:
    rw, rh = raster
    w = 2 * round(rh * 4 / 3 / 2)  # the 4:3 picture (720x480 at 8:9) pillarboxed
    graph = (
        "fieldmatch=order=tff:combmatch=full,yadif=deint=interlaced,decimate,"
        f"zscale=w={w}:h={rh}:filter=lanczos:dither=none:"
        "matrixin=170m:primariesin=170m:transferin=601:rangein=limited:"
        "matrix=709:primaries=709:transfer=709:range=limited,"
        f"format=yuv422p10le,pad={rw}:{rh}:{(rw - w) // 2}:0:black,setsar=1"
    )
    return [
        ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-i", str(src),
        "-map", "0:v:0", "-map", "0:a:0", "-vf", graph,
        "-c:v", "prores_ks", "-profile:v", "hq", "-vendor", "apl0",
        "-color_primaries", "bt709", "-color_trc", "bt709", "-colorspace", "bt709",
        "-c:a", "pcm_s24le", "-ar", "48000", "-f", "mov", str(out),
    ]  # fmt: skip


def bench_raster(
    root: Path, src: Path, raster: tuple[int, int], jobs: int, rebuild: bool
) -> dict[str, Any]:
    name = f"{raster[0]}x{raster[1]}"
    proj = root / name
    if proj.exists():
        shutil.rmtree(proj)
    proj.mkdir(parents=True)
    manifest = proj / "restoro.yaml"
    manifest.write_text(MANIFEST.format(source=src, raster=name, overrides=""), encoding="utf-8")
    build = ["build", "-f", str(manifest), "--json", "--jobs", str(jobs)]
    print(f"[{name}] restoro first build ...", file=sys.stderr, flush=True)
    first = restoro(*build)
    master = next(e["path"] for e in first["events"] if e.get("event") == "output")
    print(f"[{name}] ffmpeg ...", file=sys.stderr, flush=True)
    ff_out = proj / "ffmpeg.mov"
    ff = measured(ffmpeg_cmd(src, raster, ff_out))
    ff.pop("stdout")
    out: dict[str, Any] = {
        "raster": name,
        "restoro": {k: first[k] for k in ("wall_s", "cpu_s", "load")},
        "ffmpeg": ff,
        "per_kind": per_kind(first["events"]),
        "frames": {"restoro": count_frames(Path(master)), "ffmpeg": count_frames(ff_out)},
        "shots": sorted({e["shot"] for e in actions(first["events"]) if e.get("shot")}),
    }
    out["ratio_cpu"] = first["cpu_s"] / ff["cpu_s"]
    out["ratio_wall"] = first["wall_s"] / ff["wall_s"]
    if rebuild and out["shots"]:
        shot = out["shots"][len(out["shots"]) // 2]
        manifest.write_text(
            MANIFEST.format(source=src, raster=name, overrides=OVERRIDE.format(shot=shot)),
            encoding="utf-8",
        )
        print(f"[{name}] one-shot rebuild ({shot}) ...", file=sys.stderr, flush=True)
        again = restoro(*build)
        ran = actions(again["events"])
        ran_ids = {e["id"] for e in ran}
        own = [e for e in actions(first["events"]) if e["id"] in ran_ids]
        own_cpu = sum(e.get("cpu_s", 0.0) for e in own)
        out["rebuild"] = {
            "shot": shot,
            "wall_s": again["wall_s"],
            "cpu_s": again["cpu_s"],
            "load": again["load"],
            "executed": sorted(f"{e['stage']}:{e['id']}" for e in ran),
            "executed_cpu_s": sum(e.get("cpu_s", 0.0) for e in ran),
            "same_actions_in_first_build_cpu_s": own_cpu,
            "ratio": again["cpu_s"] / own_cpu if own_cpu else None,
        }
    return out


def bench_noop_project(root: Path, shots: int, repeat: int) -> dict[str, Any]:
    manifest = bench_noop.make_project(root, shots)
    print(f"[noop] building the {shots}-shot project ...", file=sys.stderr, flush=True)
    first = restoro("build", "-f", str(manifest), "--json", "--jobs", "2", "--no-qc")
    runs = []
    for _ in range(repeat):
        r = restoro("build", "-f", str(manifest), "--json")
        summary = next(e for e in reversed(r["events"]) if e.get("event") == "summary")
        assert summary["executed"] == 0, summary
        runs.append((r["wall_s"], r["cpu_s"], r["load"][-1]))
    return {
        "shots": shots,
        "first_build_wall_s": first["wall_s"],
        "wall_s": statistics.median(r[0] for r in runs),
        "wall_min_s": min(r[0] for r in runs),
        "cpu_s": statistics.median(r[1] for r in runs),
        "runs": runs,
    }


def machine() -> dict[str, Any]:
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = next(
        (ln.split(":", 1)[1].strip() for ln in lscpu.splitlines() if ln.startswith("Model name")),
        platform.processor() or platform.machine(),
    )
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "ffmpeg": " ".join(
            subprocess.run(
                [ffmpeg_exe(), "-version"], capture_output=True, text=True
            ).stdout.split()[:3]
        ),
    }


def load(values: list[float]) -> str:
    """``start–end`` of the 1-minute load average, with the mean over the run when sampled."""
    text = f"{values[0]}–{values[1]}"
    return text + (f" (mean {values[2]})" if len(values) > 2 else "")


def markdown(res: dict[str, Any]) -> str:
    m = res["machine"]
    lines = [
        f"Machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}; {m['ffmpeg']}.",
        "",
    ]
    if res["rasters"]:
        lines += [
            f"Source: hybrid 480i 29.97, {res['source_frames']} frames ({res['segments']}), "
            f"AC-3 5.1. restoro `--jobs {res['jobs']}`.",
            "",
        ]
        lines += [
            "| raster | restoro CPU-s | restoro wall s | ffmpeg CPU-s | ffmpeg wall s "
            "| CPU ratio | wall ratio | frames (restoro/ffmpeg) | load avg (restoro run) |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
    for r in res["rasters"]:
        lines.append(
            f"| {r['raster']} | {r['restoro']['cpu_s']:.1f} | {r['restoro']['wall_s']:.1f} "
            f"| {r['ffmpeg']['cpu_s']:.1f} | {r['ffmpeg']['wall_s']:.1f} "
            f"| **{r['ratio_cpu']:.2f}x** | {r['ratio_wall']:.2f}x "
            f"| {r['frames']['restoro']}/{r['frames']['ffmpeg']} "
            f"| {load(r['restoro']['load'])} |"
        )
    for r in res["rasters"]:
        total = r["restoro"]["cpu_s"]
        lines += [
            "",
            f"Per action kind, {r['raster']} ({len(r['shots'])} shots):",
            "",
            "| action | n | CPU-s | share | wall s |",
            "|---|---|---|---|---|",
        ]
        kinds = sorted(r["per_kind"].items(), key=lambda kv: -kv[1]["cpu_s"])
        for kind, k in kinds:
            lines.append(
                f"| {kind} | {k['n']} | {k['cpu_s']:.1f} | {100 * k['cpu_s'] / total:.0f} % "
                f"| {k['wall_s']:.1f} |"
            )
        rest = total - sum(k["cpu_s"] for _, k in kinds)
        lines.append(f"| (outside actions: start-up, planning, probe) | | {rest:.1f} | | |")
    for r in res["rasters"]:
        rb = r.get("rebuild")
        if not rb:
            continue
        lines += [
            "",
            f"One-shot change, {r['raster']} (shot {rb['shot']}: upscale lanczos → spline36):",
            "",
            "| rebuild CPU-s | rebuild wall s | its actions' CPU-s | same actions in the first "
            "build CPU-s | ratio (goal ≤ 1.1) | executed |",
            "|---|---|---|---|---|---|",
            f"| {rb['cpu_s']:.1f} | {rb['wall_s']:.1f} | {rb['executed_cpu_s']:.1f} "
            f"| {rb['same_actions_in_first_build_cpu_s']:.1f} "
            f"| **{rb['ratio']:.2f}x** | {', '.join(rb['executed'])} |",
        ]
    nop = res.get("noop")
    if nop:
        lines += [
            "",
            f"No-op build, {nop['shots']} shots (fresh process each, median of "
            f"{len(nop['runs'])}): wall **{nop['wall_s']:.3f} s** (min {nop['wall_min_s']:.3f}), "
            f"CPU {nop['cpu_s']:.3f} s (goal ≤ 0.5 s); load average "
            f"{', '.join(str(r[2]) for r in nop['runs'])}.",
        ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", type=Path, default=None)
    ap.add_argument("--frames", type=int, default=370)
    ap.add_argument("--rasters", default="1920x1080,3840x2160")
    ap.add_argument("--skip-4k", action="store_true", help="leave out rasters above 1920x1080")
    ap.add_argument("--jobs", type=int, default=1, help="restoro --jobs (1: exact per action)")
    ap.add_argument("--skip-rebuild", action="store_true")
    ap.add_argument("--skip-noop", action="store_true")
    ap.add_argument("--noop-shots", type=int, default=2000)
    ap.add_argument("--noop-repeat", type=int, default=5)
    args = ap.parse_args()
    root = args.dir or Path(tempfile.mkdtemp(prefix="restoro-bench-pipeline-"))
    if args.dir is None:  # its stores are gigabytes: gone at exit unless --dir keeps them
        atexit.register(shutil.rmtree, root, True)
    root.mkdir(parents=True, exist_ok=True)
    rasters = []
    for r in filter(None, args.rasters.split(",")):
        w, h = (int(v) for v in r.lower().split("x"))
        if not (args.skip_4k and w * h > 1920 * 1080):
            rasters.append((w, h))
    res: dict[str, Any] = {"machine": machine(), "jobs": args.jobs, "rasters": []}
    if rasters:
        src = root / "media" / f"hybrid-{args.frames}.mpg"
        truth_file = src.with_suffix(".json")
        if not src.exists() or not truth_file.exists():
            print(f"making the {args.frames}-frame source ...", file=sys.stderr, flush=True)
            _, truth = make_source(src, args.frames)
            truth_file.write_text(json.dumps([[t.kind, t.start, t.end] for t in truth]))
        segments = json.loads(truth_file.read_text())
        res["source_frames"] = segments[-1][2]
        res["segments"] = ", ".join(f"{k} {e - s}" for k, s, e in segments)
        rebuild = not args.skip_rebuild
        res["rasters"] = [bench_raster(root, src, r, args.jobs, rebuild) for r in rasters]
    if not args.skip_noop:
        res["noop"] = bench_noop_project(root / "noop", args.noop_shots, args.noop_repeat)
    res["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    res["dir"] = str(root)
    (root / "results.json").write_text(json.dumps(res, indent=2), encoding="utf-8")
    print(markdown(res))


if __name__ == "__main__":
    main()
