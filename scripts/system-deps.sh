#!/usr/bin/env bash
# Installs the Debian packages the test suite drives for real (DESIGN §6), only when missing.
set -euo pipefail

declare -A BINARY_OF=(
  [git]=git
  [docker-registry]=docker-registry
  [skopeo]=skopeo
  [umoci]=umoci
  [buildah]=buildah
  [chromium]=chromium
  [postgresql]=pg_ctlcluster    # BuildGrid's SQL scheduler in the remote-execution tests
  [golang-go]=go          # `dkb run` of generic-go packages
)

missing=()
for pkg in "${!BINARY_OF[@]}"; do
  command -v "${BINARY_OF[$pkg]}" >/dev/null 2>&1 || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then SUDO=""; elif command -v sudo >/dev/null; then SUDO="sudo -n"; else
  echo "system-deps: missing ${missing[*]} and no root/sudo to install them" >&2; exit 1
fi
echo "system-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
