"""Validate OpenLineage events offline against the spec's JSON Schemas (shared/openlineage-spec) and
dkb's own facet schemas (dkbuild/lineage/schemas).

    from tests.openlineage_validation import validate_event
    validate_event(event)          # raises AssertionError listing every problem

The whole event is checked against OpenLineage.json (its oneOf picks RunEvent, DatasetEvent or
JobEvent) and against the definition its shape and `schemaURL` name; then every facet is checked
against the schema its `_schemaURL` names. A facet whose schema is unknown is an error. No network:
all `$ref`s resolve through a local `referencing` registry.
"""

from __future__ import annotations

import functools
import json
import os
import re
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator

from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

REPO = Path(__file__).resolve().parents[1]
OUR_SCHEMAS = REPO / "dkbuild" / "lineage" / "schemas"
SPEC_ID = "https://openlineage.io/spec/2-0-2/OpenLineage.json"


def shared_dir() -> Path:
    env = os.environ.get("DKB_SHARED_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared"


def spec_dir() -> Path:
    return shared_dir() / "openlineage-spec"


def schema_files() -> list[Path]:
    spec = spec_dir()
    if not (spec / "OpenLineage.json").is_file():
        raise FileNotFoundError(f"OpenLineage spec not found in {spec}; set DKB_SHARED_DIR")
    return [spec / "OpenLineage.json", *sorted((spec / "facets").glob("*.json")),
            *sorted(OUR_SCHEMAS.glob("*.json"))]


@functools.lru_cache(maxsize=1)
def registry() -> Registry:
    resources = []
    for path in schema_files():
        contents = json.loads(path.read_text(encoding="utf-8"))
        resources.append((contents["$id"], Resource.from_contents(contents, default_specification=DRAFT202012)))
    return Registry().with_resources(resources).crawl()


_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:[^\s]*$")


def format_checker() -> FormatChecker:
    """uuid (built in) plus strict uri and date-time checks that need no optional packages."""
    checker = FormatChecker(formats=["uuid"])

    @checker.checks("uri", raises=ValueError)
    def is_uri(value: object) -> bool:
        if not isinstance(value, str):
            return True
        return bool(_SCHEME.match(value)) and "${" not in value and not re.search(r"[<>\"{}|\\^`]", value)

    @checker.checks("date-time", raises=ValueError)
    def is_datetime(value: object) -> bool:
        if not isinstance(value, str):
            return True
        if not re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$", value):
            return False
        datetime.fromisoformat(value.replace("Z", "+00:00"))
        return True

    return checker


def _validator(ref: str) -> Draft202012Validator:
    return Draft202012Validator({"$ref": ref}, registry=registry(), format_checker=format_checker())


def event_kind(event: dict[str, Any]) -> str:
    if "run" in event or "eventType" in event:
        return "RunEvent"
    if "dataset" in event:
        return "DatasetEvent"
    return "JobEvent"


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _errors(ref: str, instance: Any, where: str) -> list[str]:
    return [f"{where}{'/' + '/'.join(map(str, e.absolute_path)) if e.absolute_path else ''}: {_short(e.message)}"
            for e in sorted(_validator(ref).iter_errors(instance), key=lambda e: list(map(str, e.path)))]


def _facet_groups(event: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for key in ("job", "run"):
        if isinstance(event.get(key), dict):
            yield f"{key}.facets", event[key].get("facets") or {}
    if isinstance(event.get("dataset"), dict):
        yield "dataset.facets", event["dataset"].get("facets") or {}
    for side in ("inputs", "outputs"):
        for i, dataset in enumerate(event.get(side) or []):
            for group in ("facets", "inputFacets", "outputFacets"):
                if isinstance(dataset, dict) and dataset.get(group):
                    yield f"{side}[{i}].{group}", dataset[group]


def facet_errors(name: str, facet: Any, where: str) -> list[str]:
    if not isinstance(facet, dict) or not isinstance(facet.get("_schemaURL"), str):
        return [f"{where}.{name}: facet has no _schemaURL"]
    url = facet["_schemaURL"]
    base, _, fragment = url.partition("#")
    try:
        document = registry().contents(base)
        registry().resolver().lookup(url)
    except (Unresolvable, LookupError) as exc:
        return [f"{where}.{name}: unknown facet schema {url} ({type(exc).__name__})"]
    problems = _errors(url, facet, f"{where}.{name}")
    # The facet must be emitted under the key its schema defines (e.g. `schema`, `dataSource`).
    expected = set((document.get("properties") or {}) if isinstance(document, dict) else ())
    if expected and name not in expected:
        problems.append(f"{where}.{name}: {url} defines the facet key(s) {sorted(expected)}, not {name!r}")
    return problems


def event_errors(event: dict[str, Any]) -> list[str]:
    kind = event_kind(event)
    problems = _errors(SPEC_ID, event, "event")                 # the spec's oneOf
    problems += _errors(f"{SPEC_ID}#/$defs/{kind}", event, kind)
    schema_url = event.get("schemaURL", "")
    if isinstance(schema_url, str) and "#/$defs/" in schema_url and not schema_url.endswith(f"/{kind}"):
        problems.append(f"schemaURL {schema_url} does not name {kind}")
    for where, facets in _facet_groups(event):
        if not isinstance(facets, dict):
            continue
        for name, facet in facets.items():
            problems += facet_errors(name, facet, where)
    return problems


def validate_event(event: dict[str, Any]) -> None:
    problems = event_errors(event)
    if problems:
        raise AssertionError("invalid OpenLineage event:\n  " + "\n  ".join(problems))


def validate_events(events: list[dict[str, Any]]) -> None:
    for event in events:
        validate_event(event)
