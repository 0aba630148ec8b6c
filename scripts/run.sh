#!/usr/bin/env bash
# Set everything up (first run only), then serve the API with an embedded worker: no Redis needed.
# Extra arguments go to `fakewatch serve` (e.g. --port 8080).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/fakewatch serve "$@"
