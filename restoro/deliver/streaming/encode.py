"""Per-shot streaming encodes: one shot of working frames → one MP4 of one rendition.

Every encode starts with an IDR and puts another IDR every ``cadence`` frames (closed GOPs,
scene-cut detection off), so a title's segments can be cut at every IDR and a changed shot
re-encodes alone. Pictures are scaled to the rendition height with square pixels (width from the
display aspect, even), converted to Y'CbCr BT.709 limited range, 8 or 10 bits. Encoders run
single-threaded with fixed settings so the bytes depend on the input only.
"""

from __future__ import annotations

import subprocess
from fractions import Fraction
from functools import cache
from typing import TYPE_CHECKING

from restoro.errors import StageError, ToolError
from restoro.media.ffmpeg import bitexact_args, ffmpeg_exe, run_ffmpeg

if TYPE_CHECKING:
    from pathlib import Path

    from restoro.media.frames import FrameFormat

ENCODERS = {"h264": "libx264", "hevc": "libx265", "av1": "libsvtav1"}


@cache
def available_encoders() -> frozenset[str]:
    """Encoder names in this ffmpeg build (``ffmpeg -encoders``)."""
    out = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-encoders"], capture_output=True, check=False
    ).stdout.decode("utf-8", "replace")
    names = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and len(parts[0]) == 6 and parts[0][0] in "VAS":
            names.add(parts[1])
    return frozenset(names)


def require_encoder(name: str) -> None:
    """Raise a clear error when ``name`` is not compiled into the ffmpeg restoro uses."""
    if name not in available_encoders():
        raise ToolError(
            f"encoder {name} is not in this ffmpeg build ({ffmpeg_exe()})",
            argv=[ffmpeg_exe(), "-encoders"],
            log_tail="",
            hint="use an ffmpeg built with it, or remove that rendition from the deliverable",
        )


def rendition_size(fmt: FrameFormat, height: int) -> tuple[int, int]:
    """Square-pixel size at ``height`` lines keeping the display aspect (both even)."""
    h = 2 * round(height / 2)
    return 2 * round(h * fmt.dar / 2), h


def bits_per_second(text: str) -> int:
    """``16M`` → 16000000, ``800k`` → 800000."""
    scale = {"k": 1000, "K": 1000, "M": 1_000_000}.get(text[-1], 1)
    return int(Fraction(text.rstrip("kKM")) * scale)


def _rate_control(codec: str, bitrate: int, crf: int | None) -> list[str]:
    vbv = ["-maxrate", str(bitrate * 11 // 10), "-bufsize", str(bitrate * 2)]
    if codec == "av1":  # SVT-AV1 caps the rate only in CRF mode
        return (
            ["-crf", str(crf), "-maxrate", str(bitrate)]
            if crf is not None
            else ["-b:v", str(bitrate)]
        )
    if crf is not None:
        return ["-crf", str(crf), *vbv]
    return ["-b:v", str(bitrate), *vbv]


def encode_shot(
    src: Path,
    fmt: FrameFormat,
    *,
    codec: str,
    height: int,
    bitrate: str,
    bit_depth: int = 8,
    crf: int | None = None,
    cadence: int,
    out: Path,
) -> int:
    """Encode one shot's frames to an MP4 of one rendition; return the frame count."""
    from restoro.media.frameio import count_frames, input_filters

    if codec not in ENCODERS:
        raise StageError(f"unknown codec {codec!r}", hint=f"use one of {list(ENCODERS)}")
    encoder = ENCODERS[codec]
    require_encoder(encoder)
    w, h = rendition_size(fmt, height)
    pix = "yuv420p10le" if bit_depth == 10 else "yuv420p"
    c = fmt.colour
    chain = [
        *input_filters(src),
        f"zscale=w={w}:h={h}:filter=spline36:dither=none",
        "zscale=dither=none:rangein=full:matrixin=gbr:"
        f"primariesin={c.primaries}:transferin={c.transfer}:"
        "primaries=709:transfer=709:matrix=709:range=limited",
        f"format={pix}",
        "setsar=1/1",
        "setparams=field_mode=prog:range=tv:color_primaries=bt709:color_trc=bt709:colorspace=bt709",
    ]
    keys = [
        "-force_key_frames", f"expr:eq(mod(n,{cadence}),0)", "-g", str(cadence),
        "-keyint_min", "1", "-sc_threshold", "0",
    ]  # fmt: skip
    rc = _rate_control(codec, bits_per_second(bitrate), crf)
    if codec == "h264":
        enc = ["-c:v", "libx264", "-preset", "medium", "-threads", "1", "-forced-idr", "1"]
        enc += ["-x264-params", f"keyint={cadence}:scenecut=0:open-gop=0:threads=1"]
        enc += ["-profile:v", "high" if bit_depth == 8 else "high10"]
    elif codec == "hevc":
        params = f"keyint={cadence}:min-keyint=1:scenecut=0:open-gop=0:frame-threads=1"
        params += ":pools=none:wpp=0:log-level=error:repeat-headers=0"
        enc = ["-c:v", "libx265", "-preset", "fast", "-forced-idr", "1", "-x265-params", params]
        enc += ["-tag:v", "hvc1"]
    else:
        enc = ["-c:v", "libsvtav1", "-preset", "10"]
        enc += ["-svtav1-params", f"keyint={cadence}:scd=0:lp=1:irefresh-type=2"]
    args = [
        "-r", fmt.frame_rate, "-i", str(src), "-map", "0:v:0", "-an", "-sn", "-dn",
        "-filter_threads", "1", "-vf", ",".join(chain), "-fps_mode", "passthrough",
        *enc, *rc, *keys, "-color_primaries", "bt709", "-color_trc", "bt709",
        "-colorspace", "bt709", "-color_range", "tv",
        "-video_track_timescale", str(timescale(fmt.frame_rate)),
        *bitexact_args(), "-f", "mp4", str(out),
    ]  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    run_ffmpeg(args)
    return count_frames(out)


def timescale(frame_rate: str) -> int:
    """A track timescale giving every frame a whole number of ticks."""
    num = Fraction(frame_rate).numerator
    return num if num >= 1000 else num * 100
