"""Findings → verdict: which shots and deliverables fail, and the build error that says so."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from restoro.errors import BuildFailed

if TYPE_CHECKING:
    from collections.abc import Mapping

    from restoro.engine.events import EventBus
    from restoro.engine.store import ActionResult


class QcFailed(BuildFailed):
    """QC found errors; the outputs were written, but the build is not approved."""

    code = "E800"

    def __init__(self, message: str, failures: dict[str, list[dict[str, Any]]]) -> None:
        super().__init__(
            message,
            hint="open the QC report (`restoro qc`), fix the shots or change the `qc:` "
            "thresholds; `restoro build --no-qc` skips QC",
        )
        self.failures = failures


def findings(meta: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every finding of one QC result (per-shot: all checks'; per-deliverable: its own)."""
    if meta.get("scope") == "deliverable":
        return list(meta.get("findings", []))
    return [f for c in meta.get("checks", {}).values() for f in c.get("findings", [])]


def failures(results: Mapping[str, ActionResult]) -> dict[str, list[dict[str, Any]]]:
    """QC node id minus ``/qc`` (a shot id or ``title/deliverable``) → its error findings."""
    out: dict[str, list[dict[str, Any]]] = {}
    for nid in sorted(k for k in results if k.endswith("/qc")):
        errs = [f for f in findings(results[nid].meta) if f["severity"] == "error"]
        if errs:
            out[nid.removesuffix("/qc")] = errs
    return out


def summary_lines(fails: Mapping[str, list[dict[str, Any]]]) -> list[str]:
    """One line per failing shot or deliverable."""
    return [
        f"{what}: " + "; ".join(f"{f['check']}: {f['message']}" for f in errs)
        for what, errs in fails.items()
    ]


def verdict(results: Mapping[str, ActionResult], events: EventBus) -> QcFailed | None:
    """Emit the ``qc`` event; the error to raise once the build is done, or None."""
    fails = failures(results)
    checked = sum(1 for k in results if k.endswith("/qc"))
    events.emit("qc", checked=checked, failing=sorted(fails))
    if fails:
        lines = summary_lines(fails)
        n = len(fails)
        return QcFailed(
            f"QC failed for {n} shot{'s' if n != 1 else ''}/deliverable"
            f"{'s' if n != 1 else ''}:\n  " + "\n  ".join(lines),
            fails,
        )
    return None
