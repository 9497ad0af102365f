"""Assemble one title's HLS or DASH package from its per-shot encodes, audio WAVs and captions."""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING, Any

from restoro.deliver.streaming import playlists
from restoro.deliver.streaming.package import Track, package_audio, package_video
from restoro.errors import StageError

if TYPE_CHECKING:
    from pathlib import Path

MPEGTS_MAP = "MPEGTS:0,LOCAL:00:00:00.000"


def _audio_tracks(
    params: dict[str, Any],
    audio: list[Path],
    out_dir: Path,
    work: Path,
    source: Path | None = None,
) -> list[Track]:
    """``source``: the file the passthrough renditions read (each one's cut is described by
    ``params["passthrough"][str(index)]``)."""
    from restoro.deliver.audio import DEFAULT_TRUE_PEAK, downmix_stereo

    renditions = params["audio"] or (
        [{"codec": "aac", "channels": 2, "bitrate": "128k", "track": 0, "passthrough": False}]
        if audio
        else []
    )
    tracks: list[Track] = []
    for i, a in enumerate(renditions):
        t = a["track"]
        if t >= len(audio):
            raise StageError(f"audio rendition {i} uses track {t}; the title has {len(audio)}")
        if a.get("passthrough"):
            tracks.append(_carried(params, i, source, out_dir, work))
            continue
        layout = params["tracks"][t]["layout"]
        target = params["tracks"][t].get("loudness")
        ceiling = params["tracks"][t].get("true_peak", DEFAULT_TRUE_PEAK)
        wav = audio[t]
        if a["channels"] == 2 and layout != "stereo":
            wav = work / f"downmix{i}.wav"
            downmix_stereo(audio[t], layout, wav)
        elif a["channels"] not in (2, len(_channels(layout))):
            raise StageError(
                f"audio rendition {i} asks for {a['channels']} channels of a {layout} track",
                hint="use 2 (stereo downmix) or the track's own channel count",
            )
        tracks.append(
            package_audio(
                wav, codec=a["codec"], channels=a["channels"], bitrate=a["bitrate"],
                fragment_seconds=min(params["segment_seconds"], 2.0), out_dir=out_dir,
                tid=f"a{i}", language=params["tracks"][t]["language"],
                normalise=(target, ceiling) if target is not None else None,
            )
        )  # fmt: skip
    return tracks


def _carried(
    params: dict[str, Any], i: int, source: Path | None, out_dir: Path, work: Path
) -> Track:
    """A passthrough rendition: the source's (E-)AC-3 packets for the span, fragmented."""
    from restoro.deliver.streaming.passthrough import cut_packets

    cut = params.get("passthrough", {}).get(str(i))
    if source is None or cut is None:
        raise StageError(f"audio rendition {i} is passthrough but has no source stream")
    raw = work / f"carried{i}.raw"
    carried = cut_packets(
        source, cut["stream"], start_frame=cut["start_frame"], frames=cut["frames"],
        frame_rate=cut["frame_rate"], offset_ms=cut["offset_ms"], out=raw,
    )  # fmt: skip
    track = package_audio(
        raw, codec=carried.codec, channels=carried.channels, bitrate="0",
        fragment_seconds=min(params["segment_seconds"], 2.0), out_dir=out_dir, tid=f"a{i}",
        language=cut["language"], copy=True, input_format=carried.codec,
    )  # fmt: skip
    track.extra.update(passthrough=True, packets=carried.packets)
    return track


def _channels(layout: str) -> tuple[str, ...]:
    from restoro.deliver.audio import check_layout

    return check_layout(layout)


def _captions(
    params: dict[str, Any],
    paths: list[Path],
    video: Track,
    out_dir: Path,
    notices: list[str] | None = None,
) -> tuple[list[str], list[tuple[str, str, str]], list[tuple[str, str]]]:
    """WebVTT segments aligned to the video segments (HLS) and whole sidecars (DASH); cues of a
    trimmed title are cut to it (``notices`` counts those dropped)."""
    from restoro.deliver.captions.io import title_cues, to_vtt

    files: list[str] = []
    hls: list[tuple[str, str, str]] = []
    dash: list[tuple[str, str]] = []
    end = video.duration
    bounds = [Fraction(0)]
    for s in video.segments:
        bounds.append(bounds[-1] + s.duration)
    for i, (path, cap) in enumerate(zip(paths, params["captions"], strict=True)):
        cues = title_cues(
            path,
            offset_ms=cap["offset_ms"],
            end=end,
            name=cap["name"],
            trim=cap.get("trim"),
            notices=notices,
        )
        tid = f"subs{i}"
        names = []
        for n, (a, b) in enumerate(zip(bounds, bounds[1:], strict=False), 1):
            name = f"seg_{n:05d}.vtt"
            part = [c for c in cues if c.begin < b and c.end > a]
            (out_dir / tid).mkdir(parents=True, exist_ok=True)
            (out_dir / tid / name).write_text(to_vtt(part, timestamp_map=MPEGTS_MAP), "utf-8")
            files.append(f"{tid}/{name}")
            names.append(name)
        durations = [b - a for a, b in zip(bounds, bounds[1:], strict=False)]
        (out_dir / tid / "index.m3u8").write_text(playlists.vtt_playlist(names, durations), "utf-8")
        files.append(f"{tid}/index.m3u8")
        (out_dir / f"{tid}.vtt").write_text(to_vtt(cues), "utf-8")
        files.append(f"{tid}.vtt")
        hls.append((cap["language"], f"{cap['language']} {cap['kind']}", f"{tid}/index.m3u8"))
        dash.append((cap["language"], f"{tid}.vtt"))
    return files, hls, dash


def build_package(
    params: dict[str, Any],
    *,
    videos: dict[str, list[Path]],
    audio: list[Path],
    captions: list[Path],
    out_dir: Path,
    work: Path,
    source: Path | None = None,
) -> tuple[list[str], dict[str, Any]]:
    """Write the package under ``out_dir``; return its files (main first) and figures."""
    vtracks = [
        package_video(
            videos[rid],
            frame_rate=params["frame_rate"],
            out_dir=out_dir,
            tid=rid,
            segment_seconds=params["segment_seconds"],
        )
        for rid in sorted(videos, key=lambda k: int(k[1:]))
    ]
    atracks = _audio_tracks(params, audio, out_dir, work, source)
    notices: list[str] = []
    cap_files, hls_subs, dash_subs = _captions(params, captions, vtracks[0], out_dir, notices)
    files: list[str] = []
    for t in [*vtracks, *atracks]:
        files += [t.init, *(s.name for s in t.segments)]
    files += cap_files
    if params["kind"] == "hls":
        for t in [*vtracks, *atracks]:
            (out_dir / t.id / "index.m3u8").write_text(playlists.media_playlist(t), "utf-8")
            files.append(f"{t.id}/index.m3u8")
        for t in vtracks:
            (out_dir / t.id / "iframes.m3u8").write_text(playlists.iframe_playlist(t), "utf-8")
            files.append(f"{t.id}/iframes.m3u8")
        master = playlists.master_playlist(vtracks, atracks, hls_subs)
        (out_dir / "master.m3u8").write_text(master, "utf-8")
        files.insert(0, "master.m3u8")
    else:
        (out_dir / "manifest.mpd").write_bytes(playlists.mpd(vtracks, atracks, dash_subs))
        files.insert(0, "manifest.mpd")
    meta = {
        "renditions": [
            {
                "id": t.id,
                "codec": t.codec,
                "peak": t.peak,
                "average": t.average,
                "width": t.width,
                "height": t.height,
                "segments": len(t.segments),
                **{k: t.extra[k] for k in ("loudness", "true_peak", "target") if k in t.extra},
            }
            for t in [*vtracks, *atracks]
        ],  # fmt: skip
        "duration": float(vtracks[0].duration),
        **({"notices": notices} if notices else {}),
    }
    return files, meta
