"""The warm path never gives a stale answer (README "The warm path").

Every scenario starts from a git repository holding a copy of `examples/monorepo` whose warm state
(`.dkb/cache/graph/`) was populated by running the questions once; the copy carries that state, as
a moved or copied checkout would. The scenario then changes the workspace, asks the same read-only
questions as whole `dkb` processes, warm and with `DKB_SNAPSHOT=0` (cold), and requires the same
normalized answer, keys included. Semantic changes must also change the cold answer, so a warm path
that served the answer of the state before would fail; changes that mean nothing (comments,
formatting, mtimes) must leave the keys alone.

Each warm run also checks that the warm path was really taken (a new state stores a snapshot, a state
seen before stores none), so a warm path that quietly switched itself off cannot make this file pass
vacuously. When a step returns to content whose cold answer is already known (the base state, or an
earlier step of the same scenario with the same HEAD), the warm answer is compared with that known
cold answer instead of asking the cold questions again: cold answers are a pure function of the
workspace content and HEAD, which `test_unchanged_workspace` checks by asking them twice. Each
scenario asks the fewest questions that show its change, since every `dkb` process costs ~0.3 s.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import EXAMPLE, git

SNAPSHOTS = Path(".dkb") / "cache" / "graph"
BASE_TAG = "base"

# The read-only questions, by name. `affected` is only asked inside git.
QUESTIONS: dict[str, tuple[str, ...]] = {
    "query": ("query", "deps(//...)", "--output", "json"),
    "rdeps": ("query", "rdeps(//..., //datasets/customers)", "--output", "json"),
    "lint": ("lint", "//...", "--output", "json"),
    "build": ("build", "//...", "--dry-run", "--output", "json"),
    "affected": ("affected", "--since", BASE_TAG, "--explain", "--output", "json"),
}
ALL = tuple(QUESTIONS)
CORE = ("query", "lint", "affected")
OUTSIDE_GIT = ("query", "lint")
_SKIPPED = (".dkb", ".git", ".ruff_cache", ".mypy_cache", ".pytest_cache", ".hypothesis", "__pycache__", ".venv")


# --- running dkb ---------------------------------------------------------------------------------

def _env(warm: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DKB_")}
    env["DKB_SNAPSHOT"] = "1" if warm else "0"
    return env


def dkb(root: Path, *args: str, warm: bool, cwd: Path | None = None) -> dict[str, Any]:
    """One whole `dkb` process; its exit code, JSON (or text) stdout and stderr, normalized."""
    proc = subprocess.run([sys.executable, "-m", "dkbuild", *args], cwd=cwd or root, capture_output=True,
                          text=True, env=_env(warm), timeout=120, check=False)
    try:
        out: Any = json.loads(proc.stdout)
    except ValueError:
        out = proc.stdout
    return {"exit": proc.returncode, "out": _normalize(out, root), "err": _normalize(proc.stderr, root)}


def _normalize(value: Any, root: Path) -> Any:
    """Only what is volatile by nature: durations and the absolute place of the temp workspace."""
    if isinstance(value, dict):
        return {k: _normalize(v, root) for k, v in value.items() if k != "duration_s"}
    if isinstance(value, list):
        return [_normalize(v, root) for v in value]
    if isinstance(value, str):
        for place in {str(root.resolve()), str(root)}:
            value = value.replace(place, "<root>")
    return value


def _snapshot_files(root: Path) -> dict[str, tuple[int, int]]:
    folder = root / SNAPSHOTS
    if not folder.is_dir():
        return {}
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir()}


def answers(root: Path, warm: bool, questions: tuple[str, ...] = CORE) -> dict[str, Any]:
    """The normalized answers of `questions`, asked in order as separate processes. A cold run must
    leave the warm state exactly as it found it (no snapshot read-modify-write, no new file)."""
    before = None if warm else _snapshot_files(root)
    result = {name: dkb(root, *QUESTIONS[name], warm=warm) for name in questions}
    if not warm:
        assert _snapshot_files(root) == before, "a DKB_SNAPSHOT=0 run touched .dkb/cache/graph"
    return result


def assert_same(warm: dict[str, Any], cold: dict[str, Any]) -> None:
    """Every question of `warm` has the answer `cold` gives (`cold` may hold more questions)."""
    assert warm and warm.keys() <= cold.keys()
    for name, answer in warm.items():
        assert answer == cold[name], f"warm `dkb {' '.join(QUESTIONS[name])}` differs from the cold one"


def differs(after: dict[str, Any], before: dict[str, Any]) -> bool:
    """Whether the answer to any question of `after` is another than `before`'s."""
    return any(after[name] != before[name] for name in after)


def _graphs(root: Path) -> set[str]:
    return {p.name for p in (root / SNAPSHOTS).glob("*.graph")}


def warm_answers(root: Path, questions: tuple[str, ...] = CORE, *, seen: bool) -> dict[str, Any]:
    """Warm answers, checking that the warm path really was taken: a state `seen` before is a hit
    (no new snapshot), a new one is a miss that stores its snapshot (README: `<fingerprint>.graph`).
    Otherwise a warm path that had quietly switched itself off would make this whole file vacuous."""
    before = _graphs(root)
    result = answers(root, True, questions)
    stored = _graphs(root) - before
    if seen:
        assert not stored, f"a state seen before was not a snapshot hit: stored {stored}"
    else:
        assert stored, "the warm run stored no snapshot for a new state"
    return result


def settle(root: Path, questions: tuple[str, ...] = CORE) -> dict[str, Any]:
    """A new state: warm first (a miss that parses only what changed and stores a snapshot), then
    cold; they must agree. Returns the answer."""
    result = warm_answers(root, questions, seen=False)
    cold = answers(root, False, questions)
    assert_same(result, cold)
    return cold


# --- reading answers -----------------------------------------------------------------------------

def keys(answer: dict[str, Any]) -> dict[str, str]:
    return {t["label"]: t["key"] for t in answer["query"]["out"]["targets"]}


def action_keys(answer: dict[str, Any]) -> dict[str, str]:
    build = answer["build"]
    assert build["exit"] == 0, build
    return {t["label"]: t["action_key"] for t in build["out"]["targets"]}


def codes(answer: dict[str, Any]) -> set[tuple[str, str]]:
    return {(d["code"], d["file"]) for d in answer["lint"]["out"]["diagnostics"]}


def affected(answer: dict[str, Any]) -> dict[str, list[str]]:
    out = answer["affected"]["out"]
    return {t["label"]: sorted(r["component"] for r in t["reasons"]) for t in out["targets"]}


def rdeps(answer: dict[str, Any]) -> list[str]:
    return [t["label"] for t in answer["rdeps"]["out"]["targets"]]


def changed_keys(before: dict[str, Any], after: dict[str, Any]) -> set[str]:
    old, new = keys(before), keys(after)
    return {label for label in old.keys() | new.keys() if old.get(label) != new.get(label)}


# --- workspaces ----------------------------------------------------------------------------------

def copy_example(target: Path) -> Path:
    shutil.copytree(EXAMPLE, target, ignore=shutil.ignore_patterns(*_SKIPPED))
    return target


def commit(root: Path, message: str) -> None:
    git(root, "add", "-A")
    git(root, "-c", "commit.gpgsign=false", "commit", "-qm", message, "--no-verify")


@dataclass(frozen=True)
class Base:
    root: Path
    cold: dict[str, Any]          # every question, cold, on the untouched example


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Base:
    root = copy_example(tmp_path_factory.mktemp("warm-guard") / "repo")
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "core.autocrlf", "false")
    (root / ".git/info").mkdir(exist_ok=True)
    with (root / ".git/info/exclude").open("a") as exclude:
        exclude.write(".dkb/\n")            # as any real repository would ignore dkb's store
    commit(root, "example")
    git(root, "tag", BASE_TAG)
    assert not (root / SNAPSHOTS).exists()
    first = warm_answers(root, ALL, seen=False)     # a miss that stores the warm state
    cold = answers(root, False, ALL)
    assert_same(first, cold)
    assert cold["lint"]["exit"] == 0 and cold["build"]["exit"] == 0 and affected(cold) == {}
    return Base(root, cold)


@pytest.fixture
def repo(base: Base, tmp_path: Path) -> Path:
    """A copy of the base repository, its warm state included."""
    root = tmp_path / "repo"
    shutil.copytree(base.root, root, symlinks=True)
    return root


def edit(path: Path, old: str, new: str, count: int = 1) -> None:
    text = path.read_text()
    assert text.count(old) == count, f"{path}: expected {count} of {old!r}"
    path.write_text(text.replace(old, new))


CUSTOMERS = "datasets/customers/dk.yaml"
RAW_EVENTS = "datasets/raw-events/dk.yaml"        # a dataset with no copies elsewhere
COLUMN_OLD = "      type: timestamp\n      from: clickstream.occurred_at"
COLUMN_NEW = "      type: date\n      from: clickstream.occurred_at"


# --- the unchanged workspace ---------------------------------------------------------------------

def test_unchanged_workspace(base: Base, repo: Path) -> None:
    """A hit (the stored state, in a copy elsewhere) equals cold, and cold is deterministic."""
    assert_same(warm_answers(repo, ALL, seen=True), base.cold)
    assert answers(repo, False, ALL) == base.cold


def test_cold_runs_write_no_snapshot(repo: Path) -> None:
    shutil.rmtree(repo / ".dkb")
    answers(repo, False, ("query", "lint", "build"))
    assert not (repo / SNAPSHOTS).exists() or not any((repo / SNAPSHOTS).iterdir())


# --- manifests -----------------------------------------------------------------------------------

def _column(root: Path) -> None:
    edit(root / RAW_EVENTS, COLUMN_OLD, COLUMN_NEW)


def _input(root: Path) -> None:
    edit(root / "pipelines/enrich/dk.yaml", "    - dataset: customers\n", "")


@pytest.mark.parametrize("committed", [False, True], ids=["uncommitted", "committed"])
@pytest.mark.parametrize("change", [_column, _input], ids=["dataset-column", "transform-input"])
def test_manifest_field_edit(base: Base, repo: Path, change: Any, committed: bool) -> None:
    change(repo)
    if committed:
        commit(repo, "edit")
    # Committing changes no content id, only where affected's merge base is: fewer questions.
    questions = ("query", "affected") if committed else ("query", "build", "affected")
    after = settle(repo, questions + (("rdeps",) if change is _input else ()))
    assert differs(after, base.cold)
    if change is _column:
        # The dataset and everything that references it.
        assert changed_keys(base.cold, after) == {"//datasets/raw-events", "//pipelines/enrich",
                                                  "//pipelines/sessionize", "//pipelines/clickstream-landing"}
        assert affected(after)["//datasets/raw-events"] == ["manifest"]
    else:
        assert "//pipelines/enrich" in rdeps(base.cold) and "//pipelines/enrich" not in rdeps(after)
        assert changed_keys(base.cold, after) == {"//pipelines/enrich"}
        assert affected(after) == {"//pipelines/enrich": ["manifest", "reference"]}
    if "build" in after:
        assert action_keys(after)["//pipelines/enrich"] != action_keys(base.cold)["//pipelines/enrich"]


def test_comment_and_formatting_only_edit(base: Base, repo: Path) -> None:
    path = repo / CUSTOMERS     # it has an identical copy in crm-sync: a real change would be E504
    edit(path, "  name: customers\n", "  name:    'customers'   # quoted, spaced, commented\n")
    edit(path, "  format: parquet\n", "  format: \"parquet\"\n")
    path.write_text(path.read_text() + "# a trailing comment\n")
    after = settle(repo, ("query", "lint"))
    assert keys(after) == keys(base.cold)
    assert_same(after, base.cold)


def test_invalid_yaml_then_fixed(base: Base, repo: Path) -> None:
    path = repo / CUSTOMERS
    original = path.read_text()
    edit(path, "  schema:\n", "  schema: [\n")
    questions = ("query", "lint", "build")
    broken = settle(repo, questions)
    assert broken["lint"]["exit"] == 1 and ("E100", CUSTOMERS) in codes(broken)
    assert broken["build"]["exit"] != 0
    path.write_text(original)
    assert_same(warm_answers(repo, questions, seen=True), base.cold)


def test_content_flips_back(base: Base, repo: Path) -> None:
    """A -> B -> A -> B: each return is the earlier state's answer, never the one just before."""
    path = repo / RAW_EVENTS
    a = path.read_bytes()
    _column(repo)
    b = path.read_bytes()
    questions = ("query", "affected")
    changed = settle(repo, questions)
    assert "//datasets/raw-events" in changed_keys(base.cold, changed)
    path.write_bytes(a)
    assert_same(warm_answers(repo, questions, seen=True), base.cold)
    path.write_bytes(b)
    assert_same(warm_answers(repo, questions, seen=True), changed)


@pytest.mark.parametrize(("where", "label"), [
    ("pipelines/enrich/dataset/customers.yaml", "//pipelines/enrich:customers"),
    ("datasets/customers-copy/dk.yaml", "//datasets/customers-copy:customers"),
], ids=["flat-resource-copy", "new-package-copy"])
def test_same_content_in_another_place(base: Base, repo: Path, where: str, label: str) -> None:
    """The parse cache keys on place as well as content: the copy is its own file and label."""
    (repo / where).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(repo / CUSTOMERS, repo / where)
    after = settle(repo, ("query", "lint"))
    customers = next(t for t in after["query"]["out"]["targets"] if t["label"] == "//datasets/customers")
    assert label in customers["labels"]
    assert differs(after, base.cold)


# --- source files --------------------------------------------------------------------------------

ENRICH_MAIN = "pipelines/enrich/src/enrich/main.py"


@pytest.mark.parametrize("text", ["\n# touched\n", "\ndef broken(:\n"], ids=["valid", "syntax-error"])
def test_source_edit(base: Base, repo: Path, text: str) -> None:
    path = repo / ENRICH_MAIN
    path.write_text(path.read_text() + text)
    broken = "broken" in text
    after = settle(repo, ("query", "lint" if broken else "build", "affected"))
    assert changed_keys(base.cold, after) == {"//pipelines/enrich"}
    assert affected(after) == {"//pipelines/enrich": ["file"]}
    if broken:
        assert ("E700", ENRICH_MAIN) in codes(after) and after["lint"]["exit"] == 1
    else:
        assert action_keys(after)["//pipelines/enrich"] != action_keys(base.cold)["//pipelines/enrich"]


def test_untracked_new_file(base: Base, repo: Path) -> None:
    (repo / "pipelines/enrich/src/enrich/extra.py").write_text("EXTRA = 1\n")
    after = settle(repo, ("query", "affected"))
    assert changed_keys(base.cold, after) == {"//pipelines/enrich"}
    assert affected(after) == {"//pipelines/enrich": ["file"]}


@pytest.mark.parametrize("committed", [False, True], ids=["worktree", "committed"])
def test_deleted_file(base: Base, repo: Path, committed: bool) -> None:
    (repo / "pipelines/fraud-watch/go.mod").unlink()
    if committed:
        commit(repo, "no go.mod")
    after = settle(repo)
    assert changed_keys(base.cold, after) == {"//pipelines/fraud-watch"}
    assert ("E710", "pipelines/fraud-watch/dk.yaml") in codes(after)
    assert affected(after) == {"//pipelines/fraud-watch": ["file"]}


@pytest.mark.parametrize(("old", "new", "how"), [
    (ENRICH_MAIN, "pipelines/enrich/src/enrich/app.py", "git-mv"),
    (ENRICH_MAIN, "pipelines/enrich/src/enrich/app.py", "mv"),
    ("datasets/crm-products/dataset.yaml", "datasets/crm-products/dk.yaml", "mv"),
], ids=["source-git-mv", "source-mv", "manifest-layout-mv"])
def test_renamed_file(base: Base, repo: Path, old: str, new: str, how: str) -> None:
    if how == "git-mv":
        git(repo, "mv", old, new)
    else:
        (repo / old).rename(repo / new)
    after = settle(repo, ("query", "affected"))
    assert differs(after, base.cold)
    if old == ENRICH_MAIN:
        assert changed_keys(base.cold, after) == {"//pipelines/enrich"}
    else:
        files = {t["label"]: t["file"] for t in after["query"]["out"]["targets"]}
        assert files["//datasets/crm-products"] == new


def test_symlinked_file_follows_its_target(base: Base, repo: Path) -> None:
    """A file symlink inside the workspace counts as its target's content (git stores the link text)."""
    (repo / "shared").mkdir()
    (repo / "shared/common.py").write_text("COMMON = 1\n")
    (repo / "pipelines/enrich/src/enrich/common.py").symlink_to("../../../../shared/common.py")
    commit(repo, "a shared module, linked")
    questions = ("query", "affected")
    linked = settle(repo, questions)
    assert changed_keys(base.cold, linked) == {"//pipelines/enrich"}
    (repo / "shared/common.py").write_text("COMMON = 2\n")
    retargeted = settle(repo, questions)
    assert changed_keys(linked, retargeted) == {"//pipelines/enrich"}


# --- packages ------------------------------------------------------------------------------------

NEW_PACKAGE = {
    "datasets/churn-scores/dk.yaml": """\
apiVersion: datakit.infoblox.dev/v1alpha1
kind: DataSet
metadata:
  name: churn-scores
spec:
  store: lake-curated
  prefix: churn/
  format: parquet
  classification: restricted
  schema:
    - name: customer_id
      type: integer
    - name: score
      type: decimal
""",
    "pipelines/churn/dk.yaml": """\
apiVersion: datakit.infoblox.dev/v1alpha1
kind: Transform
metadata:
  name: churn
  version: 0.1.0
spec:
  runtime: generic-python
  image: registry.acme.dev/analytics/churn:0.1.0
  inputs:
    - dataset: customers
  outputs:
    - dataset: churn-scores
  trigger:
    policy: manual
""",
    "pipelines/churn/src/churn/__init__.py": "",
    "pipelines/churn/src/churn/main.py": "print('churn')\n",
}
NEW_DATASET = NEW_PACKAGE["datasets/churn-scores/dk.yaml"]


def test_new_package_untracked_then_committed(base: Base, repo: Path) -> None:
    for rel, text in NEW_PACKAGE.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text)
    questions = ("query", "rdeps", "lint", "affected")
    untracked = settle(repo, questions)
    assert {"//pipelines/churn", "//datasets/churn-scores"} <= set(keys(untracked)) - set(keys(base.cold))
    assert "//pipelines/churn" in rdeps(untracked) and untracked["lint"]["exit"] == 0
    assert {"//pipelines/churn", "//datasets/churn-scores"} <= set(affected(untracked))
    commit(repo, "churn")
    # Untracked files are hashed the way git hashes them: committing them changes no answer.
    assert_same(warm_answers(repo, questions, seen=True), untracked)


def test_new_nested_package_takes_files_from_its_parent(base: Base, repo: Path) -> None:
    (repo / "pipelines/enrich/tests/dk.yaml").write_text(NEW_DATASET)
    after = settle(repo, ("query", "affected"))
    assert "//pipelines/enrich/tests:churn-scores" in keys(after)
    # No file of enrich changed, but tests/ now belongs to the nested package.
    assert "//pipelines/enrich" in changed_keys(base.cold, after)


def test_new_enclosing_package_adopts_a_scaffolding_file(base: Base, repo: Path) -> None:
    """datasets/crm-products/dataset.yaml is unchanged, but its owner (part of its place) changes."""
    (repo / "datasets/dk.yaml").write_text(NEW_DATASET)
    after = settle(repo, ("query", "lint"))
    assert "//datasets/crm-products" in keys(base.cold) and "//datasets/crm-products" not in keys(after)
    assert "//datasets:crm-products" in keys(after)


@pytest.mark.parametrize("package", ["pipelines/orders-replicate", "datasets/sessions"])
def test_removed_package(base: Base, repo: Path, package: str) -> None:
    if package.startswith("pipelines"):
        git(repo, "rm", "-rq", package)          # staged removal
    else:
        shutil.rmtree(repo / package)            # worktree removal of a referenced dataset
    after = settle(repo)
    assert f"//{package}" in keys(base.cold) and f"//{package}" not in keys(after)
    assert f"//{package}" in after["affected"]["out"]["deleted"]
    if package == "datasets/sessions":             # what read it now reads an external dataset
        assert after["lint"]["exit"] == 0 and any(code == "W500" for code, _ in codes(after))


def test_renamed_package_directory(base: Base, repo: Path) -> None:
    git(repo, "mv", "datasets/sessions", "datasets/web-sessions")
    after = settle(repo, ("query", "affected"))
    assert "//datasets/web-sessions:sessions" in keys(after) and "//datasets/sessions" not in keys(after)
    assert "moved" in affected(after)["//datasets/web-sessions:sessions"]


# --- git operations ------------------------------------------------------------------------------

def test_branch_switches(base: Base, repo: Path) -> None:
    git(repo, "checkout", "-qb", "feature")
    _column(repo)
    _input(repo)
    (repo / "pipelines/fraud-watch/go.mod").unlink()
    (repo / "pipelines/enrich/src/enrich/extra.py").write_text("EXTRA = 1\n")
    commit(repo, "feature work")
    feature = settle(repo)
    assert affected(feature).keys() >= {"//datasets/raw-events", "//pipelines/enrich", "//pipelines/fraud-watch"}
    git(repo, "checkout", "-q", "main")
    assert_same(warm_answers(repo, seen=True), base.cold)
    git(repo, "checkout", "-q", "feature")
    assert_same(warm_answers(repo, seen=True), feature)


def test_stash_and_checkout_restore(base: Base, repo: Path) -> None:
    _column(repo)
    questions = ("query", "affected")
    changed = settle(repo, questions)
    assert differs(changed, base.cold)
    git(repo, "stash", "-q")
    assert_same(warm_answers(repo, questions, seen=True), base.cold)
    git(repo, "stash", "pop", "-q")
    assert_same(warm_answers(repo, questions, seen=True), changed)
    git(repo, "checkout", "--", RAW_EVENTS)
    assert_same(warm_answers(repo, questions, seen=True), base.cold)


@pytest.mark.parametrize("exclude", [".gitignore", ".git/info/exclude"])
def test_gitignore_hides_an_untracked_file(base: Base, repo: Path, exclude: str) -> None:
    extra = "pipelines/enrich/src/enrich/extra.py"
    (repo / extra).write_text("EXTRA = 1\n")
    questions = ("query", "affected")
    with_extra = settle(repo, questions)
    assert changed_keys(base.cold, with_extra) == {"//pipelines/enrich"}
    path = repo / exclude
    path.write_text((path.read_text() if path.exists() else "") + f"/{extra}\n")
    # Ignored files are not part of the workspace; the root .gitignore belongs to no package.
    assert_same(warm_answers(repo, questions, seen=exclude == ".git/info/exclude"), base.cold)


def test_mtime_only_change(base: Base, repo: Path) -> None:
    for path in [repo / CUSTOMERS, repo / ENRICH_MAIN, repo / "workspace.toml"]:
        os.utime(path, (1_000_000_000, 1_000_000_000))
    questions = ("query", "lint")
    assert_same(warm_answers(repo, questions, seen=True), base.cold)
    assert_same(answers(repo, False, questions), base.cold)


# --- ignore files and workspace.toml -------------------------------------------------------------

@pytest.mark.parametrize(("where", "text"), [
    ("pipelines/enrich/.dkbignore", "tests/\n"),
    (".dkbignore", "datasets/sessions/\n"),
], ids=["package-files", "root-package"])
def test_dkbignore(base: Base, repo: Path, where: str, text: str) -> None:
    (repo / where).write_text(text)
    questions = ("query", "lint")
    after = settle(repo, questions)
    if where == ".dkbignore":
        assert "//datasets/sessions" not in keys(after) and any(code == "W500" for code, _ in codes(after))
    else:
        assert "//pipelines/enrich" in changed_keys(base.cold, after)
    (repo / where).unlink()
    assert_same(warm_answers(repo, questions, seen=True), base.cold)


@pytest.mark.parametrize("rewrite", [
    lambda text: text + "# a comment\n\n",
    lambda text: text.replace('name = "acme-data"', "name = 'acme-data'  # same value\nexclude = []"),
], ids=["comment", "same-values"])
def test_workspace_toml_without_meaning(base: Base, repo: Path, rewrite: Any) -> None:
    path = repo / "workspace.toml"
    path.write_text(rewrite(path.read_text()))
    after = settle(repo, ("query", "build"))
    assert keys(after) == keys(base.cold) and action_keys(after) == action_keys(base.cold)
    assert_same(after, base.cold)


@pytest.mark.parametrize("addition", [
    '\n[registry]\nurl = "oci://registry.example.com/data"\n',
    'exclude = ["pipelines/orders-replicate/**"]\n',
    "max_manifest_bytes = 700\n",
], ids=["registry", "exclude", "max_manifest_bytes"])
def test_workspace_toml_with_meaning(base: Base, repo: Path, addition: str) -> None:
    path = repo / "workspace.toml"
    original = path.read_text()
    path.write_text(original + addition)
    after = settle(repo)
    if addition.startswith("exclude"):
        assert "//pipelines/orders-replicate" not in keys(after)
    elif addition.startswith("max_manifest"):
        assert after["lint"]["exit"] == 1 and any(code == "E106" for code, _ in codes(after))
    else:
        assert changed_keys(base.cold, after)
        assert all(r == ["config"] for r in affected(after).values())
    path.write_text(original)
    assert_same(warm_answers(repo, ("query", "lint"), seen=True), base.cold)


# --- beyond the common questions -----------------------------------------------------------------

def test_lint_selection_strictness_and_cwd(repo: Path) -> None:
    """Lint reports are kept per selection: a relative pattern from another directory, or --strict,
    is another question."""
    # An unknown masking method (E226) is a warning that --strict raises.
    edit(repo / RAW_EVENTS, "      pii: true\n", "      pii: true\n      masking: hsh\n", count=1)
    asked = [(("lint", ":all", "--output", "json"), repo / "pipelines/enrich"),
             (("lint", ":all", "--output", "json"), repo / "datasets/raw-events"),
             (("lint", "//...", "--strict", "--output", "json"), repo),
             (("lint", "//...", "--output", "json"), repo)]
    seen = []
    for args, cwd in asked:
        warm = dkb(repo, *args, warm=True, cwd=cwd)
        assert warm == dkb(repo, *args, warm=False, cwd=cwd), (args, cwd)
        seen.append(warm)
    assert seen[0]["out"]["targets"] == ["//pipelines/enrich"]
    assert seen[1]["out"]["targets"] == ["//datasets/raw-events"] and seen[1]["exit"] == 0
    assert seen[2]["exit"] == 1 and seen[3]["exit"] == 0
    assert any(d["code"] == "E226" for d in seen[3]["out"]["diagnostics"])


def test_why_after_a_referenced_dataset_changed(repo: Path) -> None:
    """`why` reads the recorded key components against the warm state's lean manifests."""
    target = "//pipelines/build-profiles"
    built = subprocess.run([sys.executable, "-m", "dkbuild", "build", target], cwd=repo, capture_output=True,
                           text=True, env=_env(True), timeout=120, check=False)
    assert built.returncode == 0, built.stderr
    assert dkb(repo, "why", target, "--output", "json", warm=True)["out"]["status"] == "hit"
    edit(repo / "datasets/sessions/dk.yaml", "      type: integer\n", "      type: string\n", count=2)
    warm = dkb(repo, "why", target, "--output", "json", warm=True)
    assert warm == dkb(repo, "why", target, "--output", "json", warm=False)
    assert warm["out"]["status"] == "changed"
    assert any(r["component"] == "reference" for r in warm["out"]["reasons"])


def test_a_remembered_no_op_build_follows_the_workspace(repo: Path) -> None:
    """A no-op build answered whole from its memo (engine.buildmemo) must equal a cold build, and
    must stop being answered that way as soon as the workspace or the built outputs change."""
    target = "//pipelines/build-profiles"
    source = repo / "pipelines/build-profiles/src/build_profiles/main.py"

    def memos() -> set[str]:
        return {p.name for p in (repo / SNAPSHOTS).glob("*.build-*")}

    def no_op() -> dict[str, Any]:
        """Build until nothing is left to build (which stores a memo), then once more from it."""
        assert dkb(repo, "build", target, warm=True)["exit"] == 0
        assert dkb(repo, "build", target, warm=True)["exit"] == 0
        stored = memos()
        recalled = dkb(repo, "build", target, "--output", "json", warm=True)
        assert memos() == stored and stored
        cold = dkb(repo, "build", target, "--output", "json", warm=False)
        assert recalled == cold
        assert {t["status"] for t in recalled["out"]["targets"]} == {"cached"}
        return recalled

    before = no_op()
    source.write_text(source.read_text() + "# edited\n")
    edited = no_op()
    assert edited["out"]["targets"][0]["artifacts"] != before["out"]["targets"][0]["artifacts"]
    edit(source, "# edited\n", "")
    assert no_op() == before          # back: retagged through the normal path, then remembered again
    shutil.rmtree(repo / ".dkb/oci/blobs")
    rebuilt = dkb(repo, "build", target, "--output", "json", warm=True)
    assert {t["status"] for t in rebuilt["out"]["targets"]} == {"built"}


def test_outside_git(tmp_path: Path) -> None:
    root = copy_example(tmp_path / "plain")
    first = warm_answers(root, OUTSIDE_GIT, seen=False)
    start = answers(root, False, OUTSIDE_GIT)
    assert_same(first, start)
    assert_same(warm_answers(root, OUTSIDE_GIT, seen=True), start)         # a hit

    _column(root)
    (root / "pipelines/enrich/src/enrich/extra.py").write_text("EXTRA = 1\n")
    edited = settle(root, OUTSIDE_GIT)
    assert {"//datasets/raw-events", "//pipelines/enrich"} <= changed_keys(start, edited)

    (root / "pipelines/fraud-watch/go.mod").unlink()
    (root / "pipelines/enrich/src/enrich/extra.py").unlink()
    edit(root / RAW_EVENTS, COLUMN_NEW, COLUMN_OLD)
    deleted = settle(root, OUTSIDE_GIT)
    assert changed_keys(start, deleted) == {"//pipelines/fraud-watch"}
    assert ("E710", "pipelines/fraud-watch/dk.yaml") in codes(deleted)

    os.utime(root / RAW_EVENTS, (1_000_000_000, 1_000_000_000))
    assert_same(warm_answers(root, OUTSIDE_GIT, seen=True), deleted)
