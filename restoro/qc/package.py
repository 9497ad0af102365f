"""Per-deliverable checks of packages: HLS/DASH renditions and IMF compositions.

A streaming package is decoded rendition by rendition the way a player reads it: an HLS
rendition through its media playlist (PyAV's HLS demuxer), a DASH one through the segments its
``SegmentTemplate`` lists (init + media segments in order). Each video rendition's frame count,
duration, codec, profile, raster and bit depth are checked against the title and the manifest,
each audio rendition's length against the picture, and every video rendition is scored (VMAF,
PSNR) against the title's ProRes master when the build makes one. An IMF package is played
through ffmpeg's IMF demuxer from its CPL (frames, samples, codec, raster) and checked with
``restoro check-imf``'s rules (restoro/deliver/imf/checks.py).
"""

from __future__ import annotations

import re
import subprocess
import xml.etree.ElementTree as ET
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from restoro.qc.base import Finding, rnd

if TYPE_CHECKING:
    from pathlib import Path

# The codec name ffmpeg's decoders report, per declared codec.
DECODERS = {"h264": {"h264"}, "hevc": {"hevc"}, "av1": {"av1", "libdav1d", "libaom-av1"}}


def stage(root: Path, files: list[tuple[str, Path]]) -> None:
    """Hard-link each blob into ``root`` under its package name (a copy across filesystems).

    Not a symbolic link: the package checks refuse links that lead out of a package, as a
    delivered package must not hold any.
    """
    import os
    import shutil

    for name, blob in files:
        dst = root / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        if not dst.exists():
            try:
                os.link(blob, dst)
            except OSError:
                shutil.copyfile(blob, dst)


def decode_stream(path: Path, kind: str) -> dict[str, Any]:
    """Decode every packet of the first ``kind`` stream of ``path``: properties, frames (or
    samples), presented length in seconds, and the first decode errors."""
    import av

    out: dict[str, Any] = {"frames": 0, "samples": 0, "seconds": 0.0, "errors": []}
    with av.open(str(path)) as c:
        streams = c.streams.video if kind == "video" else c.streams.audio
        if not streams:
            out["errors"].append(f"no {kind} stream")
            return out
        s: Any = streams[0]
        s.thread_type = "AUTO"
        cc = s.codec_context
        out["codec"] = cc.name
        out["profile"] = cc.profile
        if kind == "video":
            out.update(
                width=cc.width, height=cc.height, pix_fmt=cc.format.name if cc.format else ""
            )
        else:
            out.update(channels=cc.channels, sample_rate=cc.sample_rate)
        first: int | None = None
        end = 0
        duration = 0
        tb = s.time_base
        for packet in c.demux(s):
            if packet.size == 0:
                continue
            if packet.pts is not None:
                first = packet.pts if first is None else min(first, packet.pts)
                end = max(end, packet.pts + (packet.duration or 0))
            duration += packet.duration or 0
            try:
                frame: Any
                for frame in packet.decode():
                    out["frames"] += 1
                    if kind == "audio":
                        out["samples"] += frame.samples
            except av.error.FFmpegError as exc:
                if len(out["errors"]) < 5:
                    out["errors"].append(str(exc))
        try:
            for frame in s.decode(None):  # flush the decoder's delayed frames
                out["frames"] += 1
                if kind == "audio":
                    out["samples"] += frame.samples
        except av.error.FFmpegError as exc:
            out["errors"].append(str(exc))
        # What the packets last (for video too: how a demuxer places a B-frame track's first
        # picture, an edit list or negative composition offsets, moves its first and last
        # presentation times, never the sum of the frame durations); the presented span when
        # packets carry no durations.
        ticks = duration if duration else (end - (first or 0))
        out["seconds"] = float(ticks * tb) if tb else 0.0
    return out


def bit_depth(pix_fmt: str) -> int:
    m = re.search(r"p(\d+)(le|be)$", pix_fmt)
    return int(m.group(1)) if m else 8


def expected_profile(codec: str, depth: int) -> str:
    if codec == "h264":
        return "High" if depth == 8 else "High 10"
    if codec == "hevc":
        return "Main" if depth == 8 else "Main 10"
    return "Main"


# -- streaming ---------------------------------------------------------------------------------


def _hls_duration(playlist: Path) -> float:
    text = playlist.read_text(encoding="utf-8")
    return sum(float(x) for x in re.findall(r"#EXTINF:([\d.]+)", text))


def presentation_start(root: Path, kind: str, rid: str) -> float:
    """Where rendition ``rid``'s media starts on the presentation timeline, in seconds, as an
    MSE player places it: the earliest decode time + composition offset of the samples of its
    first media segment (later segments start later), read from the fragments themselves
    (ffmpeg's demuxers move a B-frame track's first picture by their own rules)."""
    from restoro.deliver.streaming import isobmff

    if kind == "hls":
        playlist = root / rid / "index.m3u8"
        text = playlist.read_text(encoding="utf-8")
        init = re.search(r'#EXT-X-MAP:URI="([^"]+)"', text)
        names = ([init.group(1)] if init else []) + [
            ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")
        ]
        paths = [playlist.parent / n for n in names[:2]]
    else:
        names, _ = dash_segments(root / "manifest.mpd", rid)
        paths = [root / n for n in names[:2]]
    head, frags = isobmff.split(b"".join(p.read_bytes() for p in paths))
    return isobmff.earliest_presentation(frags) / isobmff.timescale(head)


def dash_segments(mpd: Path, rid: str) -> tuple[list[str], float]:
    """Init and media segment names of representation ``rid``, and its listed duration."""
    root = ET.parse(mpd).getroot()
    ns = {"d": root.tag.split("}")[0].strip("{")} if root.tag.startswith("{") else {}
    p = "d:" if ns else ""
    rep = root.find(f".//{p}Representation[@id='{rid}']", ns)
    if rep is None:
        raise ValueError(f"no Representation {rid!r} in {mpd.name}")
    tpl = rep.find(f"{p}SegmentTemplate", ns)
    if tpl is None:
        raise ValueError(f"Representation {rid!r} has no SegmentTemplate")
    number = int(tpl.get("startNumber", "1"))
    scale = int(tpl.get("timescale", "1"))
    total, count = 0, 0
    for s in tpl.iterfind(f"{p}SegmentTimeline/{p}S", ns):
        n = 1 + int(s.get("r", "0"))
        count += n
        total += n * int(s.get("d", "0"))

    def name(template: str, n: int) -> str:
        text = template.replace("$RepresentationID$", rid)
        return re.sub(r"\$Number(?:%0(\d+)d)?\$", lambda m: f"{n:0{m.group(1) or 1}d}", text)

    media = tpl.get("media", "")
    names = [tpl.get("initialization", "").replace("$RepresentationID$", rid)]
    names += [name(media, number + i) for i in range(count)]
    return names, total / scale


def rendition_input(root: Path, kind: str, rid: str, work: Path) -> tuple[Path, float]:
    """What a player reads for rendition ``rid`` (HLS: its media playlist; DASH: its segments,
    joined in order) and the duration its playlist/MPD lists."""
    if kind == "hls":
        playlist = root / rid / "index.m3u8"
        return playlist, _hls_duration(playlist)
    names, listed = dash_segments(root / "manifest.mpd", rid)
    joined = work / f"{rid}.mp4"
    with joined.open("wb") as out:
        for n in names:
            part = root / n
            if not part.is_file():
                raise ValueError(f"{n} is listed in manifest.mpd but not in the package")
            out.write(part.read_bytes())
    return joined, listed


def check_streaming(
    root: Path, p: dict[str, Any], master: Path | None, captions: list[Path], work: Path
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Metrics (per rendition) and findings of the package staged in ``root``."""
    from restoro.qc.captions import check_caption_file
    from restoro.qc.vmaf import vmaf

    rate = Fraction(p["frame_rate"])
    title_s = p["frames"] / rate
    frame_s = float(1 / rate)
    findings: list[dict[str, Any]] = []
    renditions: dict[str, dict[str, Any]] = {}
    picture_start: float | None = None  # where the first video rendition's pictures start

    def err(check: str, msg: str, value: float | None = None) -> None:
        findings.append(Finding(check, "error", msg, value=value).to_json())

    for r in p["ladder"]:
        rid = r["id"]
        label = f"{rid} ({r['codec']} {r['height']}p {r['bitrate']})"
        m: dict[str, Any] = {"codec": r["codec"], "bitrate": r["bitrate"]}
        renditions[rid] = m
        try:
            src, listed = rendition_input(root, p["kind"], rid, work)
            info = decode_stream(src, "video")
        except Exception as exc:  # noqa: BLE001 - any failure to read it is the finding
            err("decode", f"{label}: does not play: {exc}")
            continue
        if picture_start is None:
            picture_start = presentation_start(root, p["kind"], rid)
        depth = bit_depth(info.get("pix_fmt", ""))
        m.update(frames=info["frames"], duration=rnd(info["seconds"], 3), listed=rnd(listed, 3),
                 raster=f"{info.get('width')}x{info.get('height')}", profile=info.get("profile"),
                 bit_depth=depth)  # fmt: skip
        if info["errors"]:
            err("decode", f"{label}: decode errors: {'; '.join(info['errors'])}")
        if info["frames"] != p["frames"]:
            err("frames", f"{label}: {info['frames']} frames, expected {p['frames']}")
        for what, secs in (("decoded", info["seconds"]), ("listed", listed)):
            if abs(secs - title_s) > frame_s + 1e-6:
                err("duration", f"{label}: {what} duration {secs:.3f} s, the title's is "
                                f"{float(title_s):.3f} s")  # fmt: skip
        if info.get("codec") not in DECODERS.get(r["codec"], {r["codec"]}):
            err("codec", f"{label}: codec {info.get('codec')}, declared {r['codec']}")
        if info.get("height") != 2 * round(r["height"] / 2):
            err("codec", f"{label}: raster {m['raster']}, declared height {r['height']}")
        if depth != r["bit_depth"]:
            err("codec", f"{label}: {depth}-bit ({info.get('pix_fmt')}), declared "
                         f"{r['bit_depth']}-bit")  # fmt: skip
        want = expected_profile(r["codec"], r["bit_depth"])
        if r["codec"] != "av1" and info.get("profile") != want:
            err("codec", f"{label}: profile {info.get('profile')}, expected {want}")
        if master is not None and p.get("vmaf"):
            x, y, w, h = p["vmaf"]["area"]
            score = vmaf(
                ["-i", str(src)], ["-i", str(master)], size=(w, h),
                reference_chain=f"crop={w}:{h}:{x}:{y}", n_subsample=p["vmaf"]["subsample"],
            )  # fmt: skip
            m.update(score.to_json())
            limit = p.get("min_vmaf")
            if limit is not None and score.mean < limit:
                findings.append(
                    Finding(
                        "vmaf", "error",
                        f"{label}: VMAF {score.mean:.1f} against the master is below {limit:g} "
                        f"(min {score.min:.1f}, 5th percentile {score.p5:.1f}, PSNR "
                        f"{score.psnr:.1f} dB; worst at frame {score.worst_frame})",
                        frames=[score.worst_frame], value=score.mean,
                    ).to_json()
                )  # fmt: skip
    for a in p["audio"]:
        rid = a["id"]
        label = f"{rid} ({a['codec'] or 'passthrough'})"
        m = {"codec": a["codec"]}
        renditions[rid] = m
        try:
            src, listed = rendition_input(root, p["kind"], rid, work)
            info = decode_stream(src, "audio")
        except Exception as exc:  # noqa: BLE001
            err("decode", f"{label}: does not play: {exc}")
            continue
        m.update(codec=info.get("codec"), channels=info.get("channels"),
                 duration=rnd(info["seconds"], 3), listed=rnd(listed, 3))  # fmt: skip
        if info["errors"]:
            err("decode", f"{label}: decode errors: {'; '.join(info['errors'])}")
        if a["codec"] and info.get("codec") != a["codec"]:
            err("codec", f"{label}: codec {info.get('codec')}, declared {a['codec']}")
        if a["channels"] and info.get("channels") != a["channels"]:
            err("codec", f"{label}: {info.get('channels')} channels, declared {a['channels']}")
        # Compressed audio ends on its own frame boundary and carries the encoder's priming:
        # one picture frame plus one audio frame of slack.
        spf = info["samples"] / max(info["frames"], 1)
        slack = frame_s + spf / (info.get("sample_rate") or 48000)
        diff = abs(info["seconds"] - float(title_s))
        m["av_diff_frames"] = rnd(diff / frame_s, 3)
        if diff > slack:
            err("av-length", f"{label}: audio lasts {info['seconds']:.3f} s, the picture "
                             f"{float(title_s):.3f} s", diff / frame_s)  # fmt: skip
        if picture_start is not None:
            offset = presentation_start(root, p["kind"], rid) - picture_start
            m["av_offset_ms"] = rnd(offset * 1000, 1)
            if abs(offset) > frame_s / 2:
                when = "after" if offset > 0 else "before"
                err("av-sync", f"{label}: audio starts {abs(offset) * 1000:.0f} ms {when} the "
                               "picture", rnd(offset * 1000, 1))  # fmt: skip
    metrics: dict[str, Any] = {"frames": p["frames"], "duration": rnd(float(title_s), 3),
                               "renditions": renditions}  # fmt: skip
    metrics.update(caption_metrics(p, captions, findings, check_caption_file))
    return metrics, findings


def caption_metrics(
    p: dict[str, Any], captions: list[Path], findings: list[dict[str, Any]], check: Any
) -> dict[str, Any]:
    """Run the caption checks on each caption track (``p["captions"]`` describes them)."""
    out: dict[str, Any] = {}
    for c, path in zip(p.get("captions", []), captions, strict=True):
        m, fs = check(
            path, label=c["label"], frames=p["frames"], frame_rate=p["frame_rate"],
            timecode=p["timecode"], offset_ms=c["offset_ms"], trim=c.get("trim"),
            error=p.get("fail_on_captions", False),
        )  # fmt: skip
        out[c["label"]] = m
        findings += fs
    return {"captions": out} if out else {}


# -- IMF ---------------------------------------------------------------------------------------


def play_imf(cpl: Path) -> dict[str, Any]:
    """Decode the composition with ffmpeg's IMF demuxer: per stream type, codec, raster,
    frames / samples; and the errors it logged."""
    from restoro.media.ffmpeg import ffmpeg_exe

    argv = [ffmpeg_exe(), "-hide_banner", "-nostats", "-v", "info", "-f", "imf", "-i", str(cpl),
            "-map", "0:v?", "-map", "0:a?", "-f", "framecrc", "-"]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, check=False)
    log = proc.stderr.decode("utf-8", "replace")
    out: dict[str, Any] = {"streams": {}, "errors": []}
    if proc.returncode != 0:
        out["errors"].append(" | ".join(log.strip().splitlines()[-3:]))
    tbs: dict[int, Fraction] = {}
    types: dict[int, str] = {}
    counts: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for line in proc.stdout.decode("utf-8", "replace").splitlines():
        if m := re.match(r"#tb (\d+): (\d+)/(\d+)", line):
            tbs[int(m.group(1))] = Fraction(int(m.group(2)), int(m.group(3)))
        elif m := re.match(r"#media_type (\d+): (\w+)", line):
            types[int(m.group(1))] = m.group(2)
        elif line and line[0].isdigit():
            f = [x.strip() for x in line.split(",")]
            i = int(f[0])
            counts[i] = counts.get(i, 0) + 1
            ticks[i] = ticks.get(i, 0) + int(f[3])
    codecs = re.findall(r"Stream #0:\d+.*?: (Video|Audio): ([\w-]+)[^\n]*", log)
    rasters = re.findall(r"Stream #0:\d+.*?: Video: .*?(\d{2,5})x(\d{2,5})", log)
    for i, kind in sorted(types.items()):
        s: dict[str, Any] = {"type": kind, "count": counts.get(i, 0)}
        s["seconds"] = float(ticks.get(i, 0) * tbs.get(i, Fraction(0)))
        if kind == "audio":
            tb = tbs.get(i, Fraction(1, 48000))
            s["samples"] = int(ticks.get(i, 0) * tb * 48000)
        out["streams"][i] = s
    out["video_codec"] = next((c for k, c in codecs if k == "Video"), None)
    out["raster"] = f"{rasters[0][0]}x{rasters[0][1]}" if rasters else None
    for line in log.splitlines():
        if "error" in line.lower() and len(out["errors"]) < 5:
            out["errors"].append(line.strip())
    return out


def check_imf(
    root: Path, cpl: str, p: dict[str, Any], captions: list[Path]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Metrics and findings of the IMF package staged in ``root`` (its CPL named ``cpl``)."""
    from restoro.deliver.imf.checks import check_package
    from restoro.qc.captions import check_caption_file

    rate = Fraction(p["frame_rate"])
    findings: list[dict[str, Any]] = []

    def err(check: str, msg: str, value: float | None = None) -> None:
        findings.append(Finding(check, "error", msg, value=value).to_json())

    for f in check_package(root):
        sev = f.severity if f.severity in ("error", "warning", "info") else "error"
        where = f"{f.file}: " if f.file else ""
        findings.append(Finding("imf", sev, f"{f.code}: {where}{f.message}").to_json())  # type: ignore[arg-type]
    info = play_imf(root / cpl)
    video = [s for s in info["streams"].values() if s["type"] == "video"]
    audio = [s for s in info["streams"].values() if s["type"] == "audio"]
    frames = video[0]["count"] if video else 0
    samples = [s["samples"] for s in audio]
    want = p["frames"] * 48000 / rate
    metrics: dict[str, Any] = {
        "frames": frames, "duration": rnd(float(frames / rate), 3), "codec": info["video_codec"],
        "raster": info["raster"], "audio_tracks": len(audio), "audio_samples": samples,
        "decode_errors": len(info["errors"]),
    }  # fmt: skip
    if info["errors"]:
        err("decode", f"decode errors: {'; '.join(info['errors'])}")
    if not video:
        err("decode", "the composition has no picture ffmpeg can play")
    elif frames != p["frames"]:
        err("frames", f"{frames} frames, expected {p['frames']}", frames)
    if p.get("codec") and info["video_codec"] != p["codec"]:
        err("codec", f"codec {info['video_codec']}, declared {p['codec']}")
    if p.get("raster") and info["raster"] != p["raster"]:
        err("codec", f"raster {info['raster']}, declared {p['raster']}")
    if len(audio) != p.get("audio_tracks", len(audio)):
        err("av-length", f"{len(audio)} audio tracks play, the package has {p['audio_tracks']}")
    for i, n in enumerate(samples):
        if abs(n - want) > 48000 / rate:
            err("av-length", f"audio track {i}: {n} samples, the picture lasts {float(want):.0f}",
                (n - float(want)) * float(rate) / 48000)  # fmt: skip
    metrics.update(caption_metrics(p, captions, findings, check_caption_file))
    return metrics, findings
