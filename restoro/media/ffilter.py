"""Working frames through an ffmpeg filter graph: (H, W, 3) uint16 RGB in and out by pipes.

A frame stage whose work is an ffmpeg filter (a classical resize is ``zscale``: zimg, ~9 ms
for a 4K frame against ~430 ms for numpy) runs it here when it streams between other stages;
a chain made only of such stages runs as one ffmpeg transcode instead (``transcode``). Both
feed zimg the same ``gbrp16le`` samples, so they give the same bytes.
"""

from __future__ import annotations

import subprocess
import threading
from typing import TYPE_CHECKING

import numpy as np

from restoro.errors import StageError, ToolError
from restoro.media.ffmpeg import ffmpeg_error, full_argv, run_ffmpeg
from restoro.media.frameio import from_planes, output_args, tag_filters, to_planes

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from restoro.media.frames import FrameFormat


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


def filter_frames(
    frames: Iterator[np.ndarray], fmt: FrameFormat, graph: str, out_fmt: FrameFormat
) -> Iterator[np.ndarray]:
    """Run ``frames`` (format ``fmt``) through the ffmpeg filter ``graph``; yield frames of
    ``out_fmt``'s size."""
    args = [
        "-f", "rawvideo", "-pix_fmt", "gbrp16le", "-s", f"{fmt.width}x{fmt.height}",
        "-framerate", fmt.frame_rate, "-i", "pipe:0", "-filter_threads", "1",
        "-vf", f"{graph},format=gbrp16le", "-fps_mode", "passthrough",
        "-f", "rawvideo", "-pix_fmt", "gbrp16le", "pipe:1",
    ]  # fmt: skip
    w, h = out_fmt.width, out_fmt.height
    sent = (to_planes(f).tobytes() for f in frames)
    for buf in raw_pipe(sent, args, w * h * 6, f"filter {graph!r}"):
        yield from_planes(*np.frombuffer(buf, dtype="<u2").reshape(3, h, w))


def transcode(src: Path, graph: str, out_fmt: FrameFormat, out: Path) -> None:
    """Intermediate ``src`` through the filter ``graph`` to a new intermediate of ``out_fmt``,
    in one ffmpeg run (no frame crosses into Python)."""
    args = [
        "-i", str(src), "-map", "0:v:0", "-filter_threads", "1",
        "-vf", f"{graph},format=gbrp16le,{tag_filters(out_fmt)}", "-fps_mode", "passthrough",
        *output_args(out_fmt, out),
    ]  # fmt: skip
    try:
        run_ffmpeg(args)
    except ToolError:
        out.unlink(missing_ok=True)
        raise


def read_through(src: Path, graph: str, out_fmt: FrameFormat) -> Iterator[np.ndarray]:
    """Intermediate ``src`` (or any file ffmpeg reads) through the filter ``graph``, as working
    frames of ``out_fmt``'s size in ``gbrp16le``: the samples ``transcode`` would have stored."""
    args = [
        "-i", str(src), "-map", "0:v:0", "-filter_threads", "1", "-vf", graph,
        "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "gbrp16le", "pipe:1",
    ]  # fmt: skip
    w, h = out_fmt.width, out_fmt.height
    for buf in raw_pipe(iter(()), args, w * h * 6, f"filter {graph!r}"):
        yield from_planes(*np.frombuffer(buf, dtype="<u2").reshape(3, h, w))
