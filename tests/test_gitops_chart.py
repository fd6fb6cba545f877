"""dk's chart reads what dkb promotes: the values.yaml dkb writes is rendered with dk's own
`gitops/charts/dk-app` (from the dk corpus) by real Helm, the Helm v4 Go engine that the
`helm-python-sdk` wheel ships as a library (there is no `helm` package in Debian here), the way
dk's ApplicationSet asks ArgoCD to: release name = the apps/<package> directory, the per-app
values file, and the `cell` parameter. The rendered PackageDeployment must name the image dkb
published, as a valid OCI reference whose tag still resolves to the digest dkb pinned."""

from __future__ import annotations

from pathlib import Path

import helm_python as helm            # the helm-python-sdk wheel, in the [test] extras
import pytest
import yaml

from dkbuild.gitops.chart import render_problems
from dkbuild.oci.reference import parse_reference
from dkbuild.oci.registry import RegistryClient
from tests.test_gitops import VALUES, branch, run, setup, show  # noqa: F401  (setup is a fixture)

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "dk-corpus"
CHART = CORPUS / "gitops" / "charts" / "dk-app"
APPSET = CORPUS / "gitops" / "argocd" / "applicationset.yaml"


def render_as_argocd(values_path: str, values_text: str) -> dict:
    """What ArgoCD applies for one `gitops/envs/<env>/cells/<cell>/apps/<app>/values.yaml`."""
    assert CHART.is_dir(), f"dk's chart is not at {CHART} (the dk corpus belongs beside the repository)"
    appset = yaml.safe_load(APPSET.read_text().split("\n---\n")[0])
    segments = values_path.split("/")
    pattern = appset["spec"]["generators"][0]["git"]["directories"][0]["path"]
    assert len(pattern.split("/")) == len(segments) - 1 and values_path.startswith("gitops/envs/"), pattern
    env, cell, app = segments[2], segments[4], segments[6]
    values = yaml.safe_load(values_text) or {}
    values["cell"] = cell                                 # spec.source.helm.parameters: cell
    with helm.Chart.load(CHART) as chart:
        out = chart.render(values, name=app, namespace=f"dk-{env}-{cell}")
    return yaml.safe_load(out["dk-app/templates/packagedeployment.yaml"])


def retag(host: str, repo: str, source: str, tag: str) -> str:
    """Give a published manifest another tag in the real registry (dkb publish --tag takes SemVer only)."""
    with RegistryClient(host, plain_http=True) as client:
        found = client.pull_manifest(repo, source)
        assert found is not None
        return client.push_manifest(repo, tag, found[0], found[1])


@pytest.fixture
def promoted(setup, registry):  # type: ignore[no-untyped-def]
    def make(values: dict[str, str] | None = None, tag: str | None = None):
        root, bare, digests = setup(values)
        if tag:
            retag(registry.host, "acme/ingest", "1.0.0", tag)
        res = run(root, "promote", "ingest", *((tag,) if tag else ()), "--to", "dev", "-o", "json")
        assert res.exit_code == 0, res.output
        return root, bare, digests, res
    return make


def test_the_chart_renders_the_image_dkb_published(promoted, registry) -> None:  # type: ignore[no-untyped-def]
    _root, bare, digests, _res = promoted()
    path = VALUES.format(env="dev", pkg="ingest")
    text = show(bare, "refs/heads/" + branch(bare, "promote/ingest/dev/c0/1.0.0"), path)
    deployment = render_as_argocd(path, text)
    package = deployment["spec"]["package"]
    assert package == {"name": "ingest", "version": "1.0.0", "registry": f"{registry.host}/acme"}
    assert deployment["spec"]["cell"] == "c0" and deployment["metadata"]["namespace"] == "dk-c0"
    ref = parse_reference(f"{package['registry']}/{package['name']}:{package['version']}")   # valid OCI
    found = RegistryClient(ref.registry, plain_http=True).pull_manifest(ref.repository, ref.tag)
    assert found is not None, f"{ref} is not in the registry"
    pinned = yaml.safe_load(text)["digest"]
    assert found[2] == pinned == digests[("//pipelines/ingest", "1.0.0")]
    assert render_problems(yaml.safe_load(text), "ingest") == []


def test_user_overrides_still_render(promoted) -> None:  # type: ignore[no-untyped-def]
    path = VALUES.format(env="dev", pkg="ingest")
    original = ("# ingest in dev\nappVersion: 0.9.0\nregistry: ghcr.io/acme/old/ingest\nmode: streaming\n"
                "schedule: \"*/5 * * * *\"\nresources:\n  requests: {cpu: 250m, memory: 512Mi}\n"
                "  limits: {cpu: \"2\", memory: 2Gi}\n")
    _root, bare, _digests, _res = promoted({path: original})
    text = show(bare, "refs/heads/" + branch(bare, "promote/ingest/dev/c0/1.0.0"), path)
    spec = render_as_argocd(path, text)["spec"]
    assert spec["mode"] == "streaming" and spec["schedule"] == {"cron": "*/5 * * * *"}
    assert spec["resources"]["limits"] == {"cpu": "2", "memory": "2Gi"}
    # the old value held the package's whole repository; the chart appends the name itself
    assert not spec["package"]["registry"].endswith("/ingest")
    parse_reference(f"{spec['package']['registry']}/{spec['package']['name']}:{spec['package']['version']}")


def test_a_version_the_chart_mangles_is_reported(promoted) -> None:  # type: ignore[no-untyped-def]
    """`version: {{ .Values.appVersion }}` is unquoted: a tag like 1.0 comes back from the rendered
    manifest as a number. dk promotes it anyway; dkb promotes it too and says so."""
    _root, bare, _digests, res = promoted(tag="1.0")
    assert "charts/dk-app renders spec.package.version: 1.0 unquoted" in res.stderr
    path = VALUES.format(env="dev", pkg="ingest")
    text = show(bare, "refs/heads/" + branch(bare, "promote/ingest/dev/c0/1.0"), path)
    assert yaml.safe_load(text)["appVersion"] == "1.0"             # dkb writes a string...
    version = render_as_argocd(path, text)["spec"]["package"]["version"]
    assert version == 1.0 and not isinstance(version, str)        # ...and Helm's output is what it warns of
