"""An action that fails while its spec is made (before it starts: in an executor task, after its
inputs were built) fails the build, named, with its error; it once ended the build with exit 0
and without the outputs that need it.

Planted: the device fingerprint of a LUT grade chain (whose LUT is pinned like a model) cannot
import torch, as on an install without the ``ai`` extra."""

from __future__ import annotations

import shutil
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest
from buildkit import build
from test_grade import MANIFEST, cube_text

from restoro.errors import BuildFailed

if TYPE_CHECKING:
    from pathlib import Path


def _no_torch(device: str) -> str:
    raise ModuleNotFoundError("No module named 'torch'")


@pytest.mark.slow
def test_a_spec_that_cannot_be_made_fails_the_build(
    tmp_path: Path, progressive_source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from restoro.models import device

    (tmp_path / "media").mkdir()
    shutil.copy(progressive_source, tmp_path / "media" / "source.mkv")
    (tmp_path / "looks").mkdir()
    (tmp_path / "looks" / "warm.cube").write_text(cube_text(2, lambda r, g, b: (r, g, b)))
    (tmp_path / "looks" / "red.cube").write_text(cube_text(2, lambda r, g, b: (0.75, 0, 0)))
    manifest = tmp_path / "restoro.yaml"
    manifest.write_text(MANIFEST)
    monkeypatch.setattr(device, "fingerprint", _no_torch)
    with pytest.raises(BuildFailed) as info:
        build(manifest, jobs=1)
    assert "/grade: No module named 'torch'" in info.value.message
    assert not (tmp_path / "out" / "master" / "ep1.mov").exists()
    # The command line, from an empty store again: exit status 1, the action and its error,
    # no traceback.
    shutil.rmtree(tmp_path / ".restoro")
    code = (
        "import sys; from restoro.models import device\n"
        "def no_torch(d): raise ModuleNotFoundError(\"No module named 'torch'\")\n"
        "device.fingerprint = no_torch\n"
        "from restoro.cli.app import main; sys.exit(main(['build']))"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                       text=True, timeout=300)  # fmt: skip
    assert r.returncode == 1, r.stderr
    assert "/grade: No module named 'torch'" in r.stderr and "Traceback" not in r.stderr
