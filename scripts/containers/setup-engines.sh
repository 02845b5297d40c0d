#!/usr/bin/env bash
# Install and start the container engines used by the test suite.
#
#   scripts/containers/setup-engines.sh [docker|podman|all]      (default: all)
#
# - installs the Debian packages that are missing (apt-get update only when needed);
# - starts dockerd in the background when `docker info` fails;
# - writes a Podman containers.conf into the suite's state dir (not /etc) and starts
#   `podman system service` on unix:///run/podman/podman.sock when the socket does not answer.
#
# Idempotent: engines that already answer are left as they are. Progress goes to stderr;
# stdout gets only `export ...` lines, so `eval "$(scripts/containers/setup-engines.sh)"`
# configures the calling shell. The same lines are written to $KFT_STATE_DIR/env.sh.
# stop-engines.sh stops what this script started (and nothing else).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=common.sh
. "$HERE/common.sh"

kft_cli "$@"
[ "$(id -u)" = 0 ] || die "must run as root (rootful dockerd and podman service)"
mkdir -p "$KFT_STATE_DIR"

# ---------------------------------------------------------------------------- packages
need_pkgs=()
want_pkgs=(mmdebstrap)
for e in $ENGINES; do
  case $e in
    docker) want_pkgs+=(docker.io) ;;
    # netavark + aardvark-dns named explicitly: without them container-name DNS is missing.
    podman) want_pkgs+=(podman netavark aardvark-dns runc) ;;
  esac
done
for p in "${want_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need_pkgs+=("$p")
done
if [ ${#need_pkgs[@]} -gt 0 ]; then
  log "installing: ${need_pkgs[*]}"
  t0=$SECONDS
  # Some third-party sources may be unreachable; the Debian archive is what matters.
  apt_log=$KFT_STATE_DIR/apt.log
  apt-get update >"$apt_log" 2>&1 || log "apt-get update reported errors (see $apt_log); trying the install anyway"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -o Dpkg::Use-Pty=0 "${need_pkgs[@]}" >>"$apt_log" 2>&1 \
    || { tail -n 20 "$apt_log" >&2; die "apt-get install ${need_pkgs[*]} failed (log: $apt_log)"; }
  log "packages installed in $((SECONDS - t0)) s"
fi

# ---------------------------------------------------------------------------- docker
setup_docker() {
  if docker info >/dev/null 2>&1; then
    log "docker: daemon already answers ($(docker version -f '{{.Server.Version}}' 2>/dev/null))"
    return 0
  fi
  command -v dockerd >/dev/null || die "dockerd not found (is docker.io installed?)"
  if pgrep -x dockerd >/dev/null; then
    die "docker: a dockerd process exists but \`docker info\` fails; see its log or stop it first"
  fi
  log "docker: starting dockerd (log: $KFT_STATE_DIR/dockerd.log)"
  # setsid: own session, so the daemon survives this shell and its job control.
  setsid dockerd >"$KFT_STATE_DIR/dockerd.log" 2>&1 </dev/null &
  echo $! >"$KFT_STATE_DIR/dockerd.pid"
  local _
  for _ in $(seq 120); do          # up to 60 s
    docker info >/dev/null 2>&1 && break
    kill -0 "$(cat "$KFT_STATE_DIR/dockerd.pid")" 2>/dev/null || {
      tail -n 20 "$KFT_STATE_DIR/dockerd.log" >&2; rm -f "$KFT_STATE_DIR/dockerd.pid"
      die "docker: dockerd exited during start-up"; }
    sleep 0.5
  done
  docker info >/dev/null 2>&1 || { tail -n 20 "$KFT_STATE_DIR/dockerd.log" >&2; die "docker: dockerd not ready after 60 s"; }
  log "docker: dockerd ready ($(docker version -f '{{.Server.Version}}'), pid $(cat "$KFT_STATE_DIR/dockerd.pid"))"
}

# ---------------------------------------------------------------------------- podman
write_containers_conf() {
  # Rootful podman's default rlimits (nofile 1048576, nproc > 32768) exceed the hard limits of
  # this sandbox (root has no CAP_SYS_RESOURCE); runc then fails with "error setting rlimit".
  # crun fails on this host with "cgroups in hybrid mode not supported", hence runc.
  local hn hu nofile nproc tmp
  hn=$(ulimit -Hn); hu=$(ulimit -Hu)
  nofile=16384; nproc=16384
  [ "$hn" != unlimited ] && [ "$hn" -lt "$nofile" ] && nofile=$hn
  [ "$hu" != unlimited ] && [ "$hu" -lt "$nproc" ] && nproc=$hu
  tmp=$(mktemp "$KFT_STATE_DIR/containers.conf.XXXXXX")
  cat >"$tmp" <<EOF
# Written by scripts/containers/setup-engines.sh for the Kubeflow Trainer test suite.
# Used only through CONTAINERS_CONF=$KFT_CONTAINERS_CONF (never installed in /etc).
[containers]
# Same as Debian's /usr/share/containers/containers.conf, which CONTAINERS_CONF replaces.
default_sysctls = [
  "net.ipv4.ping_group_range=0 0",
]
default_ulimits = [
  "nofile=$nofile:$nofile",
  "nproc=$nproc:$nproc",
]

[engine]
runtime = "runc"
# The default (1m) rotates the events log away in a long test run; the backends read job events from it.
events_logfile_max_size = "200m"
EOF
  if cmp -s "$tmp" "$KFT_CONTAINERS_CONF"; then rm -f "$tmp"; return 1; fi
  mv "$tmp" "$KFT_CONTAINERS_CONF"
  log "podman: wrote $KFT_CONTAINERS_CONF (nofile=$nofile nproc=$nproc, runtime=runc)"
  return 0
}

podman_service_runtime() {
  # Prints the OCI runtime the running service uses (empty if unknown).
  curl -sf --max-time 5 --unix-socket "$KFT_PODMAN_SOCKET" http://d/v4.0.0/libpod/info 2>/dev/null \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["host"]["ociRuntime"]["name"])' 2>/dev/null || true
}

setup_podman() {
  command -v podman >/dev/null || die "podman not found"
  local conf_changed=0
  write_containers_conf && conf_changed=1
  local pidfile=$KFT_STATE_DIR/podman-service.pid
  if kft_podman_ping; then
    if kft_pid_alive "$pidfile" "system service"; then
      if [ $conf_changed = 1 ]; then
        log "podman: containers.conf changed; restarting the service this script started"
        kill "$(cat "$pidfile")" 2>/dev/null || true
        local _; for _ in $(seq 40); do kft_podman_ping || break; sleep 0.25; done
        rm -f "$pidfile"
      else
        log "podman: service already answers on $KFT_PODMAN_SOCKET (pid $(cat "$pidfile"))"
        return 0
      fi
    else
      local rt; rt=$(podman_service_runtime)
      if [ "$rt" = runc ]; then
        log "podman: a service not started by this script answers on $KFT_PODMAN_SOCKET (runtime runc); leaving it alone (its ulimits cannot be checked: containers may fail with \"error setting rlimit\" unless it runs with CONTAINERS_CONF=$KFT_CONTAINERS_CONF)"
        return 0
      fi
      die "podman: a service not started by this script answers on $KFT_PODMAN_SOCKET with runtime '${rt:-unknown}' (needs runc); stop it and rerun"
    fi
  fi
  mkdir -p "$(dirname "$KFT_PODMAN_SOCKET")"
  # A stale socket file (from a killed service) makes bind fail.
  [ -S "$KFT_PODMAN_SOCKET" ] && rm -f "$KFT_PODMAN_SOCKET"
  log "podman: starting 'podman system service' on unix://$KFT_PODMAN_SOCKET (log: $KFT_STATE_DIR/podman-service.log)"
  CONTAINERS_CONF="$KFT_CONTAINERS_CONF" setsid podman --runtime runc system service --time=0 \
    "unix://$KFT_PODMAN_SOCKET" >"$KFT_STATE_DIR/podman-service.log" 2>&1 </dev/null &
  echo $! >"$pidfile"
  local _
  for _ in $(seq 120); do           # up to 30 s
    kft_podman_ping && break
    kill -0 "$(cat "$pidfile")" 2>/dev/null || {
      tail -n 20 "$KFT_STATE_DIR/podman-service.log" >&2; rm -f "$pidfile"
      die "podman: service exited during start-up"; }
    sleep 0.25
  done
  kft_podman_ping || die "podman: service did not answer on $KFT_PODMAN_SOCKET within 30 s"
  local rt; rt=$(podman_service_runtime)
  [ "$rt" = runc ] || die "podman: service reports OCI runtime '${rt:-unknown}', expected runc"
  log "podman: service ready ($(kft_podman version -f '{{.Server.Version}}' 2>/dev/null || echo '?'), runtime $rt, pid $(cat "$pidfile"))"
  # Check the settings with a real container when a test image is already there.
  local img out
  for img in "$KFT_SLIM_IMAGE" "$KFT_TORCH_IMAGE"; do
    kft_podman image exists "$img" 2>/dev/null || continue
    out=$(kft_podman run --rm --network none "$img" true 2>&1) \
      || { printf '%s\n' "$out" >&2; die "podman: \`podman run --rm $img true\` fails with $KFT_CONTAINERS_CONF"; }
    log "podman: \`podman run --rm $img true\` ok"
    break
  done
}

for e in $ENGINES; do
  "setup_$e"
done

# ---------------------------------------------------------------------------- env hints
{
  echo "# Source this file to talk to the engines the Kubeflow Trainer test suite uses."
  echo "export KFT_STATE_DIR='$KFT_STATE_DIR'"
  echo "export DOCKER_HOST='unix://$KFT_DOCKER_SOCKET'"
  echo "export CONTAINERS_CONF='$KFT_CONTAINERS_CONF'"
  echo "export KFT_PODMAN_HOST='unix://$KFT_PODMAN_SOCKET'"
  echo "export KFT_TORCH_IMAGE='$KFT_TORCH_IMAGE'"
  echo "export KFT_SLIM_IMAGE='$KFT_SLIM_IMAGE'"
} >"$KFT_STATE_DIR/env.sh"
log "ok: engines ready: $ENGINES  (env: . $KFT_STATE_DIR/env.sh)"
grep '^export' "$KFT_STATE_DIR/env.sh"
