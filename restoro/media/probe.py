"""Probe a source with PyAV: streams, exact frame count, field order, aspect, colour, timecode.

Besides reading headers, ``probe`` demuxes every video packet (the only exact frame count for
MPEG program/transport streams and Matroska) and decodes the first and last few frames, so a
file that is not media, has no picture, or is cut short fails here with a clear message rather
than half-way through a build.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel

from restoro.errors import MediaError
from restoro.media.cadence import CadenceMap

if TYPE_CHECKING:
    import av
    import av.container

# FFmpeg's enum values → the names ffmpeg's options and filters use (libavutil/pixfmt.h).
_PRIMARIES = {
    1: "bt709", 4: "bt470m", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 8: "film",
    9: "bt2020", 10: "smpte428", 11: "smpte431", 12: "smpte432", 22: "jedec-p22",
}  # fmt: skip
_TRANSFER = {
    1: "bt709", 4: "gamma22", 5: "gamma28", 6: "smpte170m", 7: "smpte240m", 8: "linear",
    11: "iec61966-2-4", 13: "iec61966-2-1", 14: "bt2020-10", 15: "bt2020-12",
    16: "smpte2084", 18: "arib-std-b67",
}  # fmt: skip
_MATRIX = {
    0: "gbr", 1: "bt709", 4: "fcc", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m",
    8: "ycgco", 9: "bt2020nc", 10: "bt2020c",
}  # fmt: skip
_RANGE = {1: "tv", 2: "pc"}
# AVFieldOrder: TT/TB both have the top field first in display (ffmpeg itself tags
# top-field-first H.264/MPEG-2 as TB or TT depending on the path the stream took).
FieldOrder = Literal["progressive", "tff", "bff", "unknown"]
_FIELD_ORDER: dict[int, FieldOrder] = {
    1: "progressive",
    2: "tff",
    3: "bff",
    4: "tff",
    5: "bff",
}
CHECK_FRAMES = 3
"""Frames decoded at each end of the file to prove it is decodable."""


class VideoStream(BaseModel):
    index: int
    codec: str
    width: int
    height: int
    frame_rate: str
    """Rational ``"num/den"``."""
    frame_count: int
    field_order: FieldOrder
    sar: str
    """Sample aspect ratio ``"N:D"`` (``"1:1"`` when the stream does not say)."""
    dar: str
    pix_fmt: str | None
    color_primaries: str | None = None
    color_transfer: str | None = None
    color_matrix: str | None = None
    color_range: str | None = None
    timecode: str | None = None


class AudioStream(BaseModel):
    index: int
    codec: str
    channels: int
    layout: str
    sample_rate: int
    language: str | None = None


class SourceInfo(BaseModel):
    path: str
    format_name: str
    duration_s: float
    size: int
    video: VideoStream
    audio: list[AudioStream]
    cadence: CadenceMap | None = None
    """Per-segment cadence (``probe(..., cadence=True)``; one decoding pass over the picture)."""
    warnings: list[str] = []


def _ratio(value: Fraction | None) -> str:
    if not value:
        return "1:1"
    return f"{value.numerator}:{value.denominator}"


def _open(path: Path) -> av.container.InputContainer:
    import av

    if not path.exists():
        raise MediaError(f"source not found: {path}", hint="check the path in the manifest")
    if not path.is_file():
        raise MediaError(f"source is not a file: {path}")
    if path.stat().st_size == 0:
        raise MediaError(f"source is empty (0 bytes): {path}", hint="the copy may have failed")
    try:
        return av.open(str(path), mode="r")
    except av.error.FFmpegError as exc:
        raise MediaError(
            f"not a media file restoro can read: {path} ({exc.strerror or exc})",
            hint="is this the right file? restoro reads what ffmpeg reads (VOB, TS, MKV, MOV…)",
        ) from exc


def probe(path: Path, *, cadence: bool = False) -> SourceInfo:
    """Describe ``path``; raise MediaError when it is missing, not media, or undecodable.

    ``cadence``: also analyse the whole picture (``restoro.media.cadence``): segments of
    progressive, telecine and interlaced frames, the field order the picture shows, and a
    warning when that contradicts the stream's flag.
    """
    info = _probe(Path(path))
    if cadence:
        from restoro.media.cadence import analyse

        v = info.video
        cmap = analyse(Path(path), v.index, width=v.width, height=v.height, start=0,
                       end=v.frame_count, declared=v.field_order)  # fmt: skip
        info = info.model_copy(
            update={"cadence": cmap, "warnings": [*info.warnings, *cmap.warnings]}
        )
    return info


def _probe(path: Path) -> SourceInfo:
    import av

    path = Path(path)
    container = _open(path)
    with container:
        if not container.streams.video:
            kinds = ", ".join(s.type for s in container.streams) or "none"
            raise MediaError(
                f"no video stream in {path} (streams: {kinds})",
                hint="restoro sources need a picture; audio-only files go in titles.audio",
            )
        v = container.streams.video[0]
        cc = v.codec_context
        rate = cc.framerate or v.average_rate or v.guessed_rate or v.base_rate
        if not rate:
            raise MediaError(f"cannot tell the frame rate of {path}")
        try:
            scan = _scan(container, v.index)
        except av.error.FFmpegError as exc:
            raise _undecodable(path, exc) from exc
        if scan.count == 0:
            raise MediaError(f"no video frames in {path}", hint="the file may be truncated")
        if not scan.head:
            raise _undecodable(path, RuntimeError("no picture decodes at its start"))
        if not scan.tail_decodes:
            raise _undecodable(path, RuntimeError("no picture decodes at its end"))
        _check_not_cut(path, container, v, scan.last_end)
        count, first_frames = scan.count, scan.head

        field_order: FieldOrder = _FIELD_ORDER.get(cc.field_order, "unknown")
        if field_order == "unknown" and not any(f.interlaced_frame for f in first_frames):
            field_order = "progressive"
        sar = v.sample_aspect_ratio
        dar = Fraction(cc.width * (sar or 1), cc.height)
        timecode = (
            v.metadata.get("timecode")
            or container.metadata.get("timecode")
            or next(
                (s.metadata["timecode"] for s in container.streams if "timecode" in s.metadata),
                None,
            )
            or first_frames[0].metadata.get("timecode")
        )
        video = VideoStream(
            index=v.index,
            codec=cc.name,
            width=cc.width,
            height=cc.height,
            frame_rate=f"{rate.numerator}/{rate.denominator}",
            frame_count=count,
            field_order=field_order,
            sar=_ratio(sar),
            dar=_ratio(dar),
            pix_fmt=cc.pix_fmt,
            color_primaries=_PRIMARIES.get(cc.color_primaries),
            color_transfer=_TRANSFER.get(cc.color_trc),
            color_matrix=_MATRIX.get(cc.colorspace),
            color_range=_RANGE.get(cc.color_range),
            timecode=timecode,
        )
        audio = [
            AudioStream(
                index=a.index,
                codec=a.codec_context.name,
                channels=a.channels,
                layout=a.layout.name,
                sample_rate=a.rate,
                language=a.metadata.get("language"),
            )
            for a in container.streams.audio
        ]
        duration = container.duration / 1_000_000 if container.duration else float(count / rate)
        return SourceInfo(
            path=str(path),
            format_name=container.format.name,
            duration_s=round(duration, 6),
            size=path.stat().st_size,
            video=video,
            audio=audio,
            warnings=_cut_stream_warnings(path, container.format.name),
        )


def _undecodable(path: Path, exc: Exception) -> MediaError:
    return MediaError(
        f"{path} is damaged or truncated: {exc}",
        hint="re-copy the file from the original and check its size",
    )


@dataclass
class _Scan:
    count: int = 0
    last_end: float | None = None
    head: list[av.VideoFrame] = field(default_factory=list)
    tail_decodes: bool = False


def _scan(container: av.container.InputContainer, index: int) -> _Scan:
    """One pass over the video packets: count them, decode the first few and the last GOP.

    The packets from the last keyframe on are kept and decoded after a flush, which proves
    the end of the file decodes without seeking (seeking is unreliable in MPEG-PS/TS).
    """
    stream = container.streams[index]
    decoder: av.VideoCodecContext = stream.codec_context  # type: ignore[assignment]
    scan = _Scan()
    tail: list[av.Packet] = []
    for packet in container.demux(stream):
        if packet.size == 0:
            continue
        scan.count += 1
        if len(scan.head) < CHECK_FRAMES:
            scan.head.extend(decoder.decode(packet))
        tail = [packet] if packet.is_keyframe else [*tail, packet]
        if packet.pts is not None and packet.time_base is not None:
            end = float((packet.pts + (packet.duration or 0)) * packet.time_base)
            scan.last_end = end if scan.last_end is None else max(scan.last_end, end)
    if len(scan.head) < CHECK_FRAMES:
        scan.head.extend(decoder.decode(None))
        scan.head = scan.head[:CHECK_FRAMES]
    decoder.flush_buffers()
    decoded = 0
    for packet in tail:
        decoded += len(decoder.decode(packet))
    decoded += len(decoder.decode(None))
    scan.tail_decodes = decoded > 0
    return scan


_PS_END = b"\x00\x00\x01\xb9"
"""MPEG program end code."""


def _cut_stream_warnings(path: Path, format_name: str) -> list[str]:
    """A warning when an MPEG program or transport stream looks cut short.

    These formats state no duration, so a cut file still probes and builds (with fewer frames
    than the original): a program stream (DVD VOB) is written in 2048-byte packs and ends on a
    pack boundary or with the program end code; a transport stream is whole 188- (or 192-)
    byte packets.
    """
    size = path.stat().st_size
    kind = format_name.split(",")[0]
    if kind in ("mpeg", "vob", "dvd"):
        if size % 2048 == 0:
            return []
        with open(path, "rb") as f:
            f.seek(max(0, size - 4))
            if f.read(4) == _PS_END:
                return []
        return [
            f"{path.name} looks truncated: it ends {size % 2048} bytes into a 2048-byte pack "
            "(no program end code); the picture and sound after the cut are missing"
        ]
    if kind == "mpegts" and size % 188 and size % 192:
        return [
            f"{path.name} looks truncated: it ends inside a transport stream packet; the "
            "picture and sound after the cut are missing"
        ]
    return []


def _check_not_cut(
    path: Path, container: av.container.InputContainer, v: av.VideoStream, last_end: float | None
) -> None:
    """Containers that state their duration up front (MKV, MOV) reveal a cut file."""
    if container.format.name.split(",")[0] not in ("matroska", "mov") or last_end is None:
        return
    if not container.duration:
        return
    start = float(container.start_time or 0) / 1_000_000
    # Matroska's duration runs from timestamp 0 (its end), MOV's from the first sample.
    mov = container.format.name.split(",")[0] == "mov"
    stated = container.duration / 1_000_000 + (start if mov else 0)
    rate = v.average_rate or v.guessed_rate
    slack = 2.0 / float(rate) if rate else 0.1
    if last_end + slack < stated:
        raise MediaError(
            f"{path} is truncated: its header says {stated - start:.3f} s, "
            f"but the picture ends at {last_end - start:.3f} s",
            hint="re-copy the file from the original and check its size",
        )
