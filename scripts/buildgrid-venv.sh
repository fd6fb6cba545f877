#!/usr/bin/env bash
# BuildGrid (the REAPI server the tests run against) in its own venv: BuildGrid 0.9.1 needs
# Python >= 3.13, dkb runs on 3.11. Usage: scripts/buildgrid-venv.sh [VENV] (default .venv-buildgrid).
# BUILDGRID_PYTHON picks the interpreter; else python3.13+ on PATH, else pyenv's newest 3.13+.
set -euo pipefail
VENV=${1:-.venv-buildgrid}
VERSION=0.9.1
STAMP="$VENV/.installed-$VERSION"
[ -x "$VENV/bin/bgd" ] && [ -f "$STAMP" ] && exit 0

candidates() {
  [ -n "${BUILDGRID_PYTHON:-}" ] && { echo "$BUILDGRID_PYTHON"; return; }
  command -v python3.14 python3.13 2>/dev/null || true
  ls -d "$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")"/versions/3.1[3-9]*/bin/python 2>/dev/null | sort -rV
}

PY=""
while read -r candidate; do   # the first that runs and is new enough (a pyenv shim may do neither)
  if [ -n "$candidate" ] && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 13))' 2>/dev/null; then
    PY=$candidate; break
  fi
done < <(candidates)
if [ -z "$PY" ]; then
  echo "buildgrid-venv: BuildGrid $VERSION needs Python >= 3.13 and none was found" \
       "(install python3.13, or set BUILDGRID_PYTHON=/path/to/python3.13)" >&2
  exit 1
fi
echo "buildgrid-venv: installing buildgrid==$VERSION into $VENV with $PY"
"$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "buildgrid==$VERSION"
touch "$STAMP"
