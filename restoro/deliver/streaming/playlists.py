"""HLS playlists and the DASH MPD, written from the packaged tracks.

HLS follows the Apple HLS Authoring Specification's MUST rules: every variant has BANDWIDTH
(peak segment bitrate, video + the audio group's highest) and AVERAGE-BANDWIDTH (measured from
the segments, audio included), CODECS, RESOLUTION and FRAME-RATE; I-frame playlists for every
video rendition; WebVTT subtitles with X-TIMESTAMP-MAP; EXT-X-PLAYLIST-TYPE:VOD; every segment no
longer than EXT-X-TARGETDURATION. DASH has one AdaptationSet per video codec and one per audio
codec and language, SegmentTemplate with a SegmentTimeline.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from fractions import Fraction
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from restoro.deliver.streaming.package import Track

VERSION = 7


def _dur(d: Fraction) -> str:
    return f"{float(d):.5f}"


def target_duration(durations: list[Fraction]) -> int:
    return max(1, math.ceil(max(durations)))


def _vod_header(track: Track, *extra: str) -> list[str]:
    """The tags every VOD media playlist of ``track`` opens with (``extra`` before the map)."""
    return [
        "#EXTM3U", f"#EXT-X-VERSION:{VERSION}",
        f"#EXT-X-TARGETDURATION:{target_duration([s.duration for s in track.segments])}",
        "#EXT-X-MEDIA-SEQUENCE:0", "#EXT-X-PLAYLIST-TYPE:VOD", "#EXT-X-INDEPENDENT-SEGMENTS",
        *extra, f'#EXT-X-MAP:URI="{_rel(track.init, track.id)}"',
    ]  # fmt: skip


def media_playlist(track: Track) -> str:
    lines = _vod_header(track)
    for s in track.segments:
        lines += [f"#EXTINF:{_dur(s.duration)},", _rel(s.name, track.id)]
    return "\n".join([*lines, "#EXT-X-ENDLIST", ""])


def iframe_playlist(track: Track) -> str:
    lines = _vod_header(track, "#EXT-X-I-FRAMES-ONLY")
    for s in track.segments:  # every IDR: its fragment's moof + first sample, in its segment
        for i in s.iframes:
            lines += [f"#EXTINF:{_dur(i.duration)},", f"#EXT-X-BYTERANGE:{i.length}@{i.offset}"]
            lines.append(_rel(s.name, track.id))
    return "\n".join([*lines, "#EXT-X-ENDLIST", ""])


def vtt_playlist(names: list[str], durations: list[Fraction]) -> str:
    lines = [
        "#EXTM3U", f"#EXT-X-VERSION:{VERSION}",
        f"#EXT-X-TARGETDURATION:{target_duration(durations)}", "#EXT-X-MEDIA-SEQUENCE:0",
        "#EXT-X-PLAYLIST-TYPE:VOD",
    ]  # fmt: skip
    for name, d in zip(names, durations, strict=True):
        lines += [f"#EXTINF:{_dur(d)},", name]
    return "\n".join([*lines, "#EXT-X-ENDLIST", ""])


def _rel(path: str, tid: str) -> str:
    return path.removeprefix(f"{tid}/")


def frame_rate_text(rate: str) -> str:
    return f"{float(Fraction(rate)):.3f}"


def master_playlist(
    videos: list[Track],
    audios: list[Track],
    subtitles: list[tuple[str, str, str]],
) -> str:
    """``subtitles``: (language, name, playlist URI). One variant per video × audio codec."""
    lines = ["#EXTM3U", f"#EXT-X-VERSION:{VERSION}", "#EXT-X-INDEPENDENT-SEGMENTS"]
    groups: dict[str, list[Track]] = {}
    for a in audios:
        groups.setdefault(f"aud-{a.codec.split('.')[0]}-{a.channels}ch", []).append(a)
    for gid, tracks in groups.items():
        for i, a in enumerate(tracks):
            lines.append(
                f'#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="{gid}",NAME="{a.language} {a.channels}ch",'
                f'LANGUAGE="{a.language}",DEFAULT={"YES" if i == 0 else "NO"},AUTOSELECT=YES,'
                f'CHANNELS="{a.channels}",URI="{a.id}/index.m3u8"'
            )
    for i, (lang, name, uri) in enumerate(subtitles):
        lines.append(
            f'#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="{name}",LANGUAGE="{lang}",'
            f'DEFAULT={"YES" if i == 0 else "NO"},AUTOSELECT=YES,FORCED=NO,URI="{uri}"'
        )
    for v in sorted(videos, key=lambda t: t.average):
        for gid, tracks in groups.items() or [("", [])]:
            peak = v.peak + max((a.peak for a in tracks), default=0)
            avg = v.average + max((a.average for a in tracks), default=0)
            codecs = ",".join([v.codec, *sorted({a.codec for a in tracks})])
            attrs = [
                f"BANDWIDTH={peak}", f"AVERAGE-BANDWIDTH={avg}", f'CODECS="{codecs}"',
                f"RESOLUTION={v.width}x{v.height}", f"FRAME-RATE={frame_rate_text(v.frame_rate)}",
                "VIDEO-RANGE=SDR", "CLOSED-CAPTIONS=NONE",
            ]  # fmt: skip
            if gid:
                attrs.append(f'AUDIO="{gid}"')
            if subtitles:
                attrs.append('SUBTITLES="subs"')
            lines += ["#EXT-X-STREAM-INF:" + ",".join(attrs), f"{v.id}/index.m3u8"]
    for v in videos:
        lines.append(
            f'#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH={v.iframe_peak},CODECS="{v.codec}",'
            f'RESOLUTION={v.width}x{v.height},VIDEO-RANGE=SDR,URI="{v.id}/iframes.m3u8"'
        )
    return "\n".join([*lines, ""])


def _iso_duration(d: Fraction) -> str:
    return f"PT{float(d):.3f}S"


def mpd(videos: list[Track], audios: list[Track], subtitles: list[tuple[str, str]]) -> bytes:
    """A static DASH MPD (isoff-live profile); ``subtitles``: (language, WebVTT URL)."""
    ns = "urn:mpeg:dash:schema:mpd:2011"
    duration = max((t.duration for t in videos), default=Fraction(0))
    longest = max(s.duration for t in videos for s in t.segments)
    root = ET.Element(
        "MPD",
        {
            "xmlns": ns,
            "profiles": "urn:mpeg:dash:profile:isoff-live:2011",
            "type": "static",
            "mediaPresentationDuration": _iso_duration(duration),
            "minBufferTime": f"PT{max(2, math.ceil(longest))}S",
        },
    )
    period = ET.SubElement(root, "Period", {"id": "0", "start": "PT0S"})
    sets: dict[tuple[str, str], list[Track]] = {}
    for t in videos:
        sets.setdefault(("video", t.codec.split(".")[0]), []).append(t)
    for t in audios:
        sets.setdefault((f"audio:{t.language}", t.codec.split(".")[0]), []).append(t)
    for n, ((kind, _codec), tracks) in enumerate(sets.items()):
        is_video = kind == "video"
        attrs = {
            "id": str(n), "contentType": "video" if is_video else "audio",
            "mimeType": "video/mp4" if is_video else "audio/mp4",
            "segmentAlignment": "true", "startWithSAP": "1",
        }  # fmt: skip
        if not is_video:
            attrs["lang"] = tracks[0].language
        aset = ET.SubElement(period, "AdaptationSet", attrs)
        for t in tracks:
            rattrs = {"id": t.id, "bandwidth": str(t.peak), "codecs": t.codec}
            if is_video:
                rattrs |= {"width": str(t.width), "height": str(t.height)}
                rattrs["frameRate"] = str(Fraction(t.frame_rate))
                rattrs["sar"] = "1:1"
            else:
                rattrs["audioSamplingRate"] = "48000"
            rep = ET.SubElement(aset, "Representation", rattrs)
            if not is_video:
                ET.SubElement(
                    rep,
                    "AudioChannelConfiguration",
                    {
                        "schemeIdUri": "urn:mpeg:dash:23003:3:audio_channel_configuration:2011",
                        "value": str(t.channels),
                    },
                )
            tmpl = ET.SubElement(
                rep,
                "SegmentTemplate",
                {
                    "timescale": str(t.timescale),
                    "initialization": t.init,
                    "media": f"{t.id}/seg_$Number%05d$.m4s",
                    "startNumber": "1",
                },
            )
            tl = ET.SubElement(tmpl, "SegmentTimeline")
            for start, d in zip(t.starts, t.durations, strict=True):
                ET.SubElement(tl, "S", {"t": str(start), "d": str(d)})
    for n, (lang, url) in enumerate(subtitles, len(sets)):
        aset = ET.SubElement(
            period,
            "AdaptationSet",
            {"id": str(n), "contentType": "text", "mimeType": "text/vtt", "lang": lang},
        )
        ET.SubElement(aset, "Role", {"schemeIdUri": "urn:mpeg:dash:role:2011", "value": "subtitle"})
        rep = ET.SubElement(aset, "Representation", {"id": f"text-{lang}-{n}", "bandwidth": "256"})
        ET.SubElement(rep, "BaseURL").text = url
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)
