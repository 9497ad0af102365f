"""The ffmpeg binary: where it is, what version it is, and how to run it with useful errors.

ffmpeg comes from ``imageio-ffmpeg`` (a static build). Its fingerprint enters action keys, so
upgrading ffmpeg re-runs the stages that use it.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import threading
import weakref
from functools import cache
from typing import IO, TYPE_CHECKING

from restoro.errors import StageError, ToolError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from restoro.engine.state import StateDB

# Flags every invocation gets: no banner, never read the terminal, only real errors in the log.
BASE_FLAGS = ["-hide_banner", "-nostdin", "-loglevel", "error", "-y"]
LOG_TAIL_LINES = 20


@cache
def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary restoro uses: ``IMAGEIO_FFMPEG_EXE`` when set, else the one
    imageio-ffmpeg bundles. imageio-ffmpeg checks a binary by running it (``-version``, ~20 ms);
    its bundled (static) binary, when the state db knows its fingerprint (it ran, and its inode,
    size, mtime and ctime are unchanged since), is taken without that run. Otherwise
    imageio-ffmpeg looks (bundled, conda, then the system's ffmpeg), as it always did."""
    env = os.environ.get("IMAGEIO_FFMPEG_EXE")
    if env:
        return env
    bundled = _bundled_exe()
    if bundled is not None and _known_fingerprint(bundled)[0] is not None:
        return bundled
    import imageio_ffmpeg

    return str(imageio_ffmpeg.get_ffmpeg_exe())


@cache
def _bundled_exe() -> str | None:
    """Where imageio-ffmpeg keeps its own binary for this platform, if it is there."""
    try:
        import importlib.util

        from imageio_ffmpeg._definitions import FNAME_PER_PLATFORM, get_platform

        spec = importlib.util.find_spec("imageio_ffmpeg")
        name = FNAME_PER_PLATFORM.get(get_platform(), "")
        dirs = list(spec.submodule_search_locations or []) if spec else []
    except (ImportError, AttributeError, ValueError):  # another imageio-ffmpeg layout
        return None
    if not name or not dirs:
        return None
    path = os.path.join(dirs[0], "binaries", name)
    return path if os.path.isfile(path) else None


_STATE: list[weakref.ref[StateDB]] = []


def remember_fingerprint_in(state: StateDB | None) -> None:
    """Keep ffmpeg's fingerprint in ``state`` (a workspace's state db), keyed on the binary's
    path and stat tuple, so a build that finds it there runs no ``ffmpeg -version``."""
    _STATE[:] = [weakref.ref(state)] if state is not None else []


def _known_fingerprint(exe: str) -> tuple[str | None, os.stat_result | None]:
    """(the fingerprint the state db remembers for ``exe`` or None, the binary's stat). Only
    imageio-ffmpeg's own binary is remembered: it is a static build, so its stat tuple stands
    for its -version output; another ffmpeg (``IMAGEIO_FFMPEG_EXE``) may load shared libraries
    that change without it, so it is run every time."""
    if exe != _bundled_exe():
        return None, None
    try:
        st = os.stat(exe)
    except OSError:
        return None, None
    state = _STATE[0]() if _STATE else None
    if state is None:
        return None, st
    try:
        return state.known_tool("ffmpeg", exe, st), st
    except sqlite3.Error:  # a closed or unreadable state db: it is only a cache
        return None, st


# CPU features that select a different SIMD path in zimg or ffmpeg's own DSP code, by class.
_X86_CLASSES = (
    ("x86-64-v4+vnni", {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl", "avx512_vnni"}),
    ("x86-64-v4", {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"}),
    ("x86-64-v3", {"avx2", "fma", "bmi2", "f16c"}),
    ("x86-64-v2", {"sse4_2", "ssse3", "popcnt"}),
)


@cache
def cpu_class() -> str:
    """The CPU's class as far as SIMD dispatch goes, e.g. ``x86-64-v3`` or ``aarch64``.

    zimg (zscale) and ffmpeg pick a code path per CPU feature set, and paths may round
    differently: the same binary gives the same bytes within one class (docs/engine.md).
    """
    import platform

    machine = platform.machine().lower()
    if machine not in ("x86_64", "amd64"):
        return machine or "unknown"
    flags: set[str] = set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        return "x86-64"
    for name, need in _X86_CLASSES:
        if need <= flags:
            return name
    return "x86-64"


@cache
def ffmpeg_fingerprint() -> str:
    """``ffmpeg <version>#<12 hex of the full -version output>/<cpu class>``: stable per binary
    and CPU class (the determinism domain of ffmpeg's output bytes). The part before the CPU
    class is remembered in the state db (``remember_fingerprint_in``) while the binary's stat
    tuple is unchanged; the CPU class is always this machine's."""
    exe = ffmpeg_exe()
    known, st = _known_fingerprint(exe)
    if known is None:
        import hashlib  # only here: OpenSSL's module costs ~2 ms of every start-up

        proc = subprocess.run([exe, "-hide_banner", "-version"], capture_output=True, check=False)
        out = proc.stdout
        first = out.decode("utf-8", "replace").splitlines()[0] if out else "unknown"
        version = first.split(" Copyright")[0].removeprefix("ffmpeg version ").strip()
        known = f"ffmpeg {version}#{hashlib.sha256(out).hexdigest()[:12]}"
        state = _STATE[0]() if _STATE else None
        if proc.returncode == 0 and out and st is not None and state is not None:
            try:
                if _same_file(st, os.stat(exe)):
                    state.remember_tool("ffmpeg", exe, st, known)
            except (OSError, sqlite3.Error):
                pass
    return f"{known}/{cpu_class()}"


def _same_file(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_ino, a.st_size, a.st_mtime_ns, a.st_ctime_ns) == (
        b.st_ino,
        b.st_size,
        b.st_mtime_ns,
        b.st_ctime_ns,
    )


def bitexact_args(video_flags: str = "", audio_flags: str = "") -> list[str]:
    """Output options that make muxer and encoder bytes depend on the input only.

    No version strings, no dates, no copied metadata. ``-flags:v``/``-flags:a`` given twice
    would override each other, so extra codec flags (e.g. ``+ildct+ilme``) are merged here.
    """
    return [
        "-fflags",
        "+bitexact",
        "-flags:v",
        f"+bitexact{video_flags}",
        "-flags:a",
        f"+bitexact{audio_flags}",
        "-map_metadata",
        "-1",
        "-map_chapters",
        "-1",
    ]


def _tail(stderr: bytes) -> str:
    lines = stderr.decode("utf-8", "replace").splitlines()
    return "\n".join(lines[-LOG_TAIL_LINES:])


def ffmpeg_error(code: int, argv: list[str], stderr: bytes) -> ToolError:
    """ToolError for a failed ffmpeg run; a full disk is said in words, with the output path
    (ffmpeg itself exits with a bare status, e.g. 228, and says it only in its log)."""
    tail = _tail(stderr)
    if "no space left on device" in tail.lower():
        out = argv[-1] if len(argv) > 1 and not argv[-1].startswith("-") else "its output"
        return ToolError(
            f"ffmpeg failed: no space left on device writing {out}",
            argv=argv,
            log_tail=tail,
            hint="free space on the disk that holds that path (the store or the output folder), "
            "then build again",
        )
    return ToolError(f"ffmpeg failed (exit status {code})", argv=argv, log_tail=tail)


def full_argv(args: list[str]) -> list[str]:
    """The argv ``run_ffmpeg`` executes for ``args``."""
    return [ffmpeg_exe(), *BASE_FLAGS, *args]


def run_ffmpeg(args: list[str], *, input: bytes | None = None) -> None:
    """Run ffmpeg with ``args``; raise ToolError with argv and log tail when it fails."""
    run_ffmpeg_log(args, input=input)


def run_ffmpeg_log(args: list[str], *, input: bytes | None = None) -> str:
    """Like ``run_ffmpeg``, and return what ffmpeg logged (errors only) on success.

    Some decoders report damage (e.g. an FFV1 slice CRC mismatch) only in the log.
    """
    argv = full_argv(args)
    try:
        proc = subprocess.run(argv, input=input, capture_output=True, check=False)
    except OSError as exc:
        raise ToolError(f"cannot run ffmpeg: {exc}", argv=argv, log_tail="") from exc
    if proc.returncode != 0:
        raise ffmpeg_error(proc.returncode, argv, proc.stderr)
    return proc.stderr.decode("utf-8", "replace")


class FfmpegPipe:
    """A running ffmpeg reading raw data on stdin (``-i pipe:0``); ``close`` checks its status."""

    def __init__(self, args: list[str]) -> None:
        self.argv = full_argv(args)
        self._stderr: list[bytes] = []
        try:
            self.proc = subprocess.Popen(
                self.argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
        except OSError as exc:
            raise ToolError(f"cannot run ffmpeg: {exc}", argv=self.argv, log_tail="") from exc
        # Drain stderr on a thread so a chatty ffmpeg never blocks on a full pipe.
        assert self.proc.stderr is not None
        self._reader = threading.Thread(target=self._drain, args=(self.proc.stderr,), daemon=True)
        self._reader.start()

    def _drain(self, stream: IO[bytes]) -> None:
        for chunk in iter(lambda: stream.read(65536), b""):
            self._stderr.append(chunk)

    def write(self, data: bytes | memoryview) -> None:
        """Send data to ffmpeg's stdin."""
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(data)
            return
        except BrokenPipeError:
            pass
        self.close()  # ffmpeg exited: this raises with its own explanation
        raise ToolError("ffmpeg closed its input early", argv=self.argv, log_tail="")

    def close(self) -> None:
        """Finish the stream and wait; raise ToolError if ffmpeg failed."""
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()
            except BrokenPipeError:
                pass
        code = self.proc.wait()
        self._reader.join()
        self._close_stderr()
        if code != 0:
            raise ffmpeg_error(code, self.argv, b"".join(self._stderr))

    def kill(self) -> None:
        """Abort without raising (used when the producer side failed)."""
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()
            except BrokenPipeError:
                pass
        self.proc.kill()
        self.proc.wait()
        self._reader.join()
        self._close_stderr()

    def _close_stderr(self) -> None:
        if self.proc.stderr is not None:
            self.proc.stderr.close()


def popen_ffmpeg(args: list[str]) -> FfmpegPipe:
    """Start ffmpeg reading raw input on stdin; write to it, then ``close()``."""
    return FfmpegPipe(args)


def raw_pipe(chunks: Iterator[bytes], args: list[str], size: int, what: str) -> Iterator[bytes]:
    """Run ffmpeg ``args`` (reading ``pipe:0``, writing raw frames of ``size`` bytes to
    ``pipe:1``), fed from ``chunks`` by a thread; yield its output frame by frame.

    A failure of the producer, a truncated frame or ffmpeg's own failure is raised here.
    """
    argv = full_argv(args)
    proc = subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    failure: list[BaseException] = []
    err: list[bytes] = []

    def feed() -> None:
        assert proc.stdin is not None
        try:
            for chunk in chunks:
                proc.stdin.write(chunk)
        except BrokenPipeError:
            pass
        except BaseException as exc:  # handed to the reader
            failure.append(exc)
        finally:
            try:
                proc.stdin.close()
            except BrokenPipeError:
                pass

    def drain() -> None:
        assert proc.stderr is not None
        err.append(proc.stderr.read())

    feeder = threading.Thread(target=feed, daemon=True)
    drainer = threading.Thread(target=drain, daemon=True)
    feeder.start()
    drainer.start()
    ended = False
    try:
        while True:
            buf = proc.stdout.read(size)
            if not buf:
                break
            if len(buf) != size:
                raise StageError(f"ffmpeg {what} gave a truncated frame")
            yield buf
        ended = True
    finally:
        # A consumer that stops early (or fails) leaves ffmpeg blocked on a full pipe.
        if proc.poll() is None and (failure or feeder.is_alive() or not ended):
            proc.kill()
        code = proc.wait()
        feeder.join()
        drainer.join()
        proc.stdout.close()
        proc.stderr.close()
    if failure:
        raise failure[0]
    if code != 0:
        raise ffmpeg_error(code, argv, b"".join(err))
