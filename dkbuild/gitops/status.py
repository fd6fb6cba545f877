"""Status: package × environment → deployed version and digest on the GitOps base branch, whether it
is the latest published version, and the changes still pending."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dkbuild.gitops.config import GitopsConfig
from dkbuild.gitops.values import read_values


@dataclass
class Cell:
    env: str
    cell: str
    version: str
    digest: str
    registry: str
    latest: bool | None               # None when the latest published version is unknown

    def to_json(self) -> dict[str, Any]:
        return {"environment": self.env, "cell": self.cell, "version": self.version, "digest": self.digest,
                "registry": self.registry, "latest": self.latest}


@dataclass
class PackageStatus:
    label: str
    name: str
    latest: str | None
    cells: list[Cell] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"label": self.label, "package": self.name, "latest_published": self.latest,
                "environments": {env: [c.to_json() for c in self.cells if c.env == env]
                                 for env in dict.fromkeys(c.env for c in self.cells)}}


def collect(nodes: list[Any], config: GitopsConfig, checkout: Any, latest_of: Any,
            cells: set[str] | None = None) -> list[PackageStatus]:
    """`latest_of(node) -> str | None` gives the latest published version (or None); `cells`, when
    given, keeps only those cells."""
    root = f"{config.path.strip('/')}/envs/"
    files = [f for f in checkout.ls(root) if f.endswith("/values.yaml")]
    out = []
    for node in nodes:
        status = PackageStatus(node.id, node.name, latest_of(node))
        for env in config.order:
            prefix = f"{root}{env}/cells/"
            for file in sorted(f for f in files if f.startswith(prefix)):
                cell, _, rest = file[len(prefix):].partition("/")
                if rest != f"apps/{node.name}/values.yaml" or (cells and cell not in cells):
                    continue
                values = read_values(checkout.show(file))
                version = str(values.get("appVersion") or "")
                status.cells.append(Cell(env, cell, version, str(values.get("digest") or ""),
                                         str(values.get("registry") or ""),
                                         None if status.latest is None else version == status.latest))
        out.append(status)
    return out
