#!/usr/bin/env bash
# Create .venv, install heapseg with its dev extras, and prebuild the bundled sample data.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
venv=.venv
# Reinstall only when pyproject.toml changed since the last successful install.
stamp=$venv/.heapseg-installed

if [ ! -x "$venv/bin/python" ]; then
    echo "setup: creating $venv with $("$python" --version 2>&1)"
    "$python" -m venv "$venv"
fi

if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "setup: installing heapseg[dev] into $venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e ".[dev]"
    touch "$stamp"
fi

echo "setup: sample data at $("$venv/bin/python" -c "from heapseg.sample import ensure_sample; print(ensure_sample())")"
