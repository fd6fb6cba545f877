"""Property tests: generated hostile manifests and workspace.toml values never crash dkb, always
get a located message and a documented exit code, and lose nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import tomlkit
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dkbuild.config_model import WorkspaceConfig, parse_config
from dkbuild.diagnostics import DkbError
from dkbuild.manifests.models import KINDS
from tests import hostile
from tests.conftest import basic_files, write_tree

HOSTILE_TEXT = st.one_of(
    st.sampled_from(["", " ", "..", "../", "../../etc", "/", "/etc/passwd", "a/b", "a:b", "//x:y", "-rf", "*",
                     "**", "./x", "x//y", "\\", "C:\\x", "${HOME}", "$(id)", "\x00", "\u202e", "é", "🙂", "null",
                     "true", "0x10", "1e999", "~", "&a", "*a", "!!python/object:os.system", "%TAG", "---", "..."]),
    st.text(min_size=0, max_size=40),
)
SCALARS = st.one_of(HOSTILE_TEXT, st.integers(min_value=-(2 ** 70), max_value=2 ** 70), st.booleans(), st.none(),
                    st.floats(allow_nan=True, allow_infinity=True))
CONTRACT_KEYS = ["apiVersion", "kind", "metadata", "name", "namespace", "version", "labels", "spec", "inputs",
                 "outputs", "dataset", "store", "connector", "table", "schema", "type", "pii", "from",
                 "classification", "runtime", "image", "command", "trigger", "policy", "timeout", "connection",
                 "capabilities", "datasets", "env", "resources"]
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4),
    st.dictionaries(st.one_of(st.sampled_from(CONTRACT_KEYS), HOSTILE_TEXT), inner, max_size=4)), max_leaves=20)


@st.composite
def structured_manifests(draw: Any) -> str:
    doc = {"apiVersion": draw(st.one_of(st.just("datakit.infoblox.dev/v1alpha1"), SCALARS)),
           "kind": draw(st.one_of(st.sampled_from(list(KINDS)), SCALARS)),
           "metadata": draw(st.one_of(st.fixed_dictionaries({"name": SCALARS}), VALUES)),
           "spec": draw(VALUES)}
    return yaml.safe_dump(doc, allow_unicode=draw(st.booleans()), sort_keys=False)


YAML_BITS = st.sampled_from(["key: value\n", "- item\n", "  nested: [1, 2\n", "&a x\n", "*a\n", "!!binary x\n",
                             "? complex\n", ": v\n", "\t", "'unclosed\n", '"\\xZZ"\n', "---\n", "...\n", "%YAML 1.1\n",
                             "<<: *a\n", "{", "}", "[", "]", "#", "|\n", ">-\n", "\ufeff", "\x85", "\x00"])
RAW_MANIFESTS = st.one_of(st.lists(YAML_BITS, max_size=12).map("".join),
                          st.binary(max_size=200).map(lambda b: b.decode("latin-1")))


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One workspace per module (hypothesis runs many examples in one test call)."""
    return write_tree(tmp_path_factory.mktemp("hostile") / "ws", basic_files())


def _snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*")
            if p.is_file() and ".dkb" not in p.relative_to(root).parts}


HOSTILE_FILE = "pipelines/hostile/dk.yaml"


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(text=st.one_of(structured_manifests(), RAW_MANIFESTS))
def test_hostile_manifests_are_located_errors_of_their_own_target(root: Path, text: str) -> None:
    path = root / HOSTILE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    before = _snapshot(root)
    code, out, err = hostile.run(["-C", str(root), "lint", "--output", "json"])
    assert code in (0, 1) and not hostile.problems([hostile.Outcome("lint", code, out, err)]), (code, err)
    report = json.loads(out)
    # The rest of the workspace is still loaded and linted.
    assert {"//pipelines/ingest", "//pipelines/publish"} <= set(report["targets"])
    for d in report["diagnostics"]:
        if d["severity"] == "error":
            assert d["file"] and d["hint"] and d["line"] >= 0, d
    if code == 1:
        assert any(d["severity"] == "error" for d in report["diagnostics"])
    assert _snapshot(root) == before           # lint writes nothing but its store


# --- workspace.toml -------------------------------------------------------------------------------

def _section_keys() -> dict[str, dict[str, str]]:
    """Each section's keys with the shape of their values ("int", "list", "str", ...)."""
    keys = {}
    for name, field in WorkspaceConfig.model_fields.items():
        model = field.annotation
        if hasattr(model, "model_fields"):
            keys[name] = {key: _shape(repr(f.annotation)) for key, f in model.model_fields.items()}
    return keys


def _shape(annotation: str) -> str:
    for shape in ("list", "dict", "bool", "int", "str"):
        if shape in annotation or (shape == "str" and "Annotated" in annotation):
            return shape
    return "str"


SECTIONS = _section_keys()
EDGE_INTS = st.sampled_from([-(2 ** 63), -3, -1, 0, 1, 1023, 65535, 65536, 2 ** 31, 2 ** 63 - 1])
TOML_SCALARS = st.one_of(HOSTILE_TEXT.filter(lambda s: "\x00" not in s), EDGE_INTS,
                         st.integers(min_value=-(2 ** 63), max_value=2 ** 63 - 1), st.booleans(),
                         st.floats(allow_nan=False))
PATHS = st.sampled_from(["**", "../**", "/abs/**", "./x/**", "a//b", "..", ".", "", "pipelines/**", "a\\b",
                         "x/../../y", "~/x"])
TOML_VALUES = st.one_of(TOML_SCALARS, PATHS, st.lists(TOML_SCALARS, max_size=3), st.lists(PATHS, max_size=3))
# Values of a key's own type, at and past its edges (a wrong type is in TOML_VALUES).
OF_SHAPE = {"int": st.one_of(EDGE_INTS, st.integers(min_value=-10, max_value=10)),
            "list": st.lists(st.one_of(PATHS, HOSTILE_TEXT), max_size=3),
            "str": st.one_of(PATHS, HOSTILE_TEXT.filter(lambda s: "\x00" not in s)),
            "bool": st.booleans(), "dict": st.dictionaries(HOSTILE_TEXT, PATHS, max_size=2)}
ENVIRONMENT = st.fixed_dictionaries({}, optional={"approvals": OF_SHAPE["int"], "auto_merge": st.booleans(),
                                                  "cell": OF_SHAPE["str"], "x": TOML_SCALARS})
# The sections whose values bound something (sizes, approvals, where files are read and written)
# are drawn three times as often.
BOUNDING = ("workspace", "environments", "cache", "gitops")


@st.composite
def hostile_configs(draw: Any, keys: dict[str, dict[str, str]] = SECTIONS) -> str:
    """One or two keys of one section (more would nearly always hold something invalid, and
    the property "whatever is accepted is sane" would rarely be asked); sometimes a wrong key or
    a value of the wrong type."""
    section = draw(st.sampled_from(sorted([*keys, *BOUNDING, *BOUNDING])))
    table: dict[str, Any] = {}
    for key in draw(st.lists(st.sampled_from([*keys[section], "aprovals"]), max_size=2, unique=True)):
        shape = keys[section].get(key, "str")
        table[key] = draw(st.one_of(OF_SHAPE[shape], OF_SHAPE[shape], OF_SHAPE[shape], TOML_VALUES))
    if section == "environments":      # [environments.<name>] tables, the place of approvals
        table[draw(st.sampled_from(["dev", "int", "prod", "qa"]))] = draw(ENVIRONMENT)
    return tomlkit.dumps({section: table})


def _accepted_config_is_sane(config: WorkspaceConfig) -> None:
    for glob in config.workspace.packages + config.workspace.exclude:
        assert glob and not glob.startswith("/") and ".." not in glob.split("/"), glob
    assert config.workspace.packages and config.workspace.max_manifest_bytes >= 1
    for env in [*config.environments.order, "dev", "int", "prod"]:
        assert config.environments.settings(env).approvals >= 0
    assert config.cache.dir.strip() not in ("", ".", "/", "..")
    assert ".." not in config.gitops.path.split("/")


@settings(max_examples=400, deadline=None)
@given(text=hostile_configs())
def test_hostile_workspace_toml_is_refused_with_file_line_key_and_fix(text: str) -> None:
    try:
        config = parse_config(text)
    except DkbError as exc:
        for d in exc.diagnostics:
            assert d.file == "workspace.toml" and d.code in ("E121", "E122", "E123"), d
            assert d.hint and d.line >= 1, (d, text)
            if d.code != "E121":
                assert d.field and d.field.split(".")[0] in text, d
        return
    _accepted_config_is_sane(config)


# Keys whose accepted values would make a lint write outside its workspace (an absolute [cache]
# dir is allowed on purpose: CI caches live elsewhere).
SAFE_SECTIONS = {k: {key: t for key, t in v.items() if key not in ("dir", "file")} for k, v in SECTIONS.items()}


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(text=hostile_configs(SAFE_SECTIONS))
def test_hostile_workspace_toml_ends_every_lint_cleanly(root: Path, text: str) -> None:
    (root / "workspace.toml").write_text(text)
    before = _snapshot(root)
    code, out, err = hostile.run(["-C", str(root), "lint"])
    assert code in (0, 1, 2) and not hostile.problems([hostile.Outcome("lint", code, out, err)]), (code, err)
    try:
        parse_config(text)
    except DkbError as exc:
        assert code == 2
        assert all(f"workspace.toml:{d.line}" in err for d in exc.diagnostics if d.line), err
    else:
        assert code in (0, 1) and "target(s) linted" in out
    assert _snapshot(root) == before
