"""ProRes mezzanine: per-shot chunks encoded from intermediates, then a lossless concat master.

``encode_chunk`` places the picture in the delivery raster with its display aspect kept (4:3
pillarboxed into 16:9 by default), converts RGB → Y'CbCr BT.709 limited range at 10 bits with
the primaries converted explicitly (zscale), and encodes ProRes with Apple's vendor id. ProRes
is all-intra, so ``assemble_master`` concatenates chunks with ``-c copy``: every picture in the
master is byte-for-byte the one its chunk encoded, and a changed shot re-encodes alone.
"""

from __future__ import annotations

import tempfile
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from restoro.errors import StageError
from restoro.media.ffmpeg import bitexact_args, run_ffmpeg

if TYPE_CHECKING:
    from collections.abc import Mapping

    from restoro.media.frames import FrameFormat

Fit = Literal["pillarbox", "letterbox", "fit"]
Profile = Literal["422hq", "4444", "4444xq"]

PROFILES: dict[str, tuple[str, str, str]] = {
    "422hq": ("hq", "yuv422p10le", "Apple ProRes 422 HQ"),
    "4444": ("4444", "yuv444p10le", "Apple ProRes 4444"),
    "4444xq": ("4444xq", "yuv444p10le", "Apple ProRes 4444 XQ"),
}
PROFILE_BY_FOURCC = {"apch": "422hq", "ap4h": "4444", "ap4x": "4444xq"}
BT709_TAGS = [
    "-color_primaries", "bt709", "-color_trc", "bt709", "-colorspace", "bt709",
    "-color_range", "tv",
]  # fmt: skip
# Slice threads do not change ProRes bytes (slices are coded independently); fixed anyway.
ENCODER_THREADS = "2"


def picture_size(fmt: FrameFormat, raster: tuple[int, int], fit: Fit) -> tuple[int, int]:
    """Square-pixel size of the picture inside ``raster`` keeping ``fmt``'s display aspect."""
    rw, rh = raster
    dar = fmt.dar
    if fit == "fit":
        fit = "pillarbox" if Fraction(rw, rh) >= dar else "letterbox"
    if fit == "pillarbox":
        w, h = 2 * round(rh * dar / 2), rh
    elif fit == "letterbox":
        w, h = rw, 2 * round(rw / dar / 2)
    else:
        raise StageError(f"unknown fit {fit!r}", hint="use pillarbox, letterbox or fit")
    if w > rw or h > rh:
        raise StageError(
            f"a {float(dar):.4g}:1 picture {fit}ed to {w}x{h} does not fit the {rw}x{rh} raster",
            hint="use fit: letterbox (or fit) for pictures wider than the raster",
        )
    return w, h


def timescale(frame_rate: str) -> int:
    """MOV track timescale giving every frame a whole number of ticks."""
    num = Fraction(frame_rate).numerator
    return num if num >= 1000 else num * 100


def encode_chunk(
    src: Path,
    fmt: FrameFormat,
    *,
    raster: tuple[int, int],
    fit: Fit = "pillarbox",
    profile: Profile = "422hq",
    out: Path,
    pre: str | None = None,
) -> int:
    """Encode the intermediate ``src`` (format ``fmt``) to a ProRes MOV chunk; return frames.

    ``pre``: ffmpeg filters run on ``src``'s frames first (a folded chain segment); ``fmt`` is
    then the format of the frames they give."""
    from restoro.media.frameio import count_frames, input_filters

    if profile not in PROFILES:
        raise StageError(f"unknown ProRes profile {profile!r}", hint=f"use one of {list(PROFILES)}")
    ks_profile, pix_fmt, _name = PROFILES[profile]
    rw, rh = raster
    w, h = picture_size(fmt, raster, fit)
    x, y = (rw - w) // 2 // 2 * 2, (rh - h) // 2 // 2 * 2
    c = fmt.colour
    chain = [
        *input_filters(src),
        *([pre] if pre else []),
        # Resize and pad in RGB (black is exactly 0 there), then convert the whole raster, so
        # the bars come out as exact limited-range black (Y 64, Cb/Cr 512).
        f"zscale=w={w}:h={h}:filter=spline36:dither=none",
        f"pad={rw}:{rh}:{x}:{y}:black",
        "zscale=dither=none:rangein=full:matrixin=gbr:"
        f"primariesin={c.primaries}:transferin={c.transfer}:"
        "primaries=709:transfer=709:matrix=709:range=limited",
        f"format={pix_fmt}",
        "setsar=1/1",
        "setparams=field_mode=prog:range=tv:color_primaries=bt709:color_trc=bt709:colorspace=bt709",
    ]
    args = [
        "-r", fmt.frame_rate, "-i", str(src), "-map", "0:v:0", "-an", "-sn", "-dn",
        "-filter_threads", "1", "-vf", ",".join(chain), "-fps_mode", "passthrough",
        "-c:v", "prores_ks", "-profile:v", ks_profile, "-vendor", "apl0",
        "-threads", ENCODER_THREADS, *BT709_TAGS,
        "-video_track_timescale", str(timescale(fmt.frame_rate)),
        *bitexact_args(), *_sample_entry_tags(profile), "-f", "mov", str(out),
    ]  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    run_ffmpeg(args)
    return count_frames(out)


def _sample_entry_tags(profile: str) -> list[str]:
    """The compressor name in the MOV sample entry, as Apple's encoder writes it."""
    return ["-metadata:s:v:0", f"encoder={PROFILES[profile][2]}"]


def _chunk_profile(chunk: Path) -> str:
    import av

    with av.open(str(chunk)) as container:
        tag = container.streams.video[0].codec_context.codec_tag
    if tag not in PROFILE_BY_FOURCC:
        raise StageError(f"{chunk} is not a ProRes 422 HQ/4444/4444 XQ chunk (fourcc {tag!r})")
    return PROFILE_BY_FOURCC[tag]


def _concat_list(chunks: list[Path]) -> str:
    lines = ["ffconcat version 1.0"]
    for chunk in chunks:
        quoted = str(Path(chunk).resolve()).replace("'", "'\\''")
        lines.append(f"file '{quoted}'")
    return "\n".join(lines) + "\n"


def assemble_master(
    chunks: list[Path],
    out: Path,
    *,
    frame_rate: str,
    timecode: str,
    audio: list[Path],
    metadata: Mapping[str, str],
) -> None:
    """Concatenate ProRes chunks without re-encoding, add PCM audio, timecode and metadata."""
    if not chunks:
        raise StageError("a master needs at least one chunk")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="restoro-concat-") as tmp:
        listing = Path(tmp) / "chunks.ffconcat"
        listing.write_text(_concat_list(chunks), encoding="utf-8")
        args = ["-f", "concat", "-safe", "0", "-i", str(listing)]
        for wav in audio:
            args += ["-i", str(wav)]
        args += ["-map", "0:v:0"]
        for i in range(len(audio)):
            args += ["-map", f"{i + 1}:a:0"]
        args += ["-c:v", "copy", "-c:a", "pcm_s24le", "-ar", "48000"]
        args += ["-timecode", timecode, "-video_track_timescale", str(timescale(frame_rate))]
        args += [*BT709_TAGS, *bitexact_args(), *_sample_entry_tags(_chunk_profile(chunks[0]))]
        for key, value in sorted(metadata.items()):
            args += ["-metadata", f"{key}={value}"]
        args += ["-movflags", "+use_metadata_tags", "-f", "mov", str(out)]
        run_ffmpeg(args)
