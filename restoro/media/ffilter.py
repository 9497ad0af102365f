"""Working frames through an ffmpeg filter graph: (H, W, 3) uint16 RGB in and out by pipes.

A frame stage whose work is an ffmpeg filter (a classical resize is ``zscale``: zimg, ~9 ms
for a 4K frame against ~430 ms for numpy) runs it here when it streams between other stages;
a chain made only of such stages runs as one ffmpeg transcode instead (``transcode``). Both
feed zimg the same ``gbrp16le`` samples, so they give the same bytes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from restoro.errors import ToolError
from restoro.media.ffmpeg import raw_pipe, run_ffmpeg
from restoro.media.frameio import from_planes, output_args, tag_filters, to_planes

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from restoro.media.frames import FrameFormat


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
