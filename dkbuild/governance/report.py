"""`dkb governance report`: build the report document and render it.

The document's shape is published as `report.schema.json` (package data, next to this module);
`schema()` loads it. Model: report_model.py; renderers: report_render.py.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from dkbuild.governance.report_model import (
    FILTER_KEYS,
    OWNER_ANNOTATION,
    SCHEMA_VERSION,
    FilterError,
    build_report,
    parse_filters,
)
from dkbuild.governance.report_render import (
    render_html,
    render_markdown,
    render_svg,
    render_text,
)

FORMATS = ("text", "json", "markdown", "html")


def schema() -> dict[str, Any]:
    return json.loads(resources.files("dkbuild.governance").joinpath("report.schema.json").read_text())


def render(report: dict[str, Any], output: str) -> str:
    if output == "json":
        return json.dumps(report, indent=2, ensure_ascii=False) + "\n"
    if output == "markdown":
        return render_markdown(report)
    if output == "html":
        return render_html(report)
    return render_text(report)


__all__ = ["FILTER_KEYS", "FORMATS", "OWNER_ANNOTATION", "SCHEMA_VERSION", "FilterError", "build_report",
           "parse_filters", "render", "render_html", "render_markdown", "render_svg", "render_text", "schema"]
