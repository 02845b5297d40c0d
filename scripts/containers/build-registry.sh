#!/usr/bin/env bash
# Build the OCI registry (github.com/distribution/distribution, pinned) from the Go module proxy into a cache
# outside the repo, keyed by version; print the binary's path. Idempotent (0 s when cached).
#
# The image-pull tests start it on a loopback port with their own storage (packages/trainer-containers/
# src/kubeflow_trainer_containers/testing.py: `local_registry`), push a test image with Docker and pull it
# through the backends: this machine has no registry to pull from otherwise.
set -euo pipefail
VERSION=${KFT_REGISTRY_VERSION:-3.1.2}
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/kubeflow-trainer-tests/registry/$VERSION
BIN="$CACHE/registry"
if [ -x "$BIN" ]; then echo "$BIN"; exit 0; fi
export GOTOOLCHAIN=local GOFLAGS="-buildvcs=false" CGO_ENABLED=0
work="$CACHE.work"; mkdir -p "$work"; cd "$work"
[ -f go.mod ] || go mod init local.invalid/registrybin >/dev/null 2>&1
t0=$SECONDS
{
  go get "github.com/distribution/distribution/v3/cmd/registry@v$VERSION"
  go build -p 2 -trimpath -ldflags '-s -w' -o "$BIN.tmp" github.com/distribution/distribution/v3/cmd/registry
} >"$work/build.log" 2>&1 || { echo "build-registry: build failed; last lines of $work/build.log:" >&2; tail -n 15 "$work/build.log" >&2; exit 1; }
mv "$BIN.tmp" "$BIN"
echo "build-registry: built distribution v$VERSION in $((SECONDS - t0)) s" >&2
echo "$BIN"
