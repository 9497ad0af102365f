"""``restoro cache push|pull``: sync the local store with a shared one: only what is missing.

Blobs go first (each verified against its digest on both sides), action entries last and only
where absent, so a reader of the destination never sees an entry whose outputs are not there.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from restoro.cli import options as O

if TYPE_CHECKING:
    from restoro.engine.store import Store


@dataclass
class SyncReport:
    blobs_copied: int = 0
    bytes_copied: int = 0
    blobs_present: int = 0
    actions_copied: int = 0
    actions_present: int = 0
    skipped_bad: int = 0


def sync_stores(src: Store, dst: Store) -> SyncReport:
    """Copy into ``dst`` every verified blob and action entry of ``src`` that ``dst`` lacks."""
    import shutil

    report = SyncReport()
    dst.check_writable()
    for path, digest in src._blob_files():
        if digest is None:
            continue
        if dst.has_blob(digest) and dst.verify_blob(digest):
            report.blobs_present += 1
            continue
        if not src.verify_blob(digest):
            report.skipped_bad += 1
            continue
        tmp = dst.temp_path()
        shutil.copyfile(path, tmp)
        out = dst.put_file(tmp)
        if out.digest != digest:  # changed under us: put_file committed it under its real name
            report.skipped_bad += 1
            continue
        report.blobs_copied += 1
        report.bytes_copied += out.size
    for result in src.iter_actions():
        if dst.lookup(result.key).status == "hit":
            report.actions_present += 1
            continue
        if any(not dst.has_blob(o.digest) for o in result.outputs.values()):
            report.skipped_bad += 1  # its outputs were bad in the source
            continue
        dst.put_action_if_absent(result)
        report.actions_copied += 1
    src.state.flush()
    dst.state.flush()
    return report


def _run(manifest: Path | None, remote: str, push: bool, as_json: bool) -> None:
    from restoro.engine.store import Store, store_root
    from restoro.engine.workspace import Workspace, find_manifest

    ws = Workspace(find_manifest(manifest))
    other = Store(store_root(remote))
    try:
        src, dst = (ws.store, other) if push else (other, ws.store)
        report = sync_stores(src, dst)
    finally:
        ws.close()
        other.close()
    if as_json:
        import json
        import sys

        sys.stdout.write(json.dumps({"event": "cache-sync", **report.__dict__}) + "\n")
    else:
        print(
            f"{'pushed' if push else 'pulled'} {report.blobs_copied} blobs "
            f"({report.bytes_copied} bytes) and {report.actions_copied} actions; "
            f"{report.blobs_present} blobs and {report.actions_present} actions already there"
            + (f"; {report.skipped_bad} bad items skipped" if report.skipped_bad else "")
        )


Remote = Annotated[
    str,
    typer.Option("--to", "--from", help="The other store: a path or file:// URL."),
]


def register(app: typer.Typer) -> None:
    cache = next(g.typer_instance for g in app.registered_groups if g.name == "cache")
    assert cache is not None

    @cache.command("push")
    def cache_push(remote: Remote, manifest: O.Manifest = None, json: O.Json = False) -> None:
        """Copy what the local store has and the other store lacks (blobs, then entries)."""
        _run(manifest, remote, True, json)

    @cache.command("pull")
    def cache_pull(remote: Remote, manifest: O.Manifest = None, json: O.Json = False) -> None:
        """Copy what the other store has and the local store lacks (blobs, then entries)."""
        _run(manifest, remote, False, json)
