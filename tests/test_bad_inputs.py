"""Every bad input is refused before any work, with a message that says where and what to do.

Each case plants one defect in a small valid project (manifest, media, side files, model files
or command-line arguments) and runs the real ``restoro`` entry point. It must exit 2 (invalid
input), name the manifest file with line and column of the bad value (or the argument), give a
hint, show no traceback and no internal error (E999), and leave the project tree — the store
and ``out/`` included — exactly as it was. Plan-time defects (side files, streams, crops,
rasters, models, devices) are refused by ``validate``, ``plan`` and ``build`` alike.

The few cases only a build can reveal (a full disk, a cut VOB) are at the end, marked slow.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import subprocess
import sys
import wave
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

from restoro.cli.app import main

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

BASE = """\
restoro: 1
project: bad
sources:
  tape:
    path: media/source.mkv
pipelines:
  main:
    - {stage: ingest, mode: progressive}
    - {stage: upscale, model: bicubic, scale: 2}
titles:
  ep1:
    source: tape
    pipeline: main
    shots: {detector: content, threshold: 27, min_frames: 4}
deliverables:
  master: {kind: prores, profile: 422hq, raster: 128x96, fit: pillarbox}
"""
TITLE_END = "min_frames: 4}\n"
SRT = "1\n00:00:00,100 --> 00:00:00,300\nHello\n"
SCC_GOOD = "Scenarist_SCC V1.0\n\n00:00:00:10\t9420 9420 94ae 94ae c8e5 ecec ef80 942f 942f\n"
SCC_BAD = SCC_GOOD.replace("00:00:00:10", "99:99:99:99")


def _bomb() -> str:
    """A "billion laughs": 10 levels of 9 aliases, 9**10 (3.5e9) strings when expanded."""
    text = 'l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n'
    for i in range(1, 10):
        text += f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]\n"
    return text


@dataclass
class Case:
    """One planted defect.

    ``edits``: (old, new) replacements in BASE (or ``manifest`` for the whole text);
    ``files``: extra files (relative path → text, bytes, or a callable writing it);
    ``args``: the command (``{m}`` is the manifest path); ``at``: text in the final manifest
    whose position the message must name (``None``: ``arg`` or ``file_only`` instead);
    ``says``: a regex the message must match.
    """

    id: str
    says: str
    args: tuple[str, ...] = ("validate", "-f", "{m}")
    edits: tuple[tuple[str, str], ...] = ()
    manifest: str | bytes | None = None
    files: dict[str, Any] = field(default_factory=dict)
    needs_torch: bool = False
    """Reading the planted model file takes PyTorch and spandrel (the ai extra)."""
    at: str | None = None
    arg: str | None = None
    file_only: bool = False
    """The message names the manifest file (line 1, column 1): it cannot be parsed."""
    rc: int = 2
    setup: Callable[[Path], None] | None = None
    marks: tuple[Any, ...] = ()


def title(extra: str) -> tuple[tuple[str, str], ...]:
    """Edits adding ``extra`` (indented lines) to title ep1."""
    return ((TITLE_END, TITLE_END + extra),)


def src(extra: str) -> tuple[tuple[str, str], ...]:
    return (("    path: media/source.mkv\n", "    path: media/source.mkv\n" + extra),)


V, P, B = ("validate", "-f", "{m}"), ("plan", "-f", "{m}"), ("build", "-f", "{m}")
VPB = {"validate": V, "plan": P, "build": B}

MANIFEST_CASES = [
    Case(
        "yaml-syntax",
        r"invalid YAML: mapping values are not allowed here",
        edits=(("pipeline: main", "pipeline: main: x"),),
        at=": x",
    ),
    Case(
        "yaml-tab",
        r"invalid YAML",
        edits=(("    pipeline: main", "\tpipeline: main"),),
        at="\tpipeline",
    ),
    Case(
        "duplicate-key",
        r"duplicate key 'source'",
        edits=title("    source: tape  # again\n"),
        at="source: tape  # again",
    ),
    Case("unknown-top-key", r"unknown key 'colour'", manifest=BASE + "colour: red\n", at="colour"),
    Case(
        "missing-project",
        r"missing required key 'project'",
        edits=(("project: bad\n", ""),),
        at="restoro: 1",
    ),
    Case(
        "version-2",
        r"unsupported manifest version 2",
        edits=(("restoro: 1", "restoro: 2"),),
        at="2\nproject",
    ),
    Case("empty-manifest", r"the manifest is empty", manifest="", file_only=True),
    Case("list-manifest", r"must be a mapping", manifest="- a\n- b\n", file_only=True),
    Case(
        "not-utf8",
        r"cannot read the manifest",
        manifest=b"restoro: 1\nproject: \xff\xfe\n",
        file_only=True,
    ),
    Case(
        "python-tag",
        r"unsupported YAML tag",
        edits=(("project: bad", "project: !!python/object:os.system bad"),),
        at="!!python",
    ),
    Case("alias-bomb", r"expands to more than 100000 values", manifest=BASE + _bomb(), at="&l5 ["),
    Case("recursive-alias", r"nests too deeply", manifest=BASE + "x: &x [*x]\n", at="&x [*x]"),
    Case(
        "too-many-aliases",
        r"more than 1000 aliases",
        manifest=BASE + "a: &a 1\nb: [" + ", ".join(["*a"] * 1001) + "]\n",
        at="*a]",
    ),
    Case(
        "threshold-1e999",
        r"threshold: expected a finite number, got inf",
        edits=(("threshold: 27", "threshold: 1e999"),),
        at="1e999",
    ),
    Case(
        "threshold-nan",
        r"threshold: expected a finite number, got nan",
        edits=(("threshold: 27", "threshold: .nan"),),
        at=".nan",
    ),
    Case(
        "loudness-minus-inf",
        r"loudness: expected a finite number",
        edits=title("    audio: [{loudness: -.inf}]\n"),
        at="-.inf",
    ),
    Case(
        "scale-string",
        r"upscale\.scale: expected an integer, got the string '2'",
        edits=(("scale: 2}", 'scale: "2"}'),),
        at='"2"',
    ),
    Case(
        "threshold-string",
        r"threshold: expected a number, got the string '27'",
        edits=(("threshold: 27", 'threshold: "27"'),),
        at='"27"',
    ),
    Case(
        "cache-yes",
        r"cache: expected true or false",
        edits=(("scale: 2}", "scale: 2, cache: yes}"),),
        at="yes}",
    ),
    Case(
        "min-frames-float",
        r"min_frames: expected an integer",
        edits=(("min_frames: 4", "min_frames: 4.5"),),
        at="4.5",
    ),
    Case(
        "unknown-stage",
        r"unknown stage 'upscal'",
        edits=(("stage: upscale", "stage: upscal"),),
        at="upscal,",
    ),
    Case(
        "unknown-stage-param",
        r"unknown parameter 'scal'",
        edits=(("scale: 2}", "scal: 2}"),),
        at="scal: 2",
    ),
    Case(
        "scale-17",
        r"upscale\.scale: must be less than or equal to 16",
        edits=(("scale: 2}", "scale: 17}"),),
        at="17}",
    ),
    Case(
        "empty-pipeline",
        r"pipeline 'main' is empty",
        edits=(
            (
                "  main:\n    - {stage: ingest, mode: progressive}\n    - {stage: upscale, "
                "model: bicubic, scale: 2}\n",
                "  main: []\n",
            ),
        ),
        at="main: []",
    ),
    Case(
        "pipeline-without-ingest",
        r"must start with the ingest stage",
        edits=(("    - {stage: ingest, mode: progressive}\n", ""),),
        at="upscale, model",
    ),
    Case(
        "unknown-source",
        r"unknown source 'tap'",
        edits=(("    source: tape", "    source: tap"),),
        at="tap\n",
    ),
    Case(
        "unknown-pipeline",
        r"unknown pipeline 'mian'",
        edits=(("pipeline: main", "pipeline: mian"),),
        at="mian",
    ),
    Case(
        "bad-timecode",
        r"frame|timecode",
        edits=title("    range: ['00:00:00:00', '00:00:00:99']\n"),
        at="'00:00:00:99'",
    ),
    Case(
        "range-order",
        r"range end .* is not after its start",
        edits=title("    range: [10, 2]\n"),
        at="2]",
    ),
    Case("invalid-name", r"invalid name 'ep 1'", edits=(("  ep1:", "  ep 1:"),), at="ep 1"),
    Case("raster-odd", r"must be even", edits=(("128x96", "127x96"),), at="127x96"),
    Case(
        "raster-99980001-pixels", r"at most 8192", edits=(("128x96", "9999x9999"),), at="9999x9999"
    ),
    Case(
        "raster-99999998-pixels",
        r"at most 8192",
        edits=(("128x96", "49999999x2"),),
        at="49999999x2",
    ),
    Case("raster-zero", r"invalid raster", edits=(("128x96", "128x0"),), at="128x0"),
    Case(
        "rendition-height",
        r"height: must be less than or equal to 8192",
        manifest=BASE + "  web: {kind: hls, ladder: [{codec: h264, height: 99999, bitrate: 1M}]}\n",
        at="99999",
    ),
    Case(
        "bad-bitrate",
        r"invalid bitrate '16Q'",
        manifest=BASE + "  web: {kind: hls, ladder: [{codec: h264, height: 96, bitrate: 16Q}]}\n",
        at="16Q",
    ),
    Case(
        "bad-language",
        r"invalid language tag",
        edits=title("    audio: [{language: english!}]\n"),
        at="english!",
    ),
    Case("bad-digest", r"invalid digest", edits=src("    digest: xxh128:abc\n"), at="xxh128:abc"),
    Case(
        "override-two-selectors",
        r"exactly one selector",
        edits=title("    overrides:\n      - {range: [0, 4], shots: ['ep1@00:00:00:00']}\n"),
        at="{range",
    ),
    Case(
        "source-in-without-source",
        r"source_in needs source",
        edits=title("    overrides:\n      - {range: [0, 4], source_in: 3}\n"),
        at="{range",
    ),
    Case(
        "unknown-deliverable-kind",
        r"unknown deliverable kind 'proress'",
        edits=(("kind: prores", "kind: proress"),),
        at="proress",
    ),
    Case(
        "deliverable-unknown-title",
        r"unknown title 'ep2'",
        edits=(("fit: pillarbox}", "fit: pillarbox, titles: [ep2]}"),),
        at="ep2]",
    ),
    Case(
        "title-listed-twice",
        r"title 'ep1' is listed twice",
        edits=(("fit: pillarbox}", "fit: pillarbox, titles: [ep1, ep1]}"),),
        at="ep1]}",
    ),
    Case(
        "name-clash",
        r"names both a title and a deliverable",
        edits=(("  master: {kind", "  ep1: {kind"),),
        at="ep1: {kind",
    ),
    Case(
        "negative-crop",
        r"crop: must be greater than or equal to 0",
        edits=src("    crop: [0, -2, 0, 0]\n"),
        at="-2",
    ),
    Case(
        "crop-three",
        r"crop: expected exactly 4 items, got 3",
        edits=src("    crop: [0, 2, 0]\n"),
        at="[0, 2, 0]",
    ),
    Case(
        "segment-zero",
        r"segment_seconds: must be greater than 0",
        manifest=BASE + "  web: {kind: hls, segment_seconds: 0, ladder: [{codec: h264, "
        "height: 96, bitrate: 1M}]}\n",
        at="0, ladder",
    ),
    Case(
        "qc-skip-unknown",
        r"invalid value 'bandng'",
        manifest=BASE + "qc: {skip: [bandng]}\n",
        at="bandng",
    ),
    Case(
        "issue-date",
        r"issue_date",
        manifest=BASE + "  imf: {kind: imf, raster: 1920x1080, issue_date: yesterday}\n",
        at="yesterday",
    ),
    Case(
        "unknown-model-name",
        r"upscale: unknown model 'realesrgan-x5'",
        edits=(("model: bicubic", "model: realesrgan-x5"),),
        at="realesrgan-x5",
    ),
    Case(
        "audio-offset-huge",
        r"offset_ms: must be less than or equal to 86400000",
        edits=title("    audio: [{offset_ms: 100000000000000000000000000000}]\n"),
        at="100000000000000000000000000000",
    ),
    Case(
        "caption-offset-huge",
        r"offset_ms: must be greater than or equal to -86400000",
        edits=title("    captions: [{path: a.srt, offset_ms: -99999999999}]\n"),
        at="-99999999999",
    ),
    Case(
        "frame-rate-huge",
        r"at most 1000 fps",
        edits=title("    frame_rate: 100000000000000000000000/1\n"),
        at="1000000",
    ),
    Case(
        "upscale-final-huge",
        r"final must be at most 8192",
        edits=(("scale: 2}", "scale: 2, final: 99999x2}"),),
        at="99999x2",
    ),
    Case(
        "nesting-too-deep",
        r"nests too deeply",
        manifest=BASE + "x: " + "[" * 70 + "]" * 70 + "\n",
        at="[" * 6 + "]",
    ),
    Case(
        "integer-key", r"key '1' is the number 1, not a name", manifest=BASE + "1: x\n", at="1: x"
    ),
    Case("null-key", r"key '~' is null, not a name", edits=(("  ep1:", "  ~:"),), at="~:"),
    Case(
        "sources-a-list",
        r"sources: expected a mapping, got a list",
        edits=(("sources:\n  tape:\n    path: media/source.mkv\n", "sources: [a]\n"),),
        at="[a]",
    ),
    Case(
        "project-null",
        r"project: expected a string, got null",
        edits=(("project: bad", "project:"),),
        at="\nsources",
    ),
]


def _wav(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\x00\x00" * 800)


def _cut(fraction: float) -> Callable[[Path], None]:
    def cut(root: Path) -> None:
        p = root / "media" / "source.mkv"
        data = p.read_bytes()
        p.write_bytes(data[: int(len(data) * fraction)])

    return cut


def _torch_file(kind: str) -> Callable[[Path], None]:
    def write(root: Path) -> None:
        import collections

        import torch

        if kind == "pickle":  # more than tensors: torch's weights-only loader refuses it
            torch.save({"w": collections.OrderedDict(a=print)}, root / "models" / "m.pth")
        else:  # tensors of no architecture spandrel knows
            torch.save({"w": torch.zeros(3)}, root / "models" / "m.pth")

    return write


MEDIA_CASES = [
    Case(
        "source-missing",
        r"source 'tape': media/nope\.mkv does not exist",
        edits=(("media/source.mkv", "media/nope.mkv"),),
        at="media/nope.mkv",
    ),
    Case(
        "source-empty",
        r"is empty",
        files={"media/empty.mkv": b""},
        edits=(("media/source.mkv", "media/empty.mkv"),),
        at="media/empty.mkv",
    ),
    Case(
        "source-is-directory",
        r"it is a directory",
        files={"media/dir.mkv/x": "x"},
        edits=(("media/source.mkv", "media/dir.mkv"),),
        at="media/dir.mkv",
    ),
    Case(
        "source-not-media",
        r"not a media file",
        files={"media/notes.mkv": "hello\n" * 50},
        edits=(("media/source.mkv", "media/notes.mkv"),),
        at="media/notes.mkv",
    ),
    Case(
        "source-audio-only",
        r"no video stream",
        files={"media/tone.wav": _wav},
        edits=(("media/source.mkv", "media/tone.wav"),),
        at="media/tone.wav",
    ),
    Case("source-truncated", r"truncated|damaged", setup=_cut(0.6), at="media/source.mkv"),
    Case(
        "digest-mismatch",
        r"but the manifest pins",
        edits=src("    digest: xxh128:0123456789abcdef0123456789abcdef\n"),
        at="media/source.mkv",
    ),
    Case(
        "cut-outside-title",
        r"cut 99999 is outside the title",
        edits=(("min_frames: 4}", "min_frames: 4, cuts: [99999]}"),),
        at="99999",
    ),
    Case(
        "audio-stream-is-video",
        r"source 'tape' has no audio stream 0",
        edits=title("    audio: [{stream: 0}]\n"),
        at="0}]",
    ),
    Case(
        "audio-stems-missing",
        r"stem media/left\.wav does not exist",
        files={"media/right.wav": _wav},
        edits=title("    audio: [{stems: [media/left.wav, media/right.wav]}]\n"),
        at="media/left.wav",
    ),
    Case(
        "caption-empty",
        r"no captions found",
        files={"cc/empty.srt": ""},
        edits=title("    captions: [{path: cc/empty.srt}]\n"),
        at="cc/empty.srt",
    ),
    Case(
        "caption-directory",
        r"caption file cc does not exist \(it is a directory\)",
        files={"cc/x.srt": SRT},
        edits=title("    captions: [{path: cc}]\n"),
        at="cc}",
    ),
    Case(
        "caption-unknown-format",
        r"unknown caption format",
        files={"cc/a.txt": "hi\n"},
        edits=title("    captions: [{path: cc/a.txt}]\n"),
        at="cc/a.txt",
    ),
    Case(
        "caption-not-utf8",
        r"cannot read caption file",
        files={"cc/a.srt": b"\xff\xfe\x00a"},
        edits=title("    captions: [{path: cc/a.srt}]\n"),
        at="cc/a.srt",
    ),
    Case(
        "stems-count",
        r"3 stems for the 2 channels of a stereo track",
        files={"a.wav": _wav, "b.wav": _wav, "c.wav": _wav},
        edits=title("    audio: [{stems: [a.wav, b.wav, c.wav]}]\n"),
        at="[a.wav",
    ),
    Case(
        "stem-not-mono",
        r"stem st\.mkv has 2 channels, not one mono channel",
        files={"b.wav": _wav},
        setup=lambda r: shutil.copy(r / "media/source.mkv", r / "st.mkv"),
        edits=title("    audio: [{stems: [st.mkv, b.wav]}]\n"),
        at="st.mkv",
    ),
    Case(
        "stem-not-media",
        r"stem t\.wav is not an audio file",
        files={"t.wav": "text\n" * 40, "b.wav": _wav},
        edits=title("    audio: [{stems: [t.wav, b.wav]}]\n"),
        at="t.wav",
    ),
    Case(
        "loudness-7-1",
        r"loudness target for a 7\.1 track is not supported",
        edits=title("    audio: [{layout: '7.1', loudness: -23}]\n"),
        at="-23",
    ),
    Case(
        "imf-2e-raster",
        r"IMF App 2E does not allow a 640x480 raster",
        manifest=BASE + "  imf: {kind: imf, raster: 640x480}\n",
        at="640x480",
    ),
    Case(
        "imf-supplemental-missing",
        r"no ASSETMAP\.xml in old/ep1",
        manifest=BASE + "  imf: {kind: imf, raster: 1920x1080, supplemental_to: old}\n",
        at="old}",
        args=P,
    ),
    Case(
        "imf-supplemental-garbage",
        r"old/ep1/ASSETMAP\.xml is not readable XML",
        files={"old/ep1/ASSETMAP.xml": "<AssetMap><Id>"},
        manifest=BASE + "  imf: {kind: imf, raster: 1920x1080, supplemental_to: old}\n",
        at="old}",
        args=P,
    ),
    Case(
        "rendition-track-missing",
        r"audio rendition 0 encodes track 3, but title 'ep1' has 1",
        manifest=BASE + "  web: {kind: hls, ladder: [{codec: h264, height: 96, bitrate: 1M}], "
        "audio: [{codec: aac, channels: 2, bitrate: 96k, track: 3}]}\n",
        at="3}]",
    ),
    Case(
        "rendition-channels",
        r"asks for 6 channels of the stereo track 0",
        edits=title("    audio: [{stream: 1}]\n"),
        manifest=BASE + "  web: {kind: hls, ladder: [{codec: h264, height: 96, bitrate: 1M}], "
        "audio: [{codec: aac, channels: 6, bitrate: 96k}]}\n",
        at="6, bitrate: 96k",
    ),
    Case(
        "passthrough-pcm",
        r"passthrough, which needs an AC-3 or E-AC-3 stream; stream 1 of "
        r"source 'tape' is pcm_s16le",
        manifest=BASE + "  web: {kind: hls, ladder: [{codec: "
        "h264, height: 96, bitrate: 1M}], audio: [{codec: ac3, channels: 2, bitrate: 96k, "
        "passthrough: true}]}\n",
        at="true}",
    ),
    Case(
        "model-is-directory",
        r"model file models/ does not exist \(it is a directory\)",
        files={"models/x": "x"},
        edits=(("model: bicubic", "model: models/"),),
        at="models/,",
    ),
    Case(
        "model-text-file",
        r"models/m\.pth is not a model file",
        files={"models/m.pth": "not a model\n"},
        edits=(("model: bicubic", "model: models/m.pth"),),
        at="models/m.pth",
        needs_torch=True,
    ),
    Case(
        "model-pickle",
        r"models/m\.pth is not a model file .*weights only",
        setup=_torch_file("pickle"),
        files={"models/.keep": ""},
        edits=(("model: bicubic", "model: models/m.pth"),),
        at="models/m.pth",
        needs_torch=True,
    ),
    Case(
        "model-unknown-architecture",
        r"spandrel does not recognise",
        setup=_torch_file("tensors"),
        files={"models/.keep": ""},
        edits=(("model: bicubic", "model: models/m.pth"),),
        at="models/m.pth",
        needs_torch=True,
    ),
]

# Defects only the probed media or side files reveal: refused by validate, plan and build.
PLAN_TIME = [
    (
        "crop-larger-than-frame",
        r"removes the whole 64x48 picture",
        {},
        src("    crop: [40, 0, 40, 0]\n"),
        "[40, 0, 40, 0]",
    ),
    (
        "audio-stream-missing",
        r"source 'tape' has no audio stream 7",
        {},
        title("    audio: [{stream: 7}]\n"),
        "7}]",
    ),
    (
        "caption-missing",
        r"caption file cc/nope\.srt does not exist",
        {},
        title("    captions: [{path: cc/nope.srt}]\n"),
        "cc/nope.srt",
    ),
    (
        "caption-garbage-srt",
        r"cc/bad\.srt: not a readable SRT caption file",
        {"cc/bad.srt": "this is\nnot subtitles\n"},
        title("    captions: [{path: cc/bad.srt}]\n"),
        "cc/bad.srt",
    ),
    (
        "caption-scc-99-timecodes",
        r"cc/bad\.scc:3: invalid SCC timecode '99:99:99:99'",
        {"cc/bad.scc": SCC_BAD},
        title("    captions: [{path: cc/bad.scc}]\n"),
        "cc/bad.scc",
    ),
    (
        "model-missing",
        r"model file models/x4\.pth does not exist",
        {},
        (("model: bicubic", "model: models/x4.pth"),),
        "models/x4.pth",
    ),
    (
        "model-in-override-missing",
        r"model file models/x2\.pth does not exist",
        {},
        title(
            "    overrides:\n      - {range: [0, 6], params: {upscale: {model: models/x2.pth}}}\n"
        ),
        "models/x2.pth",
    ),
]
for _id, _says, _files, _edits, _at in PLAN_TIME:
    for _cmd, _args in VPB.items():
        MEDIA_CASES.append(
            Case(f"{_id}-{_cmd}", _says, args=_args, files=dict(_files), edits=_edits, at=_at)
        )


def _out_is_file(root: Path) -> None:
    (root / "out").write_text("not a folder\n")


def _out_parent_is_file(root: Path) -> None:
    (root / "deliver").write_text("not a folder\n")


def _cuda_count() -> int:
    try:
        import torch
    except ImportError:
        return 0
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _no_cuda() -> pytest.MarkDecorator:
    return pytest.mark.skipif(_cuda_count() > 0, reason="this machine has a CUDA device")


ARG_CASES = [
    Case(
        "lock-timeout-negative",
        r"--lock-timeout -5: expected seconds, 0 or more",
        args=("build", "-f", "{m}", "--lock-timeout", "-5"),
        arg="--lock-timeout",
    ),
    Case(
        "lock-timeout-nan",
        r"--lock-timeout nan",
        args=("build", "-f", "{m}", "--lock-timeout", "nan"),
        arg="--lock-timeout",
    ),
    Case(
        "device-cuda-9-build",
        r"--device cuda:9: no such device",
        args=("build", "-f", "{m}", "--device", "cuda:9"),
        arg="--device",
        marks=(pytest.mark.skipif(_cuda_count() > 9, reason="has 10 GPUs"),),
    ),
    Case(
        "device-cuda-9-plan",
        r"--device cuda:9: no such device",
        args=("plan", "-f", "{m}", "--device", "cuda:9"),
        arg="--device",
        marks=(pytest.mark.skipif(_cuda_count() > 9, reason="has 10 GPUs"),),
    ),
    Case(
        "device-cuda-without-gpu",
        r"--device cuda: no such device \(this machine has 0",
        args=("build", "-f", "{m}", "--device", "cuda"),
        arg="--device",
        marks=(_no_cuda(),),
    ),
    Case(
        "device-unknown",
        r"unknown device 'tpu'",
        args=("build", "-f", "{m}", "--device", "tpu"),
        arg="tpu",
    ),
    Case("jobs-zero", r"--jobs", args=("build", "-f", "{m}", "--jobs", "0"), arg="--jobs"),
    Case(
        "jobs-not-a-number", r"--jobs", args=("build", "-f", "{m}", "--jobs", "many"), arg="--jobs"
    ),
    Case(
        "unknown-option",
        r"No such option: --fast",
        args=("build", "-f", "{m}", "--fast"),
        arg="--fast",
    ),
    Case(
        "unknown-target",
        r"unknown target 'mastre'",
        args=("build", "-f", "{m}", "mastre"),
        arg="mastre",
    ),
    Case(
        "unknown-variant",
        r"unknown variant 'review'",
        args=("plan", "-f", "{m}", "--variant", "review"),
        arg="review",
    ),
    Case(
        "unknown-executor",
        r"unknown executor 'slurm'",
        args=("build", "-f", "{m}", "--executor", "slurm"),
        arg="slurm",
    ),
    Case(
        "store-scheme",
        r"unknown store URL scheme 'weird'",
        args=("build", "-f", "{m}", "--store", "weird://x"),
        arg="weird://x",
    ),
    Case(
        "manifest-missing",
        r"no manifest at",
        args=("validate", "-f", "{root}/nope.yaml"),
        arg="nope.yaml",
    ),
    Case(
        "probe-missing-file",
        r"source not found",
        args=("probe", "{root}/media/nope.mkv"),
        arg="media/nope.mkv",
    ),
    Case(
        "captions-check-scc-99",
        r"bad\.scc:3: invalid SCC timecode",
        args=("captions", "check", "{root}/bad.scc"),
        files={"bad.scc": SCC_BAD},
        arg="bad.scc",
    ),
    Case(
        "captions-check-garbage",
        r"not a readable SRT",
        args=("captions", "check", "{root}/bad.srt"),
        files={"bad.srt": "x\ny\n"},
        arg="bad.srt",
    ),
    Case("init-over-manifest", r"already exists", args=("init", "{root}"), arg="restoro.yaml"),
    Case(
        "output-is-a-file",
        r"cannot create the output folder .*out/master: .*out is a file",
        args=B,
        setup=_out_is_file,
        at="restoro: 1",
    ),
    Case(
        "output-parent-is-a-file",
        r"deliver is a file",
        args=B,
        setup=_out_parent_is_file,
        manifest=BASE.replace("project: bad\n", "project: bad\noutput: deliver/out\n"),
        at="deliver/out",
    ),
]

ALL = MANIFEST_CASES + MEDIA_CASES + ARG_CASES


def _tree(root: Path) -> dict[str, tuple[bool, int, int]]:
    out = {}
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        out[str(p.relative_to(root))] = (p.is_dir(), st.st_size, st.st_mtime_ns)
    return out


def _position(text: str, needle: str) -> tuple[int, int]:
    i = text.index(needle)
    line = text.count("\n", 0, i) + 1
    return line, i - (text.rfind("\n", 0, i) + 1) + 1


@pytest.fixture(scope="session")
def tiny_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """64x48, two shots of 6 frames, stereo PCM, FFV1 in Matroska: made once per session."""
    from restoro.testing.synth import make_source

    return make_source(
        tmp_path_factory.mktemp("bad-inputs") / "source.mkv",
        width=64, height=48, shots=2, shot_frames=6, audio_channels=2, codec="ffv1", sar="1:1",
    )  # fmt: skip


def _project(root: Path, source: Path, case: Case) -> Path:
    (root / "media").mkdir(parents=True)
    shutil.copy(source, root / "media" / "source.mkv")
    text: str | bytes = case.manifest if case.manifest is not None else BASE
    for old, new in case.edits:
        assert isinstance(text, str) and old in text, (case.id, old)
        text = text.replace(old, new, 1)
    manifest = root / "restoro.yaml"
    if isinstance(text, bytes):
        manifest.write_bytes(text)
    else:
        manifest.write_text(text, encoding="utf-8")
    for rel, content in case.files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if callable(content):
            content(p)
        elif isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content, encoding="utf-8")
    if case.setup is not None:
        case.setup(root)
    return manifest


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """The real entry point in-process (``main`` maps errors to exit statuses)."""
    capsys.readouterr()
    rc = main(args)
    out, err = capsys.readouterr()
    return rc, out, err


def _check(case: Case, root: Path, manifest: Path, rc: int, out: str, err: str) -> None:
    both = out + err
    assert rc == case.rc, f"{case.id}: exit {rc}\n{both}"
    assert "Traceback" not in both and "E999" not in both, both
    assert re.search(case.says, err), f"{case.id}: {case.says!r} not in\n{err}"
    assert re.search(r"^\s*hint: \S", err, re.M), f"{case.id}: no hint\n{err}"
    if case.at is not None:
        text = manifest.read_text(encoding="utf-8")
        line, col = _position(text, case.at)
        assert f"{manifest}:{line}:{col}:" in err, f"{case.id}: not at {line}:{col}\n{err}"
    elif case.file_only:
        assert f"{manifest}:1:1:" in err, err
    else:
        assert case.arg is not None and case.arg in err, f"{case.id}: {case.arg!r}\n{err}"


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=c.marks) for c in ALL])
def test_bad_input_is_refused_before_work(
    case: Case, tmp_path: Path, tiny_source: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if case.needs_torch:
        pytest.importorskip("torch")
        pytest.importorskip("spandrel")
    root = tmp_path / "project"
    manifest = _project(root, tiny_source, case)
    before = _tree(root)
    args = [a.format(m=manifest, root=root) for a in case.args]
    rc, out, err = run_cli(args, capsys)
    _check(case, root, manifest, rc, out, err)
    assert _tree(root) == before, f"{case.id}: the project tree changed"
    assert not (root / ".restoro").exists() and not (root / "out").is_dir()


def test_the_same_project_with_valid_side_files_validates(
    tmp_path: Path, tiny_source: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The control: crops, streams, captions (SCC and SRT) that are fine pass every check."""
    case = Case(
        "valid",
        "",
        files={"cc/a.scc": SCC_GOOD, "cc/b.srt": SRT},
        edits=src("    crop: [8, 2, 8, 2]\n")
        + title("    audio: [{stream: 1}]\n    captions: [{path: cc/a.scc}, {path: cc/b.srt}]\n"),
    )
    root = tmp_path / "project"
    manifest = _project(root, tiny_source, case)
    for command in ("validate", "plan"):
        rc, out, err = run_cli([command, "-f", str(manifest)], capsys)
        assert rc == 0, out + err
        assert "error" not in err and "warning" not in err, err


def test_a_supplemental_package_is_checked_only_when_built(
    tmp_path: Path, tiny_source: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """validate, and a build of another deliverable, do not need the earlier package yet."""
    extra = "  sup: {kind: imf, raster: 1920x1080, supplemental_to: old}\n"
    root = tmp_path / "project"
    manifest = _project(root, tiny_source, Case("sup", "", manifest=BASE + extra))
    assert run_cli(["validate", "-f", str(manifest)], capsys)[0] == 0
    assert run_cli(["plan", "-f", str(manifest), "master"], capsys)[0] == 0
    rc, _out, err = run_cli(["plan", "-f", str(manifest), "sup"], capsys)
    assert rc == 2 and "no ASSETMAP.xml in old/ep1" in err, err


def test_the_suite_covers_sixty_cases() -> None:
    assert len(ALL) >= 60 and len({c.id for c in ALL}) == len(ALL)


def test_the_model_messages_name_the_manifest_path_not_the_store(
    tmp_path: Path, tiny_source: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A pickle torch refuses: named as the manifest names it, without torch's advice to
    load it with weights_only=False (arbitrary code)."""
    pytest.importorskip("torch")
    pytest.importorskip("spandrel")
    case = next(c for c in MEDIA_CASES if c.id == "model-pickle")
    root = tmp_path / "p"
    manifest = _project(root, tiny_source, case)
    rc, _out, err = run_cli(["plan", "-f", str(manifest)], capsys)
    assert rc == 2
    assert "weights_only" not in err and "arbitrary code" not in err, err
    assert ".restoro" not in err and "cas/" not in err, err


def test_a_model_file_without_the_ai_extra_says_what_to_install(
    tmp_path: Path,
    tiny_source: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without PyTorch and spandrel a model file is refused at plan time, naming the extra."""
    monkeypatch.setitem(sys.modules, "spandrel", None)  # import spandrel → ImportError
    case = Case(
        "model-no-ai-extra",
        r"models/m\.pth: model files need PyTorch and spandrel",
        files={"models/m.pth": b"PK\x03\x04 stands in for a torch archive"},
        edits=(("model: bicubic", "model: models/m.pth"),),
        at="models/m.pth",
    )
    root = tmp_path / "p"
    manifest = _project(root, tiny_source, case)
    before = _tree(root)
    rc, out, err = run_cli(["plan", "-f", str(manifest)], capsys)
    _check(case, root, manifest, rc, out, err)
    assert "restoro[ai]" in err, err
    assert _tree(root) == before


@pytest.fixture
def read_only_dir() -> Iterator[Callable[[Path], None]]:
    """Makes a folder unwritable even for root (chattr +i), or by its mode for other users."""
    made: list[Path] = []

    def make(path: Path) -> None:
        if os.geteuid() != 0:
            path.chmod(0o555)
        elif subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode:
            pytest.skip("chattr +i is not supported here")
        made.append(path)

    yield make
    for p in made:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(p)], check=False)
        p.chmod(0o755)


def test_read_only_output_folder_is_refused_before_any_work(
    tmp_path: Path,
    tiny_source: Path,
    capsys: pytest.CaptureFixture[str],
    read_only_dir: Callable[[Path], None],
) -> None:
    case = Case("read-only-out", r"cannot write in the output folder .*out", args=B,
                at="restoro: 1")  # fmt: skip
    root = tmp_path / "project"
    manifest = _project(root, tiny_source, case)
    (root / "out").mkdir()
    read_only_dir(root / "out")
    before = _tree(root)
    rc, out, err = run_cli(["build", "-f", str(manifest)], capsys)
    case.at = None
    case.arg = str(root / "out")
    _check(case, root, manifest, rc, out, err)
    assert f"{manifest}:1:1:" in err  # no output: key: the manifest's first line
    assert _tree(root) == before
    assert not (root / ".restoro").exists()


# -- full disks ---------------------------------------------------------------------------------


def test_ffmpeg_on_a_full_disk_says_so_with_the_path() -> None:
    """A real ffmpeg writing to /dev/full (ENOSPC on every write)."""
    from restoro.errors import ToolError
    from restoro.media.ffmpeg import run_ffmpeg

    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    with pytest.raises(ToolError) as info:
        run_ffmpeg(["-f", "lavfi", "-i", "testsrc=size=64x48:rate=25", "-frames:v", "25",
                    "-c:v", "rawvideo", "-f", "rawvideo", "/dev/full"])  # fmt: skip
    assert "no space left on device writing /dev/full" in info.value.message
    assert "exit status" not in info.value.message and info.value.hint


def test_an_oserror_for_a_full_disk_is_reported_with_its_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """ENOSPC raised while writing (here: the schema file) is E510 with the path, exit 1."""
    import restoro.manifest.schema as schema

    target = tmp_path / "s.json"

    def full(path: Path) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(schema, "write_schema", full)
    rc, _out, err = run_cli(["schema", "-o", str(target)], capsys)
    assert rc == 1, err
    assert f"error[E510]: no space left on device writing {target}" in err
    assert "hint:" in err and "E999" not in err and "Traceback" not in err


def test_an_action_on_a_full_disk_fails_saying_so(
    tmp_path: Path,
    tiny_source: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ENOSPC injected where actions commit their outputs to the store: the build exits 1
    and the failed action's message says the disk is full and which file it was writing."""
    from restoro.engine.store import Store

    def full(self: Store, tmp: Path, **_kw: Any) -> Any:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp))

    monkeypatch.setattr(Store, "put_file", full)
    root = tmp_path / "project"
    manifest = _project(root, tiny_source, Case("full", ""))
    rc, _out, err = run_cli(["build", "-f", str(manifest), "ep1"], capsys)
    assert rc == 1, err
    assert re.search(r"ingest/0: no space left on device writing \S+\.restoro/tmp/", err), err
    assert "hint:" in err and "E999" not in err and "Traceback" not in err


@pytest.mark.slow
def test_build_on_a_full_disk_fails_naming_the_path(tmp_path: Path, tiny_source: Path) -> None:
    """The store on a 256 KiB tmpfs: the build fails (exit 1) saying the disk is full and
    where (an ffmpeg output or the state db, whichever fills it first)."""
    from buildkit import cli

    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    case = Case("full", "")
    root = tmp_path / "project"
    manifest = _project(root, tiny_source, case)
    store = tmp_path / "store"
    store.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(store)], capture_output=True
    )
    if mounted.returncode:
        pytest.skip(f"cannot mount a tmpfs: {mounted.stderr.decode().strip()}")
    try:  # in a subprocess: its open store files close with it, so the tmpfs unmounts
        proc = cli("build", "-f", str(manifest), "--store", str(store))
    finally:
        if subprocess.run(["umount", str(store)], capture_output=True).returncode:
            subprocess.run(["umount", "-l", str(store)], check=False)
    rc, out, err = proc.returncode, proc.stdout, proc.stderr
    assert rc == 1, out + err
    assert "no space left on device" in err.lower(), err
    assert str(store) in err, err
    assert "E999" not in err and "Traceback" not in err and "exit status 228" not in err


# -- a cut VOB builds, with a warning ----------------------------------------------------------


@pytest.mark.slow
def test_truncated_vob_builds_with_a_warning_event(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from restoro.testing.synth import make_source

    vob = make_source(tmp_path / "whole.vob", width=64, height=48, shots=2, shot_frames=12,
                      audio_channels=2, codec="mpeg2video", sar="1:1")  # fmt: skip
    root = tmp_path / "project"
    (root / "media").mkdir(parents=True)
    data = vob.read_bytes()
    (root / "media" / "cut.vob").write_bytes(data[: len(data) * 3 // 5 + 7])
    manifest = root / "restoro.yaml"
    manifest.write_text(
        BASE.replace("media/source.mkv", "media/cut.vob").replace(
            "    - {stage: upscale, model: bicubic, scale: 2}\n", ""
        ),
        encoding="utf-8",
    )
    rc, _out, err = run_cli(["validate", "-f", str(manifest)], capsys)
    assert rc == 0 and "cut.vob looks truncated" in err, err
    rc, out, err = run_cli(["build", "-f", str(manifest), "--json", "--no-qc"], capsys)
    assert rc == 0, err
    events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    warnings = [e for e in events if e["event"] == "warning"]
    assert any("cut.vob looks truncated" in w["message"] for w in warnings), warnings
    assert (root / "out" / "master").is_dir()
    # The whole file probes clean: the warning is about the cut, not about VOBs.
    shutil.copy(vob, root / "media" / "cut.vob")
    rc, _out, err = run_cli(["validate", "-f", str(manifest)], capsys)
    assert rc == 0 and "truncated" not in err, err


def test_validate_hashes_an_unchanged_model_file_once_when_there_is_a_store(
    tmp_path: Path,
    tiny_source: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With a store, preflight digests a model file through its stat cache: a second
    ``validate`` of the unchanged file hashes nothing; a file changed to the wrong scale is
    hashed again and refused (exit 2, named as the manifest names it)."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("spandrel")
    from safetensors.torch import save_file
    from spandrel.architectures.Compact import Compact

    import restoro.engine.keys as keys
    import restoro.engine.state as state
    from restoro.engine.store import Store

    def save(scale: int, path: Path) -> None:
        torch.manual_seed(scale)
        m = Compact(num_in_ch=3, num_out_ch=3, num_feat=8, num_conv=2, upscale=scale)
        save_file({k: v.contiguous() for k, v in m.state_dict().items()}, str(path))

    case = Case("model-ok", "", edits=(("model: bicubic", "model: models/m.safetensors"),))
    root = tmp_path / "p"
    manifest = _project(root, tiny_source, case)
    (root / "models").mkdir()
    model = root / "models" / "m.safetensors"
    save(2, model)
    store = Store(root / ".restoro")  # a project that has built before: its stat cache
    assert store.state is not None
    store.close()
    hashed: list[str] = []

    def counting(path: Path | str) -> str:
        if str(path).endswith("m.safetensors"):
            hashed.append(str(path))
        with open(path, "rb") as f:
            return keys.digest_stream(f)[0]

    # The file was just written: without this the stat cache would not trust it for 2 s.
    monkeypatch.setattr(state.StateDB, "racy_window_ns", 0)
    monkeypatch.setattr(keys, "digest_file", counting)
    monkeypatch.setattr(state, "digest_file", counting)
    for _ in range(2):
        rc, out, err = run_cli(["validate", "-f", str(manifest)], capsys)
        assert rc == 0, out + err
    assert len(hashed) == 1, hashed
    save(4, model)
    rc, _out, err = run_cli(["validate", "-f", str(manifest)], capsys)
    assert rc == 2 and "models/m.safetensors is a x4 Compact model" in err, err
    assert len(hashed) == 2, hashed
