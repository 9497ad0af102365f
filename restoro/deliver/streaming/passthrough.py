"""AC-3 / E-AC-3 passthrough for streaming packages: the source's own audio packets for the
title's span, cut on frame boundaries and carried byte for byte (stream copy, no decode).

The span is wall-clock time from the source's first picture (as the remastered tracks use):
``[start_frame, start_frame + frames)`` at ``frame_rate``, shifted by ``offset_ms`` (positive
delays the audio). A packet is kept when its midpoint falls inside the span, so the cut lands
on the AC-3 frame boundary nearest each end.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING

from restoro.errors import MediaError, StageError

if TYPE_CHECKING:
    from pathlib import Path

CARRIED = {"ac3": "ac3", "eac3": "eac3"}  # codec name → raw elementary stream muxer/demuxer


@dataclass(frozen=True)
class Carried:
    """What ``cut_packets`` wrote: the codec (``ac3``/``eac3``), the stream's channel count,
    the packet count, and the first packet's distance from the span start (seconds)."""

    codec: str
    channels: int
    packets: int
    skew: Fraction


def select_packets(
    source: Path, stream_index: int, *, start_frame: int, frames: int, frame_rate: str,
    offset_ms: int = 0,
) -> tuple[str, int, list[bytes], Fraction]:  # fmt: skip
    """(codec, channels, packet payloads, skew) of the span's packets of an (E-)AC-3 stream."""
    import av

    try:
        container = av.open(str(source))
    except (av.error.FFmpegError, FileNotFoundError) as exc:
        raise MediaError(f"cannot read {source}: {exc}") from exc
    with container:
        streams = {s.index: s for s in container.streams}
        stream = streams.get(stream_index)
        if stream is None or stream.type != "audio":
            raise MediaError(f"stream {stream_index} of {source} is not an audio stream")
        codec = stream.codec_context.name
        if codec not in CARRIED:
            raise StageError(
                f"audio passthrough needs an AC-3 or E-AC-3 stream; stream {stream_index} of "
                f"{source.name} is {codec}",
                hint="set passthrough: false to encode the rendition from the remastered track",
            )
        file_start = Fraction(container.start_time or 0, 1_000_000)
        picture = Fraction(0)
        if container.streams.video:
            v = container.streams.video[0]
            if v.start_time is not None and v.time_base is not None:
                picture = v.start_time * v.time_base - file_start
        rate = Fraction(frame_rate)
        t0 = picture + Fraction(start_frame) / rate - Fraction(offset_ms, 1000)
        t1 = t0 + Fraction(frames) / rate
        kept: list[bytes] = []
        first: Fraction | None = None
        tb = stream.time_base
        for packet in container.demux(stream):
            if packet.pts is None or not packet.size or tb is None:
                continue
            at = packet.pts * tb - file_start
            half = (packet.duration or 0) * tb / 2
            if t0 <= at + half < t1:
                first = at if first is None else first
                kept.append(bytes(packet))
        channels = int(stream.channels)  # type: ignore[attr-defined]
    if first is None:
        raise StageError(
            f"no {codec} frame of stream {stream_index} of {source.name} lies in the title's "
            f"span ({float(t0):.3f}-{float(t1):.3f} s)"
        )
    return codec, channels, kept, first - t0


def cut_packets(
    source: Path, stream_index: int, *, start_frame: int, frames: int, frame_rate: str,
    offset_ms: int, out: Path,
) -> Carried:  # fmt: skip
    """Write the span's packets, untouched, as a raw (E-)AC-3 elementary stream to ``out``.

    Refused when the stream's first kept frame starts more than one frame after the span start
    (audio starting late cannot be padded without re-encoding).
    """
    codec, channels, packets, skew = select_packets(
        source, stream_index, start_frame=start_frame, frames=frames, frame_rate=frame_rate,
        offset_ms=offset_ms,
    )  # fmt: skip
    if skew > Fraction(1536, 48000):
        raise StageError(
            f"the {codec} stream of {source.name} starts {float(skew) * 1000:.0f} ms after the "
            "title's first picture; passthrough cannot pad it",
            hint="set passthrough: false (the remastered track is padded with silence)",
        )
    out.write_bytes(b"".join(packets))
    return Carried(codec, channels, len(packets), skew)
