"""What a build needs from a Ray cluster, checked against its alive nodes before any work.

``plan_needs`` reads the manifest (the pipelines of the selected titles, their overrides'
pipelines, ``--ray-resource``, ``--device``) without touching sources or the store;
``check_cluster`` raises a ``UsageError`` naming the first need that no single alive node
offers, with what every node does offer and a hint.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from restoro.errors import UsageError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from restoro.engine.build import BuildOptions
    from restoro.engine.workspace import Workspace

MIB = 1024 * 1024


@dataclass(frozen=True)
class Need:
    """One Ray resource some action of the build asks for, on one node."""

    resource: str  # Ray's name: CPU, GPU, memory (bytes) or a custom label
    amount: float
    why: str
    hint: str


def used_stages(ws: Workspace, titles: Sequence[str]) -> list[str]:
    """Stage ids the selected titles can run: their pipelines and every override's pipeline."""
    m = ws.manifest
    names: list[str] = []
    for title in titles:
        t = m.titles[title]
        for pipeline in (t.pipeline, *(o.pipeline for o in t.overrides if o.pipeline)):
            for entry in m.pipelines.get(pipeline, ()):
                if entry.stage not in names:
                    names.append(entry.stage)
    return names


def plan_needs(ws: Workspace, titles: Sequence[str], opts: BuildOptions) -> list[Need]:
    """Every resource the plan of ``titles`` can ask one node for."""
    from restoro.stages import registry

    needs = [
        Need(
            "CPU",
            1,
            "every action needs a CPU",
            "start workers with `ray start --num-cpus=N`",
        )
    ]
    for name, amount in opts.ray_resources.items():
        needs.append(
            Need(
                name,
                amount,
                f"--ray-resource {name}={amount:g} is asked for by every action",
                "start a worker with `ray start --resources='{\"" + name + f"\": {amount:g}}}'`"
                ", or drop the --ray-resource",
            )
        )
    descriptors = [
        (sid, cls.descriptor)
        for sid in used_stages(ws, titles)
        if (cls := registry.get(sid)) is not None
    ]
    gpu_stages = [sid for sid, d in descriptors if d.gpu]
    if gpu_stages and opts.device.startswith("cuda"):
        needs.append(
            Need(
                "GPU",
                1,
                f"--device {opts.device} and GPU stage{'s' if len(gpu_stages) > 1 else ''} "
                f"{', '.join(gpu_stages)}",
                "add a GPU worker (`ray start --num-gpus=1`), or build with --device cpu (or auto)",
            )
        )
    if descriptors:
        sid, d = max(descriptors, key=lambda it: it[1].memory_mb)
        needs.append(
            Need(
                "memory",
                d.memory_mb * MIB,
                f"stage {sid} declares memory_mb={d.memory_mb}",
                "add a worker with more memory (`ray start --memory=BYTES`), or lower the "
                "stage's requirements",
            )
        )
    return needs


def _amount(resource: str, value: float) -> str:
    if resource in ("memory", "object_store_memory"):
        return f"{value / MIB:,.0f} MiB"
    return f"{value:g}"


def describe_node(node: Mapping[str, Any]) -> str:
    """``127.0.0.2 [1a2b3c4d]: CPU 1, memory 11,264 MiB, w1 1`` (no ``node:`` entries)."""
    res: Mapping[str, float] = node.get("Resources", {})
    order = ["CPU", "GPU", "memory"]
    keys = [k for k in order if k in res] + sorted(
        k
        for k in res
        if k not in order and not k.startswith("node:") and k != "object_store_memory"
    )
    offer = ", ".join(f"{k} {_amount(k, res[k])}" for k in keys) or "nothing"
    return f"{node.get('NodeManagerAddress', '?')} [{str(node.get('NodeID', ''))[:8]}]: {offer}"


def check_cluster(nodes: Sequence[Mapping[str, Any]], needs: Sequence[Need]) -> None:
    """UsageError for the first need no alive node offers (each need on a single node)."""
    alive = [n for n in nodes if n.get("Alive", True)]
    for need in needs:
        best = max((n.get("Resources", {}).get(need.resource, 0.0) for n in alive), default=0.0)
        if best >= need.amount:
            continue
        offers = "; ".join(describe_node(n) for n in alive) or "no alive node"
        raise UsageError(
            f"no node of the Ray cluster offers {need.resource} "
            f"{_amount(need.resource, need.amount)} ({need.why}); the nodes offer: {offers}",
            hint=need.hint,
        )
