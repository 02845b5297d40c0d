#!/usr/bin/env bash
# Second command of the README (and what CI runs): install what the tests need, then run every nox
# session. Exits non-zero when anything fails.
#
# Today the suite needs Python and network access to a package index (torch for the local backend's job
# environments, cached under ${XDG_CACHE_HOME:-~/.cache}/kubeflow-trainer/envs, outside the clone).
# The Docker/Podman engines and the Kubernetes control plane are set up here as their backends land
# (scripts/containers/, scripts/k8s/).
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet "nox>=2024.4" "uv>=0.5"
sessions=(lint typecheck core example_plugin local conformance packaging benchmarks)
.venv/bin/nox --no-color -s "${sessions[@]}"
