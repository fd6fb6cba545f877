"""Fixtures of the compatibility suite: one materialized workspace per corpus case and one loopback
registry, each shared by the tests of a session (pytest-xdist: one of each per worker)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.compat.corpus import CORPUS, MISSING, Case, Workspace, discover, materialize, transforms
from tests.registry import Registry, require_registry

CASES = discover()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize `corpus` over every case; with no corpus, one case that fails and says why."""
    if "corpus" in metafunc.fixturenames:
        params = CASES or [None]
        metafunc.parametrize("corpus", params, ids=[c.id if c else "corpus-missing" for c in params],
                             indirect=True, scope="session")


@pytest.fixture(scope="session")
def corpus(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    case: Case | None = request.param
    if case is None or not CORPUS.is_dir():
        pytest.fail(MISSING, pytrace=False)
    ws = materialize(case, tmp_path_factory.mktemp("corpus"))
    found = transforms(ws)
    assert found, f"{case.id}: the corpus case has no Transform manifest (did the corpus layout change?)"
    return Workspace(case, ws, found)


@pytest.fixture(scope="session")
def shared_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A real registry (docker-registry on loopback) for every publish of this worker's session."""
    require_registry()
    reg = Registry(tmp_path_factory.mktemp("compat-registry")).start()
    try:
        yield reg
    finally:
        reg.stop()
