"""Per-shot resolution (pipeline → overrides in order → variant), cuts, spans and shot ids."""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING

import pytest

from restoro.errors import InputError, UsageError
from restoro.manifest.loader import LoadedManifest, load_manifest
from restoro.manifest.resolve import forced_cuts, joins, resolve_shot, shot_id, title_span
from restoro.manifest.validate import SourceFacts

if TYPE_CHECKING:
    from pathlib import Path

NTSC = Fraction(30000, 1001)
HOUR_DF = 107892  # 01:00:00;00 in absolute frames

TEXT = """\
restoro: 1
project: demo
sources:
  e01: {path: e01.vob, timecode: "01:00:00;00"}
  fix: {path: fix.mov, timecode: "00:00:00;00"}
  fix2: {path: fix2.mov, timecode: "01:00:00;00"}
pipelines:
  film:
    - {stage: ingest, mode: ivtc}
    - {stage: upscale, model: realesrgan-x4plus, scale: 4, cache: true}
  vfx:
    - {stage: ingest, mode: deinterlace}
    - {stage: upscale, model: lanczos}
titles:
  ep:
    source: e01
    pipeline: film
    range: [100, 5000]
    shots: {cuts: ["01:00:10;00"], joins: [700, "01:00:30;00"]}
    overrides:
      - range: [1000, 2000]
        tags: [vfx, a]
        pipeline: vfx
      - range: [1000, 1500]
        params: {upscale: {scale: 2}, ingest: {method: yadif}}
        tags: [a, b]
      - shots: ["ep@01:00:03;10"]
        params: {upscale: {model: bicubic}, ingest: {}}
      - range: [2000, 2500]
        params: {upscale: {scale: 3}}
      - range: [2000, 2500]
        pipeline: vfx
      - range: [3000, 3100]
        source: fix
        source_in: "00:00:10;00"
      - range: [4000, 4100]
        source: fix2
  whole:
    source: fix
    pipeline: vfx
variants:
  safe: {params: {upscale: {model: lanczos}}}
deliverables: {}
"""

FACTS = {
    "e01": SourceFacts(NTSC, 10000, HOUR_DF, drop_frame=True),
    "fix": SourceFacts(NTSC, 1000, 0, drop_frame=True),
    "fix2": SourceFacts(NTSC, 10000, HOUR_DF, drop_frame=True),
}


@pytest.fixture
def loaded(tmp_path: Path) -> LoadedManifest:
    path = tmp_path / "restoro.yaml"
    path.write_text(TEXT, encoding="utf-8")
    return load_manifest(path)


def _shot(
    loaded: LoadedManifest, start: int, end: int, variant: str | None = None, sid: str | None = None
):  # type: ignore[no-untyped-def]
    return resolve_shot(
        loaded.manifest,
        "ep",
        shot_id=sid or shot_id("ep", start, FACTS["e01"]),
        start=start,
        end=end,
        facts=FACTS,
        variant=variant,
    )


UPSCALE_KEYS = {"model", "scale"}  # the fields these manifests set (the rest are defaults)


def _params(shot) -> list[tuple[str, dict[str, object], bool]]:  # type: ignore[no-untyped-def]
    return [
        (
            s.stage,
            s.params.model_dump(include=UPSCALE_KEYS if s.stage == "upscale" else None),
            s.cache,
        )
        for s in shot.stages
    ]


def test_title_pipeline_with_defaults_filled(loaded: LoadedManifest) -> None:
    shot = _shot(loaded, 500, 700)
    assert shot.pipeline == "film"
    assert _params(shot) == [
        (
            "ingest",
            {
                "mode": "ivtc",
                "method": "bwdif",
                "rate": "frame",
                "gamut": "keep",
                "convert": "decimate",
            },
            False,
        ),
        ("upscale", {"model": "realesrgan-x4plus", "scale": 4}, True),
    ]
    assert (shot.tags, shot.source, shot.source_in) == ((), "e01", None)


def test_overrides_apply_in_order_and_tags_accumulate(loaded: LoadedManifest) -> None:
    shot = _shot(loaded, 1000, 1200)
    assert shot.pipeline == "vfx"
    assert _params(shot) == [
        (
            "ingest",
            {
                "mode": "deinterlace",
                "method": "yadif",
                "rate": "frame",
                "gamut": "keep",
                "convert": "decimate",
            },
            False,
        ),
        ("upscale", {"model": "lanczos", "scale": 2}, False),
    ]
    assert shot.tags == ("vfx", "a", "b")
    # Only inside the second range: the first still applies, the second does not.
    later = _shot(loaded, 1500, 2000)
    assert later.tags == ("vfx", "a")
    assert later.stages[1].params.model_dump(include=UPSCALE_KEYS) == {
        "model": "lanczos",
        "scale": 4,
    }


def test_a_shot_straddling_a_range_is_not_selected(loaded: LoadedManifest) -> None:
    assert _shot(loaded, 900, 1100).pipeline == "film"


def test_a_later_pipeline_override_drops_earlier_params(loaded: LoadedManifest) -> None:
    shot = _shot(loaded, 2000, 2500)
    assert shot.pipeline == "vfx"
    assert shot.stages[1].params.model_dump(include=UPSCALE_KEYS) == {
        "model": "lanczos",
        "scale": 4,
    }


def test_shot_override_and_variant_win_last(loaded: LoadedManifest) -> None:
    sid = shot_id("ep", 100, FACTS["e01"])
    assert sid == "ep@01:00:03;10"
    shot = _shot(loaded, 100, 300)
    assert shot.stages[1].params.model_dump(include=UPSCALE_KEYS) == {
        "model": "bicubic",
        "scale": 4,
    }
    safe = _shot(loaded, 100, 300, variant="safe")
    assert safe.stages[1].params.model_dump(include=UPSCALE_KEYS) == {
        "model": "lanczos",
        "scale": 4,
    }
    assert safe.stages[1].cache is True


def test_unknown_variant_is_a_usage_error(loaded: LoadedManifest) -> None:
    with pytest.raises(UsageError) as info:
        _shot(loaded, 100, 300, variant="saef")
    assert info.value.hint == "did you mean 'safe'?"


def test_conform_source_in(loaded: LoadedManifest) -> None:
    first = _shot(loaded, 3000, 3050)
    assert (first.source, first.source_in) == ("fix", 300)
    second = _shot(loaded, 3050, 3100)
    assert (second.source, second.source_in) == ("fix", 350)
    # Without source_in the element is read at the same timecode.
    same_tc = _shot(loaded, 4010, 4100)
    assert (same_tc.source, same_tc.source_in) == ("fix2", 4010)


def test_params_of_stages_not_in_the_chain_are_ignored(tmp_path: Path) -> None:
    path = tmp_path / "restoro.yaml"
    text = (
        TEXT.replace("ingest: {}", "ingest: {mode: progressive}")
        .replace("pipelines:\n", "pipelines:\n  plain:\n    - {stage: ingest}\n")
        .replace("    pipeline: film\n    range", "    pipeline: plain\n    range")
    )
    path.write_text(text, encoding="utf-8")
    shot = resolve_shot(
        load_manifest(path).manifest,
        "ep",
        shot_id="ep@01:00:03;10",
        start=100,
        end=300,
        facts=FACTS,
        variant="safe",
    )
    assert [s.stage for s in shot.stages] == ["ingest"]
    assert shot.stages[0].params.model_dump()["mode"] == "progressive"


def test_invalid_merged_params_raise_input_error(loaded: LoadedManifest) -> None:
    bad = loaded.manifest.model_copy(deep=True)
    bad.titles["ep"].overrides[1].params["upscale"]["scale"] = 99
    with pytest.raises(InputError, match="invalid params for stage 'upscale'"):
        resolve_shot(bad, "ep", shot_id="x", start=1000, end=1100, facts=FACTS, variant=None)


def test_forced_cuts_joins_and_span(loaded: LoadedManifest) -> None:
    m = loaded.manifest
    assert title_span(m, "ep", FACTS) == (100, 5000)
    assert title_span(m, "whole", FACTS) == (0, 1000)
    assert forced_cuts(m, "ep", FACTS) == [300, 1000, 1500, 2000, 2500, 3000, 3100, 4000, 4100]
    assert joins(m, "ep", FACTS) == [700, 900]
    assert forced_cuts(m, "whole", FACTS) == []


def test_shot_ids_use_source_timecode() -> None:
    pal = SourceFacts(Fraction(25), 1000, 90000)
    assert shot_id("t", 0, pal) == "t@01:00:00:00"
    assert shot_id("t", 26, pal) == "t@01:00:01:01"
    ntsc = SourceFacts(NTSC, 1000, 0)
    assert shot_id("t", 1800, ntsc, drop_frame=True) == "t@00:01:00;02"
    assert shot_id("t", 1800, ntsc) == "t@00:01:00:00"


def test_validated_stages_are_shared_between_shots_but_never_confused(
    loaded: LoadedManifest,
) -> None:
    """Shots with the same raw chain share one validated (frozen) stage; params that differ
    only in type (2, 2.0, true) are validated on their own, so strictness is kept."""
    a, b = _shot(loaded, 500, 700), _shot(loaded, 700, 900)
    assert a.stages[1] is b.stages[1] and a.stages[1].params.scale == 4
    for bad in (2.0, True, "2"):  # planted after 2 was validated and remembered
        m = loaded.manifest.model_copy(deep=True)
        m.titles["ep"].overrides[1].params["upscale"]["scale"] = 2
        ok = resolve_shot(m, "ep", shot_id="x", start=1000, end=1100, facts=FACTS, variant=None)
        assert ok.stages[1].params.scale == 2
        m.titles["ep"].overrides[1].params["upscale"]["scale"] = bad
        with pytest.raises(InputError, match="invalid params for stage 'upscale'"):
            resolve_shot(m, "ep", shot_id="x", start=1000, end=1100, facts=FACTS, variant=None)


def test_shots_no_override_selects_share_the_title_chain_resolved_once(
    loaded: LoadedManifest,
) -> None:
    """The planner resolves a title's chain once for all the shots no override selects; a
    selected shot, a variant and another manifest are resolved on their own."""
    a, b = _shot(loaded, 500, 700), _shot(loaded, 700, 900)
    assert a is b and a.pipeline == "film" and a.tags == ()
    picked = _shot(loaded, 1000, 1200)  # selected by the overrides after plain shots resolved
    assert picked.pipeline == "vfx" and picked.tags == ("vfx", "a", "b")
    assert _shot(loaded, 500, 700) is a
    safe = _shot(loaded, 500, 700, variant="safe")
    assert safe is not a and safe.stages[1].params.model == "lanczos"
    assert a.stages[1].params.model == "realesrgan-x4plus"
    other = loaded.manifest.model_copy(deep=True)
    other.pipelines["film"][1].params["scale"] = 2
    again = resolve_shot(other, "ep", shot_id="x", start=500, end=700, facts=FACTS, variant=None)
    assert again is not a and again.stages[1].params.scale == 2
    with pytest.raises(UsageError, match="unknown variant"):
        _shot(loaded, 500, 700, variant="nope")
