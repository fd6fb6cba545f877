"""workspace.toml's schema and its validation (pydantic), with diagnostics that name the key.

Kept apart from `dkbuild.workspace` because importing pydantic and building these models costs
more than a warm command's whole work: a workspace read through the configuration memo
(`dkbuild.workspace`) imports this module only when something asks for the typed model.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from dkbuild.diagnostics import DkbError, error
from dkbuild.governance.codes import CODES
from dkbuild.oci.breaker import DEFAULT_GIVE_UP_AFTER, DEFAULT_MAX_FAILURES, DEFAULT_RETRIES, DEFAULT_TIMEOUT
from dkbuild.workspace import DEFAULT_MAX_MANIFEST_BYTES, WORKSPACE_FILE


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- value checks: each says what is wrong and the fix (the diagnostic's hint) -----------------

def bad_value(problem: str, fix: str) -> PydanticCustomError:
    return PydanticCustomError("dkb_value", "{problem}", {"problem": problem, "fix": fix})


def _inside_path(value: str, what: str, example: str) -> str:
    """A path below the workspace (or the GitOps repository): relative, no `..`, no `./`, `/` only."""
    if not value.strip():
        raise bad_value(f"an empty {what} names nothing", f"write a {what} such as {example!r}, or remove it")
    if "\\" in value:
        raise bad_value(f"{value!r} uses '\\'", f"separate directories with '/': {value.replace(chr(92), '/')!r}")
    if value.startswith("/"):
        raise bad_value(f"{value!r} is absolute; a {what} is relative to the workspace root",
                        f"write {value.lstrip('/') or example!r}")
    parts = value.split("/")
    if ".." in parts:
        raise bad_value(f"{value!r} leaves the workspace ('..'); only what is inside it is read",
                        f"write a {what} below the root, such as {example!r} (the workspace is the "
                        "directory of its workspace.toml)")
    if "." in parts or "" in parts[:-1]:
        fixed = "/".join(p for p in parts if p not in (".", ""))
        raise bad_value(f"{value!r} has a './' or '//' that never matches a path", f"write {fixed or example!r}")
    return value


def _glob(value: str) -> str:
    return _inside_path(value, "glob", "pipelines/**")


def _repo_path(value: str) -> str:
    return _inside_path(value, "path", "gitops")


_DNS_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


def _dns_label(value: str) -> str:
    if not _DNS_LABEL.fullmatch(value):
        raise bad_value(f"{value!r} is not a DNS label (it names a directory, a branch and a Kubernetes object)",
                        "use 1-63 of a-z, 0-9 and '-', starting and ending with a letter or digit")
    return value


# git check-ref-format, in short: what a branch name cannot hold.
_BAD_BRANCH = re.compile(r"\.\.|@\{|[\x00-\x20~^:?*\[\\\x7f]|^[-/.]|[/.]$|\.lock$|//")


def _branch(value: str) -> str:
    if not value or _BAD_BRANCH.search(value):
        raise bad_value(f"{value!r} is not a valid git branch name", "use a name such as 'main' or 'release/1.x'")
    return value


def _nonempty(value: str) -> str:
    if not value.strip():
        raise bad_value("an empty value", "write a value, or remove the key to get the default")
    return value


def _http_url(value: str) -> str:
    if not re.fullmatch(r"https?://[^/\s:@]+(?::\d{1,5})?(?:/\S*)?", value):
        raise bad_value(f"{value!r} is not an http(s) URL", "write e.g. 'http://localhost:5000'")
    return value


def _registry_url(value: str) -> str:
    from dkbuild.oci.reference import parse_location

    if "://" in value and not value.startswith("oci://"):
        raise bad_value(f"unsupported scheme in {value!r}", "write oci://HOST[:PORT]/PREFIX or HOST[:PORT]/PREFIX")
    try:
        parse_location(value)
    except ValueError as exc:
        raise bad_value(str(exc), "write oci://HOST[:PORT]/PREFIX or HOST[:PORT]/PREFIX") from None
    return value


def _remote_cache_url(value: str) -> str:
    from dkbuild.engine.remote_cache import RemoteCacheLocationError, remote_scheme

    try:
        remote_scheme(value, "[cache] remote")
    except RemoteCacheLocationError as exc:
        problem, _, fix = str(exc).partition("; supported: ")
        raise bad_value(problem.removeprefix("[cache] remote: "), f"write {fix}") from None
    return value


def _size(value: str) -> str:
    from dkbuild.engine.gc import parse_size

    try:
        parse_size(value)
    except ValueError:
        raise bad_value(f"{value!r} is not a size", "write e.g. '500M' or '2G'") from None
    return value


def _cache_dir(value: str) -> str:
    """The store is deleted from by `cache gc`: never the workspace itself or a directory above it."""
    parts = [p for p in value.replace("\\", "/").split("/") if p not in ("", ".")]
    if not value.strip() or value.strip() == "/" or all(p == ".." for p in parts):
        raise bad_value(f"{value!r} is the workspace or a directory above it; `dkb cache gc` deletes "
                        "in the cache directory", "use a directory of its own, such as '.dkb' (the default)")
    return value


def _ip_address(value: str) -> str:
    import ipaddress

    if value in ("", "localhost"):         # "": every interface (docker's default)
        return value
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise bad_value(f"{value!r} is not an IP address", "write e.g. '127.0.0.1' (or '0.0.0.0' for every "
                        "interface)") from None
    return value


Glob = Annotated[str, AfterValidator(_glob)]
RepoPath = Annotated[str, AfterValidator(_repo_path)]
DnsLabel = Annotated[str, AfterValidator(_dns_label)]
Branch = Annotated[str, AfterValidator(_branch)]
NonEmpty = Annotated[str, AfterValidator(_nonempty)]
HttpUrl = Annotated[str, AfterValidator(_http_url)]


class WorkspaceSection(Section):
    name: str = ""
    # Globs (relative to the root, `**` allowed) selecting where manifests are read from.
    packages: list[Glob] = Field(default_factory=lambda: ["**"])
    exclude: list[Glob] = Field(default_factory=list)
    # At most 1 GiB: a manifest is read whole into memory.
    max_manifest_bytes: int = Field(DEFAULT_MAX_MANIFEST_BYTES, ge=1, le=1 << 30)

    @field_validator("packages")
    @classmethod
    def _some_packages(cls, value: list[str]) -> list[str]:
        if not value:
            raise bad_value("no globs: no manifest would be read, and lint would pass on nothing",
                            "remove the key (the default, [\"**\"], reads the whole workspace)")
        return value


class RegistrySection(Section):
    url: Annotated[str, AfterValidator(_registry_url)] | None = None
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
    dir: Annotated[str, AfterValidator(_cache_dir)] = ".dkb"
    remote: Annotated[str, AfterValidator(_remote_cache_url)] | None = None
    # No remote_write here on purpose: writing the shared cache is a per-job decision
    # (--remote-cache-write), so a pull-request build can never be configured into poisoning it.
    max_size: Annotated[str, AfterValidator(_size)] | None = None


class LineageSection(Section):
    transport: Literal["file", "http", "console", "composite"] = "file"
    url: HttpUrl | None = None
    namespace: NonEmpty = "dkb"
    file: NonEmpty = ".dkb/lineage/events.jsonl"


class GitopsSection(Section):
    repo: NonEmpty | None = None
    branch: Branch = "main"
    forge: Literal["git", "github"] = "git"
    owner: NonEmpty | None = None
    repository: NonEmpty | None = None
    base_url: HttpUrl | None = None
    path: RepoPath = "gitops"


class EnvironmentSettings(Section):
    approvals: int = Field(0, ge=0, le=100)
    auto_merge: bool = False
    cell: DnsLabel = "c0"


# dev merges after CI, int needs one approval, prod two (the DataKit promotion model).
DEFAULT_ENVIRONMENTS = {
    "dev": EnvironmentSettings(approvals=0, auto_merge=True),
    "int": EnvironmentSettings(approvals=1),
    "prod": EnvironmentSettings(approvals=2),
}


class EnvironmentsSection(BaseModel):
    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, EnvironmentSettings]
    order: list[DnsLabel] = Field(default_factory=lambda: ["dev", "int", "prod"])
    # dk promotes to any environment; a team that wants each step to have run first says so.
    enforce_order: bool = False

    @field_validator("order")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if not value:
            raise bad_value("no environments: nothing could be promoted", 'list them, e.g. ["dev", "int", "prod"]')
        twice = sorted({e for e in value if value.count(e) > 1})
        if twice:
            raise bad_value(f"{', '.join(twice)} listed twice", "list each environment once, in promotion order")
        return value

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

    @field_validator("ignore")
    @classmethod
    def _known_codes(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(CODES))
        if unknown:
            raise bad_value(f"unknown diagnostic code(s) {', '.join(unknown)}",
                            "use codes from the Lint codes table in the README")
        return value
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
    paths: list[NonEmpty] = Field(default_factory=lambda: ["rules"])


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
    images: dict[str, NonEmpty] = Field(default_factory=dict)
    # Host address the ports are published on; localhost keeps the dev credentials off the network.
    bind_address: Annotated[str, AfterValidator(_ip_address)] = "127.0.0.1"
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
    return error("E123", file, f"'{dotted}': {err['msg']}", line=line, field=dotted, hint=_fix_of(err))


def _fix_of(err: Any) -> str:
    """The fix for one pydantic error: ours say it; for pydantic's own, from the constraint."""
    ctx = err.get("ctx") or {}
    if "fix" in ctx:
        return str(ctx["fix"])
    bounds = {"greater_than_equal": "at least {ge}", "less_than_equal": "at most {le}",
              "greater_than": "more than {gt}", "less_than": "less than {lt}"}
    if err["type"] in bounds:
        return "use a whole number " + bounds[err["type"]].format(**ctx)
    if err["type"] == "literal_error":
        return f"use one of {ctx.get('expected', '')}"
    return "see the workspace.toml reference in the README"


def _line_of(text: str, loc: list[str]) -> int:
    """The line that sets the value at `loc` (or, failing that, the nearest table or key holding
    it): tables and dotted keys are followed, so [environments.prod] is told from [environments.int]."""
    best, best_depth = 0, 0
    header: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        table = re.match(r"\[\[?([^\]]+)\]\]?", line)
        if table:
            header = _key_parts(table.group(1))
            path = header
        else:
            key = re.match(r"((?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*'))*)"
                           r"\s*=", line)
            if not key:
                continue
            path = header + _key_parts(key.group(1))
        depth = len(path) if path == loc[:len(path)] else 0
        if depth > best_depth:
            best, best_depth = number, depth
    return best


def _key_parts(dotted: str) -> list[str]:
    return [p.strip().strip("\"'") for p in re.findall(r"\"[^\"]*\"|'[^']*'|[^.]+", dotted)]
