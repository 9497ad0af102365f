"""Follow one ``restoro build`` of the demo project from the CLI down, and count how the call
path moves between restoro's modules (docs/architecture.md, "The path of one build").

    PYTHONPATH=<tree> python3 benchmarks/trace_path.py [--project DIR] [--edges]

Runs ``restoro build --jobs 1`` in-process on a fresh copy of the demo project (``restoro demo``'s
source and manifest; ``--project`` gives one made elsewhere, e.g. for an older tree without
``make_demo``) with a profile hook on every thread, and prints three figures over the calls
between restoro functions (module-level code run by imports is left out):

- *modules entered*: distinct restoro modules whose functions ran;
- *returns to a module it had left*: distinct (caller module, callee module) calls where the
  callee's module already has a frame further down the same stack (A → … → B → A);
- *climbs back up a layer*: distinct (caller, callee) calls whose callee's package sits in a
  higher layer than the caller's (the layer table of docs/architecture.md, by package name, so
  an older tree's ``restoro.engine.*`` counts as the engine layer).

Action keys and outputs are untouched: this only watches a build.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from types import FrameType

LAYERS: list[tuple[str, ...]] = [
    ("restoro.cli", "restoro.demo", "restoro.__main__"),
    ("restoro.review", "restoro.config"),
    ("restoro.plan",),
    ("restoro.farm",),
    ("restoro.manifest",),
    ("restoro.qc",),
    ("restoro.deliver",),
    ("restoro.stages", "restoro.testing"),
    ("restoro.models",),
    ("restoro.media",),
    ("restoro.engine",),
    ("restoro.project", "restoro.review_file", "restoro.review_links"),
    ("restoro.errors", "restoro"),
]


def layer(module: str) -> int:
    """1 (the CLI) to 13 (errors): the longest package prefix of ``module`` in ``LAYERS``."""
    best, depth = len(LAYERS), -1
    for i, names in enumerate(LAYERS, 1):
        for name in names:
            if (module == name or module.startswith(name + ".")) and len(name) > depth:
                best, depth = i, len(name)
    return best


class PathTrace:
    def __init__(self) -> None:
        self.entered: set[str] = set()
        self.edges: set[tuple[str, str]] = set()
        self.returns: set[tuple[str, str]] = set()
        self.lock = threading.Lock()

    def hook(self, frame: FrameType, event: str, arg: Any) -> None:
        if event != "call":
            return
        mod = frame.f_globals.get("__name__", "")
        if not (mod == "restoro" or mod.startswith("restoro.")):
            return
        if frame.f_code.co_name == "<module>":
            return  # an import running a module's body
        caller = None
        below: set[str] = set()
        f = frame.f_back
        while f is not None:
            name = f.f_code.co_name
            m = f.f_globals.get("__name__", "")
            if m == "restoro" or m.startswith("restoro."):
                if name == "<module>" and caller is None:
                    return  # called from a module body while it is imported
                if caller is None:
                    caller = m
                below.add(m)
            f = f.f_back
        with self.lock:
            self.entered.add(mod)
            if caller is None or caller == mod:
                return
            self.edges.add((caller, mod))
            if mod in below:
                self.returns.add((caller, mod))

    def climbs(self) -> set[tuple[str, str]]:
        return {(a, b) for a, b in self.edges if layer(b) < layer(a)}


def demo_project(into: Path, given: Path | None) -> Path:
    if given is not None:
        shutil.copytree(given, into, ignore=shutil.ignore_patterns(".restoro", "out"))
        return into / "restoro.yaml"
    try:
        from restoro.cli.demo import make_demo
    except ImportError:
        from restoro.demo import make_demo  # type: ignore[no-redef]
    return Path(make_demo(into))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--project", type=Path, help="a demo project to copy (source + manifest)")
    ap.add_argument("--edges", action="store_true", help="list the returns and climbs")
    args = ap.parse_args()
    import restoro
    from restoro.cli.app import main as cli

    print(f"tree: {Path(restoro.__file__).parent.parent}", file=sys.stderr)
    tmp = Path(tempfile.mkdtemp(prefix="restoro-trace-"))
    try:
        manifest = demo_project(tmp / "demo", args.project)
        trace = PathTrace()
        threading.setprofile(trace.hook)
        sys.setprofile(trace.hook)
        try:
            code = cli(["build", "-f", str(manifest), "--jobs", "1"])
        finally:
            sys.setprofile(None)
            threading.setprofile(None)  # type: ignore[arg-type]
        if code != 0:
            print(f"the build failed (exit {code})", file=sys.stderr)
            return 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    climbs = trace.climbs()
    print(f"modules entered: {len(trace.entered)}")
    print(f"returns to a module it had left: {len(trace.returns)}")
    print(f"climbs back up a layer: {len(climbs)}")
    if args.edges:
        for title, pairs in (("returns", trace.returns), ("climbs", climbs)):
            print(f"\n{title}:")
            for a, b in sorted(pairs):
                print(f"  {a} ({layer(a)}) -> {b} ({layer(b)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
