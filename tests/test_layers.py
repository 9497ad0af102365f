"""The layering of docs/architecture.md holds: ``lint-imports`` checks the contracts in
pyproject.toml (layers from the CLI down to the engine, no import cycles, independent plugins,
an engine that imports no domain package), and a planted forbidden import makes it fail. The
same contracts also hold counting the imports made only for type checking."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("importlinter")

ROOT = Path(__file__).resolve().parents[1]
LINT = "import sys; from importlinter.cli import lint_imports_command; lint_imports_command()"


def lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    """The real ``lint-imports`` on the restoro package and pyproject.toml found in ``cwd``."""
    return subprocess.run(
        [sys.executable, "-c", LINT, "--no-cache"],
        cwd=cwd,
        env={"PYTHONPATH": str(cwd), "PATH": "/usr/bin:/bin", "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_import_contracts_are_kept() -> None:
    proc = lint_imports(ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "Contracts: 6 kept, 0 broken." in proc.stdout
    for contract in ("Layers:", "No import cycles", "The engine imports no domain package"):
        assert contract in proc.stdout


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """A throwaway copy of the package and its contracts, to plant defects in."""
    shutil.copytree(ROOT / "restoro", tmp_path / "restoro", ignore=shutil.ignore_patterns("*.pyc"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def _plant(path: Path, code: str) -> None:
    path.write_text(path.read_text(encoding="utf-8") + "\n\n" + code + "\n", encoding="utf-8")


@pytest.mark.parametrize(
    ("module", "code", "broken", "named"),
    [
        # The engine reaching up into the planner, inside a function: a layer and the engine's
        # own contract break, and so does acyclicity (the planner imports the engine).
        (
            "engine/keys.py",
            "def _planted() -> None:\n    from restoro.plan import nodes  # noqa: F401",
            3,
            "restoro.engine.keys -> restoro.plan.nodes",
        ),
        # A domain package reaching up into the farm.
        (
            "media/probe.py",
            "import restoro.farm.ray_worker  # noqa: F401",
            2,
            "restoro.media.probe -> restoro.farm.ray_worker",
        ),
        # One QC check importing another: the checks are independent plugins.
        (
            "qc/black.py",
            "from restoro.qc import frozen  # noqa: F401",
            1,
            "restoro.qc.black -> restoro.qc.frozen",
        ),
    ],
)
def test_a_planted_forbidden_import_breaks_a_contract(
    copy: Path, module: str, code: str, broken: int, named: str
) -> None:
    clean = lint_imports(copy)
    assert clean.returncode == 0, clean.stdout[-3000:]
    _plant(copy / "restoro" / module, code)
    proc = lint_imports(copy)
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert f"{6 - broken} kept, {broken} broken." in proc.stdout, proc.stdout[-3000:]
    assert named in proc.stdout


def _counting_type_checking_imports(root: Path) -> None:
    """The contracts of ``root``'s pyproject.toml, with imports for type checking counted."""
    path = root / "pyproject.toml"
    text = path.read_text(encoding="utf-8")
    flag = "exclude_type_checking_imports = true"
    assert flag in text
    path.write_text(text.replace(flag, "exclude_type_checking_imports = false"), encoding="utf-8")


def test_no_cycle_even_through_imports_for_type_checking(copy: Path) -> None:
    _counting_type_checking_imports(copy)
    clean = lint_imports(copy)
    assert clean.returncode == 0, clean.stdout[-3000:]
    assert "Contracts: 6 kept, 0 broken." in clean.stdout
    # The node types needing the Builder's type would close a cycle (build imports nodes).
    _plant(
        copy / "restoro" / "plan" / "nodes.py",
        "if TYPE_CHECKING:\n    from restoro.plan.build import Builder  # noqa: F401",
    )
    proc = lint_imports(copy)
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "5 kept, 1 broken." in proc.stdout, proc.stdout[-3000:]
    assert "No cycles are allowed in restoro.plan." in proc.stdout
    assert "- .nodes -> .build (1 import)" in proc.stdout
