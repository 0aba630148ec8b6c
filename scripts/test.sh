#!/usr/bin/env bash
# Set everything up (first run only), lint, then run the whole test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
.venv/bin/ruff check .  # lint first: a failure here costs seconds, not a test run
exec .venv/bin/python -m pytest "$@"
