"""Every ``import restoro...`` / ``from restoro... import name`` in the package, function-local
ones included, names a module and attribute that exist: a moved module cannot leave a stale
path behind in a rarely run branch (import-linter checks the layering, not that names resolve).
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def unresolved(path: Path, text: str) -> list[str]:
    """``file:line: module.name`` for each restoro import in ``text`` that does not resolve."""
    out: list[str] = []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if not node.module.startswith("restoro"):
                continue
            try:
                mod = importlib.import_module(node.module)
            except ImportError:
                out.append(f"{path}:{node.lineno}: {node.module}")
                continue
            for alias in node.names:
                if alias.name == "*" or hasattr(mod, alias.name):
                    continue
                try:
                    importlib.import_module(f"{node.module}.{alias.name}")
                except ImportError:
                    out.append(f"{path}:{node.lineno}: {node.module}.{alias.name}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("restoro"):
                    try:
                        importlib.import_module(alias.name)
                    except ImportError:
                        out.append(f"{path}:{node.lineno}: {alias.name}")
    return out


def test_every_restoro_import_resolves() -> None:
    pytest.importorskip("torch")  # model modules import it at function level
    pytest.importorskip("ray")
    bad = [
        b
        for p in sorted((ROOT / "restoro").rglob("*.py"))
        for b in unresolved(p.relative_to(ROOT), p.read_text(encoding="utf-8"))
    ]
    assert bad == []


def test_a_stale_path_is_found() -> None:
    """Planted: the kind of line a move leaves behind, inside a function."""
    text = (
        "def f():\n"
        "    from restoro.engine import nodes as N\n"
        "    from restoro.qc.collect import collect\n"
        "    from restoro.plan.qc import collect\n"
    )
    assert unresolved(Path("x.py"), text) == [
        "x.py:2: restoro.engine.nodes",
        "x.py:3: restoro.qc.collect.collect",
    ]
