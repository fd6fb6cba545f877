"""What dk rejects, dkb rejects with a better message: manifests that dk's validator
(sdk/validate/manifest.go) refuses make `dkb lint` exit 1 (a finding, not unusable input), with an
error that names the missing field and the file."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.compat import dkfixtures as dk
from tests.compat.corpus import run_dkb

PKG = "jobs/etl"
MANIFEST = f"{PKG}/dk.yaml"


def base() -> dict[str, Any]:
    """A valid dk package: a generic-python Transform with its own connector, store and datasets."""
    return dk.python_package(PKG, dk.transform("etl", ["raw"], ["clean"]), {
        "connector/postgres.yaml": dk.connector("postgres"),
        "store/warehouse.yaml": dk.pg_store("warehouse"),
        "dataset/raw.yaml": dk.dataset("raw", "warehouse", table="public.raw"),
        "dataset/clean.yaml": dk.dataset("clean", "warehouse", table="public.clean"),
    })


def edit(rel: str, change: Callable[[dict[str, Any]], None]) -> Callable[[], dict[str, Any]]:
    def make() -> dict[str, Any]:
        files = base()
        doc = copy.deepcopy(files[rel])
        change(doc)
        files[rel] = doc
        return files
    return make


def shared_dataset_without_store() -> dict[str, Any]:
    files = base()
    files[MANIFEST]["spec"]["inputs"].append({"dataset": "events"})
    doc = dk.dataset("events", "warehouse", table="public.events")
    del doc["spec"]["store"]
    files["datasets/events/dk.yaml"] = doc
    return files


# (case id) -> (files, file that is wrong, fields the error must name)
CASES: dict[str, tuple[Callable[[], dict[str, Any]], str, tuple[str, ...]]] = {
    "missing-metadata-name": (edit(MANIFEST, lambda d: d["metadata"].pop("name")), MANIFEST, ("metadata.name",)),
    "missing-spec-runtime": (edit(MANIFEST, lambda d: d["spec"].pop("runtime")), MANIFEST, ("spec.runtime",)),
    "no-inputs-no-outputs": (edit(MANIFEST, lambda d: (d["spec"].pop("inputs"), d["spec"].pop("outputs"))),
                             MANIFEST, ("spec.inputs", "spec.outputs")),
    "generic-python-without-image": (edit(MANIFEST, lambda d: d["spec"].pop("image")), MANIFEST, ("spec.image",)),
    "dbt-without-image": (edit(MANIFEST, lambda d: (d["spec"].update(runtime="dbt"), d["spec"].pop("image"))),
                          MANIFEST, ("spec.image",)),
    "package-dataset-without-store": (edit(f"{PKG}/dataset/raw.yaml", lambda d: d["spec"].pop("store")),
                                      f"{PKG}/dataset/raw.yaml", ("spec.store",)),
    "shared-dataset-without-store": (shared_dataset_without_store, "datasets/events/dk.yaml", ("spec.store",)),
    "store-without-connector": (edit(f"{PKG}/store/warehouse.yaml", lambda d: d["spec"].pop("connector")),
                                f"{PKG}/store/warehouse.yaml", ("spec.connector",)),
}


Invalid = tuple[Path, str, tuple[str, ...]]      # workspace, the wrong file, the fields to name


@pytest.fixture(scope="module", params=sorted(CASES))
def invalid(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Invalid:
    make, wrong_file, fields = CASES[request.param]
    return dk.workspace(tmp_path_factory.mktemp(request.param), make()), wrong_file, fields


def test_the_valid_base_package_lints_clean(tmp_path: Path) -> None:
    """The control: without the defect the same package is accepted, so each rejection is the defect's."""
    res = run_dkb("lint", "//...", cwd=dk.workspace(tmp_path / "ws", base()))
    assert res.code == 0, res


def test_lint_rejects_naming_the_field_and_the_file(invalid: Invalid) -> None:
    root, wrong_file, fields = invalid
    res = run_dkb("lint", "//...", "--output", "json", cwd=root)
    assert res.code == 1, f"a manifest dk rejects is a lint error (exit 1): {res!r}"
    errors = [d for d in dk.diagnostics(res.json()) if d["severity"] == "error" and d["file"] == wrong_file]
    for field in fields:
        assert [d for d in errors if field in (d.get("field") or "") or field in d["message"]], \
            f"an error in {wrong_file} naming {field}: {res.out}"


def test_text_output_names_the_field_and_the_file(invalid: Invalid) -> None:
    root, wrong_file, fields = invalid
    res = run_dkb("lint", "//...", cwd=root)
    assert res.code == 1, res
    for field in fields:
        assert [line for line in res.out.splitlines() if line.strip().startswith(wrong_file + ":")
                and "error" in line and field in line], f"a `{wrong_file}:LINE:COL: error ... {field}` line: {res.out}"


def test_build_refuses_with_exit_1(invalid: Invalid) -> None:
    root, wrong_file, _ = invalid
    res = run_dkb("build", "//...", cwd=root)
    assert res.code == 1, f"a rejected package fails the build (exit 1), it is not unusable input: {res!r}"
    assert wrong_file in res.out + res.err
