# shellcheck shell=bash
# Shared settings for the container test scripts. Sourced, not executed.
#
# Everything these scripts write lives outside the repository and outside /etc:
#   state (pid files, logs, containers.conf, env.sh):
#     ${KFT_STATE_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/kubeflow-trainer-tests}
#   cache (rootfs tarballs of the test images):
#     ${KFT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kubeflow-trainer-tests}

KFT_STATE_DIR=${KFT_STATE_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/kubeflow-trainer-tests}
KFT_CACHE_DIR=${KFT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kubeflow-trainer-tests}

# Podman configuration owned by the test suite (never /etc/containers/containers.conf).
KFT_CONTAINERS_CONF=${KFT_CONTAINERS_CONF:-$KFT_STATE_DIR/containers.conf}
# Socket of the Podman REST service (libpod API and Docker-compatible API).
KFT_PODMAN_SOCKET=${KFT_PODMAN_SOCKET:-/run/podman/podman.sock}
# Socket of dockerd (its default).
KFT_DOCKER_SOCKET=${KFT_DOCKER_SOCKET:-/var/run/docker.sock}

# Image names (the same name works in docker and podman).
KFT_TORCH_IMAGE=${KFT_TORCH_IMAGE:-localhost/kubeflow-trainer-test/torch:cpu}
KFT_SLIM_IMAGE=${KFT_SLIM_IMAGE:-localhost/kubeflow-trainer-test/python:slim}

# Prints the comment block at the top of script $1 (its usage text).
kft_usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$1"; }

log() { printf '[%s] %s\n' "$(basename "$0" .sh)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Parse the engine argument: docker | podman | all (default all).
kft_engines() {
  case "${1:-all}" in
    docker) echo docker ;;
    podman) echo podman ;;
    all) echo docker podman ;;
    -h|--help) return 2 ;;
    *) die "unknown engine '$1' (expected docker, podman or all)" ;;
  esac
}

# podman CLI with the suite's configuration.
kft_podman() { CONTAINERS_CONF="$KFT_CONTAINERS_CONF" podman "$@"; }

kft_engine_cli() {
  case "$1" in
    docker) docker "${@:2}" ;;
    podman) kft_podman "${@:2}" ;;
  esac
}

kft_podman_ping() {
  curl -sf --max-time 5 --unix-socket "$KFT_PODMAN_SOCKET" http://d/v4.0.0/libpod/_ping >/dev/null 2>&1
}

# True when pid file $1 names a live process whose command line contains $2.
kft_pid_alive() {
  local pidfile=$1 pattern=$2 pid
  [ -s "$pidfile" ] || return 1
  pid=$(cat "$pidfile")
  [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$pattern"
}

# Shared command-line prologue: `kft_cli "$@"` prints the calling script's header on -h/--help and exits,
# otherwise sets ENGINES from the first argument (docker|podman|all, default all).
kft_cli() {
  if [ "${1:-}" = -h ] || [ "${1:-}" = --help ]; then
    kft_usage "$0"
    exit 0
  fi
  ENGINES=$(kft_engines "${1:-all}")
}
