"""``restoro cache push|pull``: sync the local store with a shared one: only what is missing.

Blobs go first (each verified against its digest on both sides), action entries last and only
where absent, so a reader of the destination never sees an entry whose outputs are not there.
The other store may be a path, a ``file://`` URL or an object store (``s3://bucket/prefix``):
there one listing says what the object store holds, blobs are uploaded or downloaded straight
between the workspace's store and the object store, and entries are written with an atomic
put-if-absent.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from restoro.cli import options as O

if TYPE_CHECKING:
    from restoro.engine.store import Store
    from restoro.farm.remote import RemoteStore


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


def push_to_remote(local: Store, remote: RemoteStore) -> SyncReport:
    """Upload the verified blobs the object store lacks, then the entries it lacks."""
    from restoro.farm.remote_objects import cas_rel

    report = SyncReport()
    remote.check_writable()
    have = remote.remote_blobs()
    for path, digest in local._blob_files():
        if digest is None:
            continue
        size = path.stat().st_size
        if have.get(digest) == size:
            report.blobs_present += 1
            continue
        if not local.verify_blob(digest):
            report.skipped_bad += 1
            continue
        remote.remote.upload(path, cas_rel(digest))
        have[digest] = size
        report.blobs_copied += 1
        report.bytes_copied += size
    entries = set(remote.remote.listing("ac"))
    for result in local.iter_actions():
        if f"ac/{result.key[:2]}/{result.key[2:]}.json" in entries:
            report.actions_present += 1
            continue
        if any(have.get(o.digest) != o.size for o in result.outputs.values()):
            report.skipped_bad += 1  # its outputs were bad here
            continue
        remote.put_remote_entry_if_absent(result)
        report.actions_copied += 1
    local.state.flush()
    return report


def pull_from_remote(remote: RemoteStore, local: Store) -> SyncReport:
    """Download (and verify) the blobs the local store lacks, then the entries it lacks."""
    from restoro.engine.keys import digest_file
    from restoro.engine.store import parse_entry
    from restoro.farm.remote_objects import cas_rel

    report = SyncReport()
    local.check_writable()
    for digest, size in sorted(remote.remote_blobs().items()):
        if local.has_blob(digest) and local.verify_blob(digest, size):
            report.blobs_present += 1
            continue
        tmp = local.temp_path()
        remote.remote.download(cas_rel(digest), tmp)
        if digest_file(tmp) != digest:
            tmp.unlink()
            remote.quarantine_blob(digest, "content does not match its digest")
            report.skipped_bad += 1
            continue
        local.put_file(tmp)
        report.blobs_copied += 1
        report.bytes_copied += size
    for rel in sorted(remote.remote.listing("ac")):
        key = rel[3:5] + rel[6:].removesuffix(".json")
        if local.lookup(key).status == "hit":
            report.actions_present += 1
            continue
        got = remote.remote.get(rel)
        try:
            result = parse_entry(key, got[0]) if got else None
        except ValueError:
            result = None
        if result is None or any(
            not local.verify_blob(o.digest, o.size) for o in result.outputs.values()
        ):
            report.skipped_bad += 1
            continue
        local.put_action_if_absent(result)
        report.actions_copied += 1
    local.state.flush()
    return report


def _run(manifest: Path | None, remote: str, push: bool, as_json: bool) -> None:
    from restoro.engine.store import Store, store_root
    from restoro.plan.workspace import Workspace, find_manifest, is_remote_store

    ws = Workspace(find_manifest(manifest))
    if is_remote_store(remote):
        from restoro.farm.remote import RemoteStore

        obj = RemoteStore(remote)
        try:
            if push:
                report = push_to_remote(ws.store, obj)
            else:
                obj.check_reachable()  # pulling needs no write access there
                report = pull_from_remote(obj, ws.store)
        finally:
            ws.close()
            obj.close()
    else:
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
    typer.Option(
        "--to", "--from", help="The other store: a path, file:// or s3://bucket/prefix URL."
    ),
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
