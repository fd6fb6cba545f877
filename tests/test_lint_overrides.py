"""dk's override semantics (sdk/manifest/merge.go), as `dkb lint -f/--set` applies them."""

from __future__ import annotations

from pathlib import Path

import pytest

from dkbuild.diagnostics import DkbError
from dkbuild.governance.overrides import Overrides, deep_merge, parse_overrides, set_path, typed_value


def test_deep_merge_merges_mappings_and_replaces_lists_and_scalars() -> None:
    base = {"spec": {"image": "a", "env": [{"name": "A"}], "resources": {"cpu": "1", "memory": "1Gi"}}}
    override = {"spec": {"env": [{"name": "B"}], "resources": {"cpu": "2"}, "timeout": None}}
    merged = deep_merge(base, override)
    assert merged == {"spec": {"image": "a", "env": [{"name": "B"}], "resources": {"cpu": "2", "memory": "1Gi"},
                               "timeout": None}}
    assert base["spec"]["resources"]["cpu"] == "1"          # inputs are never changed


def test_set_path_creates_mappings_and_list_slots() -> None:
    data: dict = {"spec": {"image": "scalar"}}
    set_path(data, "spec.image.tag", "x")                   # a scalar in the way becomes a mapping
    set_path(data, "spec.env[2].value", "v")
    set_path(data, "metadata.labels.team", "t")
    assert data == {"spec": {"image": {"tag": "x"}, "env": [None, None, {"value": "v"}]},
                    "metadata": {"labels": {"team": "t"}}}


@pytest.mark.parametrize("raw, value", [("true", True), ("false", False), ("3", 3), ("-7", -7), ("1.5", 1.5),
                                        ("1e3", 1000.0), ("1_000", "1_000"), ("True", "True"), ("v1", "v1"),
                                        ("", "")])
def test_values_are_typed_as_dk_types_them(raw: str, value: object) -> None:
    assert typed_value(raw) == value and type(typed_value(raw)) is type(value)


def test_precedence_is_files_in_order_then_sets_in_order(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("spec:\n  image: from-a\n  mode: batch\n")
    (tmp_path / "b.yaml").write_text("spec:\n  image: from-b\n")
    overrides = parse_overrides(["a.yaml", "b.yaml"], ["spec.image=from-set-1", "spec.image=from-set-2"], tmp_path)
    merged = overrides.apply({"spec": {"image": "base", "runtime": "dbt"}})
    assert merged["spec"] == {"image": "from-set-2", "mode": "batch", "runtime": "dbt"}
    assert parse_overrides(["a.yaml", "b.yaml"], [], tmp_path).apply({})["spec"]["image"] == "from-b"
    assert not Overrides() and overrides.key() != parse_overrides(["b.yaml", "a.yaml"], [], tmp_path).key()


def test_only_dk_override_paths_are_allowed(tmp_path: Path) -> None:
    allowed = ["spec.runtime=dbt", "spec.inputs[0].dataset=x", "metadata.labels.team=a", "spec.config.select=tag:x"]
    assert len(parse_overrides([], allowed, tmp_path).sets) == 4
    with pytest.raises(DkbError) as bad:
        parse_overrides([], ["spec.store=x", "timeout=1h"], tmp_path)
    hints = [d.hint for d in bad.value.diagnostics]
    assert len(hints) == 2 and "spec.timeout" in hints[1]
