"""Packaging: per-shot encodes → one fragmented MP4 per rendition (no re-encode), split into a
CMAF init segment and one media segment per IDR; audio encoded and fragmented at the segment
cadence. Each track is described by a ``Track`` the playlist writers read."""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from restoro.deliver.streaming import isobmff
from restoro.deliver.streaming.encode import bits_per_second, require_encoder, timescale
from restoro.errors import StageError
from restoro.media.ffmpeg import bitexact_args, run_ffmpeg

FRAG_FLAGS = ["-movflags", "+frag_keyframe+empty_moov+default_base_moof", "-write_tmcd", "0"]


@dataclass
class Segment:
    name: str
    duration: Fraction
    size: int
    iframe_bytes: int


@dataclass
class Track:
    id: str
    kind: str  # "video" | "audio"
    codec: str
    init: str
    segments: list[Segment]
    timescale: int
    starts: list[int]
    durations: list[int]
    width: int = 0
    height: int = 0
    frame_rate: str = ""
    channels: int = 0
    language: str = "und"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def duration(self) -> Fraction:
        return sum((s.duration for s in self.segments), Fraction(0))

    @property
    def peak(self) -> int:
        """Highest segment bitrate, bits/s."""
        return max(math.ceil(s.size * 8 / s.duration) for s in self.segments if s.duration)

    @property
    def average(self) -> int:
        return math.ceil(sum(s.size for s in self.segments) * 8 / self.duration)

    @property
    def iframe_peak(self) -> int:
        return max(math.ceil(s.iframe_bytes * 8 / s.duration) for s in self.segments if s.duration)


def _write(out_dir: Path, tid: str, data: bytes, *, kind: str, **kw: Any) -> Track:
    init, frags = isobmff.split(data)
    scale = isobmff.timescale(init)
    d = out_dir / tid
    d.mkdir(parents=True, exist_ok=True)
    (d / "init.mp4").write_bytes(init)
    segs = []
    for i, f in enumerate(frags, 1):
        name = f"{tid}/seg_{i:05d}.m4s"
        (out_dir / name).write_bytes(f.data)
        segs.append(Segment(name, Fraction(f.duration, scale), len(f.data), f.first_sample_end))
    return Track(
        id=tid,
        kind=kind,
        codec=isobmff.codec_string(init),
        init=f"{tid}/init.mp4",
        segments=segs,
        timescale=scale,
        starts=[f.decode_time for f in frags],
        durations=[f.duration for f in frags],
        **kw,
    )


def package_video(
    chunks: list[Path], *, frame_rate: str, out_dir: Path, tid: str, **kw: Any
) -> Track:
    """Concatenate per-shot encodes (``-c copy``) into fMP4 fragments cut at every IDR."""
    if not chunks:
        raise StageError("a rendition needs at least one shot")
    with tempfile.TemporaryDirectory(prefix="restoro-pkg-") as tmp:
        listing = Path(tmp) / "chunks.ffconcat"
        lines = ["ffconcat version 1.0"]
        lines += ["file '" + str(c.resolve()).replace("'", "'\\''") + "'" for c in chunks]
        listing.write_text("\n".join(lines) + "\n", encoding="utf-8")
        frag = Path(tmp) / "frag.mp4"
        run_ffmpeg(
            ["-f", "concat", "-safe", "0", "-i", str(listing), "-map", "0:v:0", "-c", "copy",
             *FRAG_FLAGS, "-video_track_timescale", str(timescale(frame_rate)),
             *bitexact_args(), "-f", "mp4", str(frag)]
        )  # fmt: skip
        track = _write(out_dir, tid, frag.read_bytes(), kind="video", frame_rate=frame_rate)
    w, h = isobmff.picture_size((out_dir / track.init).read_bytes())
    track.width, track.height = w, h
    track.extra.update(kw)
    return track


AUDIO_ENCODERS = {"aac": "aac", "eac3": "eac3", "ac3": "ac3"}


def package_audio(
    wav: Path,
    *,
    codec: str,
    channels: int,
    bitrate: str,
    fragment_seconds: float,
    out_dir: Path,
    tid: str,
    language: str,
    copy: bool = False,
    input_format: str | None = None,
) -> Track:
    """Encode (or, with ``copy``, carry) an audio track into fMP4 fragments; ``input_format``
    names the demuxer of a raw elementary stream (``ac3``, ``eac3``)."""
    with tempfile.TemporaryDirectory(prefix="restoro-pkg-") as tmp:
        frag = Path(tmp) / "frag.mp4"
        if copy:
            enc = ["-c:a", "copy"]
        else:
            require_encoder(AUDIO_ENCODERS[codec])
            enc = ["-c:a", AUDIO_ENCODERS[codec], "-b:a", str(bits_per_second(bitrate))]
            enc += ["-ac", str(channels), "-ar", "48000"]
        # (E-)AC-3 sample entries need a parsed first packet: delay the (empty) moov until then.
        flags = "+empty_moov+default_base_moof" + ("+delay_moov" if codec != "aac" else "")
        run_ffmpeg(
            [*(["-f", input_format] if input_format else []), "-i", str(wav),
             "-map", "0:a:0", *enc, "-movflags", flags,
             "-frag_duration", str(int(fragment_seconds * 1_000_000)),
             *bitexact_args(), "-f", "mp4", str(frag)]
        )  # fmt: skip
        return _write(
            out_dir, tid, frag.read_bytes(), kind="audio", channels=channels, language=language
        )
