"""SMPTE timecode arithmetic and manifest time positions."""

from __future__ import annotations

from fractions import Fraction

import pytest

from restoro.media.timecode import (
    check_syntax,
    frames_to_timecode,
    is_drop_frame,
    nominal_fps,
    parse_position,
    timecode_to_frames,
)

NTSC = Fraction(30000, 1001)
NTSC60 = Fraction(60000, 1001)
FILM = Fraction(24000, 1001)


@pytest.mark.parametrize(
    ("rate", "fps"),
    [
        (NTSC, 30),
        (FILM, 24),
        (NTSC60, 60),
        (Fraction(25), 25),
        (Fraction(24), 24),
        (Fraction(50), 50),
        (Fraction(120), 120),
    ],
)
def test_nominal_fps(rate: Fraction, fps: int) -> None:
    assert nominal_fps(rate) == fps


def test_nominal_fps_refuses_non_positive_rates() -> None:
    with pytest.raises(ValueError, match="positive"):
        nominal_fps(Fraction(0))


def test_drop_frame_round_trip_over_a_whole_hour_at_2997() -> None:
    frames_per_hour = 107892  # 30 * 3600 - 2 * 54 dropped per hour
    for n in range(frames_per_hour + 1):
        tc = frames_to_timecode(n, NTSC, drop_frame=True)
        assert timecode_to_frames(tc, NTSC) == n, tc
    assert frames_to_timecode(frames_per_hour, NTSC, True) == "01:00:00;00"


def test_drop_frame_round_trip_at_5994_around_minute_boundaries() -> None:
    per_10min = 60 * 600 - 4 * 9
    for base in (0, per_10min - 5, 60 * 60 - 4 - 3, 3 * per_10min + 60 * 60 - 4 - 2):
        for n in range(base, base + 10):
            assert timecode_to_frames(frames_to_timecode(n, NTSC60, True), NTSC60) == n
    assert frames_to_timecode(3600, NTSC60, True) == "00:01:00;04"
    assert frames_to_timecode(3599, NTSC60, True) == "00:00:59;59"


@pytest.mark.parametrize(
    ("n", "tc"),
    [
        (0, "00:00:00;00"),
        (1799, "00:00:59;29"),
        (1800, "00:01:00;02"),  # frames 00 and 01 of minute 1 are skipped
        (17981, "00:09:59;29"),
        (17982, "00:10:00;00"),  # every tenth minute keeps them
        (17982 + 1800, "00:11:00;02"),
        (107892, "01:00:00;00"),
    ],
)
def test_drop_frame_known_values(n: int, tc: str) -> None:
    assert frames_to_timecode(n, NTSC, drop_frame=True) == tc
    assert timecode_to_frames(tc, NTSC) == n


def test_non_drop_frame_counts_nominal_frames() -> None:
    assert timecode_to_frames("01:00:00:00", NTSC) == 108000
    assert timecode_to_frames("00:00:01:00", Fraction(25)) == 25
    assert timecode_to_frames("00:01:00:00", FILM) == 1440
    assert frames_to_timecode(108000, NTSC, drop_frame=False) == "01:00:00:00"
    for n in range(0, 90000, 7):
        assert timecode_to_frames(frames_to_timecode(n, Fraction(25), False), Fraction(25)) == n


def test_dot_is_drop_frame_too() -> None:
    assert is_drop_frame("01:00:00.00")
    assert is_drop_frame("01:00:00;00")
    assert not is_drop_frame("01:00:00:00")
    assert timecode_to_frames("01:00:00.00", NTSC) == 107892


def test_timecode_wraps_at_24_hours() -> None:
    assert frames_to_timecode(24 * 3600 * 25 + 3, Fraction(25), False) == "00:00:00:03"


@pytest.mark.parametrize(
    ("tc", "rate", "match"),
    [
        ("00:01:00;00", NTSC, "does not exist in drop-frame"),
        ("00:01:00;01", NTSC, "starts at 00:01:00;02"),
        ("00:01:00;03", NTSC60, "does not exist in drop-frame"),
        ("01:00:00;00", Fraction(25), "drop-frame timecode needs a 29.97 or 59.94"),
        ("01:00:00;00", FILM, "drop-frame timecode needs"),
        ("00:00:00:25", Fraction(25), "frames must be 00-24"),
        ("00:00:00:30", NTSC, "frames must be 00-29"),
        ("00:60:00:00", NTSC, "minutes and seconds 00-59"),
        ("24:00:00:00", NTSC, "hours must be 00-23"),
        ("1:00:00:00", NTSC, "expected HH:MM:SS:FF"),
    ],
)
def test_invalid_timecodes(tc: str, rate: Fraction, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        timecode_to_frames(tc, rate)


def test_frames_to_timecode_refuses_negative_and_non_df_rates() -> None:
    with pytest.raises(ValueError, match="negative"):
        frames_to_timecode(-1, NTSC, False)
    with pytest.raises(ValueError, match="29.97 or 59.94"):
        frames_to_timecode(10, Fraction(25), True)


def test_parse_position_forms() -> None:
    start = timecode_to_frames("01:00:00;00", NTSC)
    assert parse_position("01:00:00;00", NTSC, start_frame=start) == 0
    assert parse_position("01:00:01;00", NTSC, start_frame=start) == 30
    assert parse_position(1234, NTSC, start_frame=start) == 1234  # frames: from the start
    assert parse_position("1234", NTSC, start_frame=start) == 1234
    assert parse_position("12.5s", FILM) == 300  # 12.5 * 23.976 = 299.7 → 300
    assert parse_position("1s", Fraction(25)) == 25
    # An exact half rounds up: 0.02 s at 25 fps is half a frame.
    assert parse_position("0.02s", Fraction(25)) == 1
    assert parse_position("0.019s", Fraction(25)) == 0


def test_parse_position_errors() -> None:
    start = timecode_to_frames("01:00:00:00", Fraction(25))
    with pytest.raises(ValueError, match=r"before the source's first frame \(timecode 01:00:00:00"):
        parse_position("00:59:59:24", Fraction(25), start_frame=start)
    with pytest.raises(ValueError, match="negative"):
        parse_position(-5, Fraction(25))
    with pytest.raises(ValueError, match="invalid time position"):
        parse_position("soon", Fraction(25))
    with pytest.raises(ValueError, match="invalid time position"):
        parse_position(True, Fraction(25))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("01:00:00;00", True),
        ("01:00:00:00", True),
        ("01:00:00.29", True),
        (0, True),
        (100, True),
        ("12.5s", True),
        ("7s", True),
        ("100", True),
        (-1, False),
        ("1:30", False),
        ("12.5", False),
        ("00:01:00;00", False),
        ("00:10:00;00", True),
        ("00:00:60:00", False),
        (12.5, False),
        (None, False),
        (False, False),
    ],
)
def test_check_syntax(value: object, ok: bool) -> None:
    assert (check_syntax(value) is None) is ok
