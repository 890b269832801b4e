#!/usr/bin/env bash
# The gates CI runs before the tests: ruff lint, ruff format, mypy --strict on both packages.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "lint: ruff check"
.venv/bin/ruff check .
echo "lint: ruff format --check"
.venv/bin/ruff format --check .
echo "lint: mypy --strict (headroom_core, headroom_integrations)"
.venv/bin/mypy
