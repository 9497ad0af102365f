"""Audio remaster: BS.1770 loudness, normalisation under a true-peak ceiling, channel mapping,
offset, stems, downmix, passthrough, exact length — on real ffmpeg output."""

from __future__ import annotations

from typing import TYPE_CHECKING

import av
import numpy as np
import pytest

from restoro.deliver.audio import (
    check_layout,
    downmix_stereo,
    integrated_loudness,
    measure_wav,
    passthrough,
    read_wav,
    remaster,
    sample_count,
    source_layout,
)
from restoro.errors import MediaError
from restoro.media.ffmpeg import run_ffmpeg
from restoro.testing.synth import _PITCHES, make_source

if TYPE_CHECKING:
    from pathlib import Path

RATE = "30000/1001"


@pytest.fixture(scope="module")
def ac3_51(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DVD-like MPEG-PS: 60 frames of 64x48 picture and AC-3 5.1 (one pitch per channel)."""
    path = tmp_path_factory.mktemp("audio") / "dvd.mpg"
    return make_source(path, width=64, height=48, shots=1, shot_frames=60, audio_channels=6)


def _pitch(channel: np.ndarray, rate: int = 48000) -> float:
    spectrum = np.abs(np.fft.rfft(channel))
    return float(np.argmax(spectrum) * rate / len(channel))


@pytest.mark.parametrize(
    ("name", "expected"),
    [("1770-2_Comp_AbsGateTest.wav", -69.5), ("1770-2_Comp_RelGateTest.wav", -10.0)],
)
def test_bs1770_reference_vectors(shared_dir: Path, name: str, expected: float) -> None:
    data, rate = read_wav(shared_dir / "samples" / "audio" / name)
    assert abs(integrated_loudness(data, "stereo", rate) - expected) <= 0.1


def test_lfe_is_excluded_from_loudness() -> None:
    rng = np.random.default_rng(1)
    data = np.zeros((48000 * 3, 6))
    data[:, 0] = data[:, 1] = 0.1 * rng.standard_normal(len(data))
    base = integrated_loudness(data, "5.1")
    data[:, 3] = 0.9 * rng.standard_normal(len(data))  # a loud LFE changes nothing
    assert integrated_loudness(data, "5.1") == pytest.approx(base, abs=1e-9)
    data[:, 4] = 0.1 * rng.standard_normal(len(data))  # a surround does (weighted 1.41)
    assert integrated_loudness(data, "5.1") > base + 1


def test_normalised_5_1_from_ac3(ac3_51: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.wav"
    facts = remaster(
        [(ac3_51, 1)],
        layout="5.1",
        start_frame=3,
        frames=51,
        frame_rate=RATE,
        out=out,
        target=-24.0,
        ceiling=-2.0,
    )
    lufs, tp = measure_wav(out, "5.1")
    assert abs(lufs - -24.0) <= 0.5 and tp <= -2.0
    assert facts["loudness"] == pytest.approx(lufs, abs=0.01) and facts["gain_db"] < 0
    data, rate = read_wav(out)
    assert rate == 48000 and data.shape == (sample_count(51, RATE), 6)
    with av.open(str(out)) as c:
        assert c.streams.audio[0].codec_context.name == "pcm_s24le"
    # AC-3 decodes as 5.1(side); mapped to 5.1 every channel keeps its own pitch, in order.
    pitches = [_pitch(data[:, ch]) for ch in range(6)]
    assert pitches == pytest.approx(_PITCHES, abs=3)


def test_true_peak_ceiling_wins_over_target(ac3_51: Path, tmp_path: Path) -> None:
    out = tmp_path / "loud.wav"
    facts = remaster(
        [(ac3_51, 1)], layout="stereo", start_frame=0, frames=60, frame_rate=RATE, out=out,
        target=-1.0, ceiling=-3.0,
    )  # fmt: skip
    lufs, tp = measure_wav(out, "stereo")
    assert tp <= -3.0 and lufs < -1.0 - 0.5
    assert facts["true_peak"] <= -3.0


def test_offset_delays_audio_to_the_sample(ac3_51: Path, tmp_path: Path) -> None:
    kw = {"layout": "5.1", "start_frame": 10, "frames": 30, "frame_rate": RATE}
    remaster([(ac3_51, 1)], out=tmp_path / "a.wav", **kw)  # type: ignore[arg-type]
    remaster([(ac3_51, 1)], out=tmp_path / "b.wav", offset_ms=100, **kw)  # type: ignore[arg-type]
    a, _ = read_wav(tmp_path / "a.wav")
    b, _ = read_wav(tmp_path / "b.wav")
    assert len(a) == len(b) == sample_count(30, RATE)
    np.testing.assert_array_equal(b[4800:], a[:-4800])


def test_offset_before_programme_start_pads_silence(tmp_path: Path) -> None:
    src = make_source(
        tmp_path / "s.mkv", width=64, height=48, shots=1, shot_frames=40, codec="ffv1"
    )
    out = tmp_path / "early.wav"
    remaster(
        [(src, 1)], layout="stereo", start_frame=0, frames=30, frame_rate=RATE, out=out,
        offset_ms=250,
    )  # fmt: skip
    data, _ = read_wav(out)
    assert len(data) == sample_count(30, RATE)
    assert not data[:11900].any() and np.abs(data[12100:]).max() > 0.05


def test_remaster_is_deterministic(ac3_51: Path, tmp_path: Path) -> None:
    kw = {"layout": "stereo", "start_frame": 0, "frames": 40, "frame_rate": RATE, "target": -23.0}
    remaster([(ac3_51, 1)], out=tmp_path / "1.wav", **kw)  # type: ignore[arg-type]
    remaster([(ac3_51, 1)], out=tmp_path / "2.wav", **kw)  # type: ignore[arg-type]
    assert (tmp_path / "1.wav").read_bytes() == (tmp_path / "2.wav").read_bytes()


def test_mono_stems_assemble_5_1(tmp_path: Path) -> None:
    stems = []
    for ch, pitch in enumerate(_PITCHES):
        stem = tmp_path / f"stem{ch}.wav"
        run_ffmpeg(
            ["-f", "lavfi", "-i", f"sine=f={pitch}:d=1:r=48000", "-c:a", "pcm_s16le", str(stem)]
        )
        stems.append((stem, 0))
    out = tmp_path / "51.wav"
    remaster(stems, layout="5.1", start_frame=0, frames=24, frame_rate="24", out=out)
    data, _ = read_wav(out)
    assert data.shape == (48000, 6)
    assert [_pitch(data[:, ch]) for ch in range(6)] == pytest.approx(_PITCHES, abs=2)
    with pytest.raises(MediaError, match="stems for the 6 channels"):
        remaster(stems[:4], layout="5.1", start_frame=0, frames=24, frame_rate="24", out=out)


def test_stereo_downmix(ac3_51: Path, tmp_path: Path) -> None:
    five = tmp_path / "51.wav"
    remaster([(ac3_51, 1)], layout="5.1", start_frame=0, frames=60, frame_rate=RATE, out=five)
    out = tmp_path / "st.wav"
    downmix_stereo(five, "5.1", out)
    data, _ = read_wav(out)
    assert data.shape[1] == 2
    spectrum = np.abs(np.fft.rfft(data[:, 0]))
    bins = {p: spectrum[round(p * len(data) / 48000)] for p in _PITCHES}
    # Left carries FL, FC and BL; not FR, BR, nor the LFE.
    top = sorted(bins, key=bins.__getitem__, reverse=True)[:3]
    assert set(top) == {_PITCHES[0], _PITCHES[2], _PITCHES[4]}


def test_ac3_passthrough_is_untouched(ac3_51: Path, tmp_path: Path) -> None:
    out = tmp_path / "carried.ac3"
    passthrough(ac3_51, 1, start_s=0.0, duration_s=1.0, out=out)
    with av.open(str(out)) as c:
        s = c.streams.audio[0]
        assert s.codec_context.name == "ac3" and s.channels == 6
    with av.open(str(ac3_51)) as src, av.open(str(out)) as dst:
        first_src = bytes(next(p for p in src.demux(src.streams.audio[0]) if p.size))
        first_dst = bytes(next(p for p in dst.demux(dst.streams.audio[0]) if p.size))
    assert first_src == first_dst


def test_unknown_channel_layout_is_a_clear_error(ac3_51: Path, tmp_path: Path) -> None:
    with pytest.raises(MediaError, match=r"unknown channel layout '9\.1'") as err:
        remaster([(ac3_51, 1)], layout="9.1", start_frame=0, frames=10, frame_rate=RATE,
                 out=tmp_path / "x.wav")  # fmt: skip
    assert "5.1" in (err.value.hint or "")
    with pytest.raises(MediaError, match="unknown channel layout"):
        check_layout("22.2")
    assert source_layout(ac3_51, 1) == "5.1"
