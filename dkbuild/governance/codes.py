"""The catalogue of diagnostic codes: one code per distinct problem, and its default severity.

dk's codes are kept where dk gave a problem its own code; where dk reused one code for several
problems (E001, E002, ...), each extra problem got a new code; `DK_CODES` says which dk code each
one corresponds to. `summary` feeds SARIF rule metadata and the README table.

Severity is decided here, per code, and applied in one place (governance.severity), never by the
checks themselves:

  error     blocks (lint exit 1): what dk rejects too, what would make a wrong or unsafe artifact,
            and the governance policy the FAQ promises (pii: true needs a classification);
  warning   reported; `--strict` makes it an error (dkb findings dk has no word for, that no valid
            dk package has);
  advisory  reported as a warning, never raised by `--strict`: about something dk accepts
            silently (a style guess, a check dk never had). Only `[lint.severity]` raises it.

A finding on a value that dk's own validator accepts (Diagnostic.dk_accepts), and a contract
finding on a file dk never lints (a package's flat connector/ or store/ copy), is advisory
whatever its code's default, except for the `REFERENCE_CHAIN` codes.
"""

from __future__ import annotations

from dataclasses import dataclass

SEVERITIES = ("error", "warning", "advisory")


@dataclass(frozen=True)
class Code:
    code: str
    severity: str   # default severity: "error" | "warning" | "advisory"
    summary: str
    group: str      # load | manifest | graph | policy | workspace | rule

    @property
    def dk(self) -> str:
        """The dk code for the same problem, or "" when dk has none (dkb only)."""
        return DK_CODES.get(self.code, "")


_CATALOGUE: list[tuple[str, str, str, str]] = [
    # Loading: the input is unusable (exit 2).
    ("E100", "error", "invalid YAML syntax (or an unsupported YAML tag)", "load"),
    ("E101", "error", "a manifest document is not a mapping", "load"),
    ("E002", "error", "unsupported manifest kind", "load"),
    ("E102", "error", "manifest is missing 'kind'", "load"),
    ("E103", "advisory", "manifest is missing 'apiVersion' (dk reads it by its kind)", "load"),
    ("E104", "error", "manifest is missing 'metadata'", "load"),
    ("E105", "error", "a field has the wrong type", "load"),
    ("E106", "error", "manifest file is over the size limit; not loaded", "load"),
    ("E107", "error", "YAML alias expansion or nesting over the limit (billion laughs)", "load"),
    ("E108", "error", "duplicate key in a YAML mapping", "load"),
    ("E110", "error", "two manifests define the same label", "load"),
    ("E111", "advisory", "unsupported apiVersion (dk reads it by its kind)", "load"),
    ("E112", "error", "manifest file is not UTF-8 text", "load"),
    ("W100", "advisory", "unknown field (not part of the contract; ignored)", "load"),
    ("W111", "advisory", "symlink pointing outside the workspace; not followed", "load"),
    # workspace.toml
    ("E120", "error", "no workspace.toml found", "workspace"),
    ("E121", "error", "workspace.toml is not valid TOML", "workspace"),
    ("E122", "error", "unknown key in workspace.toml", "workspace"),
    ("E123", "error", "invalid value in workspace.toml", "workspace"),
    ("E540", "error", "the dev profile (.dkb/dev/profile.toml) or its template is invalid", "workspace"),
    # Per-manifest rules (contract §2.2).
    ("E001", "error", "metadata.name is not DNS-safe", "manifest"),
    ("E006", "error", "metadata.name is required", "manifest"),
    ("E007", "error", "metadata.namespace is not DNS-safe", "manifest"),
    ("E020", "error", "version is not valid SemVer", "manifest"),
    ("E031", "error", "spec.timeout is not a valid duration", "manifest"),
    ("E043", "error", "duplicate schema field name", "manifest"),
    ("E200", "error", "Connector spec.type is required", "manifest"),
    ("E201", "error", "Connector spec.capabilities must list at least one capability", "manifest"),
    ("E202", "error", "Connector capability must be 'source' or 'destination'", "manifest"),
    ("E203", "error", "Connector spec.provider is not DNS-safe", "manifest"),
    ("E204", "error", "Connector tool name is required", "manifest"),
    ("E205", "error", "Connector tool type must be 'exec' or 'config'", "manifest"),
    ("W206", "advisory", "Connector capability listed twice", "manifest"),
    ("E210", "error", "Store spec.connector is required", "manifest"),
    ("E211", "error", "Store spec.connection must have at least one entry", "manifest"),
    ("E212", "error", "Store secret value is empty", "manifest"),
    ("E213", "error", "Store spec.connectorVersion is not a valid semver range", "manifest"),
    ("E214", "error", "Store secret is a literal value, not a ${VAR} reference", "manifest"),
    ("W215", "advisory", "Store connection key looks secret; it belongs in spec.secrets", "manifest"),
    ("E220", "error", "DataSet spec.store is required", "manifest"),
    ("E221", "advisory", "DataSet needs one of spec.table, spec.prefix or spec.topic", "manifest"),
    ("E222", "error", "schema field name is required", "manifest"),
    ("E223", "error", "schema field type is required", "manifest"),
    ("E224", "error", "classification must be public, internal, confidential or restricted", "manifest"),
    ("W225", "advisory", "unknown DataSet format", "manifest"),
    ("E226", "warning", "unknown column masking method", "manifest"),
    ("E227", "advisory", "column 'from' must be written <dataset>.<column>", "manifest"),
    ("E228", "warning", "spec.declassify needs a reason", "manifest"),
    ("E230", "error", "Transform needs at least one input dataset", "manifest"),
    ("E231", "error", "Transform needs at least one output dataset", "manifest"),
    ("E232", "error", "spec.image is required for generic-* and dbt runtimes", "manifest"),
    ("E233", "error", "spec.runtime must be a runtime a loaded build rule provides (dk's four, or a workspace rule's)", "manifest"),
    ("E234", "error", "spec.mode must be batch or streaming", "manifest"),
    ("E235", "error", "spec.trigger.policy must be schedule, on-change, manual or composite", "manifest"),
    ("E236", "error", "spec.trigger.schedule is required when the policy is schedule", "manifest"),
    ("E237", "error", "spec.trigger.policies is required when the policy is composite", "manifest"),
    ("E238", "error", "a composite sub-policy must be schedule, on-change or manual", "manifest"),
    ("E239", "advisory", "spec.trigger.schedule.cron is not a valid 5-field cron expression", "manifest"),
    ("E240", "error", "DataSetGroup spec.store is required", "manifest"),
    ("E241", "error", "DataSetGroup spec.datasets must list at least one dataset", "manifest"),
    ("E242", "advisory", "DataSetGroup lists a dataset twice", "manifest"),
    ("E250", "error", "a dataset reference needs either 'dataset' or 'tags'", "manifest"),
    ("E251", "error", "a dataset reference sets both 'dataset' and 'tags'", "manifest"),
    ("E252", "advisory", "the dbt runtime cannot run in streaming mode", "manifest"),
    ("W253", "advisory", "spec.replicas only applies to streaming transforms", "manifest"),
    ("E254", "advisory", "spec.replicas must be at least 1", "manifest"),
    ("E255", "advisory", "environment variable name is missing or invalid", "manifest"),
    ("E256", "advisory", "environment variable defined twice", "manifest"),
    ("E257", "advisory", "environment variable sets both value and valueFrom", "manifest"),
    ("W209", "advisory", "a trigger is recommended for batch transforms", "manifest"),
    ("W210", "advisory", "a version constraint is only used with tag-based references", "manifest"),
    ("E310", "error", "spec.schemaRef and spec.schema are mutually exclusive", "manifest"),
    ("E311", "error", "schema reference must be 'module' or 'module@constraint'", "manifest"),
    # Cross-package checks (dk has none of these).
    ("W500", "advisory", "reference to a DataSet the workspace does not define (external)", "graph"),
    ("W501", "advisory", "reference to a Store the workspace does not define (external)", "graph"),
    ("W502", "advisory", "reference to a Connector the workspace does not define (external)", "graph"),
    ("W503", "advisory", "DataSetGroup member the workspace does not define (external)", "graph"),
    ("E504", "error", "two shared definitions of one target differ", "graph"),
    ("W505", "warning", "a dataset has more than one producer", "graph"),
    ("W506", "warning", "cycle in the data graph", "graph"),
    ("W507", "advisory", "column lineage 'from' comes from an external dataset", "graph"),
    ("W508", "warning", "DataSetGroup member lives in a different store than the group", "graph"),
    ("W509", "advisory", "tag selector matches no dataset", "graph"),
    ("W510", "warning", "contract drift: copies of one physical dataset disagree", "graph"),
    ("W517", "warning", "column lineage 'from' names a column the dataset does not have", "graph"),
    # Governance policies ([policy] in workspace.toml).
    ("E600", "error", "dataset with PII columns has no classification (or one outside pii_allowed_classifications)", "policy"),
    ("E601", "advisory", "column derived from a PII column must be pii: true or declare masking", "policy"),
    ("E602", "advisory", "dataset classified lower than a dataset it is derived from, without declassify", "policy"),
]

CODES: dict[str, Code] = {c: Code(c, sev, summary, group) for c, sev, summary, group in _CATALOGUE}

# Contract findings that stay errors on files dk's lint never reads: the fields dk's runner follows
# from a Transform to its package's copies (DataSet -> Store -> Connector, by metadata.name,
# sdk/runner/cqconfig.go). Without them `dk run` fails, and dkb would pack a copy that resolves to
# nothing.
REFERENCE_CHAIN = frozenset({"E006", "E210", "E220"})

# Runtime checks contributed by build rules (dkbuild_rules). Source that cannot run (E700, E711,
# E721) and a cloudquery sync without its plugin (E730, E731) would make a wrong artifact: errors.
_RULE_CODES = [
    ("E042", "error", "a file in schemas/ is not the schema its extension says (.avsc, .json, .proto)", "rule"),
    ("E700", "error", "a Python source file does not compile", "rule"),
    ("E710", "advisory", "generic-go package has no go.mod", "rule"),
    ("E711", "error", "go.mod declares no module path", "rule"),
    ("E720", "advisory", "dbt package has no dbt_project.yml", "rule"),
    ("E721", "error", "dbt_project.yml is not valid YAML or lacks a name", "rule"),
    ("E730", "error", "cloudquery input's connector has no source plugin image", "rule"),
    ("E731", "error", "cloudquery output's connector has no destination plugin image", "rule"),
]
CODES.update({c: Code(c, sev, summary, group) for c, sev, summary, group in _RULE_CODES})

# The dk code reported for the same problem (sdk/validate, contracts' codes as validator.go uses
# them). dk's parse failures are all E041 "failed to parse dk.yaml"; its E001 means both "required"
# and "not DNS-safe", its E002 any bad value. A code missing here has no dk counterpart.
DK_CODES: dict[str, str] = {
    "E100": "E041", "E101": "E041", "E002": "E041", "E102": "E041", "E104": "E001", "E105": "E041",
    "E107": "E041", "E108": "E041", "E112": "E041",
    "E001": "E001", "E006": "E001", "E007": "E001", "E020": "E020", "E031": "E031", "E043": "E043",
    "E200": "E200", "E201": "E201", "E202": "E002", "E203": "E001", "E204": "E001", "E205": "E002",
    "E210": "E210", "E211": "E211", "E212": "E212", "E213": "E002",
    "E220": "E220", "E221": "E221", "E222": "E222", "E223": "E222", "E224": "E002",
    "E230": "E230", "E231": "E231", "E232": "E232", "E233": "E002", "E234": "E002", "E235": "E002",
    "E236": "E001", "E237": "E001", "E238": "E002", "E240": "E240", "E241": "E241",
    "E250": "E001", "E251": "E002", "W209": "W209", "W210": "W210", "E310": "E310", "E311": "E311",
    "E600": "E025", "E042": "E042",
}
