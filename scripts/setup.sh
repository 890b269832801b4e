#!/usr/bin/env bash
# Create .venv (if missing) and install the project with the given extras, pinned by
# constraints.txt (torch stays on the local CPU build).
# Usage: scripts/setup.sh [EXTRAS]   (EXTRAS: e.g. dev, or "core" for no extras)
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-dev}"
python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
fi
target="."
[ "$extras" = "core" ] || target=".[${extras}]"
log=.venv/pip-install.log
if ! .venv/bin/python -m pip install -q -c constraints.txt -e "$target" >"$log" 2>&1; then
  cat "$log"
  echo "setup: pip install of $target failed (log above)" >&2
  exit 1
fi
grep -vE "^WARNING: Location 'file://|^ *$" "$log" | grep -iE "error|warning" || true
