"""`dkb init`: scaffold a package that lints and builds at once, or a new workspace.

Everything is planned first (relative path -> text), checked, then written; nothing existing is
ever overwritten.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from dkbuild.manifests.models import MODES, RUNTIMES
from dkbuild.scaffold import templates as t
from dkbuild.scaffold.workspace_toml import render_workspace_toml

__all__ = ["PackagePlan", "ScaffoldError", "plan_package", "plan_workspace", "render_workspace_toml",
           "validate_name", "write_files"]

# contract §1.16, the rule of `dk init` / `dk project init`: 3-63 chars, lowercase, no edge hyphen.
NAME = re.compile(r"^[a-z][a-z0-9-]*[a-z0-9]$")


class ScaffoldError(Exception):
    """A refusal: message plus a hint (the CLI exits 2)."""

    def __init__(self, message: str, hint: str = ""):
        super().__init__(message)
        self.message = message
        self.hint = hint


def validate_name(name: str) -> None:
    if not 3 <= len(name) <= 63 or not NAME.fullmatch(name):
        suggestion = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
        suggestion = re.sub(r"^[^a-z]+", "", suggestion)[:63].rstrip("-")
        hint = ("names are 3-63 characters: lowercase letters, digits and '-', starting with a letter "
                "and not ending with '-'")
        if suggestion and suggestion != name and len(suggestion) >= 3:
            hint += f"; try --name {suggestion}"
        else:
            hint += "; pass --name NAME"
        raise ScaffoldError(f"invalid package name '{name}'", hint)


@dataclass(frozen=True)
class PackagePlan:
    name: str
    runtime: str
    mode: str
    files: dict[str, str]          # package-relative posix path -> text


def _env(name: str) -> str:
    return name.upper().replace("-", "_")


def _module(name: str) -> str:
    return name.replace("-", "_")


def _image(name: str, namespace: str | None, registry_url: str | None, registry_ns: str | None) -> str:
    host = re.sub(r"^[a-z]+://", "", registry_url or "").rstrip("/") or "registry.example.com"
    ns = namespace or registry_ns
    return f"{host}/{ns}/{name}:0.1.0" if ns else f"{host}/{name}:0.1.0"


# --- contract pieces -------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Tech:
    """One kind of store: its connector type, connection, secret keys and CloudQuery plugins."""
    type: str
    protocol: str
    suffix: str                      # store name suffix
    plugins: tuple[str, str]         # (source, destination) images


_S3 = _Tech("s3", "s3", "lake", ("ghcr.io/cloudquery/cq-source-s3:v1.4.2",
                                 "ghcr.io/cloudquery/cq-destination-s3:v7.6.1"))
_PG = _Tech("postgres", "postgresql", "db", ("ghcr.io/cloudquery/cq-source-postgresql:v8.0.0",
                                             "ghcr.io/cloudquery/cq-destination-postgresql:v8.0.0"))
_KAFKA = _Tech("kafka", "kafka", "stream", ("", ""))   # only generic streaming packages use it


def _store_files(package: str, tech: _Tech, with_plugins: bool) -> tuple[str, dict[str, str]]:
    store = f"{package}-{tech.suffix}"
    connector = f"{package}-{tech.type}"
    env = _env(store)
    if tech is _S3:
        connection = {"bucket": store, "region": "us-east-1"}
        secrets = {"access_key_id": f"{env}_ACCESS_KEY_ID", "secret_access_key": f"{env}_SECRET_ACCESS_KEY"}
    elif tech is _PG:
        connection = {"host": "localhost", "port": "5432", "database": _module(package), "user": _module(package)}
        secrets = {"password": f"{env}_PASSWORD"}
    else:
        connection = {"bootstrapServers": "localhost:9092"}
        secrets = {"sasl_password": f"{env}_SASL_PASSWORD"}
    conn_text = "".join(f"    {k}: {v}\n" for k, v in connection.items())
    secrets_text = "  secrets:\n" + "".join(f"    {k}: ${{{v}}}\n" for k, v in secrets.items())
    plugin = (f"  plugin:\n    source: {tech.plugins[0]}\n    destination: {tech.plugins[1]}\n"
              if with_plugins else "")
    return store, {
        f"store/{store}.yaml": t.STORE.format(api=t.API, package=package, name=store, connector=connector,
                                              connection=conn_text, secrets_block=secrets_text),
        f"connector/{connector}.yaml": t.CONNECTOR.format(api=t.API, store=store, name=connector, type=tech.type,
                                                          protocol=tech.protocol, plugin_block=plugin),
    }


def _dataset(package: str, role: str, name: str, store: str, location: str, fmt: str | None,
             columns: list[tuple[str, str, str | None]]) -> str:
    text = t.DATASET_HEADER.format(api=t.API, role=role, package=package, name=name, store=store)
    text += f"  {location}\n"
    if fmt:
        text += f"  format: {fmt}\n"
    text += "  classification: internal\n  schema:\n"
    for column, kind, source in columns:
        text += f"    - name: {column}\n      type: {kind}\n"
        if source:
            text += f"      from: {source}\n"
    return text


# --- the plan ------------------------------------------------------------------------------------

def plan_package(name: str, runtime: str, mode: str = "batch", namespace: str | None = None, *,
                 registry_url: str | None = None, registry_namespace: str | None = None,
                 go_module: str | None = None) -> PackagePlan:
    validate_name(name)
    if namespace is not None:
        try:
            validate_name(namespace)
        except ScaffoldError as exc:
            raise ScaffoldError(f"invalid namespace '{namespace}'", exc.hint.replace("--name", "--namespace")) from None
    if runtime not in RUNTIMES:
        raise ScaffoldError(f"unknown runtime '{runtime}'", f"choose one of {', '.join(RUNTIMES)}")
    if mode not in MODES:
        raise ScaffoldError(f"unknown mode '{mode}'", "choose batch or streaming")
    if runtime == "dbt" and mode == "streaming":
        raise ScaffoldError("the dbt runtime cannot run in streaming mode",
                            "dbt runs are batch jobs: drop --mode streaming, or pick generic-python or "
                            "generic-go for a streaming transform")

    module, env = _module(name), _env(name)
    inp, out = f"{name}-input", f"{name}-output"
    files: dict[str, str] = {}
    streaming = mode == "streaming"

    # Contracts: input and output datasets with their stores and connectors, in flat dirs.
    in_cols = [("id", "integer", None), ("created_at", "timestamp", None)]
    out_cols = [("id", "integer", f"{inp}.id"), ("created_at", "timestamp", f"{inp}.created_at"),
                ("processed", "boolean", None)]
    if runtime == "cloudquery":
        in_store, f1 = _store_files(name, _PG, with_plugins=True)
        out_store, f2 = _store_files(name, _S3, with_plugins=True)
        files.update(f1)
        files.update(f2)
        in_loc, out_loc = (f"table: public.{module}", None), (f"prefix: {name}/", "parquet")
        out_cols = out_cols[:2]
    elif runtime == "dbt":
        in_store, f1 = _store_files(name, _PG, with_plugins=False)
        out_store = in_store
        files.update(f1)
        in_loc, out_loc = (f"table: staging.{module}_input", None), (f"table: marts.{module}", None)
    else:
        tech = _KAFKA if streaming else _S3
        in_store, f1 = _store_files(name, tech, with_plugins=False)
        out_store = in_store
        files.update(f1)
        if streaming:
            in_loc, out_loc = (f"topic: {name}.input", "json"), (f"topic: {name}.output", "json")
        else:
            in_loc, out_loc = (f"prefix: {name}/input/", "parquet"), (f"prefix: {name}/output/", "parquet")
    files[f"dataset/{inp}.yaml"] = _dataset(name, "the input", inp, in_store, in_loc[0], in_loc[1], in_cols)
    files[f"dataset/{out}.yaml"] = _dataset(name, "the output", out, out_store, out_loc[0], out_loc[1], out_cols)

    # dk.yaml
    image_block = extra = ""
    if runtime != "cloudquery":
        image_block = f"  image: {_image(name, namespace, registry_url, registry_namespace)}\n"
    if runtime == "generic-python":
        image_block += f"  command: [python, -m, {module}.main]\n"
    if streaming:
        trigger_block = ""
        extra = "  replicas: 1\n"
    elif runtime == "cloudquery":
        trigger_block = ("  trigger:\n    policy: schedule\n    schedule:\n"
                         "      cron: \"0 2 * * *\"\n      timezone: UTC\n")
    else:
        trigger_block = "  trigger:\n    policy: on-change\n"
    description = {
        "generic-python": "A Python transform",
        "generic-go": "A Go transform",
        "dbt": "A dbt project",
        "cloudquery": "A CloudQuery sync",
    }[runtime] + f" ({mode}): reads {inp}, writes {out}."
    files["dk.yaml"] = t.TRANSFORM.format(
        description=description, api=t.API, name=name,
        namespace_line=f"  namespace: {namespace}\n" if namespace else "",
        runtime=runtime, mode=mode, image_block=image_block, input=inp, output=out,
        trigger_block=trigger_block, extra_block=extra)

    # Runtime files.
    fmt = {"name": name, "module": module, "env": env, "input": inp, "output": out}
    if runtime == "generic-python":
        files[f"src/{module}/__init__.py"] = t.PY_INIT.format(**fmt)
        files[f"src/{module}/main.py"] = t.PY_MAIN.format(**fmt)
        files["requirements.txt"] = t.PY_REQUIREMENTS
    elif runtime == "generic-go":
        files["go.mod"] = t.GO_MOD.format(module=go_module or f"example.com/{name}")
        files["main.go"] = t.GO_MAIN.format(**fmt)
    elif runtime == "dbt":
        files["dbt_project.yml"] = t.DBT_PROJECT.format(**fmt)
        files[f"models/{module}.sql"] = t.DBT_MODEL.format(
            output_table=f"marts.{module}", input_table=f"staging.{module}_input",
            source_schema="staging", source_table=f"{module}_input", **fmt)
        files["models/schema.yml"] = t.DBT_SCHEMA.format(source_schema="staging",
                                                         source_table=f"{module}_input", **fmt)
        files[".gitignore"] = t.DBT_GITIGNORE
    return PackagePlan(name, runtime, mode, files)


def plan_workspace() -> dict[str, str]:
    return {"workspace.toml": render_workspace_toml(), ".gitignore": t.WORKSPACE_GITIGNORE}


def write_files(root: Path, files: dict[str, str]) -> list[Path]:
    """Create every file (exclusive create: an existing file is never overwritten)."""
    written = []
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "x", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
        written.append(path)
    return written
