"""Audio for deliverables: one source stream cut to a picture range, as 24-bit 48 kHz PCM.

The cut is placed on the picture's timeline: sample 0 of the output is the instant the
source's first video frame + ``start_frame`` is shown, whatever offset the container puts
between its audio and video streams. The length is exactly ``round(frames / rate · 48000)``
samples (padded with silence or trimmed), so audio and picture stay equal to the sample.
"""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING

from restoro.errors import MediaError
from restoro.media.ffmpeg import bitexact_args, run_ffmpeg

if TYPE_CHECKING:
    from pathlib import Path

OUT_RATE = 48000


def sample_count(frames: int, frame_rate: str) -> int:
    """Samples at 48 kHz in ``frames`` frames (rounded half up)."""
    exact = Fraction(frames) / Fraction(frame_rate) * OUT_RATE
    return int(exact + Fraction(1, 2))


def _video_offset(source: Path, stream_index: int) -> Fraction:
    """Seconds from ffmpeg's zero (the file's start time) to the first video frame."""
    import av

    try:
        container = av.open(str(source))
    except (av.error.FFmpegError, FileNotFoundError) as exc:
        raise MediaError(f"cannot read {source}: {exc}") from exc
    with container:
        streams = {s.index: s for s in container.streams}
        stream = streams.get(stream_index)
        if stream is None or stream.type != "audio":
            listing = ", ".join(f"{s.index}: {s.type}" for s in container.streams)
            raise MediaError(
                f"stream {stream_index} of {source} is not an audio stream "
                f"(streams: {listing or 'none'})",
                hint="pick an audio stream index from `restoro probe`",
            )
        if not container.streams.video:
            return Fraction(0)
        video = container.streams.video[0]
        file_start = Fraction(container.start_time or 0, 1_000_000)
        if video.start_time is None or video.time_base is None:
            return Fraction(0)
        return video.start_time * video.time_base - file_start


def extract_audio(
    source: Path,
    stream_index: int,
    *,
    start_frame: int,
    frames: int,
    frame_rate: str,
    out: Path,
) -> None:
    """Write audio stream ``stream_index`` for picture frames [start_frame, +frames) to a WAV."""
    if frames <= 0 or start_frame < 0:
        raise MediaError(f"bad audio range: start {start_frame}, {frames} frames")
    offset = _video_offset(source, stream_index)
    start = offset + Fraction(start_frame) / Fraction(frame_rate)
    first = int(start * OUT_RATE + Fraction(1, 2))
    n = sample_count(frames, frame_rate)
    chain = [
        # first_pts=0 fills any gap before the stream's first sample with silence, so sample k
        # of the resampled stream is at k/48000 s on ffmpeg's timeline.
        f"aresample={OUT_RATE}:resampler=soxr:precision=28:first_pts=0",
        f"atrim=start_sample={first}:end_sample={first + n}",
        "asetpts=PTS-STARTPTS",
        f"apad=whole_len={n}",
        f"atrim=end_sample={n}",
    ]
    args = [
        "-i", str(source), "-map", f"0:{stream_index}", "-vn", "-sn", "-dn",
        "-filter_threads", "1", "-af", ",".join(chain),
        "-c:a", "pcm_s24le", "-ar", str(OUT_RATE), *bitexact_args(), "-f", "wav", str(out),
    ]  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    run_ffmpeg(args)
