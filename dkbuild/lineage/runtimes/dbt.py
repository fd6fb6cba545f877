"""dbt: `dbt run` in the package with a profiles.yml that dkb writes from the output store.

dk writes profiles.yml with its Python SDK (`dk-profiles generate`) from DK_STORE_* and runs
`dbt run` with DBT_PROFILES_DIR. dkb writes the same kind of profile itself, under .dkb/run/, and
points dbt's target/ and logs/ there too, so a run leaves the package directory as it was. The
profile refers to secrets with dbt's `env_var()`, so no value is written to disk.

On a DuckDB store (a dev-profile stand-in, typically) the input tables that do not exist yet are
created, empty, from their DataSets' schemas, so a project compiles and runs on a fresh machine.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from dkbuild.lineage.runtimes.base import RunContext, RuntimeError_, Step, spec_command
from dkbuild.lineage.storeenv import ResolvedStore, variables_in

ADAPTERS = {"duckdb": "dbt-duckdb", "postgres": "dbt-postgres", "postgresql": "dbt-postgres"}
# DataSet schema types -> DuckDB column types (anything else is VARCHAR).
DUCKDB_TYPES = {"integer": "BIGINT", "int": "BIGINT", "long": "BIGINT", "bigint": "BIGINT",
                "decimal": "DECIMAL(18,4)", "number": "DOUBLE", "float": "DOUBLE", "double": "DOUBLE",
                "boolean": "BOOLEAN", "bool": "BOOLEAN", "timestamp": "TIMESTAMP", "datetime": "TIMESTAMP",
                "date": "DATE", "string": "VARCHAR", "text": "VARCHAR"}


class DbtRuntime:
    name = "dbt"
    tools = ("dbt",)
    install = ("dbt-core with the adapter of the output store (`pip install dbt-core dbt-duckdb`, or "
               "dbt-postgres for a postgres store)")

    def local_steps(self, ctx: RunContext, tools: dict[str, str]) -> list[Step]:
        store = output_store(ctx)
        adapter = ADAPTERS.get(store.type.lower())
        if adapter is None:
            raise RuntimeError_(f'store "{store.name}" is {store.type}; dkb writes dbt profiles for '
                                f"{', '.join(sorted(set(ADAPTERS)))} only. Point it at a local DuckDB file in "
                                "the dev profile ([stores.NAME] connector = \"duckdb\")")
        missing = missing_adapter(tools["dbt"], store.type.lower())
        if missing:
            raise RuntimeError_(f"{tools['dbt']} has no {store.type} adapter ({missing}); install {adapter} "
                                "next to dbt-core (`pip install " + adapter + "`)")
        target = ctx.env.get("DBT_TARGET") or "dev"
        ctx.files[ctx.work_dir / "profiles.yml"] = profiles_yml(project_profile(ctx.package_dir), target, store)
        if store.type.lower() == "duckdb":
            ctx.setup.append(lambda: create_missing_inputs(ctx, store))
        env = {"DBT_PROFILES_DIR": str(ctx.work_dir), "DBT_TARGET_PATH": str(ctx.work_dir / "target"),
               "DBT_LOG_PATH": str(ctx.work_dir / "logs")}
        return [Step([tools["dbt"], "run", "--target", target, *ctx.extra_args], ctx.package_dir,
                     what="dbt run", env=env)]

    def container_command(self, ctx: RunContext) -> list[str]:
        return spec_command(ctx) + ctx.extra_args


def output_store(ctx: RunContext) -> ResolvedStore:
    """The store dbt builds into: the first output dataset's."""
    by_name = {s.name: s for s in ctx.stores}
    for dataset in ctx.outputs:
        if dataset.spec.store in by_name:
            return by_name[dataset.spec.store]
    raise RuntimeError_(f"{ctx.transform_id}: a dbt run needs an output dataset with a store (the warehouse "
                        "dbt builds into); spec.outputs has none")


def project_profile(package_dir: Path) -> str:
    from dkbuild.manifests.yamlsource import parse_documents

    path = package_dir / "dbt_project.yml"
    try:
        documents, problems = parse_documents(path.read_text(encoding="utf-8"), str(path))
    except OSError:
        raise RuntimeError_(f"{path} is missing: a dbt package is a dbt project") from None
    data = documents[0].data if documents and not problems else None
    profile = data.get("profile") if isinstance(data, dict) else None
    if not isinstance(profile, str) or not profile:
        raise RuntimeError_(f"{path}: needs `profile: NAME` (the profile dkb writes for the run)")
    return profile


def _env_ref(store: ResolvedStore, key: str) -> str:
    """dbt's env_var() of the variable behind a `${VAR}` secret: the value stays in the environment."""
    raw = store.secrets.get(key, "").strip()
    names = variables_in(raw)
    if len(names) != 1 or raw != "${" + names[0] + "}":
        raise RuntimeError_(f'store "{store.name}": secret "{key}" must be one ${{VAR}} reference for dbt')
    return "{{ env_var('" + names[0] + "') }}"


def profiles_yml(profile: str, target: str, store: ResolvedStore) -> str:
    c = store.connection
    if store.type.lower() == "duckdb":
        output: dict[str, Any] = {"type": "duckdb", "path": str(c.get("path") or ":memory:"),
                                  "schema": str(c.get("schema") or "main"), "threads": 1}
    else:
        output = {"type": "postgres", "host": str(c.get("host") or "localhost"), "port": int(c.get("port") or 5432),
                  "user": str(c.get("user") or c.get("username") or ""),
                  "dbname": str(c.get("dbname") or c.get("database") or ""),
                  "schema": str(c.get("schema") or "public"), "threads": 1}
        if "password" in store.secrets:
            output["password"] = _env_ref(store, "password")
        if c.get("sslmode"):
            output["sslmode"] = str(c["sslmode"])
    # JSON is YAML: no YAML writer needed, and every value is quoted as it should be.
    return json.dumps({profile: {"target": target, "outputs": {target: output}}}, indent=2) + "\n"


def missing_adapter(dbt: str, store_type: str) -> str:
    """'' when dbt's Python has the adapter package for `store_type`, else what is missing."""
    module = "dbt.adapters." + ("postgres" if store_type.startswith("postgres") else store_type)
    try:
        first = Path(dbt).read_text(encoding="utf-8", errors="replace").splitlines()[0]
    except (OSError, IndexError):
        return ""
    python = first[2:].strip().split()[0] if first.startswith("#!") else ""
    if not python or "python" not in Path(python).name:
        return ""        # not a Python console script (a frozen build): let dbt say it
    probe = subprocess.run([python, "-c", f"import importlib.util,sys; sys.exit(importlib.util.find_spec({module!r}) is None)"],
                           capture_output=True, check=False, timeout=60)
    return "" if probe.returncode == 0 else f"no module {module}"


def create_missing_inputs(ctx: RunContext, store: ResolvedStore) -> list[str]:
    """CREATE the input tables of `store` that do not exist, from the DataSets' schemas."""
    try:
        import duckdb
    except ImportError:
        return ["duckdb is not importable by dkb; missing input tables are not created"]
    path = str(store.connection.get("path") or ":memory:")
    if path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    created = []
    with duckdb.connect(path) as con:
        for dataset in ctx.inputs:
            spec = dataset.spec
            if spec.store != store.name or not spec.table or not spec.schema_:
                continue
            schema, _, table = spec.table.rpartition(".")
            qualified = f'"{schema}"."{table}"' if schema else f'"{table}"'
            if schema:
                con.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            columns = ", ".join(f'"{f.name}" {DUCKDB_TYPES.get(f.type.lower(), "VARCHAR")}' for f in spec.schema_)
            exists = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = ? "
                                 "AND table_name = ?", [schema or "main", table]).fetchone()
            if exists and exists[0]:
                continue
            con.execute(f"CREATE TABLE {qualified} ({columns})")
            created.append(spec.table)
    return [f"created empty input table(s) {', '.join(created)} in {path} from their DataSet schemas"] \
        if created else []
