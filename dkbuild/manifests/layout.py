"""Where manifests live (contract §1.12) and which package owns each file.

Supported layouts:
  - `dk.yaml` anywhere, any kind: its directory is a *package*;
  - flat resource directories inside a package: `<pkg>/{connector,store,dataset,dataset-group}/*.y(a)ml`;
  - scaffolding files: `datasets/<n>/dataset.yaml`, `stores/<n>/store.yaml`,
    `connectors/<n>/connector.yaml`, `dataset-groups/<n>/dataset-group.yaml`. They belong to the
    nearest enclosing package, or, outside any package, to their own directory.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Iterable

PACKAGE_FILE = "dk.yaml"
RESOURCE_DIR_OF = {"Connector": "connector", "Store": "store", "DataSet": "dataset", "DataSetGroup": "dataset-group"}
RESOURCE_DIRS = tuple(RESOURCE_DIR_OF.values())
SCAFFOLD_FILES = {"dataset.yaml": "datasets", "store.yaml": "stores",
                  "connector.yaml": "connectors", "dataset-group.yaml": "dataset-groups"}


@dataclass(frozen=True)
class ManifestFile:
    path: str       # workspace-relative posix path
    package: str    # the package directory that owns it ("" is the workspace root)
    layout: str     # "dk.yaml" | "flat" | "scaffold"


def package_dirs(paths: Iterable[str]) -> set[str]:
    return {posixpath.dirname(p) for p in paths if posixpath.basename(p) == PACKAGE_FILE}


def owning_package(path: str, packages: set[str]) -> str | None:
    """The nearest package directory at or above the file's directory."""
    directory = posixpath.dirname(path)
    while True:
        if directory in packages:
            return directory
        if not directory:
            return None
        directory = posixpath.dirname(directory)


def manifest_files(paths: Iterable[str]) -> list[ManifestFile]:
    # Every manifest is a .yaml or .yml file; a workspace's other files are most of its files.
    paths = sorted(p for p in paths if p.endswith((".yaml", ".yml")))
    packages = package_dirs(paths)
    found = []
    for path in paths:
        directory, base = posixpath.split(path)
        if base == PACKAGE_FILE:
            found.append(ManifestFile(path, directory, "dk.yaml"))
            continue
        parent, dirname = posixpath.split(directory)
        if dirname in RESOURCE_DIRS and parent in packages and base.endswith((".yaml", ".yml")):
            found.append(ManifestFile(path, parent, "flat"))
            continue
        scaffold_root = SCAFFOLD_FILES.get(base)
        if scaffold_root and posixpath.basename(parent) == scaffold_root:
            owner = owning_package(path, packages)
            found.append(ManifestFile(path, directory if owner is None else owner, "scaffold"))
    return found


def is_resource_path(path: str, package: str) -> bool:
    """True for files that are manifests of the package rather than its source files."""
    rel = path[len(package) + 1:] if package else path
    head = rel.split("/", 1)[0]
    return rel == PACKAGE_FILE or head in RESOURCE_DIRS
