"""Per-manifest lint rules (contract §2.2), one stable code per distinct problem.

`check_manifest` looks at one loaded manifest on its own: required fields, allowed values and
formats. Checks that need several manifests (does the referenced DataSet exist? is the graph
acyclic?) live elsewhere.

Where dk's own check was right we keep its message text and field path, so output stays familiar.
Where it was wrong we fix it and say so here:

* dk reused E001/E002 for many problems; each problem now has its own code (see `codes.py`).
* SemVer is checked strictly (SemVer 2.0.0): dk accepted `1.2.3.4` and `01.0.0`.
* `spec.connectorVersion` must parse as a semver range; dk only looked at the first character.
* `spec.timeout` must be a duration with units (h, m, s) and be positive; dk accepted `30`, `1hh`
  and `0s`.
* `spec.trigger.schedule.cron` is parsed; dk never checked it.
* Store secrets must be `${VAR}` references (dk's JSON schema said so, its code did not check).

Where a stricter check fails on a value dk's own check lets through (governance.dk_checks), the
finding is marked `dk_accepts`: reported, but advisory (governance.severity decides).

Secret values are never copied into a message or a hint.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from dkbuild.diagnostics import Diagnostic, Severity
from dkbuild.governance import dk_checks
from dkbuild.governance.codes import CODES
from dkbuild.governance.values import (
    ENV_NAME, MODULE, closest, cron_problem, dns_hint, duration_hint, enum_hint, env_var_name_for,
    is_dns_safe, is_schema_module_ref, is_semver, is_semver_range, parse_duration, range_hint, semver_hint,
)
from dkbuild.manifests.manifest import FieldPath, Manifest, format_field
from dkbuild.manifests.models import (CLASSIFICATIONS, MASKINGS, MODES, RUNTIMES, TRIGGER_POLICIES,
                                      Connector, DataSet, DataSetGroup, DataSetRef, Store, SubPolicy,
                                      Transform, Trigger, scalar_text)
from dkbuild.redaction import VAR_REF, looks_like_secret_key

__all__ = ["check_manifest", "DATASET_FORMATS"]

DATASET_FORMATS = ("parquet", "json", "jsonl", "csv", "avro", "orc", "delta", "iceberg", "table",
                   "text", "protobuf")
CAPABILITIES = ("source", "destination")
TOOL_TYPES = ("exec", "config")
SUB_POLICIES = ("schedule", "on-change", "manual")
GENERIC_RUNTIMES = ("generic-go", "generic-python")

# --------------------------------------------------------------------------------------------
# The checker.
# --------------------------------------------------------------------------------------------


class _Report:
    """Collects diagnostics for one manifest, placing each at its field's position."""

    def __init__(self, manifest: Manifest):
        self.manifest = manifest
        self.items: list[Diagnostic] = []

    def __call__(self, code: str, path: FieldPath, message: str, hint: str, *, dk_accepts: bool = False) -> None:
        entry = CODES[code]
        # A load code only for a value the loader let through because dk accepts it (E105).
        assert entry.group == "manifest" or dk_accepts, f"{code} is not a per-manifest code"
        line, column = self.manifest.position(path)
        self.items.append(Diagnostic(self.manifest.file, line, column, code, Severity(entry.severity), message,
                                     format_field(path), hint, dk_accepts=dk_accepts))


def check_manifest(manifest: Manifest, runtimes: Sequence[str] = RUNTIMES) -> list[Diagnostic]:
    """All per-manifest problems of one manifest, in dk's order of emission. `runtimes` are the
    spec.runtime values the loaded build rules provide (dk's four, plus any workspace rule's)."""
    report = _Report(manifest)
    model = manifest.model
    _check_metadata(report, model)
    _check_label_text(report, manifest.data)
    if isinstance(model, Connector):
        _check_connector(report, model)
    elif isinstance(model, Store):
        _check_store(report, model)
    elif isinstance(model, DataSet):
        _check_dataset(report, model, manifest.data)
    elif isinstance(model, DataSetGroup):
        _check_group(report, model)
    elif isinstance(model, Transform):
        _check_transform(report, model, runtimes)
    return report.items


def _rule_hint(runtime: str) -> str:
    if not runtime or runtime in RUNTIMES:
        return ""
    return f"; or add a build rule for '{runtime}' to the workspace ([rules] paths; see docs/rules.md)"


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "")


def _check_metadata(report: _Report, model: Any) -> None:
    meta = model.metadata
    if not meta.name:
        report("E006", ("metadata", "name"), "metadata.name is required",
               "add 'name:' under metadata, e.g. name: my-pipeline (lowercase letters, digits and '-')")
    elif not is_dns_safe(meta.name):
        report("E001", ("metadata", "name"), "metadata.name must be DNS-safe", dns_hint(meta.name))
    if not isinstance(model, Connector) and meta.namespace and not is_dns_safe(meta.namespace):
        report("E007", ("metadata", "namespace"), "metadata.namespace must be DNS-safe",
               dns_hint(meta.namespace))
    # DataSet checks its version after spec.store, as dk does.
    if isinstance(model, Transform):
        _check_semver(report, ("metadata", "version"), meta.version)


def _check_label_text(report: _Report, data: dict[str, Any]) -> None:
    """Unquoted label and annotation values, which the model read as text as dk does."""
    meta = data.get("metadata")
    for section in ("labels", "annotations"):
        values = meta.get(section) if isinstance(meta, dict) else None
        for key, value in (values or {}).items() if isinstance(values, dict) else ():
            if isinstance(value, (bool, int, float)):
                text = scalar_text(value)
                report("E105", ("metadata", section, key), f"metadata.{section}.{key} is a YAML "
                       f"{type(value).__name__}, not a string; read as the text '{text}'",
                       f"quote it to say so: {key}: \"{text}\"", dk_accepts=True)


def _check_semver(report: _Report, path: FieldPath, value: str | None) -> None:
    if value and not is_semver(value):
        report("E020", path, f"{format_field(path)} must be valid SemVer", semver_hint(value),
               dk_accepts=dk_checks.semver(value))


# --- Connector ---------------------------------------------------------------------------------

def _check_connector(report: _Report, model: Connector) -> None:
    spec = model.spec
    _check_semver(report, ("spec", "version"), spec.version)
    if _blank(spec.type):
        report("E200", ("spec", "type"), "spec.type is required for Connector",
               "set spec.type to the technology, e.g. postgres, s3 or kafka")
    if not spec.capabilities:
        report("E201", ("spec", "capabilities"),
               "spec.capabilities must list at least one capability (source, destination)",
               "add e.g. capabilities: [source, destination]")
    seen: set[str] = set()
    for i, capability in enumerate(spec.capabilities):
        path = ("spec", "capabilities", i)
        if capability not in CAPABILITIES:
            report("E202", path, "capability must be 'source' or 'destination'",
                   enum_hint(capability, CAPABILITIES))
        elif capability in seen:
            report("W206", path, f"capability '{capability}' is listed twice",
                   f"remove the second '{capability}'")
        seen.add(capability)
    if spec.provider and not is_dns_safe(spec.provider):
        report("E203", ("spec", "provider"), "spec.provider must be DNS-safe", dns_hint(spec.provider))
    for i, tool in enumerate(spec.tools):
        if _blank(tool.name):
            report("E204", ("spec", "tools", i, "name"), "tool name is required",
                   "give the tool a name, e.g. name: psql")
        if tool.type not in TOOL_TYPES:
            report("E205", ("spec", "tools", i, "type"), "tool type must be 'exec' or 'config'",
                   enum_hint(tool.type, TOOL_TYPES))


# --- Store -------------------------------------------------------------------------------------

def _check_store(report: _Report, model: Store) -> None:
    spec = model.spec
    if _blank(spec.connector):
        report("E210", ("spec", "connector"),
               "spec.connector is required — must reference a Connector name",
               "set spec.connector to the name of a Connector, e.g. connector: postgres")
    if not spec.connection:
        report("E211", ("spec", "connection"), "spec.connection must have at least one entry",
               "add the connection settings, e.g. host, port and database")
    if spec.connectorVersion and not is_semver_range(spec.connectorVersion):
        report("E213", ("spec", "connectorVersion"),
               "spec.connectorVersion must be a valid semver range (e.g., ^1.0.0, >=1.2.0)",
               range_hint(spec.connectorVersion), dk_accepts=dk_checks.semver_range(spec.connectorVersion))
    for key, value in spec.secrets.items():
        path = ("spec", "secrets", key)
        var = env_var_name_for(key)
        text = "" if value is None else str(value)
        if not text.strip():
            report("E212", path, "secret value must not be empty",
                   f"reference the secret from the environment or secret store, e.g. {key}: ${{{var}}}")
        elif not VAR_REF.search(text):
            if re.search(r"\$[A-Za-z_]", text):
                hint = f"write the reference with braces, e.g. ${{{var}}}"
            else:
                hint = (f"do not commit secrets: replace the value with a reference such as "
                        f"${{{var}}}, set it in the environment or secret store, and rotate the "
                        f"exposed secret")
            report("E214", path, f"secret '{key}' is a literal value, not a ${{VAR}} reference", hint)
    for key, value in spec.connection.items():
        if not looks_like_secret_key(key):
            continue
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            continue
        text = str(value)
        if not text.strip() or VAR_REF.search(text):
            continue
        var = env_var_name_for(key)
        report("W215", ("spec", "connection", key),
               f"spec.connection.{key} looks like a secret; secrets belong in spec.secrets",
               f"move it to spec.secrets as a reference, e.g. secrets: {{{key}: ${{{var}}}}}, "
               f"and rotate the exposed value")


# --- DataSet -----------------------------------------------------------------------------------

def _check_dataset(report: _Report, model: DataSet, data: dict[str, Any]) -> None:
    spec = model.spec
    if _blank(spec.store):
        report("E220", ("spec", "store"), "spec.store is required — must reference a Store name",
               "set spec.store to the name of the Store that holds this dataset")
    _check_semver(report, ("metadata", "version"), model.metadata.version)
    if all(_blank(v) for v in (spec.table, spec.prefix, spec.topic)):
        report("E221", ("spec",), "at least one of spec.table, spec.prefix, or spec.topic is required",
               "add spec.table (relational), spec.prefix (object store) or spec.topic (stream)")
    if spec.format and spec.format not in DATASET_FORMATS:
        close = closest(spec.format, DATASET_FORMATS)
        hint = (f"did you mean '{close}'?" if close else
                f"known formats: {', '.join(DATASET_FORMATS)}")
        report("W225", ("spec", "format"), f"unknown dataset format '{spec.format}'", hint)
    if spec.schemaRef and spec.schema_:
        report("E310", ("spec", "schemaRef"),
               "spec.schemaRef and spec.schema are mutually exclusive — use one or the other",
               "keep spec.schemaRef to use the published schema, or remove it and keep spec.schema")
    if spec.schemaRef and not is_schema_module_ref(spec.schemaRef):
        report("E311", ("spec", "schemaRef"),
               'spec.schemaRef must be in the format "module" or "module@constraint" (e.g., "users@^1.0.0")',
               _module_ref_hint(spec.schemaRef), dk_accepts=dk_checks.schema_ref(spec.schemaRef))
    names: set[str] = set()
    for i, column in enumerate(spec.schema_):
        base: FieldPath = ("spec", "schema", i)
        if _blank(column.name):
            report("E222", base + ("name",), "schema field name is required",
                   "give the column a name, e.g. name: customer_id")
        elif column.name in names:
            report("E043", base + ("name",), f"duplicate schema field name: {column.name}",
                   "rename or remove one of the two columns")
        names.add(column.name)
        if _blank(column.type):
            report("E223", base + ("type",), "schema field type is required",
                   "set the column type, e.g. type: string (integer, string, timestamp, boolean, float)")
        if column.masking and column.masking not in MASKINGS:
            report("E226", base + ("masking",), f"unknown masking method '{column.masking}'",
                   enum_hint(column.masking, MASKINGS))
        if column.from_ is not None:
            problem = _lineage_problem(column.from_)
            if problem:
                report("E227", base + ("from",), "column 'from' must be written <dataset>.<column>",
                       problem)
    if spec.classification and spec.classification not in CLASSIFICATIONS:
        report("E224", ("spec", "classification"),
               "classification must be public, internal, confidential, or restricted",
               enum_hint(spec.classification, CLASSIFICATIONS))
    raw_spec = data.get("spec") if isinstance(data, dict) else None
    if isinstance(raw_spec, dict) and "declassify" in raw_spec:
        if spec.declassify is None or _blank(spec.declassify.reason):
            report("E228", ("spec", "declassify", "reason"), "spec.declassify needs a reason",
                   "say why a lower classification than the upstream data is acceptable, "
                   "e.g. reason: aggregated per region, no individual rows")


def _module_ref_hint(value: str) -> str:
    module, at, constraint = value.partition("@")
    if at and not constraint.strip():
        return f"add a version constraint after '@' (e.g. '{module}@^1.0.0') or drop the '@'"
    if module and MODULE.fullmatch(module.lower()):
        return f"module names are lowercase, e.g. '{module.lower()}{at}{constraint}'"
    return "write the module as lowercase letters, digits and inner '-', optionally @constraint, e.g. users@^1.0.0"


def _lineage_problem(value: str) -> str | None:
    dataset, dot, column = value.partition(".")
    if not dot or not dataset or not column.strip():
        return "write it as <dataset>.<column>, e.g. customers.email"
    if not is_dns_safe(dataset):
        return f"the dataset part '{dataset}' is not a DataSet name; {dns_hint(dataset)}"
    return None


# --- DataSetGroup ------------------------------------------------------------------------------

def _check_group(report: _Report, model: DataSetGroup) -> None:
    spec = model.spec
    if _blank(spec.store):
        report("E240", ("spec", "store"), "spec.store is required for DataSetGroup",
               "set spec.store to the Store all member datasets live in")
    if not spec.datasets:
        report("E241", ("spec", "datasets"), "spec.datasets must list at least one dataset name",
               "list the member DataSet names, e.g. datasets: [orders, order-lines]")
    seen: set[str] = set()
    for i, name in enumerate(spec.datasets):
        if name in seen:
            report("E242", ("spec", "datasets", i), f"dataset '{name}' is listed twice",
                   f"remove the second '{name}'")
        seen.add(name)


# --- Transform ---------------------------------------------------------------------------------

def _check_transform(report: _Report, model: Transform, runtimes: Sequence[str]) -> None:
    spec = model.spec
    if spec.runtime not in runtimes:
        report("E233", ("spec", "runtime"),
               f"spec.runtime must be a valid runtime ({', '.join(runtimes)})",
               enum_hint(spec.runtime, tuple(runtimes)) + _rule_hint(spec.runtime))
    if spec.mode and spec.mode not in MODES:
        report("E234", ("spec", "mode"), "spec.mode must be batch or streaming",
               enum_hint(spec.mode, MODES))
    if spec.runtime == "dbt" and spec.mode == "streaming":
        report("E252", ("spec", "mode"), "the dbt runtime cannot run in streaming mode",
               "remove spec.mode or set it to batch (dbt runs are batch jobs)")
    if not spec.inputs:
        report("E230", ("spec", "inputs"), "at least one input dataset is required",
               "add spec.inputs, e.g. inputs: [{dataset: raw-events}]")
    if not spec.outputs:
        report("E231", ("spec", "outputs"), "at least one output dataset is required",
               "add spec.outputs, e.g. outputs: [{dataset: clean-events}]")
    if _blank(spec.image) and (spec.runtime in GENERIC_RUNTIMES or spec.runtime == "dbt"):
        which = "generic-* runtimes" if spec.runtime in GENERIC_RUNTIMES else "dbt runtime"
        report("E232", ("spec", "image"), f"spec.image is required for {which}",
               "set spec.image to the container image that runs this transform, "
               "e.g. image: registry.example.com/team/my-transform:1.0.0")
    batch = spec.mode in ("", "batch")
    if batch and spec.trigger is None:
        report("W209", ("spec", "trigger"), "trigger is recommended for batch-mode transforms",
               "add spec.trigger, e.g. trigger: {policy: on-change} or a schedule policy with a cron")
    if spec.trigger is not None:
        _check_trigger(report, spec.trigger)
    if spec.timeout is not None and spec.timeout != "":
        seconds = parse_duration(spec.timeout)
        if seconds is None or seconds <= 0:
            report("E031", ("spec", "timeout"), "spec.timeout must be a valid duration (e.g., 1h, 30m)",
                   duration_hint(spec.timeout), dk_accepts=dk_checks.duration(spec.timeout))
    for direction in ("inputs", "outputs"):
        for i, ref in enumerate(getattr(spec, direction)):
            _check_ref(report, ("spec", direction, i), ref)
    if spec.replicas is not None:
        if batch:
            report("W253", ("spec", "replicas"), "spec.replicas only applies to streaming transforms",
                   "remove spec.replicas, or set mode: streaming if this transform runs continuously")
        if spec.replicas < 1:
            report("E254", ("spec", "replicas"), "spec.replicas must be at least 1",
                   "set replicas: 1 or more (or remove it)")
    _check_env(report, model)


def _check_trigger(report: _Report, trigger: Trigger) -> None:
    base: FieldPath = ("spec", "trigger")
    if trigger.policy not in TRIGGER_POLICIES:
        report("E235", base + ("policy",),
               "spec.trigger.policy must be schedule, on-change, manual, or composite",
               enum_hint(trigger.policy, TRIGGER_POLICIES))
    if trigger.policy == "schedule" and trigger.schedule is None:
        report("E236", base + ("schedule",), "spec.trigger.schedule is required when policy is schedule",
               "add schedule: {cron: '0 2 * * *'} under spec.trigger")
    if trigger.schedule is not None:
        _check_cron(report, base + ("schedule", "cron"), trigger.schedule.cron)
    if trigger.policy == "composite" and not trigger.policies:
        report("E237", base + ("policies",), "spec.trigger.policies is required when policy is composite",
               "list the sub-policies, e.g. policies: [schedule, on-change]")
    for i, item in enumerate(trigger.policies):
        path = base + ("policies", i)
        policy = item.policy if isinstance(item, SubPolicy) else item
        if policy not in SUB_POLICIES:
            hint = ("composite policies cannot be nested; list schedule, on-change or manual directly"
                    if policy == "composite" else enum_hint(policy, SUB_POLICIES))
            # dk checks sub-policies only under a composite policy.
            report("E238", path, "sub-policy must be schedule, on-change, or manual", hint,
                   dk_accepts=trigger.policy != "composite")
            continue
        own = item.schedule if isinstance(item, SubPolicy) else None
        if own is not None:
            _check_cron(report, path + ("schedule", "cron"), own.cron)
        elif policy == "schedule" and trigger.schedule is None:
            report("E236", path + ("schedule",) if isinstance(item, SubPolicy) else path,
                   "a schedule sub-policy needs a schedule",
                   "add spec.trigger.schedule (or a schedule on this sub-policy), "
                   "e.g. schedule: {cron: '0 2 * * *'}", dk_accepts=True)


def _check_cron(report: _Report, path: FieldPath, cron: str) -> None:
    problem = cron_problem(cron)
    if problem:
        report("E239", path, f"{format_field(path)} is not a valid cron expression: {problem}",
               "use 5 fields: minute hour day-of-month month day-of-week, e.g. '30 1 * * *' "
               "(daily at 01:30) or '*/15 * * * MON-FRI'")


def _check_ref(report: _Report, path: FieldPath, ref: DataSetRef) -> None:
    has_dataset = not _blank(ref.dataset)
    has_tags = bool(ref.tags)
    if not has_dataset and not has_tags:
        report("E250", path, "either dataset name or tags is required",
               "set dataset: <DataSet name>, or tags: {key: value} to select datasets by label")
    elif has_dataset and has_tags:
        report("E251", path, "dataset and tags are mutually exclusive — specify one or the other",
               "keep dataset for one named DataSet, or tags to select by label; remove the other")
    if ref.version and not has_tags:
        report("W210", path + ("version",), "version constraint is only used with tag-based resolution",
               "remove version, or select the dataset with tags instead of a name")
    if ref.schema_ref and not is_schema_module_ref(ref.schema_ref):
        report("E311", path + ("schema",),
               'schema must be a valid APX module reference (e.g., "users" or "users@^1.0.0")',
               _module_ref_hint(ref.schema_ref), dk_accepts=dk_checks.schema_ref(ref.schema_ref))


def _check_env(report: _Report, model: Transform) -> None:
    seen: set[str] = set()
    for i, var in enumerate(model.spec.env):
        base: FieldPath = ("spec", "env", i)
        if _blank(var.name):
            report("E255", base + ("name",), "environment variable name is required",
                   "set name: to a variable name such as LOG_LEVEL")
        elif not ENV_NAME.fullmatch(var.name):
            suggestion = re.sub(r"[^A-Za-z0-9_]+", "_", var.name).strip("_")
            if suggestion and suggestion[0].isdigit():
                suggestion = "_" + suggestion
            example = f", e.g. {suggestion}" if suggestion and ENV_NAME.fullmatch(suggestion) else ""
            report("E255", base + ("name",), f"environment variable name '{var.name}' is invalid",
                   f"use letters, digits and '_', not starting with a digit{example}")
        elif var.name in seen:
            report("E256", base + ("name",), f"environment variable {var.name} is defined twice",
                   "remove one of the two definitions; only one value can win")
        if var.name:
            seen.add(var.name)
        if var.value is not None and var.valueFrom is not None:
            report("E257", base + ("valueFrom",), "environment variable sets both value and valueFrom",
                   "keep value for a literal, or valueFrom to read it from a secret, config map or binding")

