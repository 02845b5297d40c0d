#!/usr/bin/env bash
# Stop the engines that setup-engines.sh started (its pid files in the state dir).
#
#   scripts/containers/stop-engines.sh [docker|podman|all]      (default: all)
#
# Engines it did not start (no pid file, or the pid is not that daemon) are left alone.
# Containers, images and networks are not touched; a running container keeps running
# under Podman (conmon) but stops with dockerd.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=common.sh
. "$HERE/common.sh"

kft_cli "$@"

answers() {  # $1 engine
  case $1 in
    docker) docker info >/dev/null 2>&1 ;;
    podman) kft_podman_ping ;;
  esac
}

stop_pid() {  # $1 engine, $2 name, $3 pid file, $4 cmdline pattern, $5 seconds to wait
  local engine=$1 name=$2 pidfile=$3 pattern=$4 wait_s=$5 pid _
  if ! kft_pid_alive "$pidfile" "$pattern"; then
    rm -f "$pidfile"
    if answers "$engine"; then
      log "$name: running, but not started by setup-engines.sh; leaving it alone"
    else
      log "$name: not running"
    fi
    return 0
  fi
  pid=$(cat "$pidfile")
  log "$name: stopping pid $pid"
  kill -TERM "$pid"
  for _ in $(seq $((wait_s * 4))); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.25
  done
  if kill -0 "$pid" 2>/dev/null; then
    die "$name: pid $pid still running after ${wait_s} s"
  fi
  rm -f "$pidfile"
  log "$name: stopped"
}

for e in $ENGINES; do
  case $e in
    docker) stop_pid docker dockerd "$KFT_STATE_DIR/dockerd.pid" dockerd 60 ;;
    podman) stop_pid podman "podman service" "$KFT_STATE_DIR/podman-service.pid" "system service" 20 ;;
  esac
done
