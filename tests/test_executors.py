"""Executors are listed in one place (restoro/plan/executors.py): the build, the config file and
the CLI all take their names from that list, and a new executor is one class plus one entry."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from buildkit import build

from restoro.config import load_file
from restoro.errors import UsageError
from restoro.plan import executors
from restoro.plan.local_executor import LocalRun

if TYPE_CHECKING:
    from pathlib import Path

RAN: list[str] = []


class Counting(LocalRun):
    """A new executor: runs like the local one and counts what it ran."""

    def run(self, n: Any, spec: Any) -> Any:
        RAN.append(n.id)
        return super().run(n, spec)


def test_the_list_names_local_and_ray() -> None:
    assert executors.names()[:2] == ["local", "ray"]
    assert executors.choices() == "'local' or 'ray'"
    with pytest.raises(UsageError, match="unknown executor 'slurm'") as e:
        executors.get("slurm")
    assert e.value.hint == "use local or ray"


def test_config_accepts_what_the_list_names(tmp_path: Path, monkeypatch: Any) -> None:
    toml = tmp_path / "restoro.toml"
    toml.write_text("[build]\nexecutor = 'counting'\n", encoding="utf-8")
    with pytest.raises(UsageError, match="build.executor: Input should be 'local' or 'ray'"):
        load_file(toml)
    entry = executors.ExecutorKind("counting", f"{__name__}:Counting", "counts")
    monkeypatch.setattr(executors, "EXECUTORS", (*executors.EXECUTORS, entry))
    assert load_file(toml).build.executor == "counting"
    assert executors.choices() == "'local', 'ray' or 'counting'"


@pytest.mark.slow
def test_a_listed_executor_runs_the_cache_misses(workspace: Path, monkeypatch: Any) -> None:
    entry = executors.ExecutorKind("counting", f"{__name__}:Counting", "counts")
    monkeypatch.setattr(executors, "EXECUTORS", (*executors.EXECUTORS, entry))
    RAN.clear()
    first = build(workspace, executor="counting")
    ran = {r.id for r in first.records if r.status == "executed"}
    assert ran and set(RAN) == ran
    RAN.clear()
    again = build(workspace, executor="counting")
    assert again.executed == 0 and RAN == []
