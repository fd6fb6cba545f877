#!/usr/bin/env bash
# `make demo`: the whole life of a package on examples/monorepo, with nothing configured and nothing
# running: build, build again (all cache hits), publish to the embedded registry, promote to dev in
# the embedded GitOps repository, status, a run with its lineage events, the governance report.
# Everything it writes is under examples/monorepo/.dkb/, which git ignores.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
DKB="$repo/.venv/bin/dkb"
cd "$repo/examples/monorepo"
rm -rf .dkb        # start from nothing, so the first build builds and the second is all cache hits

step() { printf '\n== %s\n' "$*"; }
dkb() { printf '$ dkb %s\n' "$*"; "$DKB" "$@"; }

step "build every package (lint first) into the local store .dkb/oci"
dkb build //...
step "build again: every target is a cache hit"
dkb build //...
step "publish: no registry is configured, so it goes to the embedded registry .dkb/registry"
dkb publish //...
step "promote enrich to dev: a change on a branch of the embedded GitOps repository .dkb/gitops.git"
dkb promote //pipelines/enrich --to dev
step "merge the change, as a reviewer would (plain git, a fast-forward of main)"
change=$(git --git-dir=.dkb/gitops.git for-each-ref --format='%(refname)' refs/heads/promote/enrich/dev/)
echo "\$ git --git-dir=.dkb/gitops.git update-ref refs/heads/main ${change}"
git --git-dir=.dkb/gitops.git update-ref refs/heads/main "$change"
step "status: what runs where"
dkb status //pipelines/enrich
step "run enrich locally; its OpenLineage events go to .dkb/lineage/events.jsonl"
# Store secrets come from the example's dev-profile.template.toml (no environment needed).
dkb run //pipelines/enrich
"$repo/.venv/bin/python" "$repo/scripts/show-events.py" .dkb/lineage/events.jsonl
step "governance report, as HTML"
dkb governance report --output html -o .dkb/governance.html
echo "open it: xdg-open examples/monorepo/.dkb/governance.html   (macOS: open ...)"
