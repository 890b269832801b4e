#!/usr/bin/env bash
# Quick start 2: install with the test extras, run the lint and type gates, then the whole
# test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev
bash scripts/lint.sh
exec .venv/bin/python -m pytest "$@"
