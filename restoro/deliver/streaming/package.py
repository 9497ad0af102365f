"""Packaging: per-shot encodes → one fragmented MP4 per rendition (no re-encode), split into a
CMAF init segment and media segments; audio encoded and fragmented at the segment cadence. Each
track is described by a ``Track`` the playlist writers read.

A video fragment starts at every IDR: at each shot start and every ``segment_seconds`` within a
shot. Consecutive fragments are joined into one media segment while their total stays within
``segment_seconds`` (HLS and CMAF allow several moof/mdat pairs in a segment), so a run of short
shots does not become a run of tiny segments; every IDR keeps its own entry, a byte range inside
its segment, in the I-frame playlist."""

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
class IFrame:
    """An IDR inside a segment file: its fragment's moof and first sample."""

    offset: int
    length: int
    duration: Fraction
    """The duration of the IDR's fragment (until the next IDR)."""


@dataclass
class Segment:
    name: str
    duration: Fraction
    size: int
    iframes: list[IFrame]


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
        return max(
            math.ceil(i.length * 8 / i.duration)
            for s in self.segments
            for i in s.iframes
            if i.duration
        )


def join_fragments(
    frags: list[isobmff.Fragment], scale: int, target: Fraction | None
) -> list[list[isobmff.Fragment]]:
    """Consecutive fragments grouped into segments of at most ``target`` seconds (a fragment
    longer than that stays alone); ``None``: one segment per fragment."""
    groups: list[list[isobmff.Fragment]] = []
    total = Fraction(0)
    for f in frags:
        d = Fraction(f.duration, scale)
        if groups and target is not None and total + d <= target:
            groups[-1].append(f)
            total += d
        else:
            groups.append([f])
            total = d
    return groups


def _write(
    out_dir: Path, tid: str, data: bytes, *, kind: str, target: Fraction | None = None, **kw: Any
) -> Track:
    init, frags = isobmff.split(data)
    scale = isobmff.timescale(init)
    if kind == "video" and frags:
        # B-frames delay the first picture's presentation (2 frames with x264's defaults) while
        # sound and captions start at 0: lower every composition offset by that delay so the
        # first picture presents at 0 too (a version 1 trun), in every rendition alike.
        delay = isobmff.earliest_presentation(frags) - frags[0].decode_time
        frags = [isobmff.shift_composition(f, delay) for f in frags]
    d = out_dir / tid
    d.mkdir(parents=True, exist_ok=True)
    (d / "init.mp4").write_bytes(init)
    segs, starts, durations = [], [], []
    for i, group in enumerate(join_fragments(frags, scale, target), 1):
        name = f"{tid}/seg_{i:05d}.m4s"
        body = b"".join(f.data for f in group)
        (out_dir / name).write_bytes(body)
        iframes, offset = [], 0
        for f in group:
            iframes.append(IFrame(offset, f.first_sample_end, Fraction(f.duration, scale)))
            offset += len(f.data)
        ticks = sum(f.duration for f in group)
        segs.append(Segment(name, Fraction(ticks, scale), len(body), iframes))
        starts.append(group[0].decode_time)
        durations.append(ticks)
    return Track(
        id=tid,
        kind=kind,
        codec=isobmff.codec_string(init),
        init=f"{tid}/init.mp4",
        segments=segs,
        timescale=scale,
        starts=starts,
        durations=durations,
        **kw,
    )


def package_video(
    chunks: list[Path],
    *,
    frame_rate: str,
    out_dir: Path,
    tid: str,
    segment_seconds: float | None = None,
    **kw: Any,
) -> Track:
    """Concatenate per-shot encodes (``-c copy``) into fMP4 fragments cut at every IDR, joined
    into segments of at most ``segment_seconds`` (None: a segment per fragment)."""
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
        target = Fraction(str(segment_seconds)) if segment_seconds else None
        track = _write(
            out_dir, tid, frag.read_bytes(), kind="video", target=target, frame_rate=frame_rate
        )
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
    normalise: tuple[float, float] | None = None,
) -> Track:
    """Encode (or, with ``copy``, carry) an audio track into fMP4 fragments; ``input_format``
    names the demuxer of a raw elementary stream (``ac3``, ``eac3``). ``normalise`` (target
    LUFS, true-peak ceiling dBTP): the encoded rendition itself is measured and brought to
    the target under the ceiling (``restoro.deliver.audio.normalise_encode``)."""
    from restoro.deliver.audio import measure_file, normalise_encode

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

        def encode(af: str | None = None) -> None:
            run_ffmpeg(
                [*(["-f", input_format] if input_format else []), "-i", str(wav),
                 "-map", "0:a:0", *(["-af", af] if af else []), *enc, "-movflags", flags,
                 "-frag_duration", str(int(fragment_seconds * 1_000_000)),
                 *bitexact_args(), "-f", "mp4", str(frag)]
            )  # fmt: skip

        figures: dict[str, Any] = {}
        if normalise is not None and not copy:
            fmt = ["-f", input_format] if input_format else None
            figures = normalise_encode(
                encode, lambda: measure_file(frag), target=normalise[0], ceiling=normalise[1],
                mix=measure_file(wav, input_format=fmt),
            )  # fmt: skip
        else:
            encode()
        track = _write(
            out_dir, tid, frag.read_bytes(), kind="audio", channels=channels, language=language
        )
        track.extra.update(figures)
        return track
