"""Streaming packages: a caption cue beyond the programme end is refused with a clear message
(cues spanning the end are cut), an E-AC-3 5.1 audio rendition beside AAC stereo, and the
source's AC-3 carried untouched (passthrough) in HLS and DASH; a non-AC-3 stream is refused."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from fractions import Fraction
from typing import TYPE_CHECKING

import av
import m3u8
import pytest
from buildkit import build

from restoro.deliver.captions.io import CaptionError, read_cues
from restoro.deliver.streaming.builder import _captions
from restoro.deliver.streaming.package import Segment, Track, package_audio
from restoro.deliver.streaming.passthrough import select_packets
from restoro.errors import InputError, StageError
from restoro.media.ffmpeg import run_ffmpeg
from restoro.testing.synth import make_source

if TYPE_CHECKING:
    from pathlib import Path


def _video(seconds: list[int]) -> Track:
    """A video track of 24 fps segments of these lengths (what ``package_video`` returns)."""
    segs = [Segment(f"v0/seg_{i:05d}.m4s", Fraction(s), 1000, 100) for i, s in enumerate(seconds)]
    starts = [sum(seconds[:i]) * 24 for i in range(len(seconds))]
    return Track("v0", "video", "avc1.64000C", "v0/init.mp4", segs, 24, starts,
                 [s * 24 for s in seconds], 160, 120, "24")  # fmt: skip


def _params(offset_ms: int = 0) -> dict:
    return {"captions": [{"name": "en.srt", "language": "en", "kind": "subtitles",
                          "offset_ms": offset_ms}]}  # fmt: skip


def test_cue_beyond_programme_end_is_refused(tmp_path: Path) -> None:
    srt = tmp_path / "en.srt"
    srt.write_text("1\n00:00:01,000 --> 00:00:02,000\nIn time\n\n"
                   "2\n00:00:04,500 --> 00:00:05,000\nToo late for this one\n")  # fmt: skip
    with pytest.raises(CaptionError) as exc:
        _captions(_params(), [srt], _video([2, 2]), tmp_path / "pkg")
    msg = str(exc.value)
    assert "caption en.srt: cue at 4.500 s" in msg and "Too late for this one" in msg
    assert "beyond the programme end (4.000 s)" in msg and "offset_ms" in msg
    # The same file fits once an offset moves the late cue inside the programme, where a cue
    # running past the end is cut at it.
    files, hls, _ = _captions(_params(-1000), [srt], _video([2, 2]), tmp_path / "pkg")
    cues = read_cues(tmp_path / "pkg" / "subs0.vtt")
    assert [(c.begin, c.end) for c in cues] == [(0, 1), (Fraction(7, 2), 4)]
    assert hls == [("en", "en subtitles", "subs0/index.m3u8")]
    assert files.count("subs0/index.m3u8") == 1


MANIFEST = """\
restoro: 1
project: surround
sources:
  tape:
    path: media/source.mkv
pipelines:
  main:
    - {stage: ingest, mode: progressive}
titles:
  ep1:
    source: tape
    pipeline: main
    shots: {detector: content, threshold: 27, min_frames: 4}
    audio:
      - {stream: 1, layout: "5.1", language: en}
deliverables:
  web:
    kind: hls
    segment_seconds: 1
    ladder:
      - {codec: h264, height: 96, bitrate: 200k}
    audio:
      - {codec: aac, channels: 2, bitrate: 96k}
      - {codec: eac3, channels: 6, bitrate: 384k}
"""


@pytest.mark.slow
def test_eac3_surround_rendition(tmp_path: Path) -> None:
    (tmp_path / "media").mkdir()
    make_source(
        tmp_path / "media" / "source.mkv", width=128, height=96, shots=2, shot_frames=[24, 24],
        audio_channels=6, codec="ffv1", sar="1:1", rate="24",
    )  # fmt: skip
    manifest = tmp_path / "restoro.yaml"
    manifest.write_text(MANIFEST)
    assert build(manifest).failed == 0
    pkg = tmp_path / "out" / "web" / "ep1"
    master = m3u8.load(str(pkg / "master.m3u8"))
    audio = {m.group_id: m for m in master.media if m.type == "AUDIO"}
    assert set(audio) == {"aud-mp4a-2ch", "aud-ec-3-6ch"}
    assert audio["aud-ec-3-6ch"].channels == "6" and audio["aud-ec-3-6ch"].language == "en"
    variants = {p.stream_info.audio: p.stream_info for p in master.playlists}
    assert variants["aud-ec-3-6ch"].codecs.split(",")[1] == "ec-3"
    assert variants["aud-mp4a-2ch"].codecs.split(",")[1] == "mp4a.40.2"
    assert variants["aud-ec-3-6ch"].bandwidth > variants["aud-mp4a-2ch"].bandwidth
    # Every E-AC-3 segment decodes to 5.1; together they cover the picture (2 s).
    pl = m3u8.load(str(pkg / audio["aud-ec-3-6ch"].uri))
    base = pkg / "a1"
    init = (base / "init.mp4").read_bytes()
    samples = 0
    for seg in pl.segments:
        assert seg.duration <= pl.target_duration
        whole = tmp_path / "seg.mp4"
        whole.write_bytes(init + (base / seg.uri).read_bytes())
        with av.open(str(whole)) as c:
            stream = c.streams.audio[0]
            assert stream.codec_context.name == "eac3" and stream.channels == 6
            samples += sum(f.samples for f in c.decode(stream))
    assert abs(samples - 2 * 48000) <= 1536  # within one E-AC-3 frame
    # The E-AC-3 writer is deterministic: the same WAV packages to the same bytes.
    wav = tmp_path / "s51.wav"
    pan = "pan=5.1|c0=c0|c1=c0|c2=c0|c3=c0|c4=c0|c5=c0"
    run_ffmpeg(["-f", "lavfi", "-i", "sine=f=440:d=1:r=48000", "-af", pan, "-c:a", "pcm_s24le",
                str(wav)])  # fmt: skip
    runs = []
    for n in (1, 2):
        track = package_audio(
            wav, codec="eac3", channels=6, bitrate="384k", fragment_seconds=0.5,
            out_dir=tmp_path / f"run{n}", tid="a0", language="en",
        )  # fmt: skip
        assert track.codec == "ec-3" and len(track.segments) == 2
        runs.append([(tmp_path / f"run{n}" / x).read_bytes() for x in
                     [track.init, *(s.name for s in track.segments)]])  # fmt: skip
    assert runs[0] == runs[1]


PASSTHROUGH = """\
restoro: 1
project: carried
sources:
  dvd:
    path: media/source.mpg
pipelines:
  main:
    - {stage: ingest, mode: progressive}
titles:
  ep1:
    source: dvd
    pipeline: main
    range: [6, 42]
    shots: {detector: content, threshold: 27, min_frames: 4}
    audio:
      - {stream: 1, layout: "5.1", language: en}
deliverables:
  web:
    kind: hls
    segment_seconds: 1
    ladder:
      - {codec: h264, height: 96, bitrate: 200k}
    audio:
      - {codec: aac, channels: 2, bitrate: 96k}
      - {codec: ac3, channels: 6, bitrate: 192k, passthrough: true}
  dash:
    kind: dash
    segment_seconds: 1
    ladder:
      - {codec: h264, height: 96, bitrate: 200k}
    audio:
      - {codec: ac3, channels: 6, bitrate: 192k, passthrough: true}
"""


def _source_packets(path: Path) -> tuple[list[bytes], list[Fraction], Fraction]:
    """The source's AC-3 packets, their start times from the first picture, and their length."""
    with av.open(str(path)) as c:
        video, audio = c.streams.video[0], c.streams.audio[0]
        v0 = video.start_time * video.time_base
        packets = [(bytes(p), p.pts * audio.time_base - v0, p.duration * audio.time_base)
                   for p in c.demux(audio) if p.size]  # fmt: skip
    return [p[0] for p in packets], [p[1] for p in packets], packets[0][2]


def _carried_packets(pkg: Path, rendition: str, uris: list[str]) -> list[bytes]:
    init = (pkg / rendition / "init.mp4").read_bytes()
    out: list[bytes] = []
    for uri in uris:
        whole = pkg / "whole.mp4"
        whole.write_bytes(init + (pkg / rendition / uri).read_bytes())
        with av.open(str(whole)) as c:
            stream = c.streams.audio[0]
            assert stream.codec_context.name == "ac3" and stream.channels == 6
            out += [bytes(p) for p in c.demux(stream) if p.size]
        whole.unlink()
    return out


def _package_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.name.endswith(".json")}  # fmt: skip


@pytest.mark.slow
def test_ac3_passthrough_carries_source_packets(tmp_path: Path) -> None:
    runs = []
    for n in (1, 2):
        proj = tmp_path / f"p{n}"
        make_source(
            proj / "media" / "source.mpg", width=128, height=96, shots=2, shot_frames=[24, 24],
            audio_channels=6, codec="mpeg2video", sar="1:1", rate="24",
        )  # fmt: skip
        (proj / "restoro.yaml").write_text(PASSTHROUGH)
        assert build(proj / "restoro.yaml").failed == 0
        runs.append(_package_bytes(proj / "out"))
    # Two builds (fresh projects) give the same bytes, playlists and segments alike.
    assert runs[0] == runs[1] and any(k.endswith(".m4s") for k in runs[0])

    pkg = tmp_path / "p1" / "out" / "web" / "ep1"
    master = m3u8.load(str(pkg / "master.m3u8"))
    audio = {m.group_id: m for m in master.media if m.type == "AUDIO"}
    assert set(audio) == {"aud-mp4a-2ch", "aud-ac-3-6ch"}
    assert audio["aud-ac-3-6ch"].channels == "6" and audio["aud-ac-3-6ch"].language == "en"
    variants = {p.stream_info.audio: p.stream_info for p in master.playlists}
    assert variants["aud-ac-3-6ch"].codecs.split(",")[1] == "ac-3"
    pl = m3u8.load(str(pkg / audio["aud-ac-3-6ch"].uri))
    assert pl.is_endlist and len(pl.segments) == 2
    assert all(seg.duration <= pl.target_duration for seg in pl.segments)
    carried = _carried_packets(pkg, "a1", [seg.uri for seg in pl.segments])

    # The carried packets are a run of the source's own, byte for byte, starting at the AC-3
    # frame nearest the title's first picture (frame 6 at 24 fps: 0.25 s) and lasting its
    # 36 frames (1.5 s) to within one AC-3 frame.
    src, starts, frame = _source_packets(tmp_path / "p1" / "media" / "source.mpg")
    k = src.index(carried[0])
    assert carried == src[k : k + len(carried)]
    assert abs(starts[k] - Fraction(1, 4)) <= frame / 2
    assert abs(len(carried) * frame - Fraction(3, 2)) <= frame

    # DASH carries the same packets, declared as AC-3 5.1.
    dash = tmp_path / "p1" / "out" / "dash" / "ep1"
    mpd = ET.fromstring((dash / "manifest.mpd").read_bytes())
    reps = [r for r in mpd.iter() if r.tag.endswith("Representation")]
    ac3 = [r for r in reps if r.get("codecs") == "ac-3"]
    assert len(ac3) == 1
    chans = [e.get("value") for e in mpd.iter() if e.tag.endswith("AudioChannelConfiguration")]
    assert chans == ["6"]
    segs = sorted(p.name for p in (dash / "a0").glob("seg_*.m4s"))
    assert _carried_packets(dash, "a0", segs) == carried


@pytest.mark.slow
def test_passthrough_of_a_non_ac3_stream_is_refused_clearly(tmp_path: Path) -> None:
    (tmp_path / "media").mkdir()
    make_source(
        tmp_path / "media" / "source.mkv", width=128, height=96, shots=1, shot_frames=[12],
        audio_channels=2, codec="ffv1", sar="1:1", rate="24",
    )  # fmt: skip
    manifest = tmp_path / "restoro.yaml"
    text = MANIFEST.replace('layout: "5.1"', "layout: stereo")
    text = text.replace("{codec: eac3, channels: 6, bitrate: 384k}",
                        "{codec: ac3, channels: 2, bitrate: 192k, passthrough: true}")  # fmt: skip
    manifest.write_text(text)
    with pytest.raises(InputError, match="passthrough, which needs an AC-3 or E-AC-3") as err:
        build(manifest)
    assert "stream 1 of source 'tape' is pcm_s16le" in str(err.value)
    assert "passthrough: false" in str(err.value)  # the hint; refused at plan time
    assert "restoro.yaml:" in str(err.value)  # at the manifest line of the rendition
    # The packager itself refuses such a stream too (the action never carries PCM).
    with pytest.raises(StageError, match="stream 1 of source.mkv is pcm_s16le"):
        select_packets(tmp_path / "media" / "source.mkv", 1, start_frame=0, frames=12,
                       frame_rate="24")  # fmt: skip
