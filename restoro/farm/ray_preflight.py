"""What a build needs from a Ray cluster, checked against its alive nodes before any work.

``plan_needs`` reads the manifest (the pipelines of the selected titles, their overrides'
pipelines, ``--ray-resource``, ``--device``) without touching sources or the store;
``check_cluster`` raises a ``UsageError`` naming the first need that no single alive node
offers, with what every node does offer and a hint; then the same for what one action of each
stage asks for at once (``stage_requests``: CPU, GPU, memory and labels together), since a
cluster can offer each resource somewhere and still have no node that fits one action.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from restoro.errors import UsageError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from restoro.engine.records import BuildOptions
    from restoro.engine.store import Store
    from restoro.manifest.model import Manifest


class Workspace(Protocol):
    """What the farm reads of the planner's workspace (``restoro.plan.workspace``)."""

    @property
    def manifest(self) -> Manifest: ...
    @property
    def store(self) -> Store: ...
    @property
    def store_url(self) -> str: ...
    @property
    def sources(self) -> Mapping[str, Any]: ...


class Node(Protocol):
    """What the farm reads of a planner's node (``restoro.plan.nodes.Node``)."""

    @property
    def id(self) -> str: ...
    @property
    def resources(self) -> Mapping[str, int]: ...
    @property
    def memory_mb(self) -> int: ...


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


def stage_requests(
    ws: Workspace, titles: Sequence[str], opts: BuildOptions
) -> list[tuple[str, dict[str, float]]]:
    """Per stage used by ``titles``: what one of its actions asks one node for, together."""
    from restoro.stages import registry

    out = []
    for sid in used_stages(ws, titles):
        cls = registry.get(sid)
        if cls is None:
            continue
        d = cls.descriptor
        amounts = {"CPU": 1.0, **opts.ray_resources}
        if d.gpu and opts.device.startswith("cuda"):
            amounts["GPU"] = 1.0
        if d.memory_mb:
            amounts["memory"] = float(d.memory_mb * MIB)
        out.append((f"stage {sid}", amounts))
    return out


def offers(node: Mapping[str, Any], amounts: Mapping[str, float]) -> bool:
    """Whether ``node`` offers every amount (Ray resource names) at once."""
    res: Mapping[str, float] = node.get("Resources", {})
    return all(res.get(k, 0.0) >= v for k, v in amounts.items() if v)


def describe_amounts(amounts: Mapping[str, float]) -> str:
    """``CPU 1, memory 4,096 MiB, small 1`` (zero amounts left out)."""
    return ", ".join(f"{k} {_amount(k, v)}" for k, v in amounts.items() if v)


def check_fit(nodes: Sequence[Mapping[str, Any]], what: str, amounts: Mapping[str, float]) -> None:
    """UsageError unless one alive node offers all of ``amounts`` (asked for by ``what``)."""
    alive = [n for n in nodes if n.get("Alive", True)]
    if any(offers(n, amounts) for n in alive):
        return
    offer = "; ".join(describe_node(n) for n in alive) or "no alive node"
    raise UsageError(
        f"no single node of the Ray cluster offers what {what} asks for at once "
        f"({describe_amounts(amounts)}); the nodes offer: {offer}",
        hint="start a worker that has all of these (`ray start --num-cpus=N --memory=BYTES "
        "--resources=...`), or lower the stage's requirements",
    )


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


def check_cluster(
    nodes: Sequence[Mapping[str, Any]],
    needs: Sequence[Need],
    together: Sequence[tuple[str, Mapping[str, float]]] = (),
) -> None:
    """UsageError for the first need no alive node offers (each need on a single node), then
    for the first request of ``together`` that no single node offers at once."""
    alive = [n for n in nodes if n.get("Alive", True)]
    for need in needs:
        best = max((n.get("Resources", {}).get(need.resource, 0.0) for n in alive), default=0.0)
        if best >= need.amount:
            continue
        offer = "; ".join(describe_node(n) for n in alive) or "no alive node"
        raise UsageError(
            f"no node of the Ray cluster offers {need.resource} "
            f"{_amount(need.resource, need.amount)} ({need.why}); the nodes offer: {offer}",
            hint=need.hint,
        )
    for what, amounts in together:
        check_fit(nodes, what, amounts)
