#!/usr/bin/env bash
# Create .venv (if missing) and install the project with the given extras, pinned by
# constraints.txt (torch stays on the local CPU build). Usage: scripts/setup.sh [EXTRAS]
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-dev}"
python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
fi
.venv/bin/python -m pip install -q -c constraints.txt -e ".[${extras}]" 2>&1 \
  | grep -vE "^WARNING: Location 'file://" || true
