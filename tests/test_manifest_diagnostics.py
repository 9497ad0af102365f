"""Manifest errors: exact rendered text, codes, positions, and all errors at once."""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

import pytest

from restoro.errors import ManifestError
from restoro.manifest.loader import load_manifest

if TYPE_CHECKING:
    from pathlib import Path

BASE = """\
restoro: 1
project: demo
sources:
  e01:
    path: media/e01.vob
    timecode: "01:00:00;00"
pipelines:
  film:
    - {stage: ingest, mode: ivtc}
    - {stage: upscale, model: lanczos, scale: 2}
titles:
  ep1:
    source: e01
    pipeline: film
    range: ["01:00:00;00", "01:20:00;00"]
deliverables:
  master: {kind: prores, raster: 1920x1080}
"""


@pytest.fixture
def errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Load a manifest text from ./restoro.yaml and return its rendered errors."""
    monkeypatch.chdir(tmp_path)

    def load(text: str) -> ManifestError:
        (tmp_path / "restoro.yaml").write_text(text, encoding="utf-8")
        from pathlib import Path

        with pytest.raises(ManifestError) as info:
            load_manifest(Path("restoro.yaml"))
        return info.value

    return load


def _pin(expected: str) -> str:
    return textwrap.dedent(expected).strip("\n")


def test_base_manifest_is_valid(tmp_path: Path) -> None:
    (tmp_path / "restoro.yaml").write_text(BASE)
    assert load_manifest(tmp_path / "restoro.yaml").manifest.project == "demo"


def test_malformed_yaml(errors) -> None:  # type: ignore[no-untyped-def]
    err = errors(BASE.replace("  film:\n", "  film:\n   - oops: [1, 2\n"))
    assert err.render() == _pin("""
        restoro.yaml:10:7: error[E201]: invalid YAML: expected ',' or ']', but got '{' (while parsing a flow sequence started on line 9)
          10 |     - {stage: ingest, mode: ivtc}
             |       ^
          hint: check the indentation and quoting around this line
    """)  # noqa: E501


def test_wrong_type(errors) -> None:  # type: ignore[no-untyped-def]
    err = errors(BASE.replace("scale: 2", "scale: 2, cache: 1"))
    assert err.render() == _pin("""
        restoro.yaml:10:57: error[E210]: cache: expected true or false, got the number 1
          10 |     - {stage: upscale, model: lanczos, scale: 2, cache: 1}
             |                                                         ^
          hint: Materialise a lossless per-shot intermediate after this stage (cache points also follow ingest and every GPU stage).
    """)  # noqa: E501


def test_unknown_key_with_did_you_mean(errors) -> None:  # type: ignore[no-untyped-def]
    err = errors(
        BASE.replace("    path: media/e01.vob\n", "    path: media/e01.vob\n    feild_order: tff\n")
    )
    assert err.render() == _pin("""
        restoro.yaml:6:5: error[E211]: unknown key 'feild_order'
          6 |     feild_order: tff
            |     ^
          hint: did you mean 'field_order'?
    """)  # noqa: E501


def test_missing_required_key_points_at_the_parent_key(errors) -> None:  # type: ignore[no-untyped-def]
    err = errors(BASE.replace("    path: media/e01.vob\n", ""))
    assert err.render() == _pin("""
        restoro.yaml:4:3: error[E212]: missing required key 'path'
          4 |   e01:
            |   ^
          hint: Path to the media file, relative to the manifest.
    """)  # noqa: E501


def test_bad_timecode(errors) -> None:  # type: ignore[no-untyped-def]
    err = errors(BASE.replace('"01:20:00;00"', '"01:21:00;01"'))
    assert err.render() == _pin("""
        restoro.yaml:15:28: error[E230]: timecode '01:21:00;01' does not exist in drop-frame counting: frames 00 and 01 are skipped at the start of each minute not divisible by 10
          15 |     range: ["01:00:00;00", "01:21:00;01"]
             |                            ^
          hint: the minute starts at 01:21:00;02 in drop-frame counting
    """)  # noqa: E501


def test_unknown_source(errors) -> None:  # type: ignore[no-untyped-def]
    err = errors(BASE.replace("source: e01", "source: e1"))
    assert err.render() == _pin("""
        restoro.yaml:13:13: error[E220]: unknown source 'e1'
          13 |     source: e1
             |             ^
          hint: did you mean 'e01'?
    """)  # noqa: E501


def test_bad_stage_param(errors) -> None:  # type: ignore[no-untyped-def]
    err = errors(BASE.replace("mode: ivtc", "mode: ivct"))
    assert err.render() == _pin("""
        restoro.yaml:9:29: error[E240]: invalid value 'ivct' for ingest.mode: expected one of auto, ivtc, deinterlace, progressive
          9 |     - {stage: ingest, mode: ivct}
            |                             ^
          hint: did you mean 'ivtc'?
    """)  # noqa: E501


def test_unknown_stage_param_and_unknown_stage(errors) -> None:  # type: ignore[no-untyped-def]
    err = errors(
        BASE.replace("scale: 2", "scael: 2") + "variants:\n  safe:\n    params: {upscael: {}}\n"
    )
    assert [d.render().splitlines()[0] for d in err.diagnostics] == [
        "restoro.yaml:10:40: error[E240]: unknown parameter 'scael' for stage upscale",
        "restoro.yaml:20:14: error[E220]: unknown stage 'upscael'",
    ]
    assert err.diagnostics[0].hint == "did you mean 'scale'?"
    assert err.diagnostics[1].hint == "did you mean 'upscale'?"


def test_all_errors_are_reported_at_once_in_file_order(errors) -> None:  # type: ignore[no-untyped-def]
    text = (
        BASE.replace("restoro: 1", "restoro: 2")
        .replace("path: media/e01.vob", "path: media/e01.vob\n    crop: [8, 0, -8, 0]")
        .replace("pipeline: film", "pipeline: flim")
        .replace("raster: 1920x1080", "raster: 1920x1081")
        + "  web: {kind: hls, ladder: [{codec: h265, height: 720, bitrate: 3M}]}\n"
        + "  imf: {kind: imf, raster: 3840x2160, titles: [ep2]}\n"
    )
    err = errors(text)
    heads = [(d.line, d.col, d.code, d.message) for d in err.diagnostics]
    assert heads == [
        (1, 10, "E210", "unsupported manifest version 2"),
        (6, 18, "E210", "crop: must be greater than or equal to 0 (got -8)"),
        (15, 15, "E220", "unknown pipeline 'flim'"),
        (
            18,
            34,
            "E210",
            "invalid raster '1920x1081': width and height must be even (4:2:x chroma)",
        ),
        (19, 37, "E210", "invalid value 'h265' for codec: expected one of hevc, h264, av1"),
        (20, 48, "E220", "unknown title 'ep2'"),
    ]
    assert err.render().count("error[") == 6
    assert err.message == "6 errors in the manifest"


def test_override_shape_errors(errors) -> None:  # type: ignore[no-untyped-def]
    text = BASE + textwrap.dedent("""\
        variants: {}
    """).replace("variants: {}\n", "")
    text = text.replace(
        '    range: ["01:00:00;00", "01:20:00;00"]\n',
        '    range: ["01:00:00;00", "01:20:00;00"]\n'
        "    overrides:\n"
        "      - {tags: [a]}\n"
        "      - {range: [100, 50], shots: [ep1@01:00:00;04]}\n"
        "      - {shots: [ep1@01:00:00;04], source_in: 5, source: e01}\n"
        "      - {shots: [ep2@01:00:00;04, 'ep1@1:00']}\n"
        "      - {range: [100, 50]}\n",
    )
    err = errors(text)
    assert [(d.line, d.code, d.message) for d in err.diagnostics] == [
        (17, "E210", "an override needs exactly one selector: range: or shots:"),
        (18, "E210", "an override needs exactly one selector: range: or shots:"),
        (19, "E210", "source_in needs source: and a range: selector"),
        (20, "E232", "shot 'ep2@01:00:00;04' belongs to title 'ep2', not 'ep1'"),
        (
            20,
            "E232",
            "invalid shot id 'ep1@1:00': expected <title>@<timecode>, e.g. emissary@01:12:30;04",
        ),
        (21, "E233", "range end 50 is not after its start 100"),
    ]


def test_shot_id_of_another_title(errors) -> None:  # type: ignore[no-untyped-def]
    text = BASE.replace(
        "deliverables:",
        "    overrides:\n      - {shots: [ep2@01:00:00;04], tags: [x]}\ndeliverables:",
    )
    err = errors(text)
    (diag,) = err.diagnostics
    assert (diag.code, diag.message) == (
        "E232",
        "shot 'ep2@01:00:00;04' belongs to title 'ep2', not 'ep1'",
    )


def test_pipeline_shape(errors) -> None:  # type: ignore[no-untyped-def]
    text = BASE.replace(
        "titles:",
        "  empty: []\n  noingest:\n    - {stage: upscale}\n    - {stage: ingest}\ntitles:",
    )
    err = errors(text)
    assert [(d.line, d.code, d.message) for d in err.diagnostics] == [
        (11, "E241", "pipeline 'empty' is empty"),
        (13, "E241", "pipeline 'noingest' must start with the ingest stage, not 'upscale'"),
        (14, "E241", "ingest may only be the first stage of a pipeline"),
    ]


def test_title_and_deliverable_names_must_differ(errors) -> None:  # type: ignore[no-untyped-def]
    err = errors(BASE + "  ep1: {kind: imf, raster: 3840x2160}\n")
    (diag,) = err.diagnostics
    assert (diag.line, diag.col, diag.code) == (18, 3, "E221")


def test_invalid_names(errors) -> None:  # type: ignore[no-untyped-def]
    err = errors(BASE.replace("  ep1:", "  ep 1:"))
    assert (err.diagnostics[0].line, err.diagnostics[0].col) == (12, 3)
    assert err.diagnostics[0].message.startswith("invalid name 'ep 1'")


def test_deliverable_kind(errors) -> None:  # type: ignore[no-untyped-def]
    err = errors(BASE.replace("kind: prores", "kind: proress"))
    (diag,) = err.diagnostics
    assert (
        diag.message == "unknown deliverable kind 'proress': expected one of prores, imf, hls, dash"
    )
    assert diag.hint == "did you mean 'prores'?"
