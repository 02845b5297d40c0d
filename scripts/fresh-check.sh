#!/usr/bin/env bash
# Prove the README's test command on a fresh machine before submitting: `scripts/test-all.sh --fresh`.
#
# Runs `.ci/run` (= scripts/test-all.sh) from a NEW CLONE of the committed HEAD, as CI does, with:
#   - an empty HOME, so every user-level cache and config is cold: pip's and uv's caches, the job environment
#     cache, the test images' tarballs, the Kubernetes control-plane build, the Go module and build caches,
#     ~/.config/pip, ~/.docker ...;
#   - a PATH holding only what a new machine of this kind has: the system directories and Go, and a `python3`
#     that has nothing but the standard library and pip (a venv of the machine's interpreter), so tools a
#     developer installed globally (uv, nox, ruff, PyYAML, anything pip-installed into the interpreter or into
#     ~/.cargo/bin, ~/go/bin, ~/.local/bin) are invisible;
#   - the machine's environment (CA bundles, proxy and pip settings that come with the machine stay), less
#     what points at a developer's setup: XDG_*, VIRTUAL_ENV, UV_*, NOX_*, KFT_*, KUBECONFIG, DOCKER_*,
#     CONTAINER_HOST, PYTHONPATH/PYTHONHOME, GO* caches; CI=true as in CI.
# A missing install step fails here, not in a user's hands.
#
# What it cannot reset: machine-wide state made by root (Debian packages, the running Docker engine and Podman
# service, their images). setup-engines.sh installs and starts those itself when they are missing, so a
# new machine is covered by the same script; to check that path too, run it on a new machine.
#
#   scripts/fresh-check.sh [--keep] [--sessions "lint packaging"]
#     --keep: leave the temporary clone and HOME for inspection
#     --sessions: run only these nox sessions (and set up only what they need): a quick check of a setup
#                 change; the whole suite (the default) is what resolving a setup issue needs
#
# Cold, this takes as long as a first CI run on a new machine (about 50 min on 2 cores, most of it the
# control-plane build). It prints the log's path; exit status is .ci/run's.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
keep=0
only=""
while [ $# -gt 0 ]; do
  case $1 in
    --keep) keep=1 ;;
    --sessions) only=$2; shift ;;
    *) echo "fresh-check: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

work=$(mktemp -d "${TMPDIR:-/tmp}/kft-fresh.XXXXXX")
cleanup() {
  local rc=$?
  if [ "$keep" = 1 ] || [ "$rc" != 0 ]; then
    echo "fresh-check: kept $work (clone in $work/repo, HOME in $work/home)" >&2
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT

git -C "$repo" diff --quiet HEAD -- || echo "fresh-check: note: uncommitted changes are NOT part of the check (it clones HEAD)" >&2
git clone --quiet --no-local "$repo" "$work/repo"
mkdir -p "$work/home" "$work/bin"

# The machine's interpreter without anything installed into it: a venv (stdlib + pip only).
base_python=$(python3 -c 'import sys; print(sys.executable)')
"$base_python" -m venv "$work/python"
for exe in python python3 pip pip3; do ln -s "$work/python/bin/$exe" "$work/bin/$exe"; done

path="$work/bin"
[ -d /usr/local/go/bin ] && path="$path:/usr/local/go/bin"   # Go ships with a new machine of this kind
path="$path:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Tools a new machine does not have must not be reachable.
masked=()
for tool in uv nox ruff mypy kwok etcd; do  # (kubectl: a new machine has a gcloud one in /usr/bin)
  if PATH=$path command -v "$tool" >/dev/null 2>&1; then masked+=("$tool=$(PATH=$path command -v "$tool")"); fi
done
if [ ${#masked[@]} -gt 0 ]; then
  echo "fresh-check: these are on the system PATH but not on a new machine: ${masked[*]}; remove them first" >&2
  exit 2
fi

log="$work/ci.log"
echo "fresh-check: running .ci/run in $work/repo with HOME=$work/home; log: $log" >&2
set +e
unset_args=()
while IFS= read -r var; do unset_args+=(-u "$var"); done < <(
  env | sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)=.*/\1/p' \
    | grep -E '^(XDG_.*|VIRTUAL_ENV|UV_.*|NOX_.*|KFT_.*|KUBECONFIG|DOCKER_.*|CONTAINER_HOST|PYTHONPATH|PYTHONHOME|GOPATH|GOCACHE|GOMODCACHE|GOFLAGS|GOTOOLCHAIN|CONDA_.*|PYENV_VERSION)$' || true)
env "${unset_args[@]}" HOME="$work/home" PATH="$path" CI=true ${only:+KFT_NOX_SESSIONS="$only"} \
  bash "$work/repo/.ci/run" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
echo "fresh-check: .ci/run exited $rc" >&2
[ "$rc" = 0 ] || keep=1
exit "$rc"
