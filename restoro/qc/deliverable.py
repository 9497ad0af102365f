"""Per-deliverable checks on a delivered file: it decodes end to end, has the frame count and
duration it should, its audio starts with its picture and is as long, its loudness is on target
and its codec and raster are what the manifest declares."""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field

from restoro.qc.base import Check, CheckParams, CheckResult, Finding, rnd

if TYPE_CHECKING:
    from pathlib import Path

    from restoro.engine.actions import RunContext
    from restoro.engine.graph import ActionSpec


class DeliverableParams(CheckParams):
    frames: int = Field(description="Frames the picture should have.")
    frame_rate: str = Field("", description="Declared frame rate (a rational as text).")
    raster: str | None = Field(None, description="Declared raster WIDTHxHEIGHT.")
    codec: str | None = Field(None, description="Declared video codec (ffmpeg name).")
    profile: str | None = Field(None, description="Declared ProRes profile.")
    audio: list[dict[str, Any]] = Field(default_factory=list, description="Audio action facts.")
    loudness_tolerance: float = Field(1.0, description="Allowed loudness deviation (LU).")
    av_tolerance_frames: float = Field(1.0, description="Allowed A/V length difference (frames).")
    timecode: str = Field("00:00:00:00", description="Timecode of the title's first frame.")
    captions: list[dict[str, Any]] = Field(
        default_factory=list, description="Caption tracks the sidecars are made from."
    )
    fail_on_captions: bool = Field(False, description="Caption findings are errors.")


def probe_decode(path: Path) -> dict[str, Any]:
    """Decode every video and audio packet; count frames, errors and durations."""
    import av

    out: dict[str, Any] = {"video_frames": 0, "errors": [], "audio_seconds": None}
    starts: dict[str, float] = {}  # presentation time of each stream's first decoded frame
    with av.open(str(path)) as c:
        v: Any = c.streams.video[0] if c.streams.video else None
        a: Any = c.streams.audio[0] if c.streams.audio else None
        if v is not None:
            out.update(
                codec=v.codec_context.name,
                width=v.codec_context.width,
                height=v.codec_context.height,
                profile=v.codec_context.profile,
                rate=str(v.average_rate) if v.average_rate else "",
            )
        samples, rate = 0, 0
        for s in [x for x in (v, a) if x is not None]:
            s.thread_type = "AUTO"
        for packet in c.demux(*[x for x in (v, a) if x is not None]):
            try:
                frame: Any
                for frame in packet.decode():
                    if frame.time is not None:
                        starts.setdefault(packet.stream.type, float(frame.time))
                    if packet.stream is v:
                        out["video_frames"] += 1
                    else:
                        samples += frame.samples
                        rate = frame.sample_rate
            except av.error.FFmpegError as exc:
                if len(out["errors"]) < 5:
                    out["errors"].append(str(exc))
        if a is not None and rate:
            out["audio_seconds"] = samples / rate
    if "video" in starts and "audio" in starts:
        out["av_offset"] = starts["audio"] - starts["video"]
    return out


class DeliverableCheck(Check):
    id: ClassVar[str] = "deliverable"
    version: ClassVar[int] = 2  # 2: A/V sync (first audio vs first picture time)
    scope: ClassVar = "deliverable"
    severity: ClassVar = "error"
    Params: ClassVar = DeliverableParams

    def check_file(self, path: Path) -> CheckResult:
        p = self.params
        assert isinstance(p, DeliverableParams)
        res = CheckResult()
        f = res.findings

        def err(check: str, msg: str, value: float | None = None) -> None:
            f.append(Finding(check, "error", msg, value=value))

        try:
            info = probe_decode(path)
        except Exception as exc:  # noqa: BLE001 - any failure to open is the finding
            err("decode", f"does not open: {exc}")
            return res
        n = info["video_frames"]
        rate = Fraction(p.frame_rate) if p.frame_rate else None
        res.metrics = {
            "frames": n,
            "duration": rnd(n / rate, 3) if rate else None,
            "codec": info.get("codec"),
            "raster": f"{info.get('width')}x{info.get('height')}",
            "audio_seconds": rnd(info["audio_seconds"], 3) if info["audio_seconds"] else None,
            "decode_errors": len(info["errors"]),
        }
        if info["errors"]:
            err("decode", f"decode errors: {'; '.join(info['errors'])}")
        if n != p.frames:
            err("frames", f"{n} frames, expected {p.frames}", n)
        if p.raster and res.metrics["raster"] != p.raster:
            err("codec", f"raster {res.metrics['raster']}, declared {p.raster}")
        if p.codec and info.get("codec") != p.codec:
            err("codec", f"codec {info.get('codec')}, declared {p.codec}")
        prof = str(info.get("profile") or "").lower().replace(" ", "")
        if p.profile and prof and not prof.endswith(p.profile):
            err("codec", f"profile {info.get('profile')}, declared {p.profile}")
        offset = info.get("av_offset")
        if rate and offset is not None:
            res.metrics["av_offset_ms"] = rnd(offset * 1000, 1)
            if abs(offset) * rate > p.av_tolerance_frames:
                when = "after" if offset > 0 else "before"
                msg = f"audio starts {abs(offset) * 1000:.0f} ms {when} the picture"
                err("av-sync", msg, rnd(offset * 1000, 1))
        if rate and info["audio_seconds"] is not None:
            diff = abs(info["audio_seconds"] - n / rate) * rate
            res.metrics["av_diff_frames"] = rnd(float(diff), 3)
            if diff > p.av_tolerance_frames:
                msg = f"audio and picture differ by {float(diff):.2f} frames"
                err("av-length", msg, float(diff))
        for i, tr in enumerate(p.audio):
            lufs, target = tr.get("loudness"), tr.get("target")
            if lufs is None or target is None:
                continue
            res.metrics[f"loudness_{i}"] = lufs
            if abs(lufs - target) > p.loudness_tolerance:
                err(
                    "loudness",
                    f"track {i}: {lufs:.1f} LUFS, target {target:g} ± {p.loudness_tolerance:g} LU",
                    lufs,
                )
            ceiling, tp = tr.get("ceiling"), tr.get("true_peak")
            if ceiling is not None and tp is not None and tp > ceiling + 0.1:
                err("loudness", f"track {i}: true peak {tp:.1f} dBTP over {ceiling:g}", tp)
        return res


def movie_qc(spec: ActionSpec, ctx: RunContext) -> dict[str, Any]:
    """The ``qc`` action of a movie deliverable: the file's checks, then the caption checks of
    the tracks its sidecars are made from."""
    from restoro.qc.captions import check_caption_file

    p = {k: v for k, v in spec.params.items() if k not in ("scope", "check")}
    params = DeliverableParams.model_validate(p)
    res = DeliverableCheck(params).check_file(ctx.blob(spec.inputs["delivered"]))
    findings = [f.to_json() for f in res.findings]
    captions: dict[str, Any] = {}
    for c, digest in zip(params.captions, spec.inputs.get("captions", []), strict=True):
        m, fs = check_caption_file(
            ctx.blob(digest), label=c["label"], frames=params.frames,
            frame_rate=params.frame_rate, timecode=params.timecode, offset_ms=c["offset_ms"],
            trim=c.get("trim"),
            error=params.fail_on_captions,
        )  # fmt: skip
        captions[c["label"]] = m
        findings += fs
    metrics = {**res.metrics, **({"captions": captions} if captions else {})}
    return {"scope": "deliverable", "kind": "movie", "metrics": metrics, "findings": findings}
