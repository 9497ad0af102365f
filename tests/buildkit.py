"""Helpers for tests that build whole workspaces in-process or through the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from typing import TYPE_CHECKING, Any

from restoro.plan.build import Builder, BuildOptions, BuildReport
from restoro.plan.workspace import Workspace

if TYPE_CHECKING:
    from pathlib import Path


def build(manifest: Path, **opts: Any) -> BuildReport:
    ws = Workspace(manifest)
    try:
        return Builder(ws, BuildOptions(**opts)).build()
    finally:
        ws.close()


def plan(manifest: Path, **opts: Any) -> BuildReport:
    ws = Workspace(manifest)
    try:
        return Builder(ws, BuildOptions(**opts)).plan()
    finally:
        ws.close()


def executed(report: BuildReport) -> dict[str, str]:
    """Executed action id → reason."""
    return {r.id: r.reason for r in report.records if r.status == "executed"}


def stages_run(report: BuildReport) -> Counter[str]:
    return Counter(r.stage for r in report.records if r.status == "executed")


def cli(
    *args: str,
    cwd: Path | None = None,
    timeout: float = 300,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``restoro ARGS`` in a subprocess (the real entry point, real exit status)."""
    code = "import sys; from restoro.cli.app import main; sys.exit(main(sys.argv[1:]))"
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
    )


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def store_entries(root: Path) -> list[Path]:
    """Files in the store's cas/ and ac/ (what 'nothing written to the store' is about)."""
    store = root / ".restoro"
    return (
        [p for sub in ("cas", "ac") for p in (store / sub).rglob("*") if p.is_file()]
        if store.exists()
        else []
    )
