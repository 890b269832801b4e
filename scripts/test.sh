#!/usr/bin/env bash
# Quick start 2: install with the test extras, run the lint and type gates, then the whole
# test suite: pytest (extra arguments go to it), then the JavaScript client's suite in js/
# (npm ci, prettier --check, tsc --noEmit, node --test; it starts the Python server from .venv).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev
bash scripts/lint.sh
.venv/bin/python -m pytest "$@"
if ! command -v npm >/dev/null 2>&1; then
  echo "test: npm is missing: the JavaScript client's tests (js/) need Node.js 20+ and npm" >&2
  exit 1
fi
echo "test: js/ (npm ci, prettier --check and tsc --noEmit, npm test)"
cd js
npm ci --no-audit --no-fund --loglevel=error
npm run lint
npm test
