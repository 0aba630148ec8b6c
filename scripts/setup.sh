#!/usr/bin/env bash
# Create .venv (when missing) and install fakewatch with everything it needs to run, train and test.
# Idempotent: a stamp of the dependency files skips the install when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
venv=.venv
stamp="$venv/.fakewatch-installed"
wanted=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ]; then
    exit 0
fi

[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
pip=("$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-warn-conflicts)

# torchvision from the index does not import beside other torch builds: pin the matching pair.
"${pip[@]}" "torch==2.14.1" "torchvision==0.29.1"
"${pip[@]}" -e ".[ml,api,worker,train,dev]"
# facenet-pytorch pins torch<2.3 and numpy<2 but runs on today's; its real run-time needs are
# declared in pyproject. Installed last so pip's resolver has no stale pins to complain about.
"${pip[@]}" --no-deps "facenet-pytorch==2.6.0"

echo "$wanted" > "$stamp"
