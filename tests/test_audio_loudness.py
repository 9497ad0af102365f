"""Every delivered audio rendition at its own loudness target: a 5.1 track normalised to -24 LUFS
gives a stereo downmix 2-3 LU quieter (surrounds weigh 1.41 in BS.1770, -3 dB in the downmix),
so the stereo AAC, the 5.1 AAC and the 5.1 E-AC-3 renditions of a streaming package are each
measured as delivered — with ffmpeg's ``ebur128=peak=true`` on the decoded rendition — and
brought within 0.5 LU of the target under the true-peak ceiling."""

from __future__ import annotations

import re
import subprocess
from typing import TYPE_CHECKING

import pytest

from restoro.deliver.audio import remaster
from restoro.deliver.streaming.builder import _audio_tracks
from restoro.media.ffmpeg import ffmpeg_exe, run_ffmpeg

if TYPE_CHECKING:
    from pathlib import Path

RENDITIONS = [
    {"codec": "aac", "channels": 2, "bitrate": "128k", "track": 0, "passthrough": False},
    {"codec": "aac", "channels": 6, "bitrate": "256k", "track": 0, "passthrough": False},
    {"codec": "eac3", "channels": 6, "bitrate": "384k", "track": 0, "passthrough": False},
]


def ebur128(path: Path) -> tuple[float, float]:
    """(I LUFS, true peak dBTP) as ffmpeg's ebur128 filter reports them for the file."""
    argv = [ffmpeg_exe(), "-hide_banner", "-nostats", "-i", str(path),
            "-af", "ebur128=peak=true", "-f", "null", "-"]  # fmt: skip
    log = subprocess.run(argv, capture_output=True, text=True, check=True).stderr
    lufs = float(re.findall(r"I:\s+(-?[\d.]+) LUFS", log)[-1])
    peak = float(re.findall(r"Peak:\s+(-?[\d.]+) dBFS", log)[-1])
    return lufs, peak


def _delivered(out: Path, track: object) -> Path:
    """A rendition as a player gets it: its init segment and media segments joined."""
    whole = out / f"{track.id}.mp4"  # type: ignore[attr-defined]
    parts = [track.init, *(s.name for s in track.segments)]  # type: ignore[attr-defined]
    whole.write_bytes(b"".join((out / p).read_bytes() for p in parts))
    return whole


@pytest.fixture(scope="module")
def surround(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 s of 5.1 programme: dialogue-like noise in the centre, music in the fronts, ambience
    in the surrounds (the surrounds are what a stereo downmix loses), an LFE rumble."""
    root = tmp_path_factory.mktemp("loud")
    src = root / "src.wav"
    run_ffmpeg(
        ["-f", "lavfi", "-i", "anoisesrc=d=4:c=pink:r=48000:a=0.3:seed=7",
         "-f", "lavfi", "-i", "sine=f=220:d=4:r=48000",
         "-f", "lavfi", "-i", "anoisesrc=d=4:c=brown:r=48000:a=0.4:seed=3",
         "-filter_complex",
         "[0][1][2]amerge=inputs=3,pan=5.1|FL=0.3*c1+0.1*c0|FR=0.3*c1+0.1*c2|FC=c0"
         "|LFE=0.5*c2|BL=1.2*c2|BR=0.9*c0",
         "-c:a", "pcm_s24le", str(src)]
    )  # fmt: skip
    return src


@pytest.mark.slow
@pytest.mark.parametrize(("target", "ceiling"), [(-24.0, -2.0), (-14.0, -1.0)])
def test_every_rendition_meets_its_own_target(
    tmp_path: Path, surround: Path, target: float, ceiling: float
) -> None:
    track = tmp_path / "track.wav"
    facts = remaster([(surround, 0)], layout="5.1", start_frame=0, frames=96,
                     frame_rate="24", out=track, target=target, ceiling=ceiling)  # fmt: skip
    assert abs(facts["loudness"] - target) <= 0.2
    base = {"segment_seconds": 2.0, "audio": RENDITIONS}
    # The defect: encoded as mixed, the stereo downmix of the normalised 5.1 misses the target.
    plain = tmp_path / "plain"
    plain.mkdir()
    tracks = _audio_tracks({**base, "tracks": [{"layout": "5.1", "language": "en"}]},
                           [track], plain, tmp_path)  # fmt: skip
    stereo_lufs, _ = ebur128(_delivered(plain, tracks[0]))
    assert stereo_lufs < target - 0.7, stereo_lufs
    # Each rendition normalised after its own mix and codec.
    out = tmp_path / "pkg"
    out.mkdir()
    tr = {"layout": "5.1", "language": "en", "loudness": target, "true_peak": ceiling}
    tracks = _audio_tracks({**base, "tracks": [tr]}, [track], out, tmp_path)
    assert [t.channels for t in tracks] == [2, 6, 6]
    for t in tracks:
        lufs, peak = ebur128(_delivered(out, t))
        assert abs(lufs - target) <= 0.5, (t.codec, lufs)
        assert peak <= ceiling, (t.codec, peak)
        assert t.extra["target"] == target and abs(t.extra["loudness"] - lufs) <= 0.1


@pytest.mark.slow
def test_peaky_stereo_reaches_target_through_the_limiter(tmp_path: Path) -> None:
    """Quiet noise with loud clicks: the remaster stops at the ceiling short of -14 LUFS (one
    gain); the rendition reaches it with the look-ahead limiter holding the clicks under it."""
    src, track = tmp_path / "clicks.wav", tmp_path / "track.wav"
    run_ffmpeg(
        ["-f", "lavfi", "-i", "anoisesrc=d=4:c=pink:r=48000:a=0.2:seed=5",
         "-f", "lavfi", "-i", "aevalsrc=if(lt(mod(t\\,0.25)\\,0.002)\\,0.95\\,0):d=4:s=48000",
         "-filter_complex", "[0][1]amix=inputs=2:normalize=0,pan=stereo|FL=c0|FR=c0",
         "-c:a", "pcm_s24le", str(src)]
    )  # fmt: skip
    facts = remaster([(src, 0)], layout="stereo", start_frame=0, frames=96, frame_rate="24",
                     out=track, target=-14.0, ceiling=-1.0)  # fmt: skip
    assert facts["loudness"] < -15.0  # held back by the true peak
    out = tmp_path / "pkg"
    out.mkdir()
    tr = {"layout": "stereo", "language": "en", "loudness": -14.0, "true_peak": -1.0}
    params = {"segment_seconds": 2.0, "audio": RENDITIONS[:1], "tracks": [tr]}
    (t,) = _audio_tracks(params, [track], out, tmp_path)
    lufs, peak = ebur128(_delivered(out, t))
    assert abs(lufs + 14.0) <= 0.5 and peak <= -1.0, (lufs, peak, t.extra)
    assert t.extra["limiter_db"] is not None


BUILD = """\
restoro: 1
project: loud
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
    audio:
      - {layout: "5.1", language: en, loudness: -24, true_peak: -2}
deliverables:
  web:
    kind: hls
    segment_seconds: 1
    ladder:
      - {codec: h264, height: 48, bitrate: 100k}
    audio:
      - {codec: aac, channels: 2, bitrate: 96k}
      - {codec: eac3, channels: 6, bitrate: 384k}
"""


@pytest.mark.slow
def test_hls_build_delivers_each_rendition_at_the_target(tmp_path: Path) -> None:
    from buildkit import build

    from restoro.testing.synth import make_source

    (tmp_path / "media").mkdir()
    make_source(
        tmp_path / "media" / "source.mkv", width=64, height=48, shots=1, shot_frames=72,
        audio_channels=6, codec="ffv1", sar="1:1", rate="24",
    )  # fmt: skip
    (tmp_path / "restoro.yaml").write_text(BUILD)
    assert build(tmp_path / "restoro.yaml").failed == 0
    pkg = tmp_path / "out" / "web" / "ep1"
    for tid in ("a0", "a1"):
        parts = sorted((pkg / tid).glob("seg_*"))
        whole = tmp_path / f"{tid}.mp4"
        whole.write_bytes(b"".join(p.read_bytes() for p in [pkg / tid / "init.mp4", *parts]))
        lufs, peak = ebur128(whole)
        assert abs(lufs + 24.0) <= 0.5 and peak <= -2.0, (tid, lufs, peak)
