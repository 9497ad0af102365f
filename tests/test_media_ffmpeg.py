"""The ffmpeg runner: fingerprint, errors with argv and log tail, the stdin pipe."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from restoro.errors import ToolError
from restoro.media.ffmpeg import (
    bitexact_args,
    cpu_class,
    ffmpeg_exe,
    ffmpeg_fingerprint,
    popen_ffmpeg,
    run_ffmpeg,
)


def test_exe_exists() -> None:
    assert Path(ffmpeg_exe()).is_file()


def test_fingerprint_names_version_hash_and_cpu_class() -> None:
    fp = ffmpeg_fingerprint()
    assert re.fullmatch(r"ffmpeg \S+#[0-9a-f]{12}/[a-z0-9_+-]+", fp), fp
    assert fp.endswith("/" + cpu_class())
    assert ffmpeg_fingerprint() is fp  # cached per process


def test_cpu_class_follows_the_simd_features(monkeypatch: pytest.MonkeyPatch) -> None:
    import platform

    import restoro.media.ffmpeg as ff

    flags = {
        "x86-64-v3": "fpu sse4_2 ssse3 popcnt avx avx2 fma bmi2 f16c",
        "x86-64-v2": "fpu sse4_2 ssse3 popcnt avx",
        "x86-64": "fpu sse sse2",
    }
    monkeypatch.setattr(platform, "machine", lambda: "x86_64")
    for want, line in flags.items():
        monkeypatch.setattr(
            "builtins.open", lambda *a, line=line, **k: io.StringIO(f"flags\t: {line}\n")
        )
        ff.cpu_class.cache_clear()
        assert ff.cpu_class() == want
    ff.cpu_class.cache_clear()


def test_failure_carries_argv_and_log_tail(tmp_path: Path) -> None:
    missing = tmp_path / "missing.mkv"
    with pytest.raises(ToolError) as info:
        run_ffmpeg(["-i", str(missing), "-f", "null", "-"])
    err = info.value
    assert err.argv[0] == ffmpeg_exe()
    assert str(missing) in err.argv
    assert "No such file" in err.log_tail
    assert "command:" in err.render()


def test_run_writes_output(tmp_path: Path) -> None:
    out = tmp_path / "tone.wav"
    run_ffmpeg(["-f", "lavfi", "-i", "sine=d=0.1", *bitexact_args(), str(out)])
    assert out.stat().st_size > 1000


def test_pipe_reports_ffmpeg_failure(tmp_path: Path) -> None:
    # A nonsense pixel format makes ffmpeg exit before it reads its input.
    pipe = popen_ffmpeg(
        ["-f", "rawvideo", "-pix_fmt", "nonsense", "-s", "4x4", "-i", "pipe:0", "-f", "null", "-"]
    )
    with pytest.raises(ToolError) as info:
        for _ in range(64):
            pipe.write(b"\0" * 65536)
        pipe.close()
    assert "nonsense" in info.value.log_tail
