"""workspace.toml's schema and its validation (pydantic), with diagnostics that name the key.

Kept apart from `dkbuild.workspace` because importing pydantic and building these models costs
more than a warm command's whole work: a workspace read through the configuration memo
(`dkbuild.workspace`) imports this module only when something asks for the typed model.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from dkbuild.diagnostics import DkbError, error
from dkbuild.governance.codes import CODES
from dkbuild.oci.breaker import DEFAULT_GIVE_UP_AFTER, DEFAULT_MAX_FAILURES, DEFAULT_RETRIES, DEFAULT_TIMEOUT
from dkbuild.workspace import DEFAULT_MAX_MANIFEST_BYTES, WORKSPACE_FILE


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WorkspaceSection(Section):
    name: str = ""
    # Globs (relative to the root, `**` allowed) selecting where manifests are read from.
    packages: list[str] = Field(default_factory=lambda: ["**"])
    exclude: list[str] = Field(default_factory=list)
    max_manifest_bytes: int = DEFAULT_MAX_MANIFEST_BYTES


class RegistrySection(Section):
    url: str | None = None
    namespace: str | None = None
    plain_http: bool = False
    insecure: bool = False
    # How long a run keeps trying a registry that does not answer (oci/breaker.py).
    timeout: float = Field(DEFAULT_TIMEOUT, gt=0, le=3600)              # seconds per connect, send or read
    retries: int = Field(DEFAULT_RETRIES, ge=0, le=10)                  # per request
    give_up_after: float = Field(DEFAULT_GIVE_UP_AFTER, gt=0, le=3600)  # seconds failing with no answer
    max_failures: int = Field(DEFAULT_MAX_FAILURES, ge=1)               # failed attempts per run


class BuildSection(Section):
    # Whether a container image that cannot be built fails the run (the package artifact is built
    # either way): auto = only when a builder exists and the build itself failed.
    image_failure: Literal["auto", "fail", "warn"] = "auto"


class CacheSection(Section):
    dir: str = ".dkb"
    remote: str | None = None
    # No remote_write here on purpose: writing the shared cache is a per-job decision
    # (--remote-cache-write), so a pull-request build can never be configured into poisoning it.
    max_size: str | None = None


class LineageSection(Section):
    transport: Literal["file", "http", "console", "composite"] = "file"
    url: str | None = None
    namespace: str = "dkb"
    file: str = ".dkb/lineage/events.jsonl"


class GitopsSection(Section):
    repo: str | None = None
    branch: str = "main"
    forge: Literal["git", "github"] = "git"
    owner: str | None = None
    repository: str | None = None
    base_url: str | None = None
    path: str = "gitops"


class EnvironmentSettings(Section):
    approvals: int = 0
    auto_merge: bool = False
    cell: str = "c0"


# dev merges after CI, int needs one approval, prod two (the DataKit promotion model).
DEFAULT_ENVIRONMENTS = {
    "dev": EnvironmentSettings(approvals=0, auto_merge=True),
    "int": EnvironmentSettings(approvals=1),
    "prod": EnvironmentSettings(approvals=2),
}


class EnvironmentsSection(BaseModel):
    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, EnvironmentSettings]
    order: list[str] = Field(default_factory=lambda: ["dev", "int", "prod"])
    # dk promotes to any environment; a team that wants each step to have run first says so.
    enforce_order: bool = False

    def settings(self, name: str) -> EnvironmentSettings:
        """The built-in defaults for `name`, with whatever [environments.<name>] sets on top."""
        base = DEFAULT_ENVIRONMENTS.get(name, EnvironmentSettings())
        given = (self.__pydantic_extra__ or {}).get(name)
        if given is None:
            return base
        return base.model_copy(update={f: getattr(given, f) for f in given.model_fields_set})


PolicyLevel = Literal["error", "warning", "advisory", "off"]
Level = Literal["error", "warning", "advisory"]


class PolicySection(Section):
    # Defaults are the catalogue's (governance/codes.py); "off" skips the policy.
    pii_classification: PolicyLevel = CODES["E600"].severity  # type: ignore[assignment]
    pii_allowed_classifications: list[str] = Field(default_factory=lambda: ["confidential", "restricted"])
    pii_propagation: PolicyLevel = CODES["E601"].severity  # type: ignore[assignment]
    classification_downgrade: PolicyLevel = CODES["E602"].severity  # type: ignore[assignment]
    # Diagnostic codes to silence workspace-wide.
    ignore: list[str] = Field(default_factory=list)
    pii_reviewers: list[str] = Field(default_factory=list)


class LintSection(Section):
    # Per-code severity, over the catalogue's default (e.g. W501 = "error"); see governance/severity.py.
    severity: dict[str, Level] = Field(default_factory=dict)

    @field_validator("severity")
    @classmethod
    def _known_codes(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(CODES))
        if unknown:
            raise ValueError(f"unknown diagnostic code(s) {', '.join(unknown)}; see the code table in the README")
        return value


class RulesSection(BaseModel):
    """`paths` lists workspace rule directories; every other key is one rule's own settings table."""
    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, dict[str, Any]]
    paths: list[str] = Field(default_factory=lambda: ["rules"])


class DevSettings(Section):
    """The `[dev]` section of workspace.toml (host ports default to the DataKit FAQ's)."""
    kafka_port: int = Field(9092, ge=1, le=65535)
    minio_port: int = Field(9000, ge=1, le=65535)
    minio_console_port: int = Field(9001, ge=1, le=65535)
    marquez_port: int = Field(5000, ge=1, le=65535)
    marquez_admin_port: int = Field(5001, ge=1, le=65535)
    marquez_web_port: int = Field(3000, ge=1, le=65535)
    postgres_port: int = Field(5432, ge=1, le=65535)
    # Image overrides by service name (redpanda, minio, postgres, marquez, marquez-web).
    images: dict[str, str] = Field(default_factory=dict)
    # Host address the ports are published on; localhost keeps the dev credentials off the network.
    bind_address: str = "127.0.0.1"
    minio_user: str = "minioadmin"
    minio_password: str = "minioadmin"


class WorkspaceConfig(Section):
    workspace: WorkspaceSection = Field(default_factory=WorkspaceSection)
    registry: RegistrySection = Field(default_factory=RegistrySection)
    build: BuildSection = Field(default_factory=BuildSection)
    cache: CacheSection = Field(default_factory=CacheSection)
    lineage: LineageSection = Field(default_factory=LineageSection)
    gitops: GitopsSection = Field(default_factory=GitopsSection)
    environments: EnvironmentsSection = Field(default_factory=EnvironmentsSection)
    policy: PolicySection = Field(default_factory=PolicySection)
    lint: LintSection = Field(default_factory=LintSection)
    rules: RulesSection = Field(default_factory=RulesSection)
    dev: DevSettings = Field(default_factory=DevSettings)

    def section(self, name: str) -> dict[str, Any]:
        """One section as plain data, for content keys (a rule hashes only what it reads)."""
        return getattr(self, name).model_dump(mode="json")


_TOML_POSITION = re.compile(r"\(at line (\d+), column (\d+)\)")


def parse_config(text: str, file: str = WORKSPACE_FILE) -> WorkspaceConfig:
    """workspace.toml from its text (from disk, or from a git blob: `file` names it in diagnostics)."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = _TOML_POSITION.search(str(exc))
        line, col = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
        raise DkbError(error("E121", file, f"invalid TOML: {_TOML_POSITION.sub('', str(exc)).strip()}",
                             line=line, column=col, hint="fix the TOML syntax at that position")) from None
    try:
        return WorkspaceConfig.model_validate(raw)
    except ValidationError as exc:
        raise DkbError([_config_diagnostic(err, text, file) for err in exc.errors()]) from None


def _config_diagnostic(err: Any, text: str, file: str = WORKSPACE_FILE) -> Any:
    loc = [str(p) for p in err["loc"]]
    dotted = ".".join(loc)
    line = _line_of(text, loc)
    if err["type"] == "extra_forbidden":
        parent: type[BaseModel] = WorkspaceConfig
        for part in loc[:-1]:
            field = parent.model_fields.get(part)
            annotation = getattr(field, "annotation", None) if field else None
            if field is None and parent is EnvironmentsSection:
                annotation = EnvironmentSettings          # [environments.<name>] tables
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                parent = annotation
        valid = list(parent.model_fields)
        close = difflib.get_close_matches(loc[-1], valid, n=1, cutoff=0.5)
        hint = f"did you mean '{close[0]}'?" if close else f"valid keys here: {', '.join(valid)}"
        return error("E122", file, f"unknown key '{dotted}'", line=line, field=dotted, hint=hint)
    return error("E123", file, f"'{dotted}': {err['msg']}", line=line, field=dotted,
                 hint="see the workspace.toml reference in the README")


def _line_of(text: str, loc: list[str]) -> int:
    """Best-effort line of a key: the section header, then the key inside it."""
    section = loc[0] if loc else ""
    key = loc[-1] if len(loc) > 1 else section
    in_section = len(loc) <= 1
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if line.startswith("["):
            header = line.strip("[]").strip()
            in_section = header == section or header.startswith(section + ".")
            if header == ".".join(loc):     # [section] or [section.table] named by the error
                return number
            continue
        if in_section and re.match(rf"{re.escape(key)}\s*=", line):
            return number
    return 0
