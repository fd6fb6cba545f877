"""Structural models of the five DataKit kinds (contract §1).

The models check *shape and types* only. Required fields and allowed values are checked by lint
rules, so that each problem gets its own stable code and message (contract §2.2). Unknown fields
are kept (extra="allow") and reported by `unknown_fields`, never silently dropped.
"""

from __future__ import annotations

from typing import Any, Iterator, Literal, Union, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

API_GROUP = "datakit.infoblox.dev"
API_VERSIONS = (f"{API_GROUP}/v1alpha1", f"{API_GROUP}/v1beta1", f"{API_GROUP}/v1")
KINDS = ("Connector", "Store", "DataSet", "DataSetGroup", "Transform")
RUNTIMES = ("cloudquery", "generic-go", "generic-python", "dbt")
MODES = ("batch", "streaming")
CLASSIFICATIONS = ("public", "internal", "confidential", "restricted")
TRIGGER_POLICIES = ("schedule", "on-change", "manual", "composite")
MASKINGS = ("hash", "mask", "tokenize", "redact", "truncate", "aggregate", "encrypt", "drop")


class Model(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True, populate_by_name=True,
                              validate_default=False)


# A YAML scalar that DataKit treats as text but users often leave unquoted (30, 1.5).
Text = Union[str, int, float]


def scalar_text(value: Any) -> Any:
    """A YAML scalar as the text dk's parser (yaml.v3) stores in a string field; others as they are."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) if isinstance(value, (int, float)) else value


class Metadata(Model):
    name: str = ""
    namespace: str | None = None
    version: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)

    @field_validator("labels", "annotations", mode="before")
    @classmethod
    def _as_text(cls, value: Any) -> Any:
        """dk reads an unquoted `team: 1` as the text "1" and an empty `labels:` as no labels: so
        does dkb (lint says so: E105, advisory)."""
        if value is None:
            return {}
        return {k: scalar_text(v) for k, v in value.items()} if isinstance(value, dict) else value


# --- Transform -----------------------------------------------------------------------------

class KeyRef(Model):
    name: str = ""
    key: str = ""


class BindingRef(Model):
    name: str = ""
    property: str = ""


class ValueFrom(Model):
    secretKeyRef: KeyRef | None = None
    configMapKeyRef: KeyRef | None = None
    bindingRef: BindingRef | None = None


class EnvVar(Model):
    name: str = ""
    value: Text | None = None
    valueFrom: ValueFrom | None = None


class Schedule(Model):
    cron: str = ""
    timezone: str | None = None
    suspend: bool = False


class SubPolicy(Model):
    policy: str = ""
    schedule: Schedule | None = None


class Trigger(Model):
    policy: str = ""
    schedule: Schedule | None = None
    policies: list[Union[str, SubPolicy]] = Field(default_factory=list)


class Resources(Model):
    cpu: Text | None = None
    memory: str | None = None
    ephemeralStorage: str | None = None


class LineageSpec(Model):
    enabled: bool = False
    emitter: str | None = None
    namespace: str | None = None


class DataSetRef(Model):
    dataset: str | None = None
    tags: dict[str, str] | None = None
    version: str | None = None
    cell: str | None = None
    schema_ref: str | None = Field(default=None, alias="schema")


class TransformSpec(Model):
    runtime: str = ""
    mode: str = ""
    inputs: list[DataSetRef] = Field(default_factory=list)
    outputs: list[DataSetRef] = Field(default_factory=list)
    image: str | None = None
    command: list[str] = Field(default_factory=list)
    env: list[EnvVar] = Field(default_factory=list)
    trigger: Trigger | None = None
    timeout: Text | None = None
    resources: Resources | None = None
    replicas: int | None = None
    lineage: LineageSpec | None = None
    serviceAccountName: str | None = None


# --- DataSet ---------------------------------------------------------------------------------

class SchemaField(Model):
    name: str = ""
    type: str = ""
    pii: bool = False
    from_: str | None = Field(default=None, alias="from")
    description: str | None = None
    # dkb extension: how this column masks the PII it is derived from (stops PII propagation).
    masking: str | None = None


class Declassification(Model):
    """dkb extension: an explicit, justified override for classifying below an upstream dataset."""
    reason: str = ""
    approvedBy: str | None = None


class DataSetSpec(Model):
    store: str = ""
    table: str | None = None
    prefix: str | None = None
    topic: str | None = None
    format: str | None = None
    classification: str | None = None
    schema_: list[SchemaField] = Field(default_factory=list, alias="schema")
    schemaRef: str | None = None
    dev: dict[str, Any] | None = None
    declassify: Declassification | None = None


class DataSetGroupSpec(Model):
    store: str = ""
    datasets: list[str] = Field(default_factory=list)


# --- Store and Connector ---------------------------------------------------------------------

class StoreSpec(Model):
    connector: str = ""
    connectorVersion: str | None = None
    connection: dict[str, Any] = Field(default_factory=dict)
    secrets: dict[str, Text] = Field(default_factory=dict)


class Plugin(Model):
    source: str | None = None
    destination: str | None = None


class Tool(Model):
    name: str = ""
    type: str = ""
    description: str | None = None
    requires: list[str] = Field(default_factory=list)
    command: str | list[str] | None = None
    format: str | None = None
    path: str | None = None
    mode: str | None = None
    template: str | None = None
    postMessage: str | None = None
    default: Any = None


class ConnectionField(Model):
    field: str = ""
    description: str | None = None
    default: Any = None
    secret: bool = False
    optional: bool = False


class ConnectorSpec(Model):
    type: str = ""
    provider: str | None = None
    version: str | None = None
    protocol: str | None = None
    capabilities: list[str] = Field(default_factory=list)
    plugin: Plugin | None = None
    tools: list[Tool] = Field(default_factory=list)
    connectionSchema: dict[str, ConnectionField] = Field(default_factory=dict)


# --- Envelopes -------------------------------------------------------------------------------

class Envelope(Model):
    apiVersion: str = ""        # dk reads a manifest by its kind alone (lint says so: E103, E111)
    kind: str
    metadata: Metadata

    @model_validator(mode="before")
    @classmethod
    def _empty_sections(cls, data: Any) -> Any:
        """An empty `metadata:` or `spec:` is an empty mapping, as dk reads it (an empty
        metadata then lacks its name: E006, as dk's E001)."""
        if isinstance(data, dict) and any(data.get(k, ()) is None for k in ("metadata", "spec")):
            return {**data, **{k: {} for k in ("metadata", "spec") if k in data and data[k] is None}}
        return data


class Transform(Envelope):
    kind: Literal["Transform"] = "Transform"
    spec: TransformSpec = Field(default_factory=TransformSpec)


class DataSet(Envelope):
    kind: Literal["DataSet"] = "DataSet"
    spec: DataSetSpec = Field(default_factory=DataSetSpec)


class DataSetGroup(Envelope):
    kind: Literal["DataSetGroup"] = "DataSetGroup"
    spec: DataSetGroupSpec = Field(default_factory=DataSetGroupSpec)


class Store(Envelope):
    kind: Literal["Store"] = "Store"
    spec: StoreSpec = Field(default_factory=StoreSpec)


class Connector(Envelope):
    kind: Literal["Connector"] = "Connector"
    spec: ConnectorSpec = Field(default_factory=ConnectorSpec)


AnyManifest = Union[Transform, DataSet, DataSetGroup, Store, Connector]
MODEL_OF_KIND: dict[str, type[Envelope]] = {
    "Transform": Transform, "DataSet": DataSet, "DataSetGroup": DataSetGroup,
    "Store": Store, "Connector": Connector,
}


def unknown_fields(model: BaseModel, path: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    """Paths of every field the contract does not define, anywhere in the model."""
    extra = model.__pydantic_extra__
    if extra:
        for key in extra:
            yield path + (key,)
    for name, key in _nested_fields(type(model)):
        yield from _unknown_in(getattr(model, name), path + (key,))


def _unknown_in(value: Any, path: tuple[str | int, ...]) -> Iterator[tuple[str | int, ...]]:
    if isinstance(value, BaseModel):
        yield from unknown_fields(value, path)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _unknown_in(item, path + (i,))
    elif isinstance(value, dict):
        for k, item in value.items():
            if isinstance(item, BaseModel):
                yield from unknown_fields(item, path + (k,))


_NESTED: dict[type[BaseModel], tuple[tuple[str, str], ...]] = {}


def _nested_fields(cls: type[BaseModel]) -> tuple[tuple[str, str], ...]:
    """(attribute, key) of the fields whose type can hold a model: only those can hide unknown
    fields below them. A validated str, list[str] or dict[str, Any] holds no model, so walking it
    (as the walk did for every field of every column) finds nothing."""
    found = _NESTED.get(cls)
    if found is None:
        found = tuple((name, info.alias or name) for name, info in cls.model_fields.items()
                      if _holds_model(info.annotation))
        _NESTED[cls] = found
    return found


def _holds_model(annotation: Any) -> bool:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return True
    return any(_holds_model(arg) for arg in get_args(annotation))
