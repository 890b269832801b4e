#!/usr/bin/env bash
# Quick start 1: install, then simulate and compress the bundled example agent history.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh core
.venv/bin/headroom simulate "$@"
