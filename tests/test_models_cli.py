"""``restoro models ls/add`` and ``restoro compare`` through the real entry point."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest
from buildkit import cli

if TYPE_CHECKING:
    from pathlib import Path

torch = pytest.importorskip("torch")
pytest.importorskip("spandrel")


def _compact(path: Path) -> Path:
    from safetensors.torch import save_file
    from spandrel.architectures.Compact import Compact

    torch.manual_seed(0)
    m = Compact(num_feat=8, num_conv=2, upscale=2)
    save_file({k: v.contiguous() for k, v in m.state_dict().items()}, str(path))
    return path


def test_models_ls_lists_builtins_and_status(tmp_path: Path) -> None:
    r = cli("models", "ls", "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    rows = {row["name"]: row for row in map(json.loads, r.stdout.splitlines())}
    assert rows["realesrgan-x4plus"]["architecture"] == "ESRGAN"
    assert rows["realesr-animevideov3-x2"]["scale"] == 2
    assert {row["status"] for row in rows.values()} <= {"available", "converted"}


@pytest.mark.slow
def test_models_add_pins_a_file_and_refuses_junk(tmp_path: Path, workspace: Path) -> None:
    model = _compact(workspace.parent / "mine.safetensors")
    r = cli("models", "add", str(model), "--json", cwd=workspace.parent)
    assert r.returncode == 0, r.stderr
    row = json.loads(r.stdout)
    assert row["architecture"] == "Compact" and row["scale"] == 2
    assert row["digest"].startswith("xxh128:") and row["ref"] == "mine.safetensors"
    junk = workspace.parent / "junk.pth"
    junk.write_bytes(b"\x00" * 64)
    bad = cli("models", "add", str(junk), cwd=workspace.parent)
    assert bad.returncode == 2 and "not a model file" in bad.stderr


def test_validate_and_help_do_not_import_torch(workspace: Path) -> None:
    code = (
        "import sys\nfrom restoro.cli.app import main\n"
        "for args in (['--help'], ['validate', '-f', sys.argv[1]]):\n"
        "    try:\n        main(args)\n    except SystemExit:\n        pass\n"
        "print('torch' in sys.modules, 'spandrel' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(workspace)], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "False False"


@pytest.mark.slow
def test_compare_renders_crops_and_html(workspace: Path) -> None:
    _compact(workspace.parent / "mine.safetensors")
    assert cli("build", "--device", "cpu", cwd=workspace.parent).returncode == 0
    shots = cli("shots", "ep1", "--json", cwd=workspace.parent)
    assert shots.returncode == 0, shots.stderr
    first = json.loads(shots.stdout.splitlines()[0])
    shot = first.get("id") or first.get("shot")
    out = workspace.parent / "cmp"
    r = cli(
        "compare",
        shot,
        "--models",
        "bicubic,mine.safetensors",
        "--scale",
        "2",
        "--device",
        "cpu",
        "-o",
        str(out),
        cwd=workspace.parent,
    )
    assert r.returncode == 0, r.stderr
    page = (out / "index.html").read_text()
    assert "mine.safetensors" in page and "bicubic" in page
    import cv2

    a = cv2.imread(str(out / "bicubic_0.png"), cv2.IMREAD_UNCHANGED)
    b = cv2.imread(str(out / "mine.safetensors_0.png"), cv2.IMREAD_UNCHANGED)
    assert a.shape == b.shape == (120, 160, 3) and a.dtype.name == "uint16"
