#!/usr/bin/env bash
# Second command of the README (and what CI runs): install what the tests need, then run every nox
# session. Exits non-zero when anything fails.
#
# Needs root (it installs Debian packages and starts dockerd), network access to a package index (torch for
# the local backend's job environments, cached under ${XDG_CACHE_HOME:-~/.cache}/kubeflow-trainer/envs) and
# Debian's archive (the test image, cached under ~/.cache/kubeflow-trainer-tests) and the Go module proxy
# (the Kubernetes control plane and its real-kubelet tier, built once into ~/.cache/kubeflow-trainer-tests/k8s:
# about 21 + 8 min cold on 2 cores, 0 s warm; the k8s sessions start and stop them).
#
# `scripts/test-all.sh --fresh` runs all of this from a new clone with an empty HOME and a PATH holding only
# what a new machine has (scripts/fresh-check.sh): run it before resolving anything that touches setup.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = --fresh ]; then shift; exec bash scripts/fresh-check.sh "$@"; fi
export PYTHONUNBUFFERED=1
sessions=(lint typecheck core containers example_plugin local local_torchrun docker podman e2e faults cli k8s k8s_kubelet compat conformance packaging benchmarks coverage)
# A developer's shortcut (CI never sets it): KFT_NOX_SESSIONS="lint packaging" runs those sessions and sets
# up only what they need, e.g. to check a setup change on the fresh path quickly.
if [ -n "${KFT_NOX_SESSIONS:-}" ]; then read -ra sessions <<<"$KFT_NOX_SESSIONS"; fi
needs() {  # true when one of the chosen sessions is among "$@"
  local s n
  for s in "${sessions[@]}"; do for n in "$@"; do [ "$s" = "$n" ] && return 0; done; done
  return 1
}
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet "nox>=2024.4" "uv>=0.5"
if needs docker podman e2e faults cli k8s_kubelet compat conformance benchmarks; then
  # The Docker engine, Podman's REST service (project-owned config, /etc untouched) and the locally built
  # torch test image in both (no registry is needed; cached by content).
  eval "$(scripts/containers/setup-engines.sh all)"
  scripts/containers/build-test-image.sh all >/dev/null
fi
if needs e2e; then
  # The OCI registry the image-pull tests push to and pull from (about 3 min cold on 2 cores, cached).
  bash scripts/containers/build-registry.sh >/dev/null
fi
if needs k8s k8s_kubelet compat cli; then
  python3 -c 'import yaml' 2>/dev/null || python3 -m pip install --quiet pyyaml  # scripts/k8s/up.sh renders manifests
  bash scripts/k8s/build.sh || echo "test-all: some control-plane components did not build; the k8s tests that need them will fail saying why"
fi
if needs k8s_kubelet; then
  bash scripts/k8s/node-build.sh >/dev/null || echo "test-all: some real-kubelet tier components did not build; the k8s_kubelet tests will fail saying why"
fi
.venv/bin/nox --no-color -s "${sessions[@]}"
