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


def test_fingerprint_is_remembered_in_the_state_db_while_the_binary_is_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A no-op build runs no ``ffmpeg -version``: the fingerprint comes from state.db, keyed on
    the binary's path and stat tuple; a changed binary is run (and fingerprinted) again."""
    import os
    import subprocess

    import restoro.media.ffmpeg as ff
    from restoro.engine.state import StateDB

    exe = tmp_path / "ffmpeg"
    exe.write_text("#!/bin/sh\necho 'ffmpeg version 1.0 Copyright (c) test'\n")
    exe.chmod(0o755)
    # Stands for imageio-ffmpeg's own (static) binary: only that one is remembered.
    monkeypatch.delenv("IMAGEIO_FFMPEG_EXE", raising=False)
    monkeypatch.setattr(ff, "_bundled_exe", lambda: str(exe))
    monkeypatch.setattr("imageio_ffmpeg.get_ffmpeg_exe", lambda: str(exe))
    runs: list[list[str]] = []
    real_run = subprocess.run

    def counting_run(argv: list[str], *a: object, **k: object) -> object:
        runs.append(argv)
        return real_run(argv, *a, **k)  # type: ignore[call-overload]

    monkeypatch.setattr(ff.subprocess, "run", counting_run)
    state = StateDB(tmp_path / "state.db")
    state.racy_window_ns = 0  # the binary was written just now
    try:
        ff.remember_fingerprint_in(state)

        def fresh() -> str:
            ff.ffmpeg_exe.cache_clear()
            ff.ffmpeg_fingerprint.cache_clear()
            return ff.ffmpeg_fingerprint()

        first = fresh()
        assert first.startswith("ffmpeg 1.0#") and len(runs) == 1
        assert fresh() == first and len(runs) == 1  # remembered: not run again
        # Planted: a new binary at the same path (same size) is run and fingerprinted again.
        exe.write_text("#!/bin/sh\necho 'ffmpeg version 2.0 Copyright (c) test'\n")
        os.utime(exe, ns=(1, 1))
        second = fresh()
        assert second.startswith("ffmpeg 2.0#") and second != first and len(runs) == 2
        assert fresh() == second and len(runs) == 2
        # A failing binary is never remembered.
        exe.write_text("#!/bin/sh\nexit 3\n")
        fresh()
        fresh()
        assert len(runs) == 4
        # Another ffmpeg (IMAGEIO_FFMPEG_EXE: it may load shared libraries that change without
        # it) is run every time.
        other = tmp_path / "other-ffmpeg"
        other.write_text("#!/bin/sh\necho 'ffmpeg version 3.0 Copyright (c) test'\n")
        other.chmod(0o755)
        os.utime(other, ns=(1, 1))
        monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", str(other))
        assert fresh().startswith("ffmpeg 3.0#") and fresh().startswith("ffmpeg 3.0#")
        assert len(runs) == 6
    finally:
        ff.remember_fingerprint_in(None)
        ff.ffmpeg_exe.cache_clear()
        ff.ffmpeg_fingerprint.cache_clear()
        state.close()


def test_a_known_bundled_binary_is_taken_without_imageios_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import imageio_ffmpeg

    import restoro.media.ffmpeg as ff
    from restoro.engine.state import StateDB

    monkeypatch.delenv("IMAGEIO_FFMPEG_EXE", raising=False)
    bundled = ff._bundled_exe()
    if bundled is None:
        pytest.skip("no bundled imageio-ffmpeg binary")
    state = StateDB(tmp_path / "state.db")
    try:
        ff.remember_fingerprint_in(state)
        ff.ffmpeg_exe.cache_clear()
        ff.ffmpeg_fingerprint.cache_clear()
        fp = ff.ffmpeg_fingerprint()  # unknown: imageio-ffmpeg's own check, then -version
        calls: list[int] = []
        monkeypatch.setattr(imageio_ffmpeg, "get_ffmpeg_exe", lambda: calls.append(1) or "x")
        ff.ffmpeg_exe.cache_clear()
        ff.ffmpeg_fingerprint.cache_clear()
        assert ff.ffmpeg_exe() == bundled and calls == []
        assert ff.ffmpeg_fingerprint() == fp
        # Planted: the state db forgets it, so imageio-ffmpeg is asked again.
        ff.remember_fingerprint_in(None)
        ff.ffmpeg_exe.cache_clear()
        assert ff.ffmpeg_exe() == "x" and calls == [1]
    finally:
        ff.remember_fingerprint_in(None)
        ff.ffmpeg_exe.cache_clear()
        ff.ffmpeg_fingerprint.cache_clear()
        state.close()
