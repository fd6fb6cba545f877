"""JSON Schemas (draft 2020-12) for the manifest kinds and workspace.toml, generated from the models.

The schemas are for editors (yaml-language-server, VS Code, JetBrains) and CI validators. They are
stricter than dkb in one respect: every object has `additionalProperties: false`, so an editor
flags a misspelt or obsolete field at once, while dkb itself only warns about unknown fields (it
keeps the contract's non-strict parsing). Required fields and enums mirror the lint errors.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import TypeAdapter

from dkbuild.config_model import WorkspaceConfig
from dkbuild.manifests.models import (
    API_VERSIONS,
    CLASSIFICATIONS,
    KINDS,
    MASKINGS,
    MODEL_OF_KIND,
    MODES,
    RUNTIMES,
    TRIGGER_POLICIES,
    AnyManifest,
)

DRAFT = "https://json-schema.org/draft/2020-12/schema"
BASE_URI = "https://dkbuild.dev/schemas/"
# Lint's name rule (contract §1.16, ManifestValidator): 1-63 of [a-z0-9-], no edge hyphen.
NAME_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
UNKNOWN_NOTE = ("Unknown fields are flagged here (additionalProperties: false) so editors catch typos; "
                "dkb itself only warns about them (W100), as DataKit's non-strict parsing ignores them.")

# (model title, field) -> allowed strings
ENUMS: dict[tuple[str, str], tuple[str, ...]] = {
    ("TransformSpec", "runtime"): RUNTIMES,
    ("TransformSpec", "mode"): MODES,
    ("Trigger", "policy"): TRIGGER_POLICIES,
    ("SubPolicy", "policy"): tuple(p for p in TRIGGER_POLICIES if p != "composite"),
    ("DataSetSpec", "classification"): CLASSIFICATIONS,
    ("SchemaField", "masking"): MASKINGS,
    ("Tool", "type"): ("exec", "config"),
    ("Tool", "format"): ("text", "file", "env"),
    ("Tool", "mode"): ("append", "overwrite"),
}
# model title -> required properties (each mirrors a lint error)
REQUIRED: dict[str, list[str]] = {
    "Metadata": ["name"],
    "TransformSpec": ["runtime", "inputs", "outputs"],
    "Trigger": ["policy"],
    "DataSetSpec": ["store"],
    "DataSetGroupSpec": ["store", "datasets"],
    "StoreSpec": ["connector", "connection"],
    "ConnectorSpec": ["type", "capabilities"],
}
DESCRIPTIONS = {
    "Transform": "A deployable package (dk.yaml): runtime, input and output DataSets, trigger.",
    "DataSet": "A data contract: where the data lives (store + table/prefix/topic), classification, schema.",
    "DataSetGroup": "Several DataSets materialised by one operation, in one Store.",
    "Store": "A named infrastructure instance: connector, connection, and ${VAR} secret references.",
    "Connector": "A technology type (postgres, s3, kafka ...) with capabilities and CloudQuery plugin images.",
}


def _walk(node: Any, fn: Any) -> None:
    if isinstance(node, dict):
        fn(node)
        for value in node.values():
            _walk(value, fn)
    elif isinstance(node, list):
        for value in node:
            _walk(value, fn)


def _close_objects(node: dict[str, Any]) -> None:
    """additionalProperties: false on every object with declared properties (maps keep theirs)."""
    if "properties" in node and node.get("additionalProperties", True) is True:
        node["additionalProperties"] = False


def _drop_empty_defaults(node: dict[str, Any]) -> None:
    if "default" in node and node["default"] in (None, ""):
        del node["default"]


def _string_branch(prop: dict[str, Any]) -> dict[str, Any]:
    for branch in prop.get("anyOf", []):
        if branch.get("type") == "string":
            return branch
    return prop


def _tune_manifest(schema: dict[str, Any]) -> dict[str, Any]:
    defs = schema.get("$defs", {})
    models = {d.get("title", name): d for name, d in defs.items()}
    models[schema.get("title", "")] = schema
    for (title, field), values in ENUMS.items():
        model = models.get(title)
        if model and field in model.get("properties", {}):
            _string_branch(model["properties"][field])["enum"] = list(values)
    for title, fields in REQUIRED.items():
        if title in models:
            models[title]["required"] = sorted(set(models[title].get("required", [])) | set(fields),
                                               key=list(models[title]["properties"]).index)
    if "Metadata" in models:
        _string_branch(models["Metadata"]["properties"]["name"])["pattern"] = NAME_PATTERN
    if "ConnectorSpec" in models:
        items = models["ConnectorSpec"]["properties"]["capabilities"].setdefault("items", {})
        items["enum"] = ["source", "destination"]
    if "DataSetRef" in models:         # exactly one of dataset / tags (lint E001/E002)
        models["DataSetRef"]["oneOf"] = [{"required": ["dataset"]}, {"required": ["tags"]}]
    for model in [schema, *defs.values()]:
        props = model.get("properties", {})
        if "apiVersion" in props:
            props["apiVersion"] = {"type": "string", "enum": list(API_VERSIONS), "title": "Apiversion"}
        if "kind" in props and "const" in props["kind"]:
            props["kind"] = {"type": "string", "const": props["kind"]["const"], "title": "Kind"}
        if "kind" in props and model.get("title") in KINDS:
            props["kind"] = {"type": "string", "const": model["title"], "title": "Kind"}
    _walk(schema, _close_objects)
    _walk(schema, _drop_empty_defaults)
    if "TransformSpec" in models:      # image is required for generic-* and dbt (lint E232); added
        models["TransformSpec"]["if"] = {  # after closing objects: the `if` must stay open
            "properties": {"runtime": {"enum": ["generic-go", "generic-python", "dbt"]}}, "required": ["runtime"]}
        models["TransformSpec"]["then"] = {"required": ["image"]}
    return schema


def file_name(kind: str) -> str:
    return f"{kind.lower()}.schema.json"


def kind_schema(kind: str) -> dict[str, Any]:
    if kind not in MODEL_OF_KIND:
        raise KeyError(kind)
    schema = _tune_manifest(copy.deepcopy(MODEL_OF_KIND[kind].model_json_schema(by_alias=True)))
    schema["required"] = ["apiVersion", "kind", "metadata", "spec"]
    return {"$schema": DRAFT, "$id": BASE_URI + file_name(kind), "title": f"DataKit {kind}",
            "description": f"{DESCRIPTIONS[kind]} {UNKNOWN_NOTE}",
            **{k: v for k, v in schema.items() if k not in ("title", "description")}}


def manifest_schema() -> dict[str, Any]:
    """dk.yaml (or any manifest file): one of the five kinds, chosen by `kind`."""
    schema = _tune_manifest(copy.deepcopy(TypeAdapter(AnyManifest).json_schema(by_alias=True)))
    defs = schema["$defs"]
    for kind in KINDS:
        defs[kind]["required"] = ["apiVersion", "kind", "metadata", "spec"]
        defs[kind]["description"] = DESCRIPTIONS[kind]
    return {"$schema": DRAFT, "$id": BASE_URI + "dk.schema.json", "title": "DataKit manifest",
            "description": "A DataKit manifest (dk.yaml, or a file in connector/, store/, dataset/, "
                           f"dataset-group/): exactly one of {', '.join(KINDS)}, selected by `kind`. "
                           + UNKNOWN_NOTE,
            "type": "object",
            "required": ["kind"],
            "properties": {"kind": {"type": "string", "enum": list(KINDS)}},
            "oneOf": [{"$ref": f"#/$defs/{kind}"} for kind in KINDS],
            "$defs": defs}


def workspace_schema() -> dict[str, Any]:
    schema = copy.deepcopy(WorkspaceConfig.model_json_schema())
    _walk(schema, _close_objects)
    return {"$schema": DRAFT, "$id": BASE_URI + "workspace.schema.json", "title": "dkb workspace.toml",
            "description": "dkb's workspace configuration (workspace.toml). Unknown keys are errors "
                           "in dkb too (E122). Every key is optional; see `dkb init --workspace` "
                           "for the defaults.",
            **{k: v for k, v in schema.items() if k not in ("title", "description")}}


def all_schemas() -> dict[str, dict[str, Any]]:
    """File name -> schema, for `dkb schema --output DIR`."""
    files = {file_name(kind): kind_schema(kind) for kind in KINDS}
    files["dk.schema.json"] = manifest_schema()
    files["workspace.schema.json"] = workspace_schema()
    return files
