"""Text templates of `dkb init` (str.format placeholders; literal braces are doubled)."""

from __future__ import annotations

API = "datakit.infoblox.dev/v1alpha1"

# --- dk.yaml -------------------------------------------------------------------------------------

TRANSFORM = """\
# {description}
# Reference: `dkb schema Transform`. Check with `dkb lint --strict`, build with `dkb build`.
apiVersion: {api}
kind: Transform
metadata:
  name: {name}
{namespace_line}  version: 0.1.0
spec:
  runtime: {runtime}
  mode: {mode}
{image_block}  inputs:
    - dataset: {input}
  outputs:
    - dataset: {output}
{trigger_block}  timeout: 30m
  resources:
    cpu: "1"
    memory: 1Gi
{extra_block}"""

# --- contracts (flat resource directories, contract §1.12 layout 1) ------------------------------

DATASET_HEADER = """\
# Data contract for {role} of {package}. Rename it (and the reference in dk.yaml) when it
# describes a real table, prefix or topic; keep the classification honest: dkb lint checks it.
apiVersion: {api}
kind: DataSet
metadata:
  name: {name}
  version: 0.1.0
spec:
  store: {store}
"""

STORE = """\
# Where {package}'s data lives. Secrets are ${{VAR}} references resolved at run time; never
# write a literal secret here (lint error E214).
apiVersion: {api}
kind: Store
metadata:
  name: {name}
spec:
  connector: {connector}
  connection:
{connection}{secrets_block}"""

CONNECTOR = """\
# The technology behind store {store}. Platform teams usually share one definition; a
# package-local copy must stay identical to it.
apiVersion: {api}
kind: Connector
metadata:
  name: {name}
spec:
  type: {type}
  provider: {name}
  protocol: {protocol}
  capabilities: [source, destination]
{plugin_block}"""

# --- generic-python ------------------------------------------------------------------------------

PY_INIT = '''\
"""The `{name}` transform: reads {input}, writes {output}."""

__version__ = "0.1.0"
'''

PY_MAIN = '''\
"""Entry point of the `{name}` transform.

Reads `{input}`, writes `{output}`. Locally the datasets are JSON-lines files named by
environment variables:

    {env}_INPUT_PATH    {input} rows (a missing file means nothing to do)
    {env}_OUTPUT_PATH   {output} rows (stdout when unset)

In a deployment DK_STORE_DSN_<STORE> names each store; it is only reported here.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import Any, Iterable, Iterator

log = logging.getLogger("{name}")


def read_rows(path: str | None) -> list[dict[str, Any]]:
    """Rows of a JSON-lines file; [] when the path is unset or missing."""
    if not path or not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def transform(rows: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """One output row per input row. Replace with the real logic."""
    for row in rows:
        yield {{"id": row.get("id"), "created_at": row.get("created_at"), "processed": True}}


def write_rows(rows: Iterable[dict[str, Any]], path: str | None) -> int:
    out = open(path, "w", encoding="utf-8") if path else sys.stdout
    count = 0
    try:
        for row in rows:
            out.write(json.dumps(row, sort_keys=True) + "\\n")
            count += 1
    finally:
        if path:
            out.close()
    return count


def main() -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s {name}: %(message)s")
    rows = read_rows(os.environ.get("{env}_INPUT_PATH"))
    if not rows:
        log.info("no input rows; nothing to do")
        return 0
    written = write_rows(transform(rows), os.environ.get("{env}_OUTPUT_PATH"))
    log.info("read %d rows, wrote %d", len(rows), written)
    return 0


if __name__ == "__main__":
    sys.exit(main())
'''

PY_REQUIREMENTS = """\
# Installed into the image. The scaffold needs nothing beyond the standard library.
"""

# --- generic-go ----------------------------------------------------------------------------------

GO_MOD = """\
module {module}

go 1.22
"""

GO_MAIN = """\
// Command {name} reads {input} and writes {output}.
//
// Locally the datasets are JSON-lines files:
//
//	{env}_INPUT_PATH   {input} rows (a missing file means nothing to do)
//	{env}_OUTPUT_PATH  {output} rows (stdout when unset)
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
)

type row map[string]any

func run() error {{
	path := os.Getenv("{env}_INPUT_PATH")
	if path == "" {{
		fmt.Fprintln(os.Stderr, "{name}: {env}_INPUT_PATH not set; nothing to do")
		return nil
	}}
	in, err := os.Open(path)
	if os.IsNotExist(err) {{
		fmt.Fprintf(os.Stderr, "{name}: %s does not exist; nothing to do\\n", path)
		return nil
	}} else if err != nil {{
		return err
	}}
	defer in.Close()

	out := os.Stdout
	if outPath := os.Getenv("{env}_OUTPUT_PATH"); outPath != "" {{
		f, err := os.Create(outPath)
		if err != nil {{
			return err
		}}
		defer f.Close()
		out = f
	}}
	enc := json.NewEncoder(out)
	scanner := bufio.NewScanner(in)
	count := 0
	for scanner.Scan() {{
		if len(scanner.Bytes()) == 0 {{
			continue
		}}
		var r row
		if err := json.Unmarshal(scanner.Bytes(), &r); err != nil {{
			return fmt.Errorf("%s: %w", path, err)
		}}
		// Replace with the real logic.
		if err := enc.Encode(row{{"id": r["id"], "created_at": r["created_at"], "processed": true}}); err != nil {{
			return err
		}}
		count++
	}}
	fmt.Fprintf(os.Stderr, "{name}: wrote %d rows\\n", count)
	return scanner.Err()
}}

func main() {{
	if err := run(); err != nil {{
		fmt.Fprintln(os.Stderr, "{name}:", err)
		os.Exit(1)
	}}
}}
"""

# --- dbt -----------------------------------------------------------------------------------------

DBT_PROJECT = """\
name: {module}
version: "0.1.0"
config-version: 2
profile: {module}

model-paths: ["models"]
clean-targets: ["target", "dbt_packages"]

models:
  {module}:
    +materialized: table
"""

DBT_MODEL = """\
-- The {output} dataset ({output_table}), built from {input} ({input_table}).
select
    id,
    created_at,
    true as processed
from {{{{ source('{source_schema}', '{source_table}') }}}}
"""

DBT_SCHEMA = """\
version: 2

sources:
  - name: {source_schema}
    schema: {source_schema}
    tables:
      - name: {source_table}
        description: The {input} dataset.
        columns:
          - name: id
            tests: [not_null]

models:
  - name: {module}
    description: Published as the {output} dataset.
    columns:
      - name: id
        tests: [not_null, unique]
"""

DBT_GITIGNORE = """\
target/
dbt_packages/
logs/
"""

# --- workspace -----------------------------------------------------------------------------------

WORKSPACE_GITIGNORE = """\
# dkb's local store: cache, OCI layout, lineage events.
.dkb/
"""
