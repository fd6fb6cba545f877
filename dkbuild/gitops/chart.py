"""What dk's shared chart (`gitops/charts/dk-app`) makes of a package's values.yaml.

Its PackageDeployment template renders, unquoted:

    package:
      name: {{ .Release.Name }}                  # the apps/<package> directory (ArgoCD releaseName)
      version: {{ .Values.appVersion }}
      registry: {{ .Values.registry | default "ghcr.io/infoblox-cto/dk" }}

so the controller pulls `<registry>/<name>:<version>`: `registry` is the repository prefix that
holds the package, never the package's own repository. The chart renders no digest; dkb pins it in
a top-level `digest` value (the CRD's `spec.package.digest` field), which the chart ignores, so the
pin is recorded in the GitOps repository without changing what the chart renders."""

from __future__ import annotations

import re

import yaml

from dkbuild.oci.reference import parse_reference

DEFAULT_REGISTRY = "ghcr.io/infoblox-cto/dk"          # the chart's `| default`
# Helm's release-name rule (pkg/chartutil ValidateReleaseName): DNS-1123 subdomain, at most 53 chars.
RELEASE_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def rendered_reference(values: dict[str, object], release: str) -> str:
    """The OCI reference the chart's PackageDeployment names, from the values as Helm reads them."""
    registry = str(values.get("registry") or DEFAULT_REGISTRY).rstrip("/")
    return f"{registry}/{release}:{values.get('appVersion')}"


def render_problems(values: dict[str, object], release: str) -> list[str]:
    """Why the chart would render a broken PackageDeployment from these values ([] when it would not)."""
    problems = []
    if len(release) > 53 or not RELEASE_NAME.fullmatch(release):
        problems.append(f"ArgoCD names the Helm release after the directory apps/{release}, and Helm refuses "
                        "that name (lowercase letters, digits, '-' and '.', at most 53 characters)")
    for field, key in (("version", "appVersion"), ("registry", "registry")):
        text = values.get(key)
        if text is None or text == "":
            continue
        # The template writes the value bare, so the manifest re-reads it as YAML (1.1, as Helm does).
        try:
            reread = yaml.safe_load(f"v: {text}")["v"] if isinstance(text, str) else text
        except yaml.YAMLError:
            reread = None
        if not isinstance(reread, str) or reread != text:
            problems.append(f"charts/dk-app renders spec.package.{field}: {text} unquoted, and Kubernetes reads "
                            f"it back as {reread!r} ({type(reread).__name__}), not the string {str(text)!r}")
    try:
        parse_reference(rendered_reference(values, release))
    except ValueError as exc:
        problems.append(f"charts/dk-app would name the image {rendered_reference(values, release)}, "
                        f"which is not a valid OCI reference: {exc}")
    return problems
