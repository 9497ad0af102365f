"""``restoro.review.yaml``: the reviewers' decisions per shot, kept beside the manifest in git.

One entry per shot id, sorted, in block style, so a decision is a small diff::

    restoro-review: 1
    shots:
      ep1@00:00:01:00:
        decision: approved        # approved | rejected | note
        variant: safe             # the variant approved (or rejected); `base` = no --variant
        digest: xxh3:4f1c...      # that variant's output of the shot, as reviewed
        reviewer: Ada
        time: '2026-12-05T18:00:00Z'
        comment: face is soft in the clean version

A shot's review status follows from its entry and the shot's current outputs (``status``):
``unreviewed`` (no entry), ``approved: <variant>``, ``rejected``, or ``needs review`` (a note, or
the reviewed variant's output has changed since: its digest differs). Writers take a file lock
and re-read the file under it (``record``), so concurrent reviewers never lose a decision; the
file is replaced atomically.
"""

from __future__ import annotations

import fcntl
import os
import re
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

import yaml

from restoro.errors import InputError

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from pathlib import Path

REVIEW_FILE = "restoro.review.yaml"
FORMAT = 1
BASE = "base"
"""The name under which reviews refer to the build without ``--variant``."""

DECISIONS = ("approved", "rejected", "note")
Decision = Literal["approved", "rejected", "note"]
STATUSES = ("unreviewed", "approved", "rejected", "needs review")
_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


class ReviewFileError(InputError):
    """``restoro.review.yaml`` cannot be read: not YAML, or an entry that is not valid."""

    code = "E260"


@dataclass(frozen=True)
class Entry:
    """One shot's decision."""

    shot: str
    decision: Decision
    variant: str | None = None
    digest: str | None = None
    reviewer: str = ""
    time: str = ""
    comment: str = ""

    def as_yaml(self) -> dict[str, Any]:
        out: dict[str, Any] = {"decision": self.decision}
        if self.variant is not None:
            out["variant"] = self.variant
        if self.digest is not None:
            out["digest"] = self.digest
        out["reviewer"] = self.reviewer
        out["time"] = self.time
        if self.comment:
            out["comment"] = self.comment
        return out


def review_path(manifest_path: Path) -> Path:
    """``restoro.review.yaml`` beside the manifest."""
    return manifest_path.parent / REVIEW_FILE


def variant_label(variant: str | None) -> str:
    """The review name of a build's variant: its name, or ``base`` for the build without one."""
    return variant or BASE


def build_variant(label: str) -> str | None:
    """The ``--variant`` value for a review name (``base`` → None)."""
    return None if label == BASE else label


def now() -> str:
    """The current time, UTC, to the second: ``2026-12-05T18:00:00Z``."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def default_reviewer(root: Path) -> str:
    """git's ``user.name`` in the project, else the login name."""
    try:
        out = subprocess.run(
            ["git", "config", "user.name"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        name = out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        name = ""
    return name or os.environ.get("USER", "") or "unknown"


def load(path: Path) -> dict[str, Entry]:
    """The decisions in ``path`` by shot id (empty when the file does not exist)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise ReviewFileError(f"cannot read {path.name}: {exc}", location=str(path)) from exc
    return parse(text, str(path))


def parse(text: str, where: str) -> dict[str, Entry]:
    """Parse the file's text; ``where`` names it in errors."""
    hint = "fix or remove the entry (the file is written by `restoro review`); see docs/review.md"
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        loc = f"{where}:{mark.line + 1}:{mark.column + 1}" if mark is not None else where
        raise ReviewFileError(f"not valid YAML: {exc}", location=loc, hint=hint) from exc
    if doc is None:
        return {}
    if not isinstance(doc, dict) or doc.get("restoro-review") != FORMAT:
        raise ReviewFileError(
            f"not a review file: it must start with 'restoro-review: {FORMAT}'",
            location=where,
            hint=hint,
        )
    shots = doc.get("shots") or {}
    if not isinstance(shots, dict):
        raise ReviewFileError("'shots' must be a map of shot id → decision", location=where)
    out: dict[str, Entry] = {}
    for shot, raw in shots.items():
        out[str(shot)] = _entry(str(shot), raw, where, hint)
    return out


def _entry(shot: str, raw: object, where: str, hint: str) -> Entry:
    loc = f"{where}: shots.{shot}"
    if not isinstance(raw, dict):
        raise ReviewFileError("an entry must be a map", location=loc, hint=hint)
    unknown = set(raw) - {"decision", "variant", "digest", "reviewer", "time", "comment"}
    if unknown:
        raise ReviewFileError(f"unknown key {sorted(unknown)[0]!r}", location=loc, hint=hint)
    decision = raw.get("decision")
    if decision not in DECISIONS:
        raise ReviewFileError(
            f"decision must be one of {', '.join(DECISIONS)}, not {decision!r}",
            location=loc,
            hint=hint,
        )
    variant = raw.get("variant")
    if decision == "approved" and not isinstance(variant, str):
        raise ReviewFileError("an approval must name its variant", location=loc, hint=hint)
    for key in ("variant", "digest", "reviewer", "time", "comment"):
        if raw.get(key) is not None and not isinstance(raw[key], str):
            raise ReviewFileError(f"{key} must be a string", location=loc, hint=hint)
    t = raw.get("time") or ""
    if t and not _TIME.match(t):
        raise ReviewFileError(
            f"time must be UTC as YYYY-MM-DDTHH:MM:SSZ, not {t!r}", location=loc, hint=hint
        )
    return Entry(
        shot=shot,
        decision=decision,
        variant=variant,
        digest=raw.get("digest"),
        reviewer=raw.get("reviewer") or "",
        time=t,
        comment=raw.get("comment") or "",
    )


def dump(entries: Mapping[str, Entry]) -> str:
    """The file's text: entries sorted by shot id, keys in a fixed order, block style."""
    doc = {
        "restoro-review": FORMAT,
        "shots": {shot: entries[shot].as_yaml() for shot in sorted(entries)},
    }
    return yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, allow_unicode=True)


class _Locked:
    """An exclusive ``flock`` on ``<file>.lock`` for one read-modify-write."""

    def __init__(self, path: Path) -> None:
        self.lock = path.with_name(path.name + ".lock")

    def __enter__(self) -> None:
        self._fd = os.open(self.lock, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)


def record(path: Path, entry: Entry) -> dict[str, Entry]:
    """Write ``entry`` (replacing the shot's earlier one) and return all decisions.

    The file is re-read under an exclusive lock and replaced atomically, so a decision written
    by another reviewer in the meantime is kept.
    """
    with _Locked(path):
        entries = load(path)
        entries[entry.shot] = entry
        _write(path, entries)
    return entries


def forget(path: Path, shot: str) -> dict[str, Entry]:
    """Remove a shot's decision (back to ``unreviewed``); returns all decisions."""
    with _Locked(path):
        entries = load(path)
        if entries.pop(shot, None) is not None:
            _write(path, entries)
    return entries


def _write(path: Path, entries: Mapping[str, Entry]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(dump(entries), encoding="utf-8")
    os.replace(tmp, path)


def status(entry: Entry | None, digests: Mapping[str, str | None]) -> str:
    """A shot's review status from its entry and its current output digest per variant label.

    ``needs review`` when the entry is a note, or when the variant it decided on now has an
    output with another digest (the shot changed since it was reviewed). A variant whose output
    is not built (None) does not count as changed.
    """
    if entry is None:
        return "unreviewed"
    if entry.decision == "note":
        return "needs review"
    if entry.variant is not None and entry.digest is not None:
        current = digests.get(entry.variant)
        if current is not None and current != entry.digest:
            return "needs review"
    if entry.decision == "approved":
        return f"approved: {entry.variant}"
    return "rejected"


def status_kind(text: str) -> str:
    """``approved: safe`` → ``approved``; the other statuses unchanged."""
    return text.split(":", 1)[0]


def iter_counts(statuses: Mapping[str, str]) -> Iterator[tuple[str, int]]:
    """(status kind, count) in the order of ``STATUSES``, zero counts included."""
    kinds = [status_kind(s) for s in statuses.values()]
    for k in STATUSES:
        yield k, kinds.count(k)
