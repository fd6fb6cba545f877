"""Store environment variables for a run (contract §1.13): `DK_STORE_DSN_<NAME>` and `DK_STORE_TYPE_<NAME>`.

Pure: the graph and an environment mapping in, a dict out. Store secrets are `${VAR}` references that
are resolved at run time from the given environment, else from the dev profile's values; secret
values never appear in error messages. A store can be replaced for a run by a stand-in (a local
DuckDB file from the dev profile, a cell's definition for `--cell`).

TYPE choice: dk writes `spec.connector` verbatim. dkb resolves the Store's connector to its Connector
(by metadata.name, as dk's runner does) and uses the Connector's `spec.type` (e.g. `aws-s3` -> `s3`);
when no Connector of that name exists, or it has no type, `spec.connector` itself is used. The same
resolved type picks the DSN rule, so a store on connector `aws-s3` gets an `s3://` DSN.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from dkbuild.graph.model import EdgeKind, Graph, Node

_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class StoreEnvError(ValueError):
    """A store cannot be turned into environment variables (missing store, unset secret variable)."""


@dataclass(frozen=True)
class ResolvedStore:
    """One store as a run sees it, after a dev-profile stand-in or a cell's definition replaced it.
    `secrets` keeps the raw `${VAR}` text: files dkb writes for a tool (dbt profiles, CloudQuery
    specs) refer to variables, never hold values."""
    name: str
    env_name: str
    type: str
    connection: dict[str, Any]
    secrets: dict[str, str]
    origin: str = "workspace"            # workspace | dev profile | cell NAME
    connector: str = ""                  # the connector name it was defined with


@dataclass(frozen=True)
class StoreEnv:
    env: dict[str, str]
    secret_values: tuple[str, ...] = ()      # resolved secret values, for masking only
    unresolved: tuple[str, ...] = field(default=())  # variables left as ${VAR} (placeholder mode)
    stores: tuple[ResolvedStore, ...] = ()
    profile_env: dict[str, str] = field(default_factory=dict)   # secret variables the dev profile set


def env_name(store_name: str) -> str:
    return store_name.upper().replace("-", "_").replace(".", "_")


def store_env(graph: Graph, transform_id: str, environ: Mapping[str, str]) -> dict[str, str]:
    """`DK_STORE_DSN_<NAME>` / `DK_STORE_TYPE_<NAME>` for every distinct store the transform's
    datasets live in. Raises StoreEnvError naming the store, key and variable of an unset secret."""
    return resolve_store_env(graph, transform_id, environ).env


def resolve_store_env(graph: Graph, transform_id: str, environ: Mapping[str, str], *,
                      placeholders: bool = False, profile: Mapping[str, str] | None = None,
                      replacements: Mapping[str, Any] | None = None, datasets: list[str] | None = None,
                      replaced_by: str = "dev profile") -> StoreEnv:
    """Like store_env, also returning the secret values (to mask them). A secret variable comes from
    `environ`, else `profile` (the dev profile's [secrets]), else it is an error; with `placeholders`
    it stays as the literal `${VAR}` instead (used by dry runs). `replacements` maps a store name to
    a stand-in (connector, connection, secrets) that replaces it, e.g. a local DuckDB file.
    `datasets` overrides the transform's datasets (`--set spec.inputs...`)."""
    env: dict[str, str] = {}
    secrets_seen: list[str] = []
    unresolved: list[str] = []
    resolved: list[ResolvedStore] = []
    from_profile: dict[str, str] = {}
    lookup = {**(profile or {}), **environ}
    for store in stores_of(graph, transform_id, datasets):
        spec = store.manifest.model.spec
        stand_in = (replacements or {}).get(store.name)
        connector_name = stand_in.connector if stand_in is not None else spec.connector
        if stand_in is not None:
            connector_type, connection = _type_of(graph, stand_in.connector), dict(stand_in.connection)
            raw_secrets = {k: str(v) for k, v in stand_in.secrets.items()}
        else:
            connector_type, connection = _connector_type(graph, store), dict(spec.connection)
            raw_secrets = {k: str(v) for k, v in spec.secrets.items()}
        secrets = {}
        for key, raw in sorted(raw_secrets.items()):
            value, missing = _interpolate(raw, lookup)
            if missing and not placeholders:
                var = missing[0]
                raise StoreEnvError(
                    f'store "{store.name}": secret "{key}" refers to environment variable {var}, which is not '
                    f"set. Export {var}, or set it in the local dev profile: `dkb config set --dev secrets.{var} "
                    f"VALUE` (`dkb dev profile` writes .dkb/dev/profile.toml from the workspace's template)")
            unresolved.extend(missing)
            secrets[key] = value
            if value and not missing:
                secrets_seen.append(value)
            from_profile.update({v: lookup[v] for v in variables_in(raw) if v not in environ and v in lookup})
        name = env_name(store.name)
        env[f"DK_STORE_DSN_{name}"] = dsn(connector_type, connection, secrets)
        env[f"DK_STORE_TYPE_{name}"] = connector_type
        resolved.append(ResolvedStore(store.name, name, connector_type, connection, raw_secrets,
                                      replaced_by if stand_in is not None else "workspace", connector_name))
    return StoreEnv(env, tuple(secrets_seen), tuple(dict.fromkeys(unresolved)), tuple(resolved), from_profile)


def variables_in(text: str) -> list[str]:
    """The variables a Store secret's text refers to (`${VAR}`), in order."""
    return _REF.findall(text)


def secret_variables(graph: Graph) -> dict[str, str]:
    """Every `${VAR}` the workspace's stores use as a secret -> where (for a dev-profile skeleton)."""
    found: dict[str, str] = {}
    for node in graph.nodes.values():
        if node.kind == "Store":
            for key, raw in sorted(node.manifest.model.spec.secrets.items()):
                for var in variables_in(str(raw)):
                    found.setdefault(var, f'store "{node.name}", secret "{key}"')
    return found


def stores_of(graph: Graph, transform_id: str, datasets: list[str] | None = None) -> list[Node]:
    """Distinct stores of the transform's input and output datasets (or of `datasets`, by name), in
    first-reference order."""
    if transform_id not in graph.nodes:
        raise StoreEnvError(f"{transform_id} is not a target in this workspace")
    transform = graph.nodes[transform_id]
    found: dict[str, Node] = {}
    for dataset in _datasets(graph, transform_id, datasets):
        store_name = dataset.manifest.model.spec.store
        if not store_name:
            continue
        node = graph.lookup("Store", store_name)
        if node is None:
            raise StoreEnvError(f'store "{store_name}" referenced by dataset "{dataset.name}" but not found '
                                f"(needed by {transform.id})")
        found.setdefault(node.id, node)
    for dangling in graph.dangling if datasets is None else ():
        if dangling.node == transform_id and dangling.kind == "DataSet":
            raise StoreEnvError(f'{transform.id}: {dangling.field} names dataset "{dangling.name}", '
                                "which is not defined in this workspace")
    return list(found.values())


def _datasets(graph: Graph, transform_id: str, names: list[str] | None) -> list[Node]:
    if names is None:
        return [graph.nodes[e.dst] for e in graph.out_edges.get(transform_id, ())
                if e.kind in (EdgeKind.READS, EdgeKind.WRITES)]
    nodes = []
    for name in names:
        node = graph.lookup("DataSet", name)
        if node is None:
            raise StoreEnvError(f'{transform_id}: dataset "{name}" is not defined in this workspace')
        nodes.append(node)
    return nodes


def _connector_type(graph: Graph, store: Node) -> str:
    return _type_of(graph, store.manifest.model.spec.connector)


def _type_of(graph: Graph, name: str) -> str:
    """The `spec.type` of the Connector named `name`, else `name` itself (e.g. duckdb)."""
    connector = graph.lookup("Connector", name) if name else None
    if connector is not None and connector.manifest.model.spec.type:
        return str(connector.manifest.model.spec.type)
    return name


def _interpolate(text: str, environ: Mapping[str, str]) -> tuple[str, list[str]]:
    missing: list[str] = []

    def sub(match: re.Match[str]) -> str:
        var = match.group(1)
        if var in environ:
            return environ[var]
        missing.append(var)
        return match.group(0)

    return _REF.sub(sub, text), missing


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(_text(v) for v in value)
    return "" if value is None else str(value)


def dsn(connector_type: str, connection: dict[str, Any], secrets: dict[str, str]) -> str:
    """The DSN rules of contract §1.13."""
    if connection.get("connection_string"):
        out = _text(connection["connection_string"])
        for key, value in secrets.items():
            out = out.replace("${" + key + "}", value)
        return out
    kind = connector_type.lower()
    if kind in ("postgres", "postgresql"):
        host = _text(connection.get("host") or "localhost")
        port = _text(connection.get("port") or 5432)
        dbname = _text(connection.get("dbname") or connection.get("database") or "")
        user = _text(connection.get("user") or connection.get("username") or "")
        password = secrets.get("password") or _text(connection.get("password") or "")
        sslmode = _text(connection.get("sslmode") or "disable")
        userinfo = ""
        if user or password:
            userinfo = quote(user, safe="") + (":" + quote(password, safe="") if password else "") + "@"
        return f"postgresql://{userinfo}{host}:{port}/{quote(dbname, safe='')}?sslmode={quote(sslmode, safe='')}"
    if kind == "s3":
        bucket = _text(connection.get("bucket") or "")
        params = sorted((k, _text(v)) for k, v in connection.items() if k != "bucket")
        return f"s3://{bucket}" + (f"?{urlencode(params)}" if params else "")
    if kind == "kafka":
        servers = _text(connection.get("bootstrapServers") or connection.get("brokers") or "localhost:9092")
        return f"kafka://{servers}/{_text(connection.get('topic') or '')}"
    params = sorted((k, _text(v)) for k, v in connection.items())
    return f"{connector_type}:?{urlencode(params)}"


def mask(value: str, secret_values: tuple[str, ...] | list[str]) -> str:
    """A DSN safe to print: every resolved secret and any URL password replaced by `***`."""
    for secret in sorted(set(secret_values), key=len, reverse=True):
        if secret:
            value = value.replace(secret, "***").replace(quote(secret, safe=""), "***")
    return re.sub(r"(://[^:/?#@]*:)[^@/?#]+@", r"\1***@", value)
