"""Synthetic source media from ffmpeg ``lavfi``, for tests and ``restoro demo``.

Recipe (one ffmpeg run, deterministic):

* Each shot is a different lavfi generator with moving detail — ``testsrc2``, ``smptebars``
  with a bouncing white box, ``mandelbrot`` (zooming), ``gradients`` (rotating),
  ``sierpinski`` (drifting, tinted) and ``cellauto`` (scrolling) — cycled in that order, each
  cut to its exact frame count with ``trim`` and joined with ``concat``, so hard cuts sit
  exactly at the segment boundaries (see ``shot_starts``).
* Interlaced sources are generated at twice the frame rate and woven pairwise into frames with
  ``tinterlace=interleave_top`` (the even picture gives the top field), so both fields carry
  distinct moments in time; the encoder gets interlaced coding flags and a top-field-first tag.
* Audio is ``aevalsrc``: one sine per channel (different pitches) plus a little seeded noise,
  48 kHz, stereo or 5.1, exactly as long as the picture.
* The container follows the file suffix (``.mpg``/``.vob`` MPEG-PS, ``.ts``, ``.mkv``, ``.mov``);
  MPEG containers get AC-3 audio like a DVD, the others 16-bit PCM.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Literal

from restoro.media.ffmpeg import bitexact_args, run_ffmpeg

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

Codec = Literal["mpeg2video", "ffv1", "h264"]

# Channel pitches (Hz): distinct per channel so channel-mapping bugs are audible and testable.
_PITCHES = (440.0, 554.37, 659.25, 110.0, 880.0, 987.77)


_MATRIX = {"bt601-525": "smpte170m", "bt601-625": "bt470bg", "bt709": "bt709"}
_TAGS = {
    "bt601-525": "colorspace=smpte170m:color_primaries=smpte170m:color_trc=smpte170m",
    "bt601-625": "colorspace=bt470bg:color_primaries=bt470bg:color_trc=smpte170m",
    "bt709": "colorspace=bt709:color_primaries=bt709:color_trc=bt709",
}


def _shot_list(shots: int, shot_frames: int | Sequence[int]) -> list[int]:
    if isinstance(shot_frames, int):
        frames = [shot_frames] * shots
    else:
        frames = list(shot_frames)
        if len(frames) != shots:
            raise ValueError(f"shot_frames has {len(frames)} entries for {shots} shots")
    if shots < 1 or any(n < 1 for n in frames):
        raise ValueError("need at least one shot of at least one frame")
    return frames


def shot_starts(shots: int = 3, shot_frames: int | Sequence[int] = 24) -> list[int]:
    """Frame indices where a new shot starts in ``make_source``'s output (0 excluded)."""
    frames = _shot_list(shots, shot_frames)
    starts, pos = [], 0
    for n in frames[:-1]:
        pos += n
        starts.append(pos)
    return starts


def _generator(i: int, size: str, rate: str) -> str:
    """The lavfi source graph (no inputs, one output) for shot ``i``."""
    box = max(4, min(int(x) for x in size.split("x")) // 5)
    kinds = [
        f"testsrc2=s={size}:r={rate}",
        f"smptebars=s={size}:r={rate}[bars{i}];color=c=white:s={box}x{box}:r={rate}[box{i}];"
        # The box bounces (a triangle wave) so it never jumps: a jump would look like a cut.
        f"[bars{i}][box{i}]overlay=x='abs(mod(n*9,2*(W-w))-(W-w))':"
        f"y='abs(mod(n*5,2*(H-h))-(H-h))':shortest=0:"
        f"eof_action=pass",
        f"mandelbrot=s={size}:r={rate}:maxiter=64:start_scale=2:end_scale=0.5",
        f"gradients=s={size}:r={rate}:speed=0.05:seed={i + 3}:c0=#ff2000:c1=#0030ff:"
        f"c2=#ffe000:nb_colors=3",
        f"sierpinski=s={size}:r={rate}:seed={i + 7}:jump=2,hue=h=120:s=2",
        f"cellauto=s={size}:r={rate}:rule=110:seed={i + 5},negate",
    ]
    return kinds[i % len(kinds)]


def _container_audio(path: Path) -> list[str]:
    if path.suffix.lower() in (".mpg", ".mpeg", ".vob", ".ts", ".m2ts"):
        return ["-c:a", "ac3", "-b:a", "192k"]
    return ["-c:a", "pcm_s16le"]


def _video_codec(codec: Codec, interlaced: bool) -> list[str]:
    # Field order comes from the frames (setfield=tff); interlaced coding from +ildct+ilme.
    if codec == "mpeg2video":
        return ["-c:v", "mpeg2video", "-q:v", "3", "-g", "15", "-bf", "2", "-threads", "1"]
    if codec == "h264":
        args = ["-c:v", "libx264", "-preset", "veryfast", "-crf", "16", "-g", "30", "-threads", "1"]
        return args + ["-x264-params", "threads=1:" + ("tff=1" if interlaced else "")]
    if codec == "ffv1":
        return ["-c:v", "ffv1", "-level", "3", "-g", "1", "-slices", "4", "-threads", "1"]
    raise ValueError(f"unknown codec {codec!r}")


def make_source(
    path: Path,
    *,
    width: int = 720,
    height: int = 480,
    rate: str = "30000/1001",
    shots: int = 3,
    shot_frames: int | Sequence[int] = 24,
    interlaced: bool = False,
    audio_channels: int = 2,
    codec: Codec = "mpeg2video",
    sar: str = "8:9",
    colour: str | None = None,
) -> Path:
    """Write a synthetic source with ``shots`` hard-cut shots to ``path``; return ``path``.

    ``colour`` tags the stream (``bt601-525``, ``bt601-625``, ``bt709``); ``None`` leaves it
    untagged, as most DVDs are. The pixels are always made with the matching YCbCr matrix.
    """
    frames = _shot_list(shots, shot_frames)
    if audio_channels not in (0, 1, 2, 6):
        raise ValueError("audio_channels must be 0, 1, 2 or 6")
    size = f"{width}x{height}"
    fr = Fraction(rate)
    gen_rate = fr * 2 if interlaced else fr
    gen_rate_s = f"{gen_rate.numerator}/{gen_rate.denominator}"
    factor = 2 if interlaced else 1
    sar_n, sar_d = sar.split(":")

    parts: list[str] = []
    for i, n in enumerate(frames):
        parts.append(
            f"{_generator(i, size, gen_rate_s)},trim=end_frame={n * factor},"
            f"setpts=PTS-STARTPTS,format=rgb24,setsar=1[s{i}]"
        )
    joined = "".join(f"[s{i}]" for i in range(len(frames)))
    tail = f"{joined}concat=n={len(frames)}:v=1:a=0"
    if interlaced:
        tail += ",tinterlace=mode=interleave_top,setfield=tff"
    else:
        tail += ",setfield=prog"
    # RGB until after weaving, then one explicit conversion to 4:2:0 (as a DVD carries it);
    # tags and SAR set last so no filter resets them.
    matrix = _MATRIX[colour] if colour else ("bt709" if height > 576 else "smpte170m")
    tags = (
        _TAGS[colour] if colour else "colorspace=unknown:color_primaries=unknown:color_trc=unknown"
    )
    tail += (
        f",scale=out_color_matrix={matrix}:out_range=tv,format=yuv420p,"
        f"setparams=range=tv:{tags},setsar={sar_n}/{sar_d}[v]"
    )
    graph = ";".join([*parts, tail])

    total = sum(frames)
    args = ["-filter_complex", graph]
    if audio_channels:
        layout = {1: "mono", 2: "stereo", 6: "5.1"}[audio_channels]
        exprs = "|".join(
            f"0.25*sin(2*PI*{_PITCHES[c]}*t)+0.02*(random({c})-0.5)" for c in range(audio_channels)
        )
        dur = Fraction(total) / fr
        args += [
            "-f",
            "lavfi",
            "-i",
            f"aevalsrc=exprs='{exprs}':s=48000:c={layout}:d={float(dur):.6f}",
        ]
    args += ["-map", "[v]", "-frames:v", str(total), "-r", rate]
    args += _video_codec(codec, interlaced)
    if audio_channels:
        args += ["-map", "0:a", *_container_audio(path)]
    vflags = "+ildct+ilme" if interlaced and codec != "ffv1" else ""
    args += [*bitexact_args(vflags), str(path)]
    path.parent.mkdir(parents=True, exist_ok=True)
    run_ffmpeg(args)
    return path


# -- SD fixtures: telecined NTSC, PAL 576i, hybrid film/video/film ------------------------------

NTSC = "30000/1001"
FILM = "24000/1001"


@dataclass(frozen=True)
class TruthSegment:
    """What a fixture really is, in source frames [start, end): ``film`` (telecined, with the
    index mod 5 of its first combed frame as ``phase``) or ``video`` (true interlaced)."""

    kind: str
    start: int
    end: int
    phase: int | None = None


def _film_picture(size: str, rate: str, frames: int, seed: int) -> str:
    """Smooth, moving picture (natural images have little vertical detail at the Nyquist
    limit, so a woven progressive frame does not look combed)."""
    return (
        f"testsrc2=s={size}:r={rate},gblur=sigma=1.2,"
        f"hue=h={seed * 40},trim=end_frame={frames},setpts=PTS-STARTPTS"
    )


def _sd_tail(path: Path, graph: str, total: int, rate: str, sar: str, colour: str) -> None:
    matrix = _MATRIX[colour]
    sar_n, sar_d = sar.split(":")
    graph += (
        f",scale=out_color_matrix={matrix}:out_range=tv,format=yuv420p,"
        f"setparams=range=tv:{_TAGS[colour]},setsar={sar_n}/{sar_d}[v]"
    )
    dur = Fraction(total) / Fraction(rate)
    exprs = "|".join(f"0.25*sin(2*PI*{_PITCHES[c]}*t)+0.02*(random({c})-0.5)" for c in range(6))
    args = [
        "-filter_complex", graph,
        "-f", "lavfi", "-i", f"aevalsrc=exprs='{exprs}':s=48000:c=5.1:d={float(dur):.6f}",
        "-map", "[v]", "-frames:v", str(total), "-r", rate,
        "-c:v", "mpeg2video", "-q:v", "2", "-qmin", "1", "-g", "15", "-bf", "2", "-threads", "1",
        "-map", "0:a", "-c:a", "ac3", "-b:a", "384k",
        *bitexact_args("+ildct+ilme"), str(path),
    ]  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    run_ffmpeg(args)


def _telecined(size: str, film_frames: int, seed: int, skip: int, label: str) -> str:
    """``film_frames`` 23.976p frames, 3:2 pulled down (top field first), minus ``skip``
    leading frames (which shifts the cadence phase)."""
    return (
        f"{_film_picture(size, FILM, film_frames, seed)},format=yuv420p,"
        f"telecine=first_field=top:pattern=23,trim=start_frame={skip},"
        f"setpts=N/(30000/1001)/TB,setfield=tff[{label}]"
    )


def _video(size: str, frames: int, label: str) -> str:
    """``frames`` true-interlaced frames: 59.94p pictures woven pairwise, top field first."""
    return (
        f"testsrc2=s={size}:r=60000/1001,gblur=sigma=1.2,hue=h=200,trim=end_frame={2 * frames},"
        "format=yuv420p,tinterlace=mode=interleave_top,"
        f"setpts=N/(30000/1001)/TB,setfield=tff[{label}]"
    )


def telecine_frames(film_frames: int, skip: int = 0) -> int:
    """Video frames that 3:2 pulldown makes of ``film_frames`` film frames, minus ``skip``."""
    return (film_frames * 5 + 3) // 4 - skip


def make_telecine(
    path: Path, *, width: int = 720, height: int = 480, film_frames: int = 48, sar: str = "8:9"
) -> Path:
    """A telecined NTSC 480i clip (3:2 pulldown of ``film_frames`` 23.976p frames), MPEG-2 with
    AC-3 5.1; ``film_reference`` writes the pre-telecine frames."""
    size = f"{width}x{height}"
    n = telecine_frames(film_frames)
    _sd_tail(path, _telecined(size, film_frames, 0, 0, "f").removesuffix("[f]"), n, NTSC, sar,
             "bt601-525")  # fmt: skip
    return path


def film_reference(
    path: Path, *, width: int = 720, height: int = 480, film_frames: int = 48
) -> Path:
    """The pre-telecine frames of ``make_telecine`` (4:2:0, lossless FFV1), for IVTC checks."""
    size = f"{width}x{height}"
    graph = (
        f"{_film_picture(size, FILM, film_frames, 0)},"
        "scale=out_color_matrix=smpte170m:out_range=tv,format=yuv420p,"
        f"setparams=range=tv:{_TAGS['bt601-525']}"
    )
    args = ["-filter_complex", graph, "-frames:v", str(film_frames), "-r", FILM,
            *_video_codec("ffv1", False), *bitexact_args(), str(path)]  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    run_ffmpeg(args)
    return path


def make_pal(
    path: Path, *, width: int = 720, height: int = 576, frames: int = 50, sar: str = "16:15"
) -> Path:
    """A PAL 576i clip (true interlaced, 25 fps, top field first), MPEG-2 with AC-3 5.1.
    ``sar`` 16:15 is 4:3, 64:45 anamorphic 16:9."""
    return make_source(
        path, width=width, height=height, rate="25", shots=2,
        shot_frames=[frames // 2, frames - frames // 2], interlaced=True, audio_channels=6,
        sar=sar, colour="bt601-625",
    )  # fmt: skip


def make_hybrid(
    path: Path,
    *,
    width: int = 720,
    height: int = 480,
    film: tuple[int, int] = (48, 40),
    video_frames: int = 45,
    skip: int = 2,
    sar: str = "8:9",
) -> tuple[Path, list[TruthSegment]]:
    """NTSC 480i film (telecined) → video (interlaced) → film (telecined, cadence broken: the
    second film part starts ``skip`` frames into its pattern). Returns the path and the truth."""
    size = f"{width}x{height}"
    a = telecine_frames(film[0])
    b = telecine_frames(film[1], skip)
    graph = ";".join(
        [
            _telecined(size, film[0], 0, 0, "f1"),
            _video(size, video_frames, "v"),
            _telecined(size, film[1], 2, skip, "f2"),
            "[f1][v][f2]concat=n=3:v=1:a=0",
        ]
    )
    total = a + video_frames + b
    _sd_tail(path, graph, total, NTSC, sar, "bt601-525")
    # 3:2 with the top field first: frames 2 and 3 of every five are combed.
    truth = [
        TruthSegment("film", 0, a, 2),
        TruthSegment("video", a, a + video_frames),
        TruthSegment("film", a + video_frames, total, (2 - skip) % 5),
    ]
    return path, truth


# -- colour fixtures: 75 % bars, solid colours -----------------------------------------------

BARS_75 = (
    (191, 191, 191),  # white
    (191, 191, 0),  # yellow
    (0, 191, 191),  # cyan
    (0, 191, 0),  # green
    (191, 0, 191),  # magenta
    (191, 0, 0),  # red
    (0, 0, 191),  # blue
)
"""The seven 75 % bars (8-bit R'G'B', left to right), each ``width / 7`` wide."""


def _pick(values: Sequence[int]) -> str:
    """A geq expression giving ``values[bar]`` for the bar under column X."""
    expr = str(values[-1])
    for i in range(len(values) - 2, -1, -1):
        expr = f"if(lt(floor(X*7/W),{i + 1}),{values[i]},{expr})"
    return expr


def _rgb_clip(
    path: Path,
    picture: str,
    *,
    width: int,
    height: int,
    frames: int,
    rate: str,
    sar: str,
    colour: str | None,
    codec: Codec,
    pix_fmt: str = "yuv420p",
) -> Path:
    """An RGB lavfi picture converted once to ``pix_fmt`` limited range with ``colour``'s
    matrix (BT.601-525 when None), tagged with it, or untagged when None; no audio."""
    matrix = _MATRIX[colour or "bt601-525"]
    tags = (
        _TAGS[colour] if colour else "colorspace=unknown:color_primaries=unknown:color_trc=unknown"
    )
    sar_n, sar_d = sar.split(":")
    graph = (
        f"color=c=black:s={width}x{height}:r={rate},format=gbrp,{picture},"
        f"scale=out_color_matrix={matrix}:out_range=tv,format={pix_fmt},"
        f"setparams=range=tv:{tags},setsar={sar_n}/{sar_d}"
    )
    args = ["-f", "lavfi", "-i", graph, "-frames:v", str(frames), "-r", rate,
            *_video_codec(codec, False), *bitexact_args(), str(path)]  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    run_ffmpeg(args)
    return path


def make_bars(
    path: Path,
    *,
    width: int = 350,
    height: int = 240,
    frames: int = 4,
    rate: str = NTSC,
    sar: str = "8:9",
    colour: str | None = "bt601-525",
    codec: Codec = "ffv1",
    pix_fmt: str = "yuv420p",
) -> Path:
    """75 % colour bars (``BARS_75``) in SD Y'CbCr (``pix_fmt``: 4:2:0 8-bit as on a DVD, or
    ``yuv422p10le`` as a 10-bit tape capture), BT.601 matrix, limited range."""
    picture = "geq=r='{}':g='{}':b='{}'".format(
        *(_pick([bar[c] for bar in BARS_75]) for c in range(3))
    )
    return _rgb_clip(path, picture, width=width, height=height, frames=frames, rate=rate,
                     sar=sar, colour=colour, codec=codec, pix_fmt=pix_fmt)  # fmt: skip


def make_solid(
    path: Path,
    rgb: tuple[int, int, int],
    *,
    width: int = 160,
    height: int = 120,
    frames: int = 12,
    rate: str = NTSC,
    sar: str = "1:1",
    colour: str | None = "bt601-525",
    codec: Codec = "ffv1",
) -> Path:
    """A solid 8-bit R'G'B' colour (a stand-in replacement element for conform tests)."""
    picture = "geq=r={}:g={}:b={}".format(*rgb)
    return _rgb_clip(path, picture, width=width, height=height, frames=frames, rate=rate,
                     sar=sar, colour=colour, codec=codec)  # fmt: skip
