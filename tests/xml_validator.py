"""The shared schema validator (``../shared/tools/validate_xml.py``), asserted line by line.

The tool prints one line per file — ``OK   PATH (KIND)``, ``BAD  PATH:LINE: (KIND) MESSAGE`` or
``SKIP PATH: no schema for namespace NS`` — and exits 1 only on BAD: a document in a namespace
it has no schema for is SKIPped with exit 0. So the exit status alone proves nothing; these
helpers demand each file's own ``OK`` line, of the expected kind.
"""

from __future__ import annotations

import re
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pathlib import Path

IMF_DOCS = ["CPL 2067-3:2016", "PKL 2067-2:2016", "ASSETMAP 429-9", "OPL 2067-100"]
"""The kinds of a package's CPL, PKL, ASSETMAP and OPL, in that order."""

LINES = (  # (status, pattern giving the path and the kind); kinds hold no parentheses
    ("OK", re.compile(r"^OK   (.+) \(([^()]+)\)$")),
    ("BAD", re.compile(r"^BAD  (.+?):\d+: \(([^()]+)\) ")),
    ("SKIP", re.compile(r"^SKIP (.+): no schema for namespace ()")),
)


def run_validator(shared_dir: Path, *files: Path) -> tuple[int, dict[str, list[tuple[str, str]]]]:
    """Run the tool; (exit status, {path: [(status, kind), ...]}) from its output lines."""
    pytest.importorskip("lxml")
    tool = shared_dir / "tools" / "validate_xml.py"
    proc = subprocess.run([sys.executable, str(tool), *map(str, files)], capture_output=True,
                          text=True, check=False)  # fmt: skip
    lines: dict[str, list[tuple[str, str]]] = {}
    for line in proc.stdout.splitlines():
        found = [(s, m) for s, pat in LINES if (m := pat.match(line))]
        assert found, f"unexpected validator output: {line!r}\n{proc.stdout}{proc.stderr}"
        status, m = found[0]
        lines.setdefault(m.group(1), []).append((status, m.group(2)))
    return proc.returncode, lines


def assert_valid(shared_dir: Path, *files: Path, kinds: list[str] | None = None) -> list[str]:
    """Every file validates: exactly one ``OK`` line each (no BAD, no SKIP), exit 0. Returns
    the kinds in file order; with ``kinds``, they must be those."""
    assert files, "nothing to validate"
    code, lines = run_validator(shared_dir, *files)
    got = []
    for f in files:
        assert lines.get(str(f), []) and all(s == "OK" for s, _ in lines[str(f)]), (
            f"{f}: {lines.get(str(f))}"
        )
        assert len(lines[str(f)]) == 1, lines[str(f)]
        got.append(lines[str(f)][0][1])
    assert set(lines) == {str(f) for f in files}, lines
    assert code == 0, lines
    if kinds is not None:
        assert got == kinds, got
    return got


def assert_invalid(shared_dir: Path, file: Path, kind: str) -> None:
    """``file`` is checked against the schema of ``kind`` and found BAD; exit 1."""
    code, lines = run_validator(shared_dir, file)
    assert code == 1 and lines.get(str(file)), lines
    assert {s for s, _ in lines[str(file)]} == {"BAD"} and {k for _, k in lines[str(file)]} == {
        kind
    }, lines
