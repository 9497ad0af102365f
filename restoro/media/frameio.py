"""Working-frame intermediates: FFVHuff (lossless, all-intra, static tables) in Matroska; for
cache points after a model, a ProRes 4444 mezzanine (``MEZZANINE``: 10-bit Y'CbCr 4:4:4, the
class of post-production masters) or, as earlier builds made them, 12-bit FFV1 (``COMPACT``,
still read); see docs/engine.md.

FFVHuff, not FFV1: at 16 bits per channel FFV1's range coder costs about 0.25 s to encode and
0.33 s to decode one 1440x1080 frame on one core, FFVHuff 0.015 s and 0.03 s, for larger
files (1.2x on a noisy picture, 2.3x on a smooth upscaled one; docs/performance.md).
Integrity at rest is the store's digest, checked on every read; what an action just wrote is
checked from the container (codec, layout, frame count) and its last frame decoded, not by
decoding every frame again.

Frames are RGB uint16 (H, W, 3), stored as planar ``gbrp16le`` (``gbrp12le``) — plane order G,
B, R — so the writer reorders planes itself and pipes raw planes into ffmpeg: no swscale in the
path, nothing that could round. The file carries its ``FrameFormat`` as a Matroska tag, so an
intermediate describes itself (``read_format``). Output bytes depend only on the frames and the
format (bitexact muxing, fixed slice count).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from restoro.errors import StageError, ToolError
from restoro.media.ffmpeg import bitexact_args, popen_ffmpeg, raw_pipe, run_ffmpeg
from restoro.media.frames import FrameFormat

if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import TracebackType

    import av

FORMAT_TAG = "RESTORO_FORMAT"
CODEC = "ffvhuff"
CODEC_ARGS = ["-c:v", CODEC, "-pred", "plane", "-context", "0", "-threads", "2"]
"""Every frame is coded alone with static tables, so the bytes do not depend on threads. The
plane predictor (gradient) beats ``left`` on upscaled pictures: 10.2 against 13.7 MB for a
2880x1920 lanczos x4 frame, and codes faster (performance.md)."""
COMPACT = "ffv1-12"
"""12-bit FFV1 (range coder, slice CRCs): for cache points after a model, where the store's
size matters more than ~0.2 s of coding a 4K-class frame (performance.md)."""
COMPACT_ARGS = [
    "-c:v", "ffv1", "-level", "3", "-g", "1", "-slices", "4", "-slicecrc", "1",
    "-coder", "range_def", "-context", "0", "-threads", "2",
]  # fmt: skip
MEZZANINE = "prores-4444"
"""ProRes 4444 (``prores_ks``, 10-bit Y'CbCr 4:4:4, all-intra) for cache points after a model:
lossy, in the class of a post-production master. A model's output on real pictures barely
compresses losslessly (12-bit FFV1: ~13 MB a 2880x1920 frame, ~690 GB a 52,000-frame episode,
~1.5 CPU-s a frame to code and decode); ProRes 4444 stays near ~3.8 MB (its rate is bounded
per macroblock) and reads back in ~0.16 CPU-s (performance.md). ``intermediates: lossless`` keeps
16-bit FFVHuff instead."""
MEZZANINE_ARGS = ["-c:v", "prores_ks", "-profile:v", "4444", "-vendor", "apl0", "-threads", "0"]
"""Slices are coded alone, so the bytes do not depend on the thread count (tested). Every core
(``0``: ffmpeg's choice, up to 16): the chain that writes a mezzanine holds the GPU, which waits
for it — ~0.7 CPU-s a 2880x1920 frame would cap it near 3 frames/s on two threads."""
TO_MEZZANINE = (
    "zscale=dither=none:rangein=full:matrixin=gbr:matrix=709:range=limited,format=yuv444p10le"
)
"""Working RGB → the mezzanine's Y'CbCr (BT.709 matrix, limited range; no change of primaries
or transfer: those stay the working colour's, tagged on the stream)."""
FROM_MEZZANINE = "zscale=dither=none:matrixin=709:rangein=limited:range=full,format=gbrp16le"
"""A mezzanine's decoded frames → working frames: every reader of one, Python or an ffmpeg
graph, starts with this filter (``input_filters``), so all of them see the same samples."""
READABLE_CODECS = ("ffvhuff", "ffv1", "prores")
"""Intermediates restoro reads: FFV1 16-bit was the format before ingest 2 / chain 2, 12-bit
FFV1 after a model in earlier builds."""
SAMPLE_FORMATS = ("gbrp16le", "gbrp12le")
MEZZANINE_FORMATS = ("yuv444p12le", "yuv444p10le")
"""What ffmpeg's ProRes decoder gives for a 4444 stream (12-bit) and what was coded (10)."""
# RGB intermediates are tagged as such: the YCbCr matrix they came from lives in FORMAT_TAG.
_RGB_TAGS = ["-colorspace", "rgb", "-color_range", "pc"]


def _colour_args(fmt: FrameFormat, codec: str = CODEC) -> list[str]:
    c = fmt.colour
    tags = ["-colorspace", "bt709", "-color_range", "tv"] if codec == MEZZANINE else _RGB_TAGS
    return ["-color_primaries", c.primaries, "-color_trc", c.transfer, *tags]


def tag_filters(fmt: FrameFormat, codec: str = CODEC) -> str:
    """The filters that end every graph writing an intermediate: pixel aspect and colour tags
    (for ``MEZZANINE``, the conversion to its Y'CbCr first).

    Recent ffmpeg takes an encoder's colour tags from the frames, hence ``setparams``.
    """
    sar_n, sar_d = fmt.sar.split(":")
    c = fmt.colour
    space = "colorspace=bt709:range=tv" if codec == MEZZANINE else "colorspace=gbr:range=pc"
    return (
        (f"{TO_MEZZANINE}," if codec == MEZZANINE else "")
        + f"setsar={sar_n}/{sar_d},setparams=color_primaries={c.primaries}:"
        f"color_trc={c.transfer}:{space}"
    )


def output_args(fmt: FrameFormat, path: Path, codec: str = CODEC) -> list[str]:
    """ffmpeg output options for an intermediate of ``gbrp16le`` frames in format ``fmt``
    (``gbrp12le`` ones for ``COMPACT``; ``MEZZANINE`` frames come from ``tag_filters``)."""
    enc = {COMPACT: COMPACT_ARGS, MEZZANINE: MEZZANINE_ARGS}.get(codec, CODEC_ARGS)
    return [
        *enc, *_colour_args(fmt, codec), *bitexact_args(),
        "-metadata:s:v:0", f"{FORMAT_TAG}={fmt.model_dump_json()}", "-f", "matroska", str(path),
    ]  # fmt: skip


def is_mezzanine(path: Path) -> bool:
    """Whether the intermediate at ``path`` is a ProRes mezzanine (read through
    ``FROM_MEZZANINE``) rather than RGB samples."""
    container = _open(Path(path))
    with container:
        return container.streams.video[0].codec_context.name == "prores"


def input_filters(path: Path) -> list[str]:
    """The filters an ffmpeg graph reading intermediate ``path`` starts with so that it sees
    working frames: none for RGB intermediates, ``FROM_MEZZANINE`` for a mezzanine."""
    return [FROM_MEZZANINE] if is_mezzanine(path) else []


def to_12bit(frame: np.ndarray) -> np.ndarray:
    """16-bit samples to 12 bits, rounded to nearest (``round(x * 4095 / 65535)``)."""
    return ((frame.astype(np.uint32) * 4095 + 32767) // 65535).astype(np.uint16)


def planes_12bit(frame: np.ndarray) -> np.ndarray:
    """``to_planes(to_12bit(frame))``, a plane at a time and without a division: for
    ``n = x * 4095 + 32767 < 2**28``, ``n // 65535 == (n + (n >> 16)) >> 16`` (checked for
    every 16-bit ``x``). ~30 against ~39 ms a 2880x1920 frame, host work in the process that
    feeds a GPU."""
    h, w = frame.shape[:2]
    out = np.empty((3, h, w), "<u2")
    n = np.empty((h, w), np.uint32)
    t = np.empty_like(n)
    for i, c in enumerate((1, 2, 0)):  # planes G, B, R
        np.multiply(frame[..., c], np.uint32(4095), out=n, dtype=np.uint32)
        n += np.uint32(32767)
        np.right_shift(n, 16, out=t)
        n += t
        n >>= 16
        out[i] = n
    return out


def from_12bit(data: np.ndarray) -> np.ndarray:
    """12-bit samples to 16 bits by bit replication (0 → 0, 4095 → 65535)."""
    return (data << 4) | (data >> 8)


def to_planes(frame: np.ndarray) -> np.ndarray:
    """(H, W, 3) RGB → contiguous planes G, B, R of little-endian 16-bit words (``gbrp16le``
    and ``gbrp12le`` order and layout)."""
    planes = np.stack((frame[..., 1], frame[..., 2], frame[..., 0])).astype("<u2", copy=False)
    return np.ascontiguousarray(planes)


def from_planes(g: np.ndarray, b: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Planes G, B, R → (H, W, 3) uint16 RGB."""
    return np.stack((r, g, b), axis=-1).astype(np.uint16, copy=False)


class FrameWriter:
    """Write RGB uint16 frames of format ``fmt`` to an intermediate at ``path``: FFVHuff, or
    with ``codec=COMPACT`` 12-bit FFV1 (the frames rounded to 12 bits)."""

    def __init__(self, path: Path, fmt: FrameFormat, codec: str = CODEC) -> None:
        self.path = Path(path)
        self.fmt = fmt
        self.count = 0
        self.compact = codec == COMPACT
        pix = "gbrp12le" if self.compact else "gbrp16le"
        args = [
            "-f", "rawvideo", "-pix_fmt", pix, "-s", f"{fmt.width}x{fmt.height}",
            "-framerate", fmt.frame_rate, "-i", "pipe:0", "-filter_threads", "1",
            "-vf", tag_filters(fmt, codec), *output_args(fmt, self.path, codec),
        ]  # fmt: skip
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._pipe = popen_ffmpeg(args)
        self._closed = False

    def write(self, frame: np.ndarray) -> None:
        """Append one (H, W, 3) uint16 RGB frame."""
        shape = (self.fmt.height, self.fmt.width, 3)
        if frame.shape != shape or frame.dtype != np.uint16:
            self._abort()
            raise StageError(
                f"frame {self.count} is {frame.dtype}{list(frame.shape)}, "
                f"expected uint16{list(shape)}"
            )
        planes = planes_12bit(frame) if self.compact else to_planes(frame)
        self._pipe.write(planes.data.cast("B"))
        self.count += 1

    def close(self) -> None:
        """Finish the file; raises ToolError if ffmpeg failed."""
        if not self._closed:
            self._closed = True
            self._pipe.close()

    def _abort(self) -> None:
        if not self._closed:
            self._closed = True
            self._pipe.kill()
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> FrameWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self._abort()


def write_frames(
    path: Path, fmt: FrameFormat, frames: Iterator[np.ndarray], codec: str = CODEC
) -> int:
    """Write all ``frames`` to a new intermediate; return how many were written."""
    with FrameWriter(path, fmt, codec) as writer:
        for frame in frames:
            writer.write(frame)
    return writer.count


def _open(path: Path) -> av.container.InputContainer:
    import av

    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, FileNotFoundError) as exc:
        raise StageError(f"cannot read intermediate {path}: {exc}") from exc
    if not container.streams.video:
        container.close()
        raise StageError(f"intermediate {path} has no video stream")
    return container


def _plane(frame: av.VideoFrame, i: int) -> np.ndarray:
    plane = frame.planes[i]
    row = plane.line_size // 2
    data = np.frombuffer(plane, dtype="<u2").reshape(frame.height, row)  # type: ignore[call-overload]
    return data[:, : frame.width]


def frame_to_rgb(frame: av.VideoFrame) -> np.ndarray:
    """A decoded ``gbrp16le`` (or 12-bit ``gbrp12le``) frame → (H, W, 3) uint16 RGB."""
    if frame.format.name not in SAMPLE_FORMATS:
        raise StageError(f"intermediate frames are {frame.format.name}, expected gbrp16le")
    rgb = from_planes(*(_plane(frame, i) for i in range(3)))
    return from_12bit(rgb) if frame.format.name == "gbrp12le" else rgb


def read_frames(path: Path) -> Iterator[np.ndarray]:
    """Decode an intermediate to RGB uint16 frames, bit-exactly (a mezzanine through
    ``FROM_MEZZANINE`` in ffmpeg, as every graph that reads one)."""
    container = _open(Path(path))
    with container:
        stream = container.streams.video[0]
        if stream.codec_context.name != "prores":
            stream.thread_type = "AUTO"
            for frame in container.decode(stream):
                yield frame_to_rgb(frame)
            return
        fmt = _tagged_format(container, path)  # one open tells both
    yield from read_through(Path(path), FROM_MEZZANINE, fmt)


def sample_format(path: Path) -> str:
    """The intermediate's sample layout: ``gbrp16le``, ``gbrp12le`` for a compact one, a
    ``yuv444p`` layout for a mezzanine."""
    container = _open(Path(path))
    with container:
        return str(container.streams.video[0].codec_context.pix_fmt)


def read_format(path: Path) -> FrameFormat:
    """The ``FrameFormat`` an intermediate was written with."""
    container = _open(Path(path))
    with container:
        return _tagged_format(container, path)


def _tagged_format(container: av.container.InputContainer, path: Path) -> FrameFormat:
    tags = {k.upper(): v for k, v in container.streams.video[0].metadata.items()}
    if FORMAT_TAG not in tags:
        raise StageError(f"{path} is not a restoro intermediate (no {FORMAT_TAG} tag)")
    return FrameFormat.model_validate_json(tags[FORMAT_TAG])


def count_frames(path: Path) -> int:
    """Exact frame count (intermediates are all-intra: one packet per frame)."""
    container = _open(Path(path))
    with container:
        stream = container.streams.video[0]
        return sum(1 for p in container.demux(stream) if p.size)


def validate_intermediate(path: Path, expected_frames: int | None = None) -> None:
    """Check a just-written intermediate from its container; raise StageError if it is wrong.

    The codec and sample layout, a packet per frame and the frame count come from demuxing
    (no decode); the last frame is decoded, so a file cut short fails. Every frame is not
    decoded again: the bytes are what our own encoder wrote, and from here on the store's
    digest, verified on every read, is what proves them.
    """
    import av

    path = Path(path)
    container = _open(path)
    try:
        with container:
            stream = container.streams.video[0]
            codec = stream.codec_context.name
            if codec not in READABLE_CODECS:
                raise StageError(f"intermediate {path} is {codec}, not {CODEC}")
            layouts = MEZZANINE_FORMATS if codec == "prores" else SAMPLE_FORMATS
            if stream.codec_context.pix_fmt not in layouts:
                raise StageError(
                    f"intermediate {path} holds {stream.codec_context.pix_fmt}, not gbrp16le"
                )
            n, _last = _count_and_decode_last(path, container, stream)
    except av.error.FFmpegError as exc:
        raise StageError(f"intermediate {path} does not demux or decode: {exc}") from exc
    if n == 0:
        raise StageError(f"intermediate {path} has no frames")
    if expected_frames is not None and n != expected_frames:
        raise StageError(f"intermediate {path} has {n} frames, expected {expected_frames}")


def extract_range(src: Path, start: int, end: int, out: Path) -> None:
    """Copy frames [start, end) of an intermediate to a new one, without re-encoding.

    FFV1 here is all-intra, so dropping packets by index is exact; timestamps are rebased to 0.
    """
    total = count_frames(src)
    if not 0 <= start < end <= total:
        raise StageError(f"frame range [{start}, {end}) is outside {src} ({total} frames)")
    args = [
        "-i", str(src), "-map", "0:v:0", "-c", "copy",
        "-bsf:v", f"noise=drop=not(between(n\\,{start}\\,{end - 1})),setts=ts=PTS-STARTPTS",
        *bitexact_args(),
        "-metadata:s:v:0", f"{FORMAT_TAG}={read_format(src).model_dump_json()}",
        "-f", "matroska", str(out),
    ]  # fmt: skip
    run_ffmpeg(args)
    _check_extracted(out, end - start, str(src), args)


def _check_extracted(out: Path, expected: int, source: str, args: list[str]) -> None:
    """A packet copy gave the frames asked for; else it is removed and a ToolError raised."""
    got = count_frames(out)
    if got != expected:
        out.unlink(missing_ok=True)
        raise ToolError(
            f"extracted {got} frames from {source}, expected {expected}", argv=args, log_tail=""
        )


def extract_pieces(
    pieces: list[tuple[Path, int]], start: int, end: int, out: Path, frame_rate: str
) -> None:
    """Copy title frames [start, end) from consecutive pieces of a title's intermediate (each
    ``(path, its first title frame)``, in order, together covering the range) to a new
    intermediate, without re-encoding.

    The frames' timestamps are the title's own, rebased to the range's first frame, as
    ``extract_range`` of one intermediate holding the whole title gives them (Matroska keeps
    milliseconds, so frame k of the title sits at round(k * 1000 / rate) ms): the bytes are the
    same wherever the pieces' boundaries lie.
    """
    import tempfile
    from fractions import Fraction

    if not pieces or not pieces[0][1] <= start < end:
        raise StageError(f"title frames [{start}, {end}) do not start in the pieces given")
    first = pieces[0][1]
    total = first + sum(count_frames(p) for p, _ in pieces)
    if end > total:
        raise StageError(f"title frames [{start}, {end}) run past the pieces ({total})")
    rate = Fraction(frame_rate)
    num, den = rate.denominator * 1000, rate.numerator  # milliseconds of one frame: num / den
    a, b = start - first, end - first
    # round() is half away from zero, as Matroska's rescaling of the encoder's timestamps
    ts = f"round((N+{start})*{num}/{den})-round({start}*{num}/{den})"
    bsf = f"noise=drop=not(between(n\\,{a}\\,{b - 1})),setts=ts={ts}"
    with tempfile.TemporaryDirectory(prefix="restoro-extract-", dir=out.parent) as tmp:
        if len(pieces) == 1:
            src = ["-i", str(pieces[0][0])]
        else:
            listing = Path(tmp) / "pieces.ffconcat"
            listing.write_text(
                "ffconcat version 1.0\n"
                + "".join(f"file '{Path(p).resolve()}'\n" for p, _ in pieces)
            )
            src = ["-f", "concat", "-safe", "0", "-i", str(listing)]
        args = [
            *src, "-map", "0:v:0", "-c", "copy", "-bsf:v", bsf, *bitexact_args(),
            "-metadata:s:v:0", f"{FORMAT_TAG}={read_format(pieces[0][0]).model_dump_json()}",
            "-f", "matroska", str(out),
        ]  # fmt: skip
        run_ffmpeg(args)
    _check_extracted(out, end - start, f"{len(pieces)} pieces", args)


def _count_and_decode_last(path: Path, container: Any, stream: Any) -> tuple[int, Any]:
    """Demux every packet of ``stream`` (no decode) and decode the last: (packets, its frame,
    None when there is no packet). A last frame that does not decode is a StageError."""
    last = None
    n = 0
    for packet in container.demux(stream):
        if packet.size:
            n += 1
            last = packet
    if last is None:
        return 0, None
    decoded = stream.codec_context.decode(last) + stream.codec_context.decode(None)
    if not decoded:
        raise StageError(f"the last frame of intermediate {path} does not decode")
    return n, decoded[-1]


def read_last_frame(path: Path) -> np.ndarray:
    """The last frame of an intermediate, decoding that frame only (all-intra packets).

    The container is first sought to its end (Matroska's cues): demuxing from wherever that
    lands to the end of the file still ends at the last packet, without reading the whole
    file (a 3,200-frame ingest piece is gigabytes). Where the seek fails or lands past every
    packet, every packet is demuxed from the start."""
    import av

    if is_mezzanine(Path(path)):  # Y'CbCr: the last of the frames its readers see
        last = None
        for last in read_frames(path):  # noqa: B007
            pass
        if last is None:
            raise StageError(f"intermediate {path} has no frames")
        return last
    container = _open(Path(path))
    with container:
        stream = container.streams.video[0]
        if container.duration:
            try:
                container.seek(container.duration, backward=True)
            except av.error.FFmpegError:
                pass
            else:
                _n, last = _count_and_decode_last(path, container, stream)
                if last is not None:
                    return frame_to_rgb(last)
    container = _open(Path(path))
    with container:
        _n, last = _count_and_decode_last(path, container, container.streams.video[0])
    if last is None:
        raise StageError(f"intermediate {path} has no frames")
    return frame_to_rgb(last)


def read_through(src: Path, graph: str, out_fmt: FrameFormat) -> Iterator[np.ndarray]:
    """Intermediate ``src`` (or any file ffmpeg reads) through the filter ``graph``, as working
    frames of ``out_fmt``'s size in ``gbrp16le``: the samples ``ffilter.transcode`` would have
    stored."""
    args = [
        "-i", str(src), "-map", "0:v:0", "-filter_threads", "1", "-vf", graph,
        "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "gbrp16le", "pipe:1",
    ]  # fmt: skip
    w, h = out_fmt.width, out_fmt.height
    for buf in raw_pipe(iter(()), args, w * h * 6, f"filter {graph!r}"):
        yield from_planes(*np.frombuffer(buf, dtype="<u2").reshape(3, h, w))
