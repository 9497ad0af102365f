"""The ``restoro`` command: a thin typer shell over the library.

Each command loads what it needs, calls one library function, and renders the result. Errors
are mapped to exit statuses in one table (``restoro.cli.errors``): 2 for invalid input, 1 for a
build or QC failure.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

# Start-up (typer, pydantic and their models: many small objects, almost none in cycles) with
# fewer passes of the cyclic GC; the threshold is restored once the commands are registered, and
# a command runs under ``fewer_gc_passes(pause=False)`` (a build's walk pauses the GC but for
# its actions: restoro.engine.gcpause).
_GC_SAVED = gc.get_threshold()
gc.set_threshold(max(_GC_SAVED[0], 100_000), _GC_SAVED[1], _GC_SAVED[2])

# restoro uses no pydantic plugin; looking for them reads the entry points of every installed
# distribution (~10 ms of each command's start). A PYDANTIC_DISABLE_PLUGINS the user set, even
# empty, is kept (docs/performance.md).
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

import typer  # noqa: E402

from restoro.cli import options as O  # noqa: E402

_APP_SETTINGS: dict[str, Any] = {
    "name": "restoro",
    "help": "Build film and TV restorations from one declarative manifest.",
    "no_args_is_help": True,
    "add_completion": False,
    "pretty_exceptions_enable": False,
}


def _executor_help() -> str:
    """The executors of restoro/plan/executors.py, for ``--executor``'s help."""
    from restoro.plan.executors import help_text

    return help_text()


app = typer.Typer(**_APP_SETTINGS)
cache_app = typer.Typer(help="Inspect, verify and clean the store.", no_args_is_help=True)
app.add_typer(cache_app, name="cache")


def _workspace(manifest: Path | None, store: str | None = None) -> Any:
    from restoro.plan.workspace import Workspace, check_store, find_manifest

    if store is None:
        return Workspace(find_manifest(manifest))
    check_store(store)  # before any work: a clear error, not a failed action
    return Workspace(find_manifest(manifest), store_url=store)


StoreURL = Annotated[
    str | None,
    typer.Option(
        "--store",
        help="The store: a path, file:// or s3://bucket/prefix URL (default: .restoro).",
    ),
]


def _echo_json(obj: Any) -> None:
    import json

    sys.stdout.write(json.dumps(obj, separators=(",", ":"), default=str) + "\n")


@app.command()
def validate(
    manifest: O.Manifest = None,
    json: O.Json = False,
    media: Annotated[
        bool,
        typer.Option(
            "--media/--no-media", help="Also probe sources and check timecodes against them."
        ),
    ] = True,
) -> None:
    """Check the manifest (and, unless --no-media, its sources) without building anything."""
    ws = _workspace(manifest)
    if media:
        ws.preflight(sorted(ws.manifest.titles))
        for title, message in ws.source_warnings(sorted(ws.manifest.titles)):
            print(f"warning: {title}: {message}", file=sys.stderr)
    if json:
        _echo_json(
            {"event": "valid", "manifest": str(ws.manifest_path), "digest": ws.loaded.digest}
        )
    else:
        print(
            f"{ws.manifest_path}: ok ({len(ws.manifest.titles)} titles, "
            f"{len(ws.manifest.deliverables)} deliverables)"
        )


@app.command()
def probe(
    source: Annotated[
        Path, typer.Argument(help="A media file, or a DVD-Video disc (folder or .iso).")
    ],
    json: O.Json = False,
) -> None:
    """Show what restoro sees in a source: streams, rate, field order, aspect, colour; for a
    DVD-Video disc, every title: frames, duration, chapters, audio, embedded captions."""
    from restoro.cli.show import show_disc, show_probe
    from restoro.media.dvd import is_disc, probe_disc
    from restoro.media.probe import probe as do_probe

    if source.exists() and is_disc(source):
        disc = probe_disc(source)
        if json:
            _echo_json(disc.model_dump(mode="json"))
        else:
            show_disc(disc)
        return
    info = do_probe(source, cadence=True)
    if json:
        _echo_json(info.model_dump(mode="json"))
    else:
        show_probe(info)


def _settings(manifest: Path | None, **flags: Any) -> Any:
    """Flags merged over ``restoro.toml`` beside the manifest and the user's config file."""
    from restoro.config import settings
    from restoro.plan.workspace import find_manifest

    return settings(find_manifest(manifest), **flags)


def _builder(
    manifest: Path | None,
    targets: list[str] | None,
    variant: str | None,
    jobs: int,
    device: str,
    store: str | None = None,
    **kw: Any,
) -> Any:
    from restoro.plan.build import Builder, BuildOptions

    ws = _workspace(manifest, store)
    return Builder(
        ws, BuildOptions(targets=targets or [], variant=variant, jobs=jobs, device=device, **kw)
    )


@app.command()
def plan(
    targets: Annotated[
        list[str] | None, typer.Argument(help="Deliverables, titles or shot ids.")
    ] = None,
    manifest: O.Manifest = None,
    variant: O.Variant = None,
    jobs: O.JobsOrConfig = None,
    device: O.DeviceOrConfig = None,
    json: O.Json = False,
    no_qc: Annotated[
        bool, typer.Option("--no-qc", help="The plan of `restoro build --no-qc`.")
    ] = False,
) -> None:
    """Show what a build would run, and why, without running it."""
    from restoro.cli.show import show_plan

    s = _settings(manifest, jobs=jobs, device=device)
    kw = {"qc": False} if no_qc else {}
    b = _builder(manifest, targets, variant, s.jobs, s.device, s.store, **kw)
    if not json:
        b.events.subscribe(_quiet_waiting)  # e.g. a master that waits for approvals
    report = b.plan()
    show_plan(report, as_json=json)


@app.command()
def build(
    targets: Annotated[
        list[str] | None, typer.Argument(help="Deliverables, titles or shot ids.")
    ] = None,
    manifest: O.Manifest = None,
    variant: O.Variant = None,
    jobs: O.JobsOrConfig = None,
    device: O.DeviceOrConfig = None,
    json: O.Json = False,
    keep_going: Annotated[
        bool,
        typer.Option(
            "--keep-going", "-k", help="Run everything that does not depend on a failure."
        ),
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Rerun every selected action.")] = False,
    lock_timeout: Annotated[
        float,
        typer.Option("--lock-timeout", help="Seconds to wait for another build's workspace lock."),
    ] = 600.0,
    no_qc: Annotated[bool, typer.Option("--no-qc", help="Skip QC (docs/qc.md).")] = False,
    executor: Annotated[
        str | None,
        typer.Option("--executor", help=_executor_help() + "."),
    ] = None,
    ray_address: Annotated[
        str | None,
        typer.Option("--ray-address", help="host:port of a Ray cluster (default: start one)."),
    ] = None,
    ray_resource: Annotated[
        list[str] | None,
        typer.Option("--ray-resource", help="NAME=AMOUNT every Ray task asks for (repeatable)."),
    ] = None,
    store: StoreURL = None,
) -> None:
    """Build deliverables, running only what changed."""
    from restoro.cli.render import JsonLines, summary_line
    from restoro.errors import UsageError

    if executor is not None:
        from restoro.plan.executors import get

        get(executor)  # UsageError for an executor not listed in restoro/plan/executors.py
    if not lock_timeout >= 0:  # also refuses nan
        raise UsageError(
            f"--lock-timeout {lock_timeout:g}: expected seconds, 0 or more",
            hint="0 fails at once when another build holds the workspace lock; the default "
            "waits 600 s",
        )
    s = _settings(
        manifest,
        executor=executor,
        jobs=jobs,
        device=device,
        store=store,
        ray_address=ray_address,
        ray_resources=_ray_resources(ray_resource) if ray_resource else None,
    )
    b = _builder(
        manifest,
        targets,
        variant,
        s.jobs,
        s.device,
        s.store,
        executor=s.executor,
        ray_address=s.ray_address,
        ray_resources=s.ray_resources or {},
        batch_size=s.batch_size,
        retries=s.retries,
        keep_going=keep_going,
        force=force,
        lock_timeout=lock_timeout,
        **({"qc": False} if no_qc else {}),
    )
    if json:
        b.events.subscribe(JsonLines())
        b.build()
        return
    if sys.stderr.isatty():
        from restoro.cli.progress_view import RichProgress

        with RichProgress() as view:
            b.events.subscribe(view)
            report = b.build()
    else:
        b.events.subscribe(_quiet_waiting)
        report = b.build()
    print(summary_line(report.executed, report.cached, report.failed, report.outputs))


def _ray_resources(items: list[str]) -> dict[str, float]:
    from restoro.farm.ray_executor import parse_resources  # only here: ~6 ms to import

    return parse_resources(items)


def _quiet_waiting(ev: dict[str, Any]) -> None:
    if ev["event"] == "waiting":
        print(f"waiting for the workspace lock held by {ev['holder']}", file=sys.stderr)
    elif ev["event"] == "warning":
        print(f"warning: {ev['title']}: {ev['message']}", file=sys.stderr)


@app.command()
def status(
    manifest: O.Manifest = None,
    variant: O.Variant = None,
    json: O.Json = False,
    no_qc: Annotated[
        bool, typer.Option("--no-qc", help="The status of `restoro build --no-qc`'s actions.")
    ] = False,
) -> None:
    """Is everything up to date? Counts of cached and stale actions, and the deliverables."""
    from restoro.cli.show import show_status

    s = _settings(manifest)
    kw = {"qc": False} if no_qc else {}
    b = _builder(manifest, None, variant, 1, s.device, s.store, **kw)
    report = b.plan()
    show_status(b, report, as_json=json)


@app.command()
def shots(
    title: Annotated[str, typer.Argument(help="A title of the manifest.")],
    manifest: O.Manifest = None,
    json: O.Json = False,
    thumbnails: Annotated[bool, typer.Option(help="Write OUTPUT/shots/TITLE/*.png")] = False,
) -> None:
    """List a title's shots as the last build detected them (from restoro.lock)."""
    from restoro.cli.show import show_shots

    show_shots(_workspace(manifest), title, as_json=json, thumbnails=thumbnails)


@app.command()
def explain(
    target: Annotated[
        str, typer.Argument(help="SHOT or SHOT/STAGE, e.g. 'ep1@00:00:01:00/upscale'.")
    ],
    manifest: O.Manifest = None,
    variant: O.Variant = None,
    json: O.Json = False,
) -> None:
    """Why an action would run (or is cached): its key fields, diffed against the last build."""
    from restoro.cli.show import show_explain

    shot, _, stage = target.partition("/")
    b = _builder(manifest, [shot] if "@" in shot else None, variant, 1, "auto")
    report = b.plan()
    show_explain(b, report, target, as_json=json)


@app.command()
def schema(
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write it.")] = Path(
        "schemas/restoro.schema.json"
    ),
    stdout: Annotated[bool, typer.Option("--stdout", help="Print instead of writing.")] = False,
) -> None:
    """Write the manifest's JSON schema (for editors) from the models."""
    from restoro.manifest.schema import manifest_json_schema, write_schema

    if stdout:
        import json

        print(json.dumps(manifest_json_schema(), indent=2, sort_keys=True))
    else:
        write_schema(output)
        print(f"wrote {output}")


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="Where to create restoro.yaml.")] = Path("."),
    source: Annotated[Path | None, typer.Option("--source", help="A first source file.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing manifest.")] = False,
) -> None:
    """Create a starter restoro.yaml."""
    from restoro.project import init_project

    path = init_project(directory, source=source, force=force)
    print(f"wrote {path}; next: restoro validate -f {path}")


@app.command()
def demo(
    directory: Annotated[Path, typer.Argument(help="Where to put the demo project.")] = Path(
        "restoro-demo"
    ),
    jobs: O.Jobs = 2,
    json: O.Json = False,
) -> None:
    """Make a small interlaced source, write a manifest, build a ProRes master (offline, CPU)."""
    from restoro.cli.demo import run_demo

    run_demo(directory, jobs=jobs, as_json=json)


@cache_app.command("ls")
def cache_ls(manifest: O.Manifest = None, json: O.Json = False, store: StoreURL = None) -> None:
    """Entries and sizes in the store."""
    from restoro.cli.show import show_cache_ls

    show_cache_ls(_workspace(manifest, store), as_json=json)


@cache_app.command("verify")
def cache_verify(manifest: O.Manifest = None, json: O.Json = False, store: StoreURL = None) -> None:
    """Rehash every blob; check every entry's checksum, key and outputs; bad ones are
    quarantined (exit 1 if any)."""
    from restoro.cli.show import show_cache_verify

    if not show_cache_verify(_workspace(manifest, store), as_json=json):
        raise typer.Exit(1)


@cache_app.command("gc")
def cache_gc(
    manifest: O.Manifest = None,
    json: O.Json = False,
    all_variants: Annotated[
        bool,
        typer.Option(
            "--keep-variants/--drop-variants", help="Keep what the manifest's variants use."
        ),
    ] = True,
) -> None:
    """Delete store entries the current manifest no longer uses."""
    from restoro.cli.show import show_cache_gc

    show_cache_gc(_workspace(manifest), keep_variants=all_variants, as_json=json)


# Command groups that live in their own modules; each has ``register(app: typer.Typer)``.
COMMAND_MODULES: tuple[str, ...] = (
    "restoro.cli.captions_cmd",
    "restoro.cli.imf_cmd",
    "restoro.cli.models_cmd",
    "restoro.cli.compare_cmd",
    "restoro.cli.cache_sync_cmd",
    "restoro.cli.qc_cmd",
    "restoro.cli.check_cmd",
    "restoro.cli.review_cmd",
)


def _register_command_modules() -> None:
    import importlib

    for name in COMMAND_MODULES:
        importlib.import_module(name).register(app)


_register_command_modules()
gc.set_threshold(*_GC_SAVED)


def _freeze_at_exit() -> None:
    """At exit, move every object to the GC's permanent generation: the interpreter's last
    collection then has nothing to traverse (after a no-op build of 2,000 shots it took ~0.1 s
    of a ~0.6 s run). Run by ``atexit``, before that collection; finalizers registered with
    ``atexit``/``weakref.finalize`` still run, and objects are still freed by reference count."""
    gc.freeze()


def _app_for(argv: list[str]) -> typer.Typer:
    """The app with only the command that ``argv`` names, when it names one: typer turns every
    registered command into a click command on each run (~10 ms for all of restoro's), and
    ``restoro build`` needs one. Usage, help and errors of that command are the same (the
    group keeps its name and a callback, so it stays a group); anything else (no command, an
    option first, an unknown name) runs the whole app."""
    if not argv or argv[0].startswith("-"):
        return app
    from typer.main import get_command_name

    name = argv[0]
    commands = [
        c
        for c in app.registered_commands
        if (c.name or get_command_name(getattr(c.callback, "__name__", ""))) == name
    ]
    groups = [g for g in app.registered_groups if g.name == name]
    if len(commands) + len(groups) != 1 or app.registered_callback is not None:
        return app
    lean = typer.Typer(**_APP_SETTINGS)
    lean.registered_commands = commands
    lean.registered_groups = groups
    lean.callback()(_no_options)
    return lean


def _no_options() -> None:
    """Build film and TV restorations from one declarative manifest."""


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app and map errors to exit statuses."""
    import atexit

    from restoro.cli.errors import report
    from restoro.engine.gcpause import fewer_gc_passes

    atexit.unregister(_freeze_at_exit)  # once per process, however often main runs
    atexit.register(_freeze_at_exit)
    run: Callable[..., Any] = _app_for(argv if argv is not None else sys.argv[1:])
    try:
        # Without standalone mode click returns a command's ``typer.Exit`` code, not raise it.
        with fewer_gc_passes(pause=False):  # a build's walk pauses it (restoro.plan.build)
            code = run(args=argv, standalone_mode=False)
        if isinstance(code, int) and not isinstance(code, bool):
            return code
    except typer.Exit as exc:
        return int(exc.exit_code or 0)
    except SystemExit as exc:  # click usage errors already printed
        return int(exc.code or 0)
    except Exception as exc:  # noqa: BLE001 - the one place errors become exit codes
        # typer carries its own copy of click's exceptions; match both by shape.
        names = {c.__name__ for c in type(exc).__mro__}
        if "UsageError" in names and hasattr(exc, "format_message"):
            # click's own argument errors, in restoro's shape: the message names the option.
            ctx = getattr(exc, "ctx", None)
            sub = ctx.command_path.split()[1:] if ctx is not None else []
            where = " ".join(["restoro", *sub])
            print(f"error[E101]: {exc.format_message()}", file=sys.stderr)
            print(f"  hint: see `{where} --help` for the arguments", file=sys.stderr)
            return 2
        if "Abort" in names:
            return 130
        return report(exc)
    except KeyboardInterrupt as exc:
        return report(exc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
