"""`dkb run --cell NAME`: the Stores of a deployment cell, read from its Kubernetes namespace.

As dk's CellResolver: `kubectl [--context C] get store NAME -n dk-<cell> -o json`, and the cell's
Store replaces the workspace's for this run (connector, connection, secrets as `${VAR}`).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

from dkbuild.devprofile import StoreStandIn


class CellError(Exception):
    """A cell's store cannot be read; the message names the store, the cell and the fix."""


def namespace(cell: str) -> str:
    return f"dk-{cell}"


def kubectl_argv(kubectl: str, cell: str, store: str, context: str | None = None) -> list[str]:
    return [kubectl, *(["--context", context] if context else []), "get", "store", store,
            "-n", namespace(cell), "-o", "json"]


def cell_stores(cell: str, names: list[str], context: str | None = None) -> dict[str, StoreStandIn]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise CellError(f"--cell {cell} reads Stores from the cluster (namespace {namespace(cell)}) with kubectl, "
                        "which is not on PATH; install kubectl and select the cluster (--kube-context)")
    found: dict[str, StoreStandIn] = {}
    for name in names:
        try:
            proc = subprocess.run(kubectl_argv(kubectl, cell, name, context), capture_output=True, text=True,
                                  check=False, timeout=60)
        except subprocess.TimeoutExpired:
            raise CellError(f"kubectl get store {name} -n {namespace(cell)} did not answer in 60s") from None
        if proc.returncode != 0:
            why = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"
            if "NotFound" in why or "not found" in why:
                raise CellError(f'store "{name}" not found in cell "{cell}" (namespace {namespace(cell)})')
            raise CellError(f"kubectl get store {name} -n {namespace(cell)}: {why}")
        found[name] = _stand_in(proc.stdout, name, cell)
    return found


def _stand_in(text: str, name: str, cell: str) -> StoreStandIn:
    try:
        spec: Any = json.loads(text).get("spec") or {}
    except (ValueError, AttributeError):
        raise CellError(f'store "{name}" of cell "{cell}": kubectl did not print a Store as JSON') from None
    return StoreStandIn(str(spec.get("connector") or ""), dict(spec.get("connection") or {}),
                        {k: str(v) for k, v in (spec.get("secrets") or {}).items()})
