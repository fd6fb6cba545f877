"""A commented-out `workspace.toml` generated from WorkspaceConfig, so it never drifts from it.

Every section and key is shown with its default, commented out: the file as written is an empty
configuration (all defaults), and uncommenting any line keeps the same value.
"""

from __future__ import annotations

import json
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel

from dkbuild.config_model import EnvironmentsSection, WorkspaceConfig

HEADER = """\
# dkb workspace configuration. Every setting below is commented out and shows its default;
# uncomment a line to change it. Unknown keys are errors (E122).
# JSON Schema for editors: `dkb schema --output .dkb-schemas` writes workspace.schema.json.
"""

# One line per section; the keys themselves come from the models.
SECTION_NOTES = {
    "workspace": "Which files are read as manifests (globs relative to this file; `**` allowed). "
                 "name defaults to the directory name.",
    "registry": "Where `dkb publish` pushes artifacts and images.",
    "cache": "The local store (and an optional remote cache).",
    "lineage": "Where `dkb run` sends OpenLineage events.",
    "gitops": "The GitOps repository that `dkb promote` / `dkb rollback` open changes against.",
    "environments": "Promotion order, then one [environments.<name>] table per environment.",
    "policy": "Governance policies: error, warning or off.",
    "rules": "Workspace rule directories; [rules.<rule>] tables hold one rule's settings.",
    "dev": "Ports, images and credentials of the local stack (`dkb dev`).",
}


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)       # a TOML basic string for the plain text used here
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):      # an inline table
        if not value:
            return "{}"
        return "{ " + ", ".join(f"{json.dumps(str(k))} = {toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, BaseModel):
        return toml_value(value.model_dump(mode="json", exclude_none=True))
    raise TypeError(f"no TOML form for {value!r}")


def _keys(model: BaseModel) -> list[str]:
    lines = []
    for key, info in type(model).model_fields.items():
        value = getattr(model, key)
        bounds = [f"{word} {m.ge if word == 'min' else m.le}" for m in info.metadata
                  for word in ("min", "max") if getattr(m, "ge" if word == "min" else "le", None) is not None]
        choices = _choices(info.annotation)
        if value is None:
            lines.append(f'# {key} = "<string>"  # unset by default')
        elif choices:
            lines.append(f"# {key} = {toml_value(value)}  # one of: {', '.join(choices)}")
        elif bounds:
            lines.append(f"# {key} = {toml_value(value)}  # {', '.join(bounds)}")
        else:
            lines.append(f"# {key} = {toml_value(value)}")
    return lines


def _choices(annotation: Any) -> list[str]:
    if get_origin(annotation) is Literal:
        return [str(a) for a in get_args(annotation)]
    return []


def render_workspace_toml() -> str:
    defaults = WorkspaceConfig()
    parts = [HEADER]
    for section in WorkspaceConfig.model_fields:
        model = getattr(defaults, section)
        note = SECTION_NOTES.get(section, "")
        block = [f"# {note}" if note else "", f"# [{section}]"]
        block += _keys(model)
        if isinstance(model, EnvironmentsSection):
            # Each environment's own defaults (prod needs two approvals): uncommenting a line
            # must keep the value it shows.
            for env in model.order:
                block += ["#", f"# [environments.{env}]"] + _keys(model.settings(env))
        parts.append("\n".join(line for line in block if line != "") + "\n")
    return "\n".join(parts)
