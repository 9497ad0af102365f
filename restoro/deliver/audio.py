"""Audio for deliverables: a source stream (or mono stems) remastered to a picture range.

``remaster`` decodes the stream, maps it to the declared channel layout (ffmpeg's channel order,
e.g. 5.1 = FL FR FC LFE BL BR), resamples to 48 kHz with soxr, applies ``offset_ms`` and cuts it
to the picture: sample 0 of the output is the instant the source's first video frame +
``start_frame`` is shown, and the length is exactly ``round(frames / rate · 48000)`` samples
(silence-padded or trimmed). It then measures integrated loudness (ITU-R BS.1770 with pyloudnorm,
LFE excluded, surrounds weighted 1.41) and true peak (ffmpeg ``ebur128=peak=true``), applies one
gain to reach the target loudness without passing the true-peak ceiling, and writes 24-bit PCM.

Times stay in wall-clock seconds of the source: when ingest changes the frame rate (IVTC
29.97 → 23.976) the span is still given in source frames at the source rate.
"""

from __future__ import annotations

import math
import re
import subprocess
import tempfile
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from restoro.errors import MediaError
from restoro.media.ffmpeg import bitexact_args, ffmpeg_exe, run_ffmpeg

if TYPE_CHECKING:
    from collections.abc import Sequence

OUT_RATE = 48000

# Declared layouts → channels in ffmpeg's order (the order of the samples in the WAV).
LAYOUTS: dict[str, tuple[str, ...]] = {
    "mono": ("FC",),
    "stereo": ("FL", "FR"),
    "2.1": ("FL", "FR", "LFE"),
    "3.0": ("FL", "FR", "FC"),
    "4.0": ("FL", "FR", "FC", "BC"),
    "quad": ("FL", "FR", "BL", "BR"),
    "5.0": ("FL", "FR", "FC", "BL", "BR"),
    "5.1": ("FL", "FR", "FC", "LFE", "BL", "BR"),
    "6.1": ("FL", "FR", "FC", "LFE", "BC", "SL", "SR"),
    "7.1": ("FL", "FR", "FC", "LFE", "BL", "BR", "SL", "SR"),
}
_FRONT = ("FL", "FR", "FC")
_SURROUND = ("BL", "BR", "SL", "SR", "BC")
DEFAULT_TRUE_PEAK = -1.0


def check_layout(layout: str) -> tuple[str, ...]:
    """The channels of ``layout``; a clear error for a layout restoro does not know."""
    if layout not in LAYOUTS:
        raise MediaError(
            f"unknown channel layout {layout!r}",
            hint=f"use one of {', '.join(LAYOUTS)}",
        )
    return LAYOUTS[layout]


def sample_count(frames: int, frame_rate: str) -> int:
    """Samples at 48 kHz in ``frames`` frames (rounded half up)."""
    exact = Fraction(frames) / Fraction(frame_rate) * OUT_RATE
    return int(exact + Fraction(1, 2))


def _open_stream(source: Path, stream_index: int) -> tuple[Fraction, Any]:
    """(seconds from the file's start to its first video frame, the audio stream's layout)."""
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
        layout = stream.layout.name if stream.channels != 1 else "mono"
        if not container.streams.video:
            return Fraction(0), layout
        video = container.streams.video[0]
        file_start = Fraction(container.start_time or 0, 1_000_000)
        if video.start_time is None or video.time_base is None:
            return Fraction(0), layout
        return video.start_time * video.time_base - file_start, layout


def _cut_chain(first: int, n: int) -> list[str]:
    """Filters placing source sample ``first`` (may be negative: silence) at output sample 0."""
    chain = []
    if first < 0:
        chain.append(f"adelay=delays={-first}S:all=1")
        first = 0
    return chain + [
        f"atrim=start_sample={first}:end_sample={first + n}",
        "asetpts=PTS-STARTPTS",
        f"apad=whole_len={n}",
        f"atrim=end_sample={n}",
    ]


def _resample() -> str:
    # first_pts=0 fills any gap before the stream's first sample with silence, so sample k
    # of the resampled stream is at k/48000 s on ffmpeg's timeline.
    return f"aresample={OUT_RATE}:resampler=soxr:precision=28:first_pts=0"


def decode_to_float(
    sources: list[tuple[Path, int]],
    *,
    layout: str,
    start_frame: int,
    frames: int,
    frame_rate: str,
    offset_ms: int,
    out: Path,
    picture: tuple[int, str] | None = None,
) -> int:
    """Decode to raw interleaved float32 at 48 kHz in ``layout``; return the sample count.

    One source: a stream remixed to ``layout``. Several: mono stems, one per channel of
    ``layout`` in its order, joined.
    """
    channels = check_layout(layout)
    if frames <= 0 or start_frame < 0:
        raise MediaError(f"bad audio range: start {start_frame}, {frames} frames")
    if len(sources) > 1 and len(sources) != len(channels):
        raise MediaError(
            f"{len(sources)} stems for the {len(channels)} channels of a {layout} track",
            hint=f"give one mono file per channel, in the order {' '.join(channels)}",
        )
    offsets = []
    for path, index in sources:
        offset, src_layout = _open_stream(path, index)
        if len(sources) > 1 and src_layout != "mono":
            raise MediaError(f"stem {path} is {src_layout}, not mono", hint="split it first")
        offsets.append(offset)
    start = offsets[0] + Fraction(start_frame) / Fraction(frame_rate)
    start -= Fraction(offset_ms, 1000)  # a positive offset delays the audio
    first = math.floor(start * OUT_RATE + Fraction(1, 2))
    # The track lasts as long as the picture: after IVTC that is K frames at the title's rate,
    # which differs from the source span by up to half a frame.
    n = sample_count(*picture) if picture else sample_count(frames, frame_rate)
    args: list[str] = []
    for path, _index in sources:
        args += ["-i", str(path)]
    cut = ",".join(_cut_chain(first, n))
    if len(sources) == 1:
        graph = f"[0:{sources[0][1]}]{_resample()},aformat=channel_layouts={layout},{cut}[a]"
    else:
        ins = "".join(
            f"[{i}:{idx}]{_resample()},aformat=channel_layouts=mono[s{i}];"
            for i, (_, idx) in enumerate(sources)
        )
        mapping = "|".join(f"{i}.0-{ch}" for i, ch in enumerate(channels))
        joined = "".join(f"[s{i}]" for i in range(len(sources)))
        graph = f"{ins}{joined}join=inputs={len(sources)}:channel_layout={layout}:map={mapping},"
        graph += f"{cut}[a]"
    args += ["-filter_threads", "1", "-filter_complex", graph, "-map", "[a]"]
    args += ["-c:a", "pcm_f32le", "-f", "f32le", str(out)]
    out.parent.mkdir(parents=True, exist_ok=True)
    run_ffmpeg(args)
    return n


def load_float(path: Path, channels: int) -> Any:
    import numpy as np

    return np.fromfile(path, dtype="<f4").reshape(-1, channels)


def integrated_loudness(samples: Any, layout: str, rate: int = OUT_RATE) -> float:
    """BS.1770 integrated loudness in LUFS (pyloudnorm), LFE excluded; -inf for silence."""
    import numpy as np
    import pyloudnorm

    channels = check_layout(layout)
    fronts = [i for i, c in enumerate(channels) if c in _FRONT]
    surrounds = [i for i, c in enumerate(channels) if c in _SURROUND]
    if len(surrounds) > 2:
        raise MediaError(
            f"loudness of a {layout} track is not supported (more than two surround channels)",
            hint="deliver it without a loudness target, or as 5.1",
        )
    # pyloudnorm weighs its columns positionally (1, 1, 1, 1.41, 1.41): place fronts in the
    # first three and surrounds in the last two, silent columns elsewhere.
    data = np.asarray(samples, dtype=np.float64)
    cols = np.zeros((data.shape[0], 5 if surrounds else max(len(fronts), 1)))
    for j, i in enumerate(fronts):
        cols[:, j] = data[:, i]
    for j, i in enumerate(surrounds):
        cols[:, 3 + j] = data[:, i]
    meter = pyloudnorm.Meter(rate)
    with np.errstate(divide="ignore"):
        value = float(meter.integrated_loudness(cols))
    return value


_LUFS = re.compile(r"Integrated loudness:\s*\n\s*I:\s*(-?[\d.]+|-inf)")
_PEAK = re.compile(r"True peak:\s*\n\s*Peak:\s*(-?[\d.]+|-inf)")


def _ebur128(inputs: list[str], values: tuple[re.Pattern[str], ...], what: str) -> list[float]:
    """The last of each of ``values`` in the log of ffmpeg's ``ebur128=peak=true`` run on the
    audio that the ffmpeg arguments ``inputs`` select; MediaError ("cannot measure ``what``")
    when ffmpeg fails or a value is missing."""
    argv = [
        ffmpeg_exe(), "-hide_banner", "-nostdin", "-nostats", *inputs, "-filter_threads", "1",
        "-af", "ebur128=peak=true:framelog=quiet", "-f", "null", "-",
    ]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, check=False)
    log = proc.stderr.decode("utf-8", "replace")
    found = [v.findall(log) for v in values]
    if proc.returncode != 0 or not all(found):
        raise MediaError(f"cannot measure {what}: {log[-400:]}")
    return [float(f[-1]) for f in found]


def true_peak(raw: Path, channels: int) -> float:
    """True peak in dBTP of a raw float32 48 kHz file (ffmpeg ebur128, 4x oversampling)."""
    raw_input = ["-f", "f32le", "-ar", str(OUT_RATE), "-ac", str(channels), "-i", str(raw)]
    return _ebur128(raw_input, (_PEAK,), f"the true peak of {raw}")[0]


def measure_file(path: Path, *, input_format: list[str] | None = None) -> tuple[float, float]:
    """(integrated loudness LUFS, true peak dBTP) of any audio file ffmpeg decodes (a delivered
    AAC or E-AC-3 rendition), measured by ffmpeg's ``ebur128=peak=true`` on its decoded samples
    in the stream's own layout."""
    inputs = [*(input_format or []), "-i", str(path), "-map", "0:a:0"]
    lufs, peak = _ebur128(inputs, (_LUFS, _PEAK), f"the loudness of {path}")
    return lufs, peak


def normalising_filter(gain: float, limit: float | None) -> str:
    """The filter applying ``gain`` dB, then (``limit``, dBFS) a look-ahead limiter whose
    delay is compensated (the audio stays in sync with the picture)."""
    chain = f"volume={gain:.4f}dB:precision=double"
    if limit is not None:
        lin = 10 ** (limit / 20)
        chain += f",alimiter=limit={lin:.6f}:level=0:latency=1:attack=5:release=50"
    return chain


LOUDNESS_TOLERANCE = 0.2
"""How close (LU) a delivered rendition is brought to its target before it is kept."""


def normalise_encode(
    encode: Any,
    measure: Any,
    *,
    target: float,
    ceiling: float,
    mix: tuple[float, float] | None = None,
    tries: int = 5,
) -> dict[str, Any]:
    """Encode a rendition at its own loudness target: ``encode(filter)`` writes it with an
    ffmpeg audio filter, ``measure()`` gives its (LUFS, dBTP) as delivered. The first encode
    applies the gain the mix's own figures ``mix`` (LUFS, dBTP, e.g. of a stereo downmix of a
    5.1 track, which is quieter) call for, none without them; each next one corrects by what
    the previous one measured (the codec moves the level too), and a look-ahead limiter joins
    when the target needs more gain than the true-peak ceiling allows. Returns the figures of
    the kept encode."""
    gain, limit = 0.0, None
    if mix is not None and math.isfinite(mix[0]):
        gain = target - mix[0]
        if math.isfinite(mix[1]) and mix[1] + gain > ceiling - 0.1:
            limit = ceiling - 1.0
    passes = 0
    for attempt in range(tries):
        encode(normalising_filter(gain, limit))
        lufs, tp = measure()
        passes += 1
        if not math.isfinite(lufs):
            break
        err, over = target - lufs, tp - (ceiling - 0.1)
        if (abs(err) <= LOUDNESS_TOLERANCE and over <= 0) or attempt == tries - 1:
            break
        if limit is not None and over > 0:
            limit -= over + 0.2  # the codec overshoots the limiter's sample peaks
        elif limit is None and tp + err > ceiling - 0.1:
            limit = ceiling - 1.0  # more gain than the peaks allow: limit them
        gain += err
    return {
        "loudness": _num(lufs),
        "true_peak": _num(tp),
        "gain_db": round(gain, 4),
        "limiter_db": limit,
        "target": target,
        "ceiling": ceiling,
        "passes": passes,
    }


def remaster(
    sources: list[tuple[Path, int]],
    *,
    layout: str,
    start_frame: int,
    frames: int,
    frame_rate: str,
    out: Path,
    offset_ms: int = 0,
    target: float | None = None,
    ceiling: float = DEFAULT_TRUE_PEAK,
    picture: tuple[int, str] | None = None,
) -> dict[str, Any]:
    """Write the remastered track to ``out`` (WAV, 24-bit, 48 kHz); return its loudness figures."""
    channels = check_layout(layout)
    with tempfile.TemporaryDirectory(prefix="restoro-audio-", dir=out.parent) as tmp:
        raw = Path(tmp) / "decoded.f32"
        n = decode_to_float(
            sources,
            layout=layout,
            start_frame=start_frame,
            frames=frames,
            frame_rate=frame_rate,
            offset_ms=offset_ms,
            out=raw,
            picture=picture,
        )
        measure = target is not None
        lufs_in = integrated_loudness(load_float(raw, len(channels)), layout) if measure else None
        tp_in = true_peak(raw, len(channels)) if measure else None
        gain = 0.0
        if target is not None and lufs_in is not None and math.isfinite(lufs_in):
            gain = target - lufs_in
            assert tp_in is not None
            # ebur128 reports true peak to 0.1 dB: keep 0.1 dB below the ceiling.
            if math.isfinite(tp_in) and tp_in + gain > ceiling - 0.1:
                gain = ceiling - 0.1 - tp_in
        gain = round(gain, 4)
        args = ["-f", "f32le", "-ar", str(OUT_RATE), "-ac", str(len(channels))]
        args += ["-ch_layout", layout, "-i", str(raw), "-filter_threads", "1"]
        args += ["-af", f"volume={gain}dB:precision=double", "-c:a", "pcm_s24le"]
        args += ["-ar", str(OUT_RATE), *bitexact_args(), "-f", "wav", str(out)]
        run_ffmpeg(args)
    facts: dict[str, Any] = {"samples": n, "layout": layout, "channels": list(channels)}
    if measure:
        lufs_out, tp_out = measure_wav(out, layout)
        facts.update(
            loudness_in=_num(lufs_in),
            true_peak_in=_num(tp_in),
            gain_db=gain,
            target=target,
            ceiling=ceiling,
            loudness=_num(lufs_out),
            true_peak=_num(tp_out),
        )
    return facts


def _num(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else round(x, 2)


def read_wav(path: Path) -> tuple[Any, int]:
    """(samples as float64 (n, channels), sample rate) of a PCM WAV, with PyAV."""
    import av
    import numpy as np

    chunks = []
    with av.open(str(path)) as c:
        stream = c.streams.audio[0]
        rate, channels = stream.rate, stream.channels
        for frame in c.decode(stream):
            a = frame.to_ndarray()
            chunks.append(a.T if frame.format.is_planar else a.reshape(-1, channels))
    data = np.concatenate(chunks, axis=0) if chunks else np.zeros((0, channels))
    kind = chunks[0].dtype if chunks else np.dtype("f8")
    if kind.kind == "i":
        data = data / float(2 ** (8 * kind.itemsize - 1))
    return data.astype(np.float64), rate


def measure_wav(path: Path, layout: str) -> tuple[float, float]:
    """(integrated loudness LUFS, true peak dBTP) of a WAV file."""
    data, rate = read_wav(path)
    lufs = integrated_loudness(data, layout, rate)
    with tempfile.TemporaryDirectory(prefix="restoro-tp-") as tmp:
        raw = Path(tmp) / "x.f32"
        data.astype("<f4").tofile(raw)
        if rate != OUT_RATE:
            raise MediaError(f"{path} is {rate} Hz, not {OUT_RATE}")
        tp = true_peak(raw, data.shape[1])
    return lufs, tp


def downmix_stereo(src: Path, layout: str, out: Path) -> None:
    """ITU-R BS.775 stereo downmix (centre and surrounds at -3 dB, LFE dropped), 24-bit."""
    channels = check_layout(layout)
    if layout == "stereo":
        terms = {"FL": "FL", "FR": "FR"}
    else:

        def side(ch: str) -> str:
            parts = [ch] if ch in channels else []
            parts += [f"0.7071*{c}" for c in ("FC",) if c in channels]
            surround = {"FL": ("BL", "SL"), "FR": ("BR", "SR")}[ch]
            parts += [f"0.7071*{c}" for c in surround if c in channels]
            parts += ["0.5*BC"] if "BC" in channels else []
            return "+".join(parts) or "0*FC"

        terms = {"FL": side("FL"), "FR": side("FR")}
    pan = f"pan=stereo|FL={terms['FL']}|FR={terms['FR']}"
    args = ["-i", str(src), "-filter_threads", "1", "-af", pan, "-c:a", "pcm_s24le"]
    args += ["-ar", str(OUT_RATE), *bitexact_args(), "-f", "wav", str(out)]
    run_ffmpeg(args)


def passthrough(source: Path, stream_index: int, *, start_s: float, duration_s: float, out: Path):
    """Carry a compressed stream (e.g. the DVD's AC-3) untouched, cut at its own frames."""
    _open_stream(source, stream_index)
    args = ["-ss", f"{start_s:.6f}", "-i", str(source), "-t", f"{duration_s:.6f}"]
    args += ["-map", f"0:{stream_index}", "-c:a", "copy", *bitexact_args(), str(out)]
    run_ffmpeg(args)


def extract_audio(
    source: Path,
    stream_index: int,
    *,
    start_frame: int,
    frames: int,
    frame_rate: str,
    out: Path,
    layout: str | None = None,
) -> None:
    """Write stream ``stream_index`` for picture frames [start_frame, +frames) to a WAV."""
    if layout is None:
        layout = source_layout(source, stream_index)
    remaster(
        [(source, stream_index)],
        layout=layout,
        start_frame=start_frame,
        frames=frames,
        frame_rate=frame_rate,
        out=out,
    )


def source_layout(source: Path, stream_index: int, probed: str | None = None) -> str:
    """The declared layout matching a source stream's own (e.g. AC-3 5.1(side) → 5.1).

    ``probed``: the stream's layout name from the (cached) probe, which spares opening the
    source on every plan.
    """
    name = probed if probed else _open_stream(source, stream_index)[1]
    base = name.split("(")[0]
    if base in LAYOUTS:
        return base
    match = re.match(r"(\d+) channels", name)
    by_count = {len(v): k for k, v in reversed(LAYOUTS.items())}
    if match and int(match.group(1)) in by_count:
        return by_count[int(match.group(1))]
    raise MediaError(
        f"unknown channel layout {name!r} of stream {stream_index} in {source}",
        hint=f"declare the track's layout (one of {', '.join(LAYOUTS)})",
    )


# ISO 639-1 → the ISO 639-2 codes (bibliographic and terminology) containers tag streams with.
_ISO639_2: dict[str, tuple[str, ...]] = {
    "ar": ("ara",), "bg": ("bul",), "ca": ("cat",), "cs": ("cze", "ces"), "cy": ("wel", "cym"),
    "da": ("dan",), "de": ("ger", "deu"), "el": ("gre", "ell"), "en": ("eng",), "es": ("spa",),
    "et": ("est",), "eu": ("baq", "eus"), "fa": ("per", "fas"), "fi": ("fin",),
    "fr": ("fre", "fra"), "ga": ("gle",), "he": ("heb",), "hi": ("hin",), "hr": ("hrv",),
    "hu": ("hun",), "id": ("ind",), "is": ("ice", "isl"), "it": ("ita",), "ja": ("jpn",),
    "ko": ("kor",), "lt": ("lit",), "lv": ("lav",), "nl": ("dut", "nld"), "no": ("nor",),
    "nb": ("nob", "nor"), "nn": ("nno", "nor"), "pl": ("pol",), "pt": ("por",),
    "ro": ("rum", "ron"), "ru": ("rus",), "sk": ("slo", "slk"), "sl": ("slv",),
    "sr": ("srp",), "sv": ("swe",), "th": ("tha",), "tr": ("tur",), "uk": ("ukr",),
    "vi": ("vie",), "zh": ("chi", "zho"),
}  # fmt: skip


def language_matches(tag: str, stream_language: str | None) -> bool:
    """Whether a stream tagged ``stream_language`` (ISO 639-2 as containers write it, or a
    BCP 47 tag) is in the manifest's BCP 47 ``tag`` (its primary subtag decides: ``fr-CA``
    takes a ``fre`` stream)."""
    if not stream_language:
        return False
    want = tag.lower().split("-")[0]
    have = stream_language.lower().replace("_", "-").split("-")[0]
    return have == want or have in _ISO639_2.get(want, ())


def pick_stream(track: Any, streams: Sequence[Any]) -> int | None:
    """The audio stream (of ``streams``, a probe's ``info.audio``) a track without ``stream``
    takes: the first in its ``language`` when that is not ``und`` and the source tags its
    streams with languages (else the language only labels the track), else the first; None
    when no stream is in the language."""
    if track.language.lower() != "und" and any(s.language for s in streams):
        wanted = (s.index for s in streams if language_matches(track.language, s.language))
        return next(wanted, None)
    return streams[0].index if streams else None
