"""What QC adds to a cached build: a 500-shot synthetic title, fully built (QC included), then
``restoro build`` timed with QC (every QC action a cache hit) and with ``--no-qc``.

    python benchmarks/bench_qc.py [--dir DIR] [--shots 500] [--repeat 9]

Same project as bench_noop.py plus a ``qc:`` section. Each timing is a fresh process, as a user
runs it; the runs alternate so machine noise hits both alike. Wall time (median and minimum) and
the processes' CPU time (user + system, median: less sensitive to other jobs on a shared machine)
are reported. Prints a JSON summary.

The processes run with Python's bytecode cache on (in a private folder under DIR), as an
installed restoro does, even where ``PYTHONDONTWRITEBYTECODE`` is set (development sandboxes set
it, and then every run compiles restoro's modules from source: about 0.1 s on the development
machine); ``--no-bytecode`` measures that way instead.
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
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_noop import make_project  # noqa: E402

CODE = "import sys; from restoro.cli.app import main; sys.exit(main(sys.argv[1:]))"
ENV = dict(os.environ)


def run(*args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    t0 = time.perf_counter()
    res = subprocess.run(
        [sys.executable, "-c", CODE, *args], capture_output=True, text=True, env=ENV
    )
    return time.perf_counter() - t0, res


def cpu_children() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def summary(stdout: str) -> dict[str, object]:
    """The build's ``summary`` event (QC's own event may follow it)."""
    events = [json.loads(ln) for ln in stdout.splitlines() if ln.strip()]
    return next(e for e in reversed(events) if e.get("event") == "summary")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", type=Path, default=None)
    ap.add_argument("--shots", type=int, default=500)
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--no-bytecode", action="store_true", help="compile every module each run")
    args = ap.parse_args()
    root = args.dir or Path(tempfile.mkdtemp(prefix="restoro-bench-qc-"))
    if args.dir is None:  # its stores are gigabytes: gone at exit unless --dir keeps them
        atexit.register(shutil.rmtree, root, True)
    if args.no_bytecode:
        ENV["PYTHONDONTWRITEBYTECODE"] = "1"
    else:
        ENV.pop("PYTHONDONTWRITEBYTECODE", None)
        ENV["PYTHONPYCACHEPREFIX"] = str(root / "pycache")
    manifest = make_project(root, args.shots)
    text = manifest.read_text(encoding="utf-8")
    if "\nqc:" not in text:
        manifest.write_text(text + "qc: {}\n", encoding="utf-8")
    t0 = time.perf_counter()
    _, res = run("build", "-f", str(manifest), "--json", "--jobs", str(args.jobs), "--no-qc")
    if res.returncode != 0:
        sys.exit(f"first build failed:\n{res.stderr}")
    first = time.perf_counter() - t0
    t_qc, res = run("build", "-f", str(manifest), "--json", "--jobs", str(args.jobs))
    if res.returncode != 0:
        sys.exit(f"QC build failed:\n{res.stderr[-3000:]}")
    qc_actions = summary(res.stdout)["executed"]
    timings: dict[str, list[float]] = {"qc": [], "no_qc": []}
    cpu: dict[str, list[float]] = {"qc": [], "no_qc": []}
    for _ in range(args.repeat):
        for name, extra in (("qc", ()), ("no_qc", ("--no-qc",))):
            c0 = cpu_children()
            t, res = run("build", "-f", str(manifest), "--json", *extra)
            cpu[name].append(cpu_children() - c0)
            last = summary(res.stdout)
            assert res.returncode == 0 and last["executed"] == 0, res.stderr
            timings[name].append(t)
    qc, no_qc = statistics.median(timings["qc"]), statistics.median(timings["no_qc"])
    qc_min, no_qc_min = min(timings["qc"]), min(timings["no_qc"])
    print(
        json.dumps(
            {
                "shots": args.shots,
                "bytecode_cache": not args.no_bytecode,
                "first_build_without_qc_s": round(first, 1),
                "qc_first_run_s": round(t_qc, 1),
                "qc_actions": qc_actions,
                "cached_build_with_qc_s": round(qc, 3),
                "cached_build_no_qc_s": round(no_qc, 3),
                "qc_overhead_pct": round(100 * (qc - no_qc) / no_qc, 1),
                "cached_build_with_qc_min_s": round(qc_min, 3),
                "cached_build_no_qc_min_s": round(no_qc_min, 3),
                "qc_overhead_min_pct": round(100 * (qc_min - no_qc_min) / no_qc_min, 1),
                "cpu_with_qc_s": round(statistics.median(cpu["qc"]), 3),
                "cpu_no_qc_s": round(statistics.median(cpu["no_qc"]), 3),
                "qc_overhead_cpu_pct": round(
                    100 * (statistics.median(cpu["qc"]) / statistics.median(cpu["no_qc"]) - 1), 1
                ),
                "runs": {k: [round(x, 3) for x in v] for k, v in timings.items()},
                "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                f"Python {platform.python_version()}",
                "load_average": [round(x, 2) for x in os.getloadavg()],
                "dir": str(root),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
