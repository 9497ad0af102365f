"""The manifest's JSON schema, generated from the models, for editors (YAML language servers).

Stage entries are written inline (``{stage: upscale, model: lanczos}``), so the generated
pydantic schema is adjusted: each registered stage's params are described under
``$defs/stage.<id>`` and selected by the value of ``stage``; the params maps of overrides and
variants name their stages the same way (all keys optional there: they merge onto a pipeline).

The committed ``schemas/restoro.schema.json`` is this output; regenerate it with
``restoro schema`` (or ``python -m restoro.manifest.schema``) whenever a model or stage changes.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

from restoro.manifest.model import Manifest
from restoro.stages import registry

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_ID = "https://restoro.dev/schemas/restoro.schema.json"


def _stage_defs(defs: dict[str, Any]) -> dict[str, list[str]]:
    """Add ``stage.<id>`` (required keys dropped) to ``defs``; return each id's required keys."""
    required = {}
    for stage_id, cls in registry.all_stages().items():
        schema = cls.Params.model_json_schema(ref_template="#/$defs/{model}")
        for name, sub in schema.pop("$defs", {}).items():
            if defs.setdefault(name, sub) != sub:
                raise ValueError(f"stage {stage_id!r}: conflicting schema definition {name!r}")
        doc = sys.modules[cls.__module__].__doc__ or f"the {stage_id} stage"
        schema["description"] = "Params of " + doc.strip().splitlines()[0]
        required[stage_id] = sorted(schema.pop("required", []))
        defs[f"stage.{stage_id}"] = schema
    return required


def _params_map(ids: list[str], description: str) -> dict[str, Any]:
    props = {stage_id: {"$ref": f"#/$defs/stage.{stage_id}"} for stage_id in ids}
    return {
        "type": "object",
        "description": description,
        "properties": props,
        "additionalProperties": {"type": "object"},
    }


def manifest_json_schema() -> dict[str, Any]:
    """The JSON schema of manifest v1, with every registered stage's params."""
    schema = Manifest.model_json_schema()
    defs: dict[str, Any] = schema.setdefault("$defs", {})
    required = _stage_defs(defs)
    ids = list(required)

    entry = defs["StageEntry"]
    fixed = {k: v for k, v in entry["properties"].items() if k != "params"}
    entry["properties"] = fixed
    entry["additionalProperties"] = True
    entry["description"] = (
        "One stage of a pipeline: {stage: ID, cache: bool, ...params}; the other keys are the "
        "stage's params."
    )
    entry["allOf"] = []
    for stage_id in ids:
        params = copy.deepcopy(defs[f"stage.{stage_id}"])
        entry["allOf"].append(
            {
                "if": {"properties": {"stage": {"const": stage_id}}, "required": ["stage"]},
                "then": {
                    "properties": {**fixed, **params.get("properties", {})},
                    "required": sorted({"stage", *required[stage_id]}),
                    "additionalProperties": False,
                },
            }
        )
    for model in ("Override", "Variant"):
        prop = defs[model]["properties"]["params"]
        defs[model]["properties"]["params"] = {
            **_params_map(ids, prop.get("description", "")),
            "default": prop.get("default", {}),
        }
    return {
        "$schema": SCHEMA_DIALECT,
        "$id": SCHEMA_ID,
        **schema,
        "title": "restoro manifest",
        "description": "restoro.yaml, manifest version 1: sources, pipelines, titles, "
        "variants, deliverables and QC thresholds of a restoration project.",
    }


def schema_text() -> str:
    """The schema as committed: indented, sorted keys, one trailing newline."""
    return json.dumps(manifest_json_schema(), indent=2, sort_keys=True) + "\n"


def write_schema(path: Path) -> None:
    """Write the schema to ``path`` (``schemas/restoro.schema.json`` in the repository)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(schema_text(), encoding="utf-8")


if __name__ == "__main__":
    write_schema(Path(sys.argv[1] if len(sys.argv) > 1 else "schemas/restoro.schema.json"))
