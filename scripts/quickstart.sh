#!/usr/bin/env bash
# First command of the README: install the SDK with the local backend into .venv and run a real 2-node
# PyTorch job on it. The first run downloads torch into the job environment cache (a minute or two);
# later runs reuse the cached environment.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet ./packages/trainer-core ./packages/trainer-backend-local
exec .venv/bin/python examples/quickstart.py
