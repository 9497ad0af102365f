"""What a build is asked to do (``BuildOptions``) and what it did (``BuildReport``, one
``ActionRecord`` per action): plain data the builder fills in and the CLI, QC and ``check``
read. ``restoro.plan.build`` re-exports them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence


@dataclass
class BuildOptions:
    targets: Sequence[str] = ()
    variant: str | None = None
    jobs: int = 2
    device: str = "auto"
    keep_going: bool = False
    force: bool = False
    lock_timeout: float = 600.0
    qc: bool | None = None
    """QC nodes: None runs them when the manifest has a ``qc:`` section, True always (``restoro
    qc``), False never (``--no-qc``)."""
    executor: str = "local"
    """``local`` (threads on this machine) or ``ray`` (tasks on a Ray cluster, docs/farm.md)."""
    ray_address: str | None = None
    """``host:port`` of a running Ray cluster; None starts (or joins) a local one."""
    ray_resources: Mapping[str, float] = field(default_factory=dict)
    """Custom Ray resources every task asks for (e.g. ``{"farm": 1}`` to pin work to labelled
    nodes)."""
    batch_size: int = 0
    """Actions per Ray task; 0 sizes batches from the queue and the cluster's slots."""
    retries: int = 2
    """Times an action whose worker died is resubmitted before the build fails."""


@dataclass(slots=True)
class ActionRecord:
    id: str
    stage: str
    title: str
    shot: str
    status: str  # cached | executed | failed | skipped | run | pending
    reason: str = ""
    key: str = ""
    seconds: float = 0.0
    cpu_s: float = 0.0
    """For an action this build ran here: CPU seconds of the build process and its child
    processes while it ran (``ExecResult.cpu_s``); 0 otherwise."""
    error: str = ""
    hint: str = field(default="", repr=False)
    """The failure's hint (for a worker failure: host and the tail of its log)."""
    key_json: dict[str, Any] | None = field(default=None, repr=False)
    old_key_text: str | None = field(default=None, repr=False)

    @property
    def old_key_json(self) -> dict[str, Any] | None:
        """The key fields this action had in the last build that planned it."""
        return json.loads(self.old_key_text) if self.old_key_text else None


@dataclass
class BuildReport:
    records: list[ActionRecord] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    shots: dict[str, int] = field(default_factory=dict)

    def count(self, status: str) -> int:
        return sum(1 for r in self.records if r.status == status)

    @property
    def executed(self) -> int:
        return self.count("executed")

    @property
    def cached(self) -> int:
        return self.count("cached")

    @property
    def failed(self) -> int:
        return self.count("failed")


@dataclass
class Selection:
    titles: list[str]
    deliverables: list[str]
    shots: set[str] | None  # None: every shot
