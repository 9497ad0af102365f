"""A built HLS (and DASH) package from per-shot encodes: every playlist parses with the m3u8
library, each Apple MUST holds, segments decode with PyAV, keyframes sit at shot starts, and a
one-shot override re-encodes only that shot per rendition."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import av
import m3u8
import pytest
from buildkit import build, executed
from xml_validator import assert_valid

from restoro.testing.synth import make_source

pytestmark = pytest.mark.slow

SHOTS = [20, 12, 16]  # frames at 24 fps; cuts at 20 and 32
MANIFEST = """\
restoro: 1
project: web
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
      - {stream: 1, layout: stereo, loudness: -23, language: en}
    captions:
      - {path: media/en.srt, language: en, kind: subtitles}
deliverables:
  web:
    kind: KIND
    segment_seconds: 0.5
    ladder:
      - {codec: h264, height: 96, bitrate: 300k}
      - {codec: hevc, height: 120, bitrate: 400k}
    audio:
      - {codec: aac, channels: 2, bitrate: 96k}
"""
SRT = "1\n00:00:00,500 --> 00:00:01,400\nHello there\n\n2\n00:00:01,600 --> 00:00:01,950\nBye\n"


def _workspace(root: Path, kind: str) -> Path:
    (root / "media").mkdir(parents=True)
    make_source(
        root / "media" / "source.mkv", width=160, height=120, shots=3, shot_frames=SHOTS,
        audio_channels=2, codec="ffv1", sar="1:1", rate="24",
    )  # fmt: skip
    (root / "media" / "en.srt").write_text(SRT)
    manifest = root / "restoro.yaml"
    manifest.write_text(MANIFEST.replace("KIND", kind))
    return manifest


@pytest.fixture(scope="module")
def hls(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    manifest = _workspace(tmp_path_factory.mktemp("hls"), "hls")
    report = build(manifest)
    assert report.failed == 0
    return manifest, manifest.parent / "out" / "web" / "ep1"


def _load(path: Path) -> m3u8.M3U8:
    return m3u8.load(str(path))


def test_master_playlist_musts(hls: tuple[Path, Path]) -> None:
    _, pkg = hls
    master = _load(pkg / "master.m3u8")
    assert master.is_variant and len(master.playlists) == 2
    audio = next(m for m in master.media if m.type == "AUDIO")
    for p in master.playlists:
        si = p.stream_info
        assert si.frame_rate == 24.0
        assert si.resolution in ((128, 96), (160, 120))
        video, aac = si.codecs.split(",")
        assert video.startswith(("avc1.64", "hvc1.2.4.")) and aac == "mp4a.40.2"
        # BANDWIDTH = peak segment bitrate of video + audio; AVERAGE from all bytes.
        media = _load(pkg / p.uri)
        a_media = _load(pkg / audio.uri)

        def rates(pl: m3u8.M3U8, base: Path) -> tuple[int, int]:
            sizes = [(base / s.uri).stat().st_size for s in pl.segments]
            durs = [Fraction(s.duration).limit_denominator(1000) for s in pl.segments]
            peak = max(math.ceil(z * 8 / d) for z, d in zip(sizes, durs, strict=True))
            return peak, math.ceil(sum(sizes) * 8 / sum(durs))

        vp, va = rates(media, pkg / Path(p.uri).parent)
        ap, aa = rates(a_media, pkg / Path(audio.uri).parent)
        assert si.bandwidth == pytest.approx(vp + ap, rel=0.01)
        assert si.average_bandwidth == pytest.approx(va + aa, rel=0.01)
        assert si.average_bandwidth > va  # audio included
    assert len(master.iframe_playlists) == 2
    for ip in master.iframe_playlists:
        assert ip.iframe_stream_info.codecs.startswith(("avc1", "hvc1"))
        assert ip.iframe_stream_info.resolution
        iframes = _load(pkg / ip.uri)
        assert iframes.is_i_frames_only and iframes.playlist_type == "vod"
        assert all(s.byterange for s in iframes.segments)


def test_media_playlists_vod_and_target_duration(hls: tuple[Path, Path]) -> None:
    _, pkg = hls
    master = _load(pkg / "master.m3u8")
    uris = [p.uri for p in master.playlists] + [m.uri for m in master.media]
    for uri in uris:
        pl = _load(pkg / uri)
        assert pl.playlist_type == "vod" and pl.is_endlist
        assert pl.target_duration >= 1
        assert all(round(s.duration) <= pl.target_duration for s in pl.segments)
        assert all(s.duration <= pl.target_duration for s in pl.segments)


def test_webvtt_segments_have_timestamp_map(hls: tuple[Path, Path]) -> None:
    _, pkg = hls
    master = _load(pkg / "master.m3u8")
    subs = next(m for m in master.media if m.type == "SUBTITLES")
    assert subs.language == "en"
    pl = _load(pkg / subs.uri)
    texts = [(pkg / Path(subs.uri).parent / s.uri).read_text() for s in pl.segments]
    assert all(t.startswith("WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:") for t in texts)
    assert any("Hello there" in t for t in texts) and any("Bye" in t for t in texts)


def test_segments_decode_and_keyframes_at_shot_starts(hls: tuple[Path, Path]) -> None:
    _, pkg = hls
    for rid in ("v0", "v1"):
        init = (pkg / rid / "init.mp4").read_bytes()
        pl = _load(pkg / rid / "index.m3u8")
        keyframes, total = [], 0
        for seg in pl.segments:
            tmp = pkg.parent / f"_{rid}.mp4"
            tmp.write_bytes(init + (pkg / rid / seg.uri).read_bytes())
            with av.open(str(tmp)) as c:
                frames = list(c.decode(video=0))
            tmp.unlink()
            assert frames and frames[0].key_frame
            keyframes.append(total)
            total += len(frames)
        assert total == sum(SHOTS)
        assert {0, 20, 32} <= set(keyframes)  # every shot start begins a segment
        assert all(b - a <= 12 for a, b in zip(keyframes, [*keyframes[1:], total], strict=False))
    with av.open(str(pkg / "a0" / "init.mp4")) as c:
        assert c.streams.audio[0].codec_context.name == "aac"


def test_one_shot_override_reencodes_only_that_shot(hls: tuple[Path, Path]) -> None:
    manifest, pkg = hls
    before = (pkg / "v0" / "seg_00001.m4s").read_bytes()
    text = manifest.read_text()
    manifest.write_text(
        text.replace(
            "    segment_seconds", '    shot_crf: {"ep1@00:00:00:20": 40}\n    segment_seconds'
        )
    )
    try:
        report = build(manifest)
        ran = executed(report)
        encodes = sorted(k for k in ran if "/web/v" in k)
        assert encodes == ["ep1@00:00:00:20/web/v0", "ep1@00:00:00:20/web/v1"]
        assert "ep1/web" in ran and not any("/audio/" in k for k in ran)
        assert (pkg / "v0" / "seg_00001.m4s").read_bytes() == before
    finally:
        manifest.write_text(text)


def test_dash_mpd_validates(tmp_path: Path, shared_dir: Path) -> None:
    pytest.importorskip("lxml")
    manifest = _workspace(tmp_path, "dash")
    assert build(manifest).failed == 0
    mpd = manifest.parent / "out" / "web" / "ep1" / "manifest.mpd"
    assert_valid(shared_dir, mpd, kinds=["DASH MPD"])
    text = mpd.read_text()
    assert text.count("<AdaptationSet") == 4  # h264, hevc, audio en, text en
    assert 'mimeType="text/vtt"' in text and "SegmentTimeline" in text


def test_missing_encoder_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from restoro.deliver.streaming import encode
    from restoro.errors import ToolError

    monkeypatch.setattr(encode, "available_encoders", lambda: frozenset({"libx264"}))
    with pytest.raises(ToolError, match="encoder libsvtav1 is not in this ffmpeg build"):
        encode.require_encoder("libsvtav1")
    encode.require_encoder("libx264")


def test_short_shots_are_joined_into_segments_up_to_the_target(tmp_path: Path) -> None:
    """Three shots of 0.83, 0.5 and 0.67 s with segment_seconds 2: one 2 s media segment of
    three fragments (each IDR its own byte range in the I-frame playlist), not three tiny
    segments; the WebVTT segments follow the joined segments."""
    manifest = _workspace(tmp_path, "hls")
    manifest.write_text(manifest.read_text().replace("segment_seconds: 0.5", "segment_seconds: 2"))
    assert build(manifest).failed == 0
    pkg = manifest.parent / "out" / "web" / "ep1"
    for rid in ("v0", "v1"):
        pl = _load(pkg / rid / "index.m3u8")
        assert [s.duration for s in pl.segments] == [2.0] and pl.target_duration == 2
        seg = (pkg / rid / pl.segments[0].uri).read_bytes()
        init = (pkg / rid / "init.mp4").read_bytes()
        whole = tmp_path / f"{rid}.mp4"
        whole.write_bytes(init + seg)
        with av.open(str(whole)) as c:
            frames = list(c.decode(video=0))
        assert len(frames) == sum(SHOTS)
        assert [i for i, f in enumerate(frames) if f.key_frame] == [0, 20, 32]
        iframes = _load(pkg / rid / "iframes.m3u8")
        ranges = [s.byterange for s in iframes.segments]
        assert len(ranges) == 3 and {s.uri for s in iframes.segments} == {pl.segments[0].uri}
        assert [round(s.duration * 24) for s in iframes.segments] == SHOTS
        offsets = [int(r.split("@")[1]) for r in ranges]
        assert offsets[0] == 0 and offsets == sorted(offsets)
        for r, off in zip(ranges, offsets, strict=True):
            length = int(r.split("@")[0])
            assert seg[off + 4 : off + 8] == b"moof" and off + length <= len(seg)
            # The range holds a decodable IDR on its own (after the init segment).
            one = tmp_path / f"{rid}_{off}.mp4"
            one.write_bytes(init + seg[off : off + length])
            with av.open(str(one)) as c:
                first = next(c.decode(video=0))
            assert first.key_frame
    master = _load(pkg / "master.m3u8")
    subs = next(m for m in master.media if m.type == "SUBTITLES")
    assert [s.duration for s in _load(pkg / subs.uri).segments] == [2.0]
