"""DVD-Video discs as sources: list the titles of a disc, import one title as a media file.

A disc is a folder holding ``VIDEO_TS/`` (or the ``VIDEO_TS`` folder itself) or an ``.iso``
image. Everything is read through the bundled ffmpeg's ``dvdvideo`` demuxer (libdvdread /
libdvdnav), which follows the title's program chain across its VOB files, so a title split
over ``VTS_01_1.VOB``, ``VTS_01_2.VOB``... plays as one.

``import_title`` stream-copies a title (or a range of its chapters) into Matroska: the MPEG-2
bitstream and the audio packets untouched (the picture user data, closed captions included,
travel inside the bitstream), the audio streams' languages kept, muxed bit-exact so the same
disc gives the same bytes. The workspace stores that file content-addressed and uses it as the
source from then on.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from pydantic import BaseModel

from restoro.errors import MediaError
from restoro.media.ffmpeg import ffmpeg_exe
from restoro.media.probe import AudioStream

IMPORT_VERSION = 1
"""Bumped when the imported file's bytes change for the same disc, title and ffmpeg."""
MAX_TITLES = 99


def is_disc(path: Path) -> bool:
    """Whether ``path`` names a DVD-Video disc (a VIDEO_TS folder, a folder holding one, or
    an ``.iso`` image)."""
    if path.is_file():
        return path.suffix.lower() == ".iso"
    return path.is_dir() and (
        path.name.upper() == "VIDEO_TS" or any(p.name.upper() == "VIDEO_TS" for p in path.iterdir())
    )


def disc_root(path: Path) -> Path:
    """What the demuxer opens: the ``.iso`` or the folder that holds ``VIDEO_TS``."""
    return path.parent if path.is_dir() and path.name.upper() == "VIDEO_TS" else path


def disc_files(path: Path) -> list[Path]:
    """The files whose content is the disc (for its digest): the image, or VIDEO_TS's files."""
    if path.is_file():
        return [path]
    root = disc_root(path)
    vts = next(p for p in root.iterdir() if p.name.upper() == "VIDEO_TS")
    return sorted(p for p in vts.iterdir() if p.is_file())


@dataclass
class DiscStream:
    index: int
    kind: str
    codec: str
    language: str | None = None
    layout: str | None = None


@dataclass
class DiscTitle:
    """A title as the disc's navigation describes it (before any frame is read)."""

    number: int
    duration_s: float
    streams: list[DiscStream] = field(default_factory=list)

    @property
    def audio(self) -> list[DiscStream]:
        return [s for s in self.streams if s.kind == "audio"]


_DURATION = re.compile(r"Duration: (\d+):(\d{2}):(\d{2}(?:\.\d+)?)")
_STREAM = re.compile(r"Stream #0:(\d+)(?:\[0x[0-9a-f]+\])?(?:\((\w+)\))?: (\w+): (\w+)(.*)")
_LAYOUT = re.compile(r", \d+ Hz, ([^,]+),")


def _run(args: list[str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", *args], capture_output=True, check=False
    )


def _log(proc: subprocess.CompletedProcess[bytes]) -> str:
    return proc.stderr.decode("utf-8", "replace")


def _errors(log: str) -> str:
    """The demuxer's own complaints, without libdvdread's device-name chatter."""
    keep = [
        ln.split("] ", 1)[-1]
        for ln in log.splitlines()
        if "Couldn't find device name" not in ln
        and "libdvdnav:" not in ln
        and "Last message repeated" not in ln
    ]
    return "; ".join(x.strip() for x in keep if x.strip())[-400:]


def read_title(path: Path, number: int) -> DiscTitle | None:
    """Title ``number`` from the disc's navigation data; None when the disc has no such title.

    MediaError when the disc itself cannot be read (no or damaged IFO files)."""
    proc = _run(["-f", "dvdvideo", "-title", str(number), "-i", str(disc_root(path))])
    log = _log(proc)
    if f"Title {number} not found" in log:
        return None
    if "Input #0" not in log:
        raise MediaError(
            f"cannot read the DVD-Video disc {path}: {_errors(log) or 'no title'}",
            code="E304",
            hint="the disc's IFO files may be damaged: copy the disc again (or use its .BUP "
            "backups as the IFO files)",
        )
    d = _DURATION.search(log)
    duration = int(d[1]) * 3600 + int(d[2]) * 60 + float(d[3]) if d else 0.0
    title = DiscTitle(number, duration)
    for m in _STREAM.finditer(log):
        layout = _LAYOUT.search(m[5])
        title.streams.append(
            DiscStream(int(m[1]), m[3].lower(), m[4], m[2], layout[1] if layout else None)
        )
    return title


def list_titles(path: Path) -> list[DiscTitle]:
    """Every title of the disc, in order."""
    titles = []
    for n in range(1, MAX_TITLES + 1):
        t = read_title(path, n)
        if t is None:
            break
        titles.append(t)
    if not titles:
        raise MediaError(f"the DVD-Video disc {path} has no titles", code="E304")
    return titles


def chapter_starts(path: Path, number: int) -> list[float]:
    """Start times (seconds) of the title's chapters (a two-pass read of the title)."""
    proc = _run(["-loglevel", "error", "-f", "dvdvideo", "-preindex", "1", "-title",
                 str(number), "-i", str(disc_root(path)), "-f", "ffmetadata", "-"])  # fmt: skip
    text = proc.stdout.decode("utf-8", "replace")
    starts, base = [], 1.0
    for line in text.splitlines():
        if line.startswith("TIMEBASE="):
            num, den = line.split("=", 1)[1].split("/")
            base = int(num) / int(den)
        elif line.startswith("START="):
            starts.append(int(line.split("=", 1)[1]) * base)
    return starts or [0.0]


def describe_titles(titles: list[DiscTitle]) -> str:
    return ", ".join(f"{t.number} ({_clock(t.duration_s)})" for t in titles)


def _clock(s: float) -> str:
    s = round(s)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def pick_title(path: Path, number: int | None, label: str) -> DiscTitle:
    """The title ``number`` (None: the longest), or MediaError naming the titles that exist."""
    if number is not None:
        t = read_title(path, number)
        if t is not None:
            return t
    titles = list_titles(path)
    if number is None:
        return max(titles, key=lambda t: (t.duration_s, -t.number))
    raise MediaError(
        f"{label}: the disc {path} has no title {number} (titles: {describe_titles(titles)})",
        code="E305",
        hint="run `restoro probe DISC` to list its titles",
    )


def _restamp(dest: Path) -> None:
    """Make the imported title's clock run frame after frame, as restoro reads a source.

    The ``dvdvideo`` demuxer stamps the first picture of each cell with the cell's start on the
    title's clock, and the cell's other pictures with their own times, which run late by the
    cell's lead-in when the program stream behind the cell did not start at 0 (discs authored
    from separate program streams; the first picture of a title at 0, the next half a second
    on): the clock jumps forward after a cell's first picture, and the picture would start
    before its sound. At each forward jump in display order, every later packet of every stream
    moves back by the jump less one frame, sound and picture together, so each cell keeps its
    own sync and the pictures follow one another. Packets are untouched (``setts``)."""
    import av

    with av.open(str(dest)) as c:
        if not c.streams.video:
            return
        v = c.streams.video[0]
        rate = v.average_rate or v.guessed_rate
        if not rate or v.time_base is None:
            return
        vtb = v.time_base
        shown = sorted(p.pts for p in c.demux(v) if p.pts is not None and p.size)
        bases = {
            s.index: s.time_base
            for s in c.streams
            if s.type in ("video", "audio") and s.time_base is not None
        }
    step = round(1 / (rate * vtb))
    jumps = [  # (threshold, amount) in seconds
        (Fraction(a + b, 2) * vtb, Fraction(b - a - step) * vtb)
        for a, b in zip(shown, shown[1:], strict=False)
        if b - a > step * 3 // 2
    ]
    if not jumps:
        return
    args = ["-loglevel", "error", "-xerror", "-i", str(dest), "-map", "0", "-c", "copy"]
    for index, tb in bases.items():

        def shift(ts: str, tb: Fraction = tb) -> str:
            return "+".join(
                f"if(gte({ts}\\,{round(t / tb)})\\,{round(g / tb)}\\,0)" for t, g in jumps
            )

        args += [f"-bsf:{index}", f"setts=pts=PTS-({shift('PTS')}):dts=DTS-({shift('DTS')})"]
    tmp = dest.with_name(dest.name + ".restamp.mkv")
    args += ["-fflags", "+bitexact", "-map_chapters", "-1", "-f", "matroska", "-y", str(tmp)]
    proc = _run(args)
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise MediaError(f"cannot restamp the imported title: {_errors(_log(proc))}")
    tmp.replace(dest)


def import_title(
    path: Path,
    number: int,
    chapters: tuple[int, int] | None,
    dest: Path,
    label: str,
    angle: int | None = None,
) -> None:
    """Stream-copy title ``number`` (chapters ``[first, last]``, camera ``angle``) of the disc
    into ``dest`` (Matroska): video and every audio stream, languages kept, no re-encode,
    bit-exact."""
    args = ["-loglevel", "error", "-xerror", "-f", "dvdvideo", "-title", str(number)]
    if chapters is not None:
        args += ["-chapter_start", str(chapters[0]), "-chapter_end", str(chapters[1])]
    if angle is not None:
        args += ["-angle", str(angle)]
    args += ["-i", str(disc_root(path)), "-map", "0:v:0", "-map", "0:a?", "-c", "copy",
             "-fflags", "+bitexact", "-map_chapters", "-1",
             "-f", "matroska", "-y", str(dest)]  # fmt: skip
    proc = _run(args)
    if proc.returncode == 0:
        _restamp(dest)
        return
    log = _log(proc)
    if angle is not None and f"Angle {angle} not found" in log:
        raise MediaError(
            f"{label}: title {number} of the disc {path} has no camera angle {angle}",
            code="E308",
            hint="leave angle: out for a title shot from one angle (angle 1)",
        )
    if chapters is not None and "Chapter (PTT) range" in log:
        count = len(chapter_starts(path, number))
        raise MediaError(
            f"{label}: title {number} of the disc {path} has {count} "
            f"chapter{'s' if count != 1 else ''}; "
            f"chapters {list(chapters)} are out of range",
            code="E306",
            hint=f"chapters: [first, last] with 1 <= first <= last <= {count}",
        )
    raise MediaError(
        f"{label}: cannot read title {number} of the DVD-Video disc {path}: {_errors(log)}",
        code="E304",
        hint="the disc may be damaged or its VOB files incomplete: copy it again",
    )


class TitleInfo(BaseModel):
    """A title of a disc as ``restoro probe DISC`` shows it (read to its last frame)."""

    title: int
    frames: int
    frame_rate: str
    duration_s: float
    width: int
    height: int
    dar: str
    field_order: str
    chapters: list[float]
    """Start of each chapter, seconds from the title's start."""
    audio: list[AudioStream]
    captions: list[int]
    """The CEA-608 channels (1..4) the title's video carries captions on."""


class DiscInfo(BaseModel):
    path: str
    titles: list[TitleInfo]


def probe_disc(path: Path) -> DiscInfo:
    """Every title of the disc: frames, duration, chapters, audio streams, embedded captions.

    Each title is stream-copied to a temporary file and probed like any source (an exact frame
    count needs every packet read anyway) and its captions decoded."""
    import tempfile

    from restoro.media.cc608 import channels_present, frame_pairs
    from restoro.media.probe import probe

    out = []
    with tempfile.TemporaryDirectory(prefix="restoro-disc-") as tmp:
        for t in list_titles(path):
            dest = Path(tmp) / f"title{t.number}.mkv"
            import_title(path, t.number, None, dest, f"disc {path}")
            info = probe(dest)
            v = info.video
            out.append(
                TitleInfo(
                    title=t.number,
                    frames=v.frame_count,
                    frame_rate=v.frame_rate,
                    duration_s=round(float(v.frame_count / Fraction(v.frame_rate)), 6),
                    width=v.width,
                    height=v.height,
                    dar=v.dar,
                    field_order=v.field_order,
                    chapters=[round(s, 3) for s in chapter_starts(path, t.number)],
                    audio=info.audio,
                    captions=channels_present(frame_pairs(dest, v.index)),
                )
            )
            dest.unlink()
    return DiscInfo(path=str(path), titles=out)
