"""The QC pack: every QC result of a build in one action-cache entry.

A ``qc`` action has no outputs: its meta is its whole result, and its key says exactly what it
checked (the frames' digests, the checks' ids, versions and thresholds). A cached build of a
500-shot title would read 500 small ``ac/`` entries just to learn that nothing changed; the
pack holds all their metas, by key, in one entry that the builder reads once. A key the pack
lacks (a changed shot or threshold) is looked up, or run, as usual, and the pack is rewritten
when the set of keys changed. Keys are not affected: a pack hit is the same result the
action's own entry holds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable

    from restoro.engine.graph import ActionSpec
    from restoro.engine.store import ActionResult, Lookup, Store

QC_PACK_ID = "#qc-pack"
"""The pack's action id, and the node id of its ref (no node id starts with ``#``)."""
QC_PACK_VERSION = 1


class QcPack:
    """The pack of one variant's last build (``ref``: its ref in the store's state)."""

    def __init__(self, store: Store, ref: str) -> None:
        self.store = store
        self.ref = ref
        self.entries: dict[str, dict[str, Any]] = {}
        self.key: str | None = None
        """The key of the pack loaded or last saved."""

    def load(self) -> None:
        """Read the pack the ref names; nothing when there is none or it is unreadable."""
        pack_key = self.store.state.get_ref(self.ref)
        if not pack_key:
            return
        try:
            lk = self.store.lookup(pack_key)
        except ValueError:  # not an action key: ignore it, the next build rewrites it
            return
        entries = lk.result.meta.get("entries") if lk.result is not None else None
        if isinstance(entries, dict):
            self.entries = entries
            self.key = pack_key

    def hit(self, spec: ActionSpec, key: str, key_json: dict[str, Any]) -> Lookup | None:
        """The cache hit the pack holds for ``key`` (a ``qc`` action's), or None."""
        meta = self.entries.get(key) if spec.stage == "qc" else None
        if meta is None:
            return None
        from restoro.engine.store import ActionResult, Lookup

        return Lookup("hit", ActionResult(key, spec.id, key_json, {}, meta=meta))

    def save(self, results: Iterable[ActionResult]) -> str | None:
        """Write a pack of ``results``' QC metas when its keys differ from the loaded one;
        the new pack's key (for the ref), or None when nothing was written."""
        entries = {
            r.key: r.meta for r in results if not r.outputs and r.key_json.get("stage") == "qc"
        }
        if not entries or entries.keys() == self.entries.keys():
            return None
        from restoro.engine.keys import key_text
        from restoro.engine.store import ActionResult

        fields = {"stage": "qc-pack", "version": QC_PACK_VERSION, "keys": sorted(entries)}
        pack_key, key_json, _ = key_text(fields)
        self.store.put_action(
            ActionResult(pack_key, QC_PACK_ID, key_json, {}, meta={"entries": entries})
        )
        self.entries, self.key = entries, pack_key
        return pack_key
