"""Value types of the manifest: names, time positions, rates, rasters, bitrates, tags.

Each is an ``Annotated`` type whose validator raises a ``PydanticCustomError`` with a message
written for people; ``diagnostics`` shows it as is (``timecode`` errors get code E230,
``shot_id`` errors E232).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, PlainValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

from restoro.media.frames import MAX_SIDE
from restoro.media.timecode import check_syntax

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_SMPTE_PATTERN = r"^\d{2}:\d{2}:\d{2}[:;.]\d{2,3}$"
_POSITION_PATTERN = r"^(\d{2}:\d{2}:\d{2}[:;.]\d{2,3}|\d+(\.\d+)?s|\d+)$"
_RATE_RE = re.compile(r"^[1-9]\d*(/[1-9]\d*)?$")
_RASTER_RE = re.compile(r"^(\d+)x(\d+)$")
_BITRATE_RE = re.compile(r"^\d+(\.\d+)?[kKM]?$")
_RATIO_RE = re.compile(r"^\d+(\.\d+)?(:\d+(\.\d+)?)?$")
_LANGUAGE_RE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")
_DIGEST_RE = re.compile(r"^xxh128:[0-9a-f]{32}$")


def fail(kind: str, message: str) -> PydanticCustomError:
    """A validation error whose message is shown as is (user text is never a template)."""
    return PydanticCustomError(kind, "{message}", {"message": message})


def _check_name(value: str) -> str:
    if not _NAME_RE.match(value):
        raise fail(
            "name",
            f"invalid name {value!r}: use letters, digits, '.', '_' and '-', starting with a "
            "letter or digit",
        )
    return value


def _check_position(value: object) -> int | str:
    problem = check_syntax(value)
    if problem:
        raise fail("timecode", problem)
    assert isinstance(value, int | str)
    return value


def _check_smpte(value: object) -> str:
    if not isinstance(value, str) or not re.match(_SMPTE_PATTERN, value):
        raise fail(
            "timecode",
            f"invalid timecode {value!r}: expected HH:MM:SS:FF, or HH:MM:SS;FF for drop-frame",
        )
    problem = check_syntax(value)
    if problem:
        raise fail("timecode", problem)
    return value


def _check_shot_id(value: object) -> str:
    if isinstance(value, str) and "@" in value:
        title, _, tc = value.partition("@")
        if _NAME_RE.match(title) and re.match(_SMPTE_PATTERN, tc) and not check_syntax(tc):
            return value
    raise fail(
        "shot_id",
        f"invalid shot id {value!r}: expected <title>@<timecode>, e.g. emissary@01:12:30;04",
    )


def _to_text(value: object) -> object:
    """YAML reads ``5.1``, ``4444`` and ``25`` as numbers; these fields mean them as text."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


def _pattern(regex: re.Pattern[str], what: str, example: str) -> AfterValidator:
    def check(value: str) -> str:
        if not regex.match(value):
            raise fail("format", f"invalid {what} {value!r}: expected e.g. {example}")
        return value

    return AfterValidator(check)


MAX_RATE = 1000
"""Highest frame rate (fps) a manifest may ask for."""


def _check_rate(value: str) -> str:
    if not _RATE_RE.match(value):
        raise fail(
            "format",
            f"invalid frame rate {value!r}: expected a rational like 24000/1001 or an integer "
            "like 25",
        )
    num, _, den = value.partition("/")
    if int(num) > MAX_RATE * int(den or 1):
        raise fail("format", f"invalid frame rate {value!r}: at most {MAX_RATE} fps")
    return value


def _check_raster(value: str) -> str:
    m = _RASTER_RE.match(value)
    if not m or int(m.group(1)) == 0 or int(m.group(2)) == 0:
        raise fail("format", f"invalid raster {value!r}: expected WIDTHxHEIGHT, e.g. 3840x2160")
    if max(int(m.group(1)), int(m.group(2))) > MAX_SIDE:
        raise fail(
            "format",
            f"invalid raster {value!r}: width and height are at most {MAX_SIDE} (8K)",
        )
    if int(m.group(1)) % 2 or int(m.group(2)) % 2:
        raise fail(
            "format", f"invalid raster {value!r}: width and height must be even (4:2:x chroma)"
        )
    return value


Name = Annotated[str, AfterValidator(_check_name)]
Position = Annotated[
    int | str,
    PlainValidator(_check_position),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 0},
                {"type": "string", "pattern": _POSITION_PATTERN},
            ],
            "description": "A time position: a frame number from the source's first frame, "
            'source timecode HH:MM:SS:FF (HH:MM:SS;FF drop-frame), or seconds like "12.5s".',
        }
    ),
]
Range = Annotated[list[Position], Field(min_length=2, max_length=2)]
Smpte = Annotated[
    str,
    PlainValidator(_check_smpte),
    WithJsonSchema({"type": "string", "pattern": _SMPTE_PATTERN}),
]
ShotId = Annotated[
    str,
    PlainValidator(_check_shot_id),
    WithJsonSchema({"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9._-]*@.+$"}),
]
FrameRate = Annotated[
    str,
    BeforeValidator(_to_text),
    AfterValidator(_check_rate),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": _RATE_RE.pattern},
                {"type": "integer", "minimum": 1},
            ]
        }
    ),
]
Raster = Annotated[
    str, AfterValidator(_check_raster), WithJsonSchema({"type": "string", "pattern": r"^\d+x\d+$"})
]
Bitrate = Annotated[
    str,
    BeforeValidator(_to_text),
    _pattern(_BITRATE_RE, "bitrate", "16M or 160k"),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": _BITRATE_RE.pattern},
                {"type": "integer", "minimum": 1},
            ]
        }
    ),
]
Language = Annotated[str, _pattern(_LANGUAGE_RE, "language tag", "en, fr-CA")]
StageParamsMap = dict[str, dict[str, Any]]
Slug = Name
Digest = Annotated[str, _pattern(_DIGEST_RE, "digest", "xxh128:0123456789abcdef0123456789abcdef")]
Aspect = Annotated[
    str, BeforeValidator(_to_text), _pattern(_RATIO_RE, "aspect ratio", "4:3 or 1.85")
]
AsText = BeforeValidator(_to_text)
