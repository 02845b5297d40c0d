#!/usr/bin/env bash
# Stop everything up.sh started (by the pids in $RUN_DIR/pids, newest first) and
# remove the runtime dir. Safe to run when nothing is running.
#   scripts/k8s/down.sh          (KFT_K8S_RUN_DIR overrides the runtime dir)
#   KFT_K8S_KEEP_RUN_DIR=1       keep the runtime dir (logs) after stopping
set -uo pipefail
. "$(dirname "$0")/common.sh"

if [ -z "${KFT_K8S_LOCK_HELD:-}" ] && [ -d "$(dirname "$RUN_DIR")" ]; then exec 8>"$RUN_DIR.lock"; flock -w 120 8 || true; fi
[ -d "$RUN_DIR" ] || { k8s_log "nothing to stop ($RUN_DIR does not exist)"; exit 0; }
if [ ! -f "$RUN_DIR/.kft-k8s-run" ]; then
  echo "refusing: $RUN_DIR was not made by up.sh" >&2; exit 2
fi

# pid_ok PID NAME: the pid still runs one of our binaries (guards against pid reuse)
pid_ok() {
  [ -d "/proc/$1" ] || return 1
  local exe; exe=$(readlink "/proc/$1/exe" 2>/dev/null) || return 1
  case $(basename "${exe% (deleted)}") in
    etcd|kube-apiserver|kube-controller-manager|kube-scheduler|kwok|jobset|trainer-controller-manager) return 0 ;;
  esac
  return 1
}

ORDER="trainer jobset kwok kube-scheduler kube-controller-manager kube-apiserver etcd"
for name in $ORDER; do
  f="$RUN_DIR/pids/$name.pid"; [ -f "$f" ] || continue
  pid=$(cat "$f"); [ -n "$pid" ] || { rm -f "$f"; continue; }
  if pid_ok "$pid" "$name"; then
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 100); do pid_ok "$pid" "$name" || break; sleep 0.1; done
    if pid_ok "$pid" "$name"; then kill -KILL "$pid" 2>/dev/null; sleep 0.2; k8s_log "killed $name ($pid)"; else k8s_log "stopped $name ($pid)"; fi
  fi
  rm -f "$f"
done

if [ "${KFT_K8S_KEEP_RUN_DIR:-0}" = 1 ]; then
  k8s_log "kept $RUN_DIR"
else
  rm -rf "$RUN_DIR"; k8s_log "removed $RUN_DIR"
fi
