"""The committed JSON schema is current, and the season example uses every feature and loads."""

from __future__ import annotations

import json
from pathlib import Path

from restoro.manifest.loader import load_manifest
from restoro.manifest.model import Manifest
from restoro.manifest.schema import manifest_json_schema, schema_text, write_schema
from restoro.stages import registry

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "schemas" / "restoro.schema.json"
EXAMPLE = REPO / "examples" / "ds9-season" / "restoro.yaml"


def test_committed_schema_is_current() -> None:
    assert SCHEMA.read_text(encoding="utf-8") == schema_text(), (
        "schemas/restoro.schema.json is stale: run `restoro schema` "
        "(or `python -m restoro.manifest.schema`) and commit the result"
    )


def test_schema_shape() -> None:
    schema = manifest_json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] == "restoro manifest"
    assert schema["required"] == ["restoro", "project"]
    defs = schema["$defs"]
    for stage_id in registry.all_stages():
        assert f"stage.{stage_id}" in defs
        assert "required" not in defs[f"stage.{stage_id}"]
    entry = defs["StageEntry"]
    assert set(entry["properties"]) == {"stage", "cache"}
    branches = {b["if"]["properties"]["stage"]["const"]: b["then"] for b in entry["allOf"]}
    assert set(branches["upscale"]["properties"]) == {
        "stage",
        "cache",
        "model",
        "scale",
        "tile",
        "tile_pad",
        "batch",
        "precision",
        "final",
    }
    assert branches["upscale"]["additionalProperties"] is False
    override_params = defs["Override"]["properties"]["params"]["properties"]
    assert override_params["upscale"] == {"$ref": "#/$defs/stage.upscale"}

    def described(node: object, where: str) -> None:
        if isinstance(node, dict):
            if "properties" in node:
                for key, prop in node["properties"].items():
                    assert "description" in prop or "$ref" in prop, f"{where}.{key}"
            for key, value in node.items():
                if key != "if":  # the stage selector of a StageEntry branch
                    described(value, f"{where}.{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                described(value, f"{where}[{i}]")

    described(schema, "schema")


def test_write_schema(tmp_path: Path) -> None:
    out = tmp_path / "sub" / "restoro.schema.json"
    write_schema(out)
    assert json.loads(out.read_text())["$id"].endswith("restoro.schema.json")
    assert out.read_text().endswith("}\n")


def test_season_example_loads_and_uses_every_feature() -> None:
    loaded = load_manifest(EXAMPLE)
    m = loaded.manifest
    assert m.project == "ds9-s01"
    assert len(m.sources) >= 3 and len(m.pipelines) >= 2 and len(m.titles) >= 2
    assert {d.kind for d in m.deliverables.values()} >= {"prores", "imf", "hls"}
    assert m.variants and m.qc.fidelity_min_psnr is not None
    overrides = [o for t in m.titles.values() for o in t.overrides]
    assert any(o.range and o.pipeline for o in overrides)
    assert any(o.shots and o.params for o in overrides)
    assert any(o.source and o.source_in is not None for o in overrides)
    assert any(o.tags for o in overrides)
    assert any(t.shots.cuts and t.shots.joins for t in m.titles.values())
    assert any(t.audio and t.captions and t.range for t in m.titles.values())
    assert any(e.cache for p in m.pipelines.values() for e in p)
    # Every field of every model is set somewhere with a non-default value or explicitly.
    seen: set[tuple[str, str]] = set()

    def walk(node: object) -> None:
        if isinstance(node, Manifest.__mro__[1]):  # any manifest model
            for name in node.model_fields_set:  # type: ignore[attr-defined]
                seen.add((type(node).__name__, name))
            for name in type(node).model_fields:
                walk(getattr(node, name))
        elif isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(m)
    missing = [
        f"{cls.__name__}.{name}"
        for cls in _models()
        for name in cls.model_fields
        if (cls.__name__, name) not in seen
    ]
    assert missing == []


def _models() -> list[type]:
    from restoro.manifest import model

    return [
        getattr(model, n)
        for n in (
            "Manifest",
            "Source",
            "StageEntry",
            "Title",
            "ShotsConfig",
            "Override",
            "AudioTrack",
            "CaptionTrack",
            "Variant",
            "ProresDeliverable",
            "ImfDeliverable",
            "StreamingDeliverable",
            "Rendition",
            "AudioRendition",
            "QcConfig",
        )
    ]
